//! clean_active_carts on the embedded backend with a hand-turned clock.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::Duration;
use clean_active_carts::{CleanActiveCarts, CleanCartsArgs};
use jobkit::{
    clock::ManualClock, message::OutgoingMessage, ports::Queue, runner::RecordStatus, testing::TestHarness,
};
use shop::{Cart, CartId, CartItem, CartRepository, CartStatus, RepoResult, StockRelease, embedded::ShopDb};

const IDLE_AFTER_HOURS: i64 = 2;

fn cart(
    id: String,
    status: CartStatus,
    idle_hours: i64,
    expires_in_hours: i64,
    now: chrono::DateTime<chrono::Utc>,
) -> Cart {
    Cart {
        id: id.into(),
        store_id: "st_42".into(),
        items: vec![CartItem { variant_id: "v1".into(), quantity: 2 }],
        status,
        stock_reserved: status == CartStatus::Active,
        last_activity_at: now - Duration::hours(idle_hours),
        expires_at: now + Duration::hours(expires_in_hours),
    }
}

/// 250 idle carts, 10 recent ones, 5 checked out, 20 expired (and idle).
fn seed(db: &ShopDb, now: chrono::DateTime<chrono::Utc>) {
    let carts = (0..250)
        .map(|i| cart(format!("idle-{i}"), CartStatus::Active, 3, 24, now))
        .chain((0..10).map(|i| cart(format!("recent-{i}"), CartStatus::Active, 1, 24, now)))
        .chain((0..5).map(|i| cart(format!("bought-{i}"), CartStatus::CheckedOut, 5, 24, now)))
        .chain((0..20).map(|i| cart(format!("expired-{i}"), CartStatus::Abandoned, 30, -1, now)));
    for c in carts {
        db.put_cart(&c).unwrap();
    }
}

/// Each batch read takes 150 s of the test clock, so 300 s executions continue.
#[derive(Debug)]
struct SlowCarts {
    db: ShopDb,
    clock: ManualClock,
}

#[async_trait]
impl CartRepository for SlowCarts {
    async fn idle_active(
        &self,
        idle_since: chrono::DateTime<chrono::Utc>,
        limit: usize,
    ) -> RepoResult<Vec<Result<Cart, jobkit::SetAside>>> {
        self.clock.advance(Duration::seconds(150));
        self.db.idle_active(idle_since, limit).await
    }

    async fn abandon(&self, cart: &CartId, releases: &[StockRelease]) -> RepoResult<bool> {
        self.db.abandon(cart, releases).await
    }

    async fn set_aside(
        &self,
        cart: &CartId,
        reason: &str,
        at: chrono::DateTime<chrono::Utc>,
    ) -> RepoResult<bool> {
        self.db.set_aside(cart, reason, at).await
    }

    async fn expired(&self, now: chrono::DateTime<chrono::Utc>, limit: usize) -> RepoResult<Vec<CartId>> {
        self.db.expired(now, limit).await
    }

    async fn delete(&self, carts: &[CartId]) -> RepoResult<usize> {
        self.db.delete(carts).await
    }
}

/// The hourly tick for `time` (the test clock starts at 2026-01-01T00:00Z, and a tick for a time
/// ahead of the clock would be refused).
fn tick(time: &str) -> OutgoingMessage {
    let body = format!(r#"{{"$schedule":{{"rule":"clean-active-carts-hourly","time":"{time}"}}}}"#);
    OutgoingMessage { body, ..Default::default() }
}

#[tokio::test]
async fn idle_carts_are_abandoned_with_their_stock_released_once_and_expired_ones_deleted() {
    let t = TestHarness::new();
    let db = ShopDb::in_memory().unwrap();
    let now = t.runtime().clock.now();
    seed(&db, now);
    let carts = Arc::new(SlowCarts { db: db.clone(), clock: t.clock().clone() });
    let runner = t.runner(CleanActiveCarts::new(carts, Duration::hours(IDLE_AFTER_HOURS)));

    t.queue()
        .send(&TestHarness::queue_name::<CleanActiveCarts>(), tick("2025-12-31T23:00:00Z"))
        .await
        .unwrap();
    let report = t.drain(&runner).await;
    assert!(
        report.count(|s| *s == RecordStatus::Continued) >= 1,
        "a 3-batch backlog in 300 s executions continues"
    );
    assert_eq!(report.succeeded(), 1);
    assert_eq!(db.available(&"v1".into()).unwrap(), 500, "250 carts x 2 units, released once");
    assert_eq!(db.cart(&"idle-0".into()).unwrap().unwrap().status, CartStatus::Abandoned);
    assert_eq!(db.cart(&"recent-0".into()).unwrap().unwrap().status, CartStatus::Active);
    assert_eq!(db.cart(&"bought-0".into()).unwrap().unwrap().status, CartStatus::CheckedOut);
    assert_eq!(db.cart(&"expired-0".into()).unwrap(), None);

    // The same tick delivered again runs nothing; the next tick finds nothing new to release.
    t.queue()
        .send(&TestHarness::queue_name::<CleanActiveCarts>(), tick("2025-12-31T23:00:00Z"))
        .await
        .unwrap();
    assert_eq!(t.drain(&runner).await.count(|s| *s == RecordStatus::Duplicate), 1);
    t.queue()
        .send(&TestHarness::queue_name::<CleanActiveCarts>(), tick("2026-01-01T00:00:00Z"))
        .await
        .unwrap();
    assert_eq!(t.drain(&runner).await.succeeded(), 1);
    assert_eq!(db.available(&"v1".into()).unwrap(), 500);
}

#[tokio::test]
async fn two_janitors_racing_for_one_cart_release_its_stock_once() {
    let db = ShopDb::in_memory().unwrap();
    let now = chrono::Utc::now();
    db.put_cart(&cart("c1".into(), CartStatus::Active, 3, 24, now)).unwrap();
    let releases = [StockRelease { variant_id: "v1".into(), quantity: 2 }];
    let id = CartId::from("c1");
    let (a, b) = tokio::join!(db.abandon(&id, &releases), db.abandon(&id, &releases));
    assert_eq!([a.unwrap(), b.unwrap()].iter().filter(|won| **won).count(), 1);
    assert_eq!(db.available(&"v1".into()).unwrap(), 2);
}

#[tokio::test]
async fn the_job_accepts_an_empty_body_and_refuses_arguments_it_does_not_know() {
    let t = TestHarness::new();
    let runner = t.runner(CleanActiveCarts::new(Arc::new(ShopDb::in_memory().unwrap()), Duration::hours(2)));
    t.enqueuer().perform_later::<CleanActiveCarts>(&CleanCartsArgs {}).await.unwrap();
    t.queue()
        .send(
            &TestHarness::queue_name::<CleanActiveCarts>(),
            OutgoingMessage { body: r#"{"older_than":"2h"}"#.into(), ..Default::default() },
        )
        .await
        .unwrap();
    let statuses: Vec<_> = t.run_once(&runner).await.into_iter().map(|o| o.status).collect();
    assert_eq!(statuses[0], RecordStatus::Succeeded);
    assert!(matches!(statuses[1], RecordStatus::DeadLettered(..)), "{statuses:?}");
}
