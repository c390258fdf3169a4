//! One bad record stops nothing, on the embedded (SQLite) adapters: the cart janitor sets aside
//! a cart that does not read and abandons the others, and the next runs leave it out; the
//! history's purge deletes an entry that does not decode like any other.
//!
//! Needs the `embedded` feature: `cargo test -p shop --features embedded --test set_aside`.
#![cfg(feature = "embedded")]

use std::sync::{
    Arc,
    atomic::{AtomicBool, AtomicUsize, Ordering},
};

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use jobkit::{JobError, SetAside};
use shop::{
    Cart, CartId, CartItem, CartRepository, CartStatus, History, HistoryEntry, RecordKind, RepoError,
    RepoResult, StockRelease, embedded::ShopDb, services::CartJanitor,
};

const BATCH: usize = 100;

/// An in-memory database of its own that a second connection can reach (SQLite's shared cache),
/// to write a broken row behind the repository's back; in memory, as a file's commits would
/// each wait for the disk.
struct TestDb(String);

impl TestDb {
    fn new(name: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        Self(format!("file:shop-{name}-{}-{n}?mode=memory&cache=shared", std::process::id()))
    }

    /// The repository; the database lives as long as it does.
    fn open(&self) -> ShopDb {
        ShopDb::open(&self.0).unwrap()
    }

    /// Runs `sql` on the database as a bad writer or a bad migration would.
    fn corrupt(&self, sql: &str) {
        let changed = rusqlite::Connection::open(&self.0).unwrap().execute(sql, []).unwrap();
        assert_eq!(changed, 1, "{sql}");
    }
}

fn idle_cart(n: usize, lines: usize, now: DateTime<Utc>) -> Cart {
    Cart {
        id: format!("cart-{n:03}").into(),
        store_id: "st_1".into(),
        items: (0..lines)
            .map(|l| CartItem { variant_id: format!("v{}", (n + l) % 7).into(), quantity: 2 })
            .collect(),
        status: CartStatus::Active,
        stock_reserved: true,
        // The oldest first: cart-000 is the first the query returns.
        last_activity_at: now - Duration::hours(3) - Duration::minutes(500 - n as i64),
        expires_at: now + Duration::days(1),
    }
}

/// The cleanup job's loop: batches until one comes back short, collecting what was set aside.
async fn run(janitor: &CartJanitor, now: DateTime<Utc>) -> Result<(usize, u64, Vec<SetAside>), JobError> {
    let (mut abandoned, mut units, mut set_aside) = (0, 0, Vec::new());
    loop {
        let batch = janitor.abandon_idle(now, Duration::hours(2), BATCH).await?;
        abandoned += batch.abandoned;
        units += batch.units_released;
        set_aside.extend(batch.set_aside);
        if batch.examined < BATCH {
            return Ok((abandoned, units, set_aside));
        }
    }
}

fn available(db: &ShopDb) -> i64 {
    (0..7).map(|v| db.available(&format!("v{v}").into()).unwrap()).sum()
}

#[tokio::test]
async fn one_unreadable_cart_among_500_is_set_aside_and_the_499_others_are_abandoned() {
    let file = TestDb::new("unreadable-cart");
    let db = file.open();
    let now = Utc::now();
    for n in 0..500 {
        db.put_cart(&idle_cart(n, 1, now)).unwrap();
    }
    // In the second batch, so that the first is full and the walk has to go on past it.
    file.corrupt("UPDATE carts SET items = '[{\"variant_id\": 7' WHERE id = 'cart-137'");
    let janitor = CartJanitor::new(Arc::new(db.clone()));

    let (abandoned, units, set_aside) = run(&janitor, now).await.unwrap();

    assert_eq!(abandoned, 499);
    assert_eq!((units, available(&db)), (998, 998), "the 499 gave their stock back");
    assert_eq!(set_aside.len(), 1, "{set_aside:?}");
    assert_eq!(set_aside[0].id, "cart-137");
    assert!(set_aside[0].reason.contains("does not read"), "{}", set_aside[0].reason);
    let stored = db.set_aside_reason(&"cart-137".into()).unwrap();
    assert_eq!(stored.as_deref(), Some(set_aside[0].reason.as_str()), "marked, with why");
    assert_eq!(db.cart(&"cart-138".into()).unwrap().unwrap().status, CartStatus::Abandoned);

    // The next hourly run: nothing left, the set-aside cart not picked up again.
    let (abandoned, _, set_aside) = run(&janitor, now + Duration::hours(1)).await.unwrap();
    assert_eq!((abandoned, set_aside), (0, vec![]));
    assert!(db.idle_active(now, 10).await.unwrap().is_empty());

    // Its expired session is kept for the operator, the others' deleted.
    let later = now + Duration::days(2);
    assert_eq!(janitor.delete_expired(later, 1000).await.unwrap(), 499);
    assert!(db.set_aside_reason(&"cart-137".into()).unwrap().is_some());
}

#[tokio::test]
async fn a_cart_made_active_again_by_the_operator_is_no_longer_set_aside() {
    let db = ShopDb::in_memory().unwrap();
    let now = Utc::now();
    let cart = idle_cart(1, 1, now);
    db.put_cart(&cart).unwrap();
    assert!(db.set_aside(&cart.id, "its items do not read", now).await.unwrap());
    assert!(!db.set_aside(&cart.id, "again", now).await.unwrap(), "only an active cart is set aside");
    assert_eq!(db.cart(&cart.id).unwrap().unwrap().status, CartStatus::SetAside, "it reads back");
    assert_eq!(db.set_aside_reason(&cart.id).unwrap().as_deref(), Some("its items do not read"));

    db.put_cart(&cart).unwrap();
    assert_eq!(db.set_aside_reason(&cart.id).unwrap(), None);
    let janitor = CartJanitor::new(Arc::new(db.clone()));
    assert_eq!(run(&janitor, now).await.unwrap().0, 1, "abandoned by the next run");
}

#[tokio::test]
async fn a_cart_with_many_lines_and_repeated_variants_is_abandoned_on_sqlite() {
    // SQLite has no limit on a transaction's writes: only DynamoDB's adapter refuses (moto's test).
    let db = ShopDb::in_memory().unwrap();
    let now = Utc::now();
    db.put_cart(&idle_cart(0, 120, now)).unwrap();
    let (abandoned, units, set_aside) = run(&CartJanitor::new(Arc::new(db.clone())), now).await.unwrap();
    assert_eq!((abandoned, units, set_aside.len()), (1, 240, 0));
    assert_eq!(available(&db), 240);
}

/// The embedded carts, whose `set_aside` fails while `failing` is set.
#[derive(Debug)]
struct FlakyMarks {
    db: ShopDb,
    failing: AtomicBool,
}

#[async_trait]
impl CartRepository for FlakyMarks {
    async fn idle_active(
        &self,
        idle_since: DateTime<Utc>,
        limit: usize,
    ) -> RepoResult<Vec<Result<Cart, SetAside>>> {
        self.db.idle_active(idle_since, limit).await
    }

    async fn abandon(&self, cart: &CartId, releases: &[StockRelease]) -> RepoResult<bool> {
        self.db.abandon(cart, releases).await
    }

    async fn set_aside(&self, cart: &CartId, reason: &str, at: DateTime<Utc>) -> RepoResult<bool> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(RepoError::Unavailable("the database is busy".into()));
        }
        self.db.set_aside(cart, reason, at).await
    }

    async fn expired(&self, now: DateTime<Utc>, limit: usize) -> RepoResult<Vec<CartId>> {
        self.db.expired(now, limit).await
    }

    async fn delete(&self, carts: &[CartId]) -> RepoResult<usize> {
        self.db.delete(carts).await
    }
}

#[tokio::test]
async fn a_cart_that_could_not_be_marked_comes_back_rather_than_being_marked_and_never_reported() {
    let file = TestDb::new("flaky-marks");
    let db = file.open();
    let now = Utc::now();
    for n in 0..20 {
        db.put_cart(&idle_cart(n, 1, now)).unwrap();
    }
    file.corrupt("UPDATE carts SET items = 'nope' WHERE id = 'cart-005'");
    let carts = Arc::new(FlakyMarks { db: db.clone(), failing: AtomicBool::new(true) });
    let janitor = CartJanitor::new(carts.clone());

    let failed = janitor.abandon_idle(now, Duration::hours(2), BATCH).await;
    assert!(failed.as_ref().is_err_and(|e| e.is_retryable()), "{failed:?}");
    assert!(db.set_aside_reason(&"cart-005".into()).unwrap().is_none(), "not marked: nothing to report");

    carts.failing.store(false, Ordering::SeqCst);
    let batch = janitor.abandon_idle(now, Duration::hours(2), BATCH).await.unwrap();
    assert_eq!(
        batch.set_aside.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["cart-005"],
        "back, and set aside"
    );
}

#[tokio::test]
async fn a_history_entry_that_does_not_decode_is_purged_like_the_others() {
    let file = TestDb::new("history");
    let db = file.open();
    let now = Utc::now();
    for n in 0..500 {
        let at = now - Duration::days(40) - Duration::minutes(n);
        let entry = HistoryEntry::sync_run(
            "store_sync",
            &format!("j{n}"),
            &"st_1".into(),
            at,
            at,
            serde_json::json!({}),
        );
        db.append(&entry).await.unwrap();
    }
    file.corrupt("UPDATE history SET body = '{\"kind\": 42' WHERE id = 'store_sync:j137'");
    assert!(db.recent(RecordKind::SyncRun, 500).await.is_err(), "the entry no longer decodes");

    let cutoff = now - Duration::days(30);
    assert_eq!(db.purge_before(RecordKind::SyncRun, cutoff, 250).await.unwrap(), 250);
    assert_eq!(db.purge_before(RecordKind::SyncRun, cutoff, 250).await.unwrap(), 250, "past it");
    assert_eq!(db.purge_before(RecordKind::SyncRun, cutoff, 250).await.unwrap(), 0);
    assert!(db.recent(RecordKind::SyncRun, 10).await.unwrap().is_empty(), "the bad one went too");
}
