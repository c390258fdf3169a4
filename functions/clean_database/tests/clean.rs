//! clean_database on the embedded backend with a hand-turned clock.

use std::sync::{
    Arc,
    atomic::{AtomicU32, Ordering},
};

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use clean_database::{CleanDatabase, CleanDatabaseArgs};
use jobkit::{
    ErrorKind,
    clock::{Clock, ManualClock},
    message::OutgoingMessage,
    ports::{Queue, StateStore},
    runner::{DlqReason, RecordStatus},
    testing::TestHarness,
};
use shop::{
    History, HistoryEntry, RecordKind, RepoError, RepoResult,
    embedded::ShopDb,
    services::{Retention, RetentionCleaner},
};

fn entry(kind: RecordKind, n: usize, age: Duration, now: DateTime<Utc>) -> HistoryEntry {
    HistoryEntry {
        kind,
        id: format!("{kind}-{n}-{}", age.num_hours()),
        store_id: "st_42".into(),
        at: now - age,
        detail: serde_json::json!({ "n": n }),
    }
}

/// For each kind, `old` entries past the default retention and `fresh` ones within it.
async fn seed_history(db: &ShopDb, now: DateTime<Utc>, old: usize, fresh: usize) {
    for kind in RecordKind::ALL {
        let retention = kind.default_retention();
        for n in 0..old {
            db.append(&entry(kind, n, retention + Duration::hours(1), now)).await.unwrap();
        }
        for n in 0..fresh {
            db.append(&entry(kind, n, retention - Duration::hours(1), now)).await.unwrap();
        }
    }
}

/// The embedded history, with a test clock that moves 100 s per purge (so 300 s executions
/// continue) and faults to inject.
#[derive(Debug)]
struct Wrapped {
    db: ShopDb,
    clock: ManualClock,
    outages: AtomicU32,
    corrupt: bool,
}

impl Wrapped {
    fn new(db: &ShopDb, clock: &ManualClock) -> Self {
        Self { db: db.clone(), clock: clock.clone(), outages: AtomicU32::new(0), corrupt: false }
    }
}

#[async_trait]
impl History for Wrapped {
    async fn append(&self, entry: &HistoryEntry) -> RepoResult {
        self.db.append(entry).await
    }

    async fn purge_before(&self, kind: RecordKind, cutoff: DateTime<Utc>, limit: usize) -> RepoResult<usize> {
        self.clock.advance(Duration::seconds(100));
        if self.corrupt {
            return Err(RepoError::Corrupt("history row without a kind".into()));
        }
        if self.outages.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
            return Err(RepoError::Unavailable("sqlite: database is locked".into()));
        }
        self.db.purge_before(kind, cutoff, limit).await
    }

    async fn recent(&self, kind: RecordKind, limit: usize) -> RepoResult<Vec<HistoryEntry>> {
        self.db.recent(kind, limit).await
    }
}

fn job(t: &TestHarness, history: Arc<dyn History>) -> CleanDatabase {
    CleanDatabase::new(RetentionCleaner::new(history, t.store().clone(), Retention::default()))
}

fn tick(time: &str) -> OutgoingMessage {
    let body = format!(r#"{{"$schedule":{{"rule":"clean-database-daily","time":"{time}"}}}}"#);
    OutgoingMessage { body, ..Default::default() }
}

async fn remaining(db: &ShopDb, kind: RecordKind) -> usize {
    db.recent(kind, 100_000).await.unwrap().len()
}

#[tokio::test]
async fn each_kind_is_deleted_after_its_retention_in_bounded_batches_that_continue() {
    let t = TestHarness::new();
    let db = ShopDb::in_memory().unwrap();
    let now = t.runtime().clock.now();
    seed_history(&db, now, 1_200, 30).await;
    for n in 0..700 {
        t.store().put(&format!("idem:old-{n}"), "{}", now - Duration::minutes(1)).await.unwrap();
    }
    t.store().put("idem:live", "{}", now + Duration::hours(1)).await.unwrap();
    let runner = t.runner(job(&t, Arc::new(Wrapped::new(&db, t.clock()))));

    t.queue().send(&TestHarness::queue_name::<CleanDatabase>(), tick("2025-12-31T03:00:00Z")).await.unwrap();
    let report = t.drain(&runner).await;
    assert!(
        report.count(|s| *s == RecordStatus::Continued) >= 2,
        "9 batches of 100 s in 300 s executions continue: {report:?}"
    );
    assert_eq!(report.succeeded(), 1);
    for kind in RecordKind::ALL {
        let left = db.recent(kind, 100_000).await.unwrap();
        assert_eq!(left.len(), 30, "{kind}: only the entries within retention are left");
        assert!(left.iter().all(|e| e.at > now - kind.default_retention()), "{kind}");
    }
    assert_eq!(t.store().purge_expired(t.clock().now(), 10).await.unwrap(), 0, "expired state purged");
    assert!(t.store().get("idem:live", t.clock().now()).await.unwrap().is_some(), "live state kept");

    // The same tick delivered again runs nothing.
    seed_history(&db, now, 10, 0).await;
    t.queue().send(&TestHarness::queue_name::<CleanDatabase>(), tick("2025-12-31T03:00:00Z")).await.unwrap();
    assert_eq!(t.drain(&runner).await.count(|s| *s == RecordStatus::Duplicate), 1);
    assert_eq!(remaining(&db, RecordKind::SyncRun).await, 40, "a duplicate deletes nothing");
}

#[tokio::test]
async fn configured_retention_replaces_the_default() {
    let t = TestHarness::new();
    let db = ShopDb::in_memory().unwrap();
    let now = t.runtime().clock.now();
    db.append(&entry(RecordKind::AuditLog, 1, Duration::days(100), now)).await.unwrap();
    db.append(&entry(RecordKind::AuditLog, 2, Duration::days(80), now)).await.unwrap();
    let retention = Retention::default().keep(RecordKind::AuditLog, Duration::days(90));
    let job = CleanDatabase::new(RetentionCleaner::new(Arc::new(db.clone()), t.store().clone(), retention));
    let runner = t.runner(job);
    t.enqueuer().perform_later::<CleanDatabase>(&CleanDatabaseArgs {}).await.unwrap();
    assert_eq!(t.drain(&runner).await.succeeded(), 1);
    let left = db.recent(RecordKind::AuditLog, 10).await.unwrap();
    assert_eq!(left.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["audit_log-2-1920"]);
}

#[tokio::test]
async fn a_storage_outage_is_retried_with_the_policys_backoff_and_resumes() {
    let t = TestHarness::new();
    let db = ShopDb::in_memory().unwrap();
    seed_history(&db, t.runtime().clock.now(), 20, 5).await;
    let history = Arc::new(Wrapped::new(&db, t.clock()));
    history.outages.store(1, Ordering::SeqCst);
    let runner = t.runner(job(&t, history));
    t.enqueuer().perform_later::<CleanDatabase>(&CleanDatabaseArgs {}).await.unwrap();

    let RecordStatus::Retrying(wait) = t.run_once(&runner).await[0].status else { panic!("not retried") };
    assert!((3.0..=3.5).contains(&wait.as_secs_f64()), "polynomial first wait is 3 s + jitter: {wait:?}");
    assert_eq!(t.drain(&runner).await.succeeded(), 1);
    assert_eq!(remaining(&db, RecordKind::Temporary).await, 5);
}

#[tokio::test]
async fn a_corrupt_store_goes_to_the_dlq_and_unknown_arguments_are_refused() {
    let t = TestHarness::new();
    let db = ShopDb::in_memory().unwrap();
    let mut history = Wrapped::new(&db, t.clock());
    history.corrupt = true;
    let runner = t.runner(job(&t, Arc::new(history)));
    t.enqueuer().perform_later::<CleanDatabase>(&CleanDatabaseArgs {}).await.unwrap();
    t.queue()
        .send(
            &TestHarness::queue_name::<CleanDatabase>(),
            OutgoingMessage { body: r#"{"older_than_days":3}"#.into(), ..Default::default() },
        )
        .await
        .unwrap();
    let statuses: Vec<_> = t.run_once(&runner).await.into_iter().map(|o| o.status).collect();
    assert_eq!(statuses[0], RecordStatus::DeadLettered(DlqReason::Discarded, ErrorKind::CORRUPT_RECORD));
    assert!(matches!(statuses[1], RecordStatus::DeadLettered(..)), "{statuses:?}");
    let dead: Vec<String> = t
        .dead_letter_errors::<CleanDatabase>()
        .into_iter()
        .map(|e| e.expect("the error is recorded").message)
        .collect();
    // In the order they reached the DLQ, which the batch's concurrency decides.
    assert_eq!(dead.len(), 2, "{dead:?}");
    assert!(dead.iter().any(|e| e.contains("history row without a kind")), "{dead:?}");
    assert!(dead.iter().any(|e| e.contains("older_than_days")), "{dead:?}");
}
