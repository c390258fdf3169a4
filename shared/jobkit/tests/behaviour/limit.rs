//! Per-key concurrency limits: one execution per store at a time, records over the limit back
//! later without spending an attempt, a slot given back on every outcome, a dead holder's slot
//! freed after its duration.

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use chrono::{DateTime, Utc};
use jobkit::{
    ConcurrencyLimit, ErrorKind, Job, JobContext, JobError, RetryPolicy, Wait, clock::Clock,
    ports::StateStore, runner::RecordStatus, testing::TestHarness,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SyncArgs {
    store: String,
    n: u32,
    #[serde(default)]
    fail_once: bool,
}

/// Executions running now and the most seen at once, per store and in all.
#[derive(Debug, Default)]
struct Overlap {
    running: Mutex<BTreeMap<String, usize>>,
    most_per_store: Mutex<BTreeMap<String, usize>>,
    running_in_all: AtomicUsize,
    most_in_all: AtomicUsize,
}

/// A store sync limited to one execution per store; it yields while "working" so that the
/// batch's other records run meanwhile.
#[derive(Clone, Default)]
struct Sync {
    overlap: Arc<Overlap>,
    /// (n, attempt) of every execution that got past its start.
    runs: Arc<Mutex<Vec<(u32, u32)>>>,
    failed: Arc<Mutex<Vec<u32>>>,
}

impl Job for Sync {
    type Args = SyncArgs;
    const NAME: &'static str = "sync";

    async fn perform(&self, args: SyncArgs, ctx: &mut JobContext) -> Result<(), JobError> {
        let o = &self.overlap;
        {
            let mut running = o.running.lock().unwrap();
            let now = running.entry(args.store.clone()).or_default();
            *now += 1;
            let mut most = o.most_per_store.lock().unwrap();
            let most = most.entry(args.store.clone()).or_default();
            *most = (*most).max(*now);
        }
        let in_all = o.running_in_all.fetch_add(1, Ordering::SeqCst) + 1;
        o.most_in_all.fetch_max(in_all, Ordering::SeqCst);
        self.runs.lock().unwrap().push((args.n, ctx.meta().attempt));
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
        o.running_in_all.fetch_sub(1, Ordering::SeqCst);
        *o.running.lock().unwrap().get_mut(&args.store).unwrap() -= 1;
        let mut failed = self.failed.lock().unwrap();
        if args.fail_once && !failed.contains(&args.n) {
            failed.push(args.n);
            return Err(JobError::retryable(ErrorKind::UNAVAILABLE, "the shop is down"));
        }
        Ok(())
    }

    fn retry_policy() -> RetryPolicy {
        RetryPolicy::new().default_retry(Wait::Fixed(Duration::from_secs(5)), 3)
    }

    fn concurrency_limit(&self, args: &SyncArgs) -> Option<ConcurrencyLimit> {
        Some(ConcurrencyLimit::one_per(&args.store))
    }
}

#[tokio::test]
async fn twenty_deliveries_for_one_store_run_one_at_a_time_each_once_and_spend_no_attempt() {
    let t = TestHarness::new();
    let job = Sync::default();
    let runner = t.runner(job.clone());
    let started = t.clock().now();
    for n in 0..20 {
        let args = SyncArgs { store: "st_1".into(), n, fail_once: n == 3 };
        t.enqueuer().perform_later::<Sync>(&args).await.unwrap();
        if n % 5 == 0 {
            let other = SyncArgs { store: "st_2".into(), n: 100 + n, fail_once: false };
            t.enqueuer().perform_later::<Sync>(&other).await.unwrap();
        }
    }
    let report = t.drain(&runner).await;

    let most = job.overlap.most_per_store.lock().unwrap().clone();
    assert_eq!(most.get("st_1"), Some(&1), "one sync of a store at a time: {most:?}");
    assert_eq!(most.get("st_2"), Some(&1), "{most:?}");
    assert!(
        job.overlap.most_in_all.load(Ordering::SeqCst) >= 2,
        "the limit is per store: another store's sync runs beside"
    );
    assert!(report.count(|s| *s == RecordStatus::Limited) > 0, "records waited for the slot");
    let runs = job.runs.lock().unwrap().clone();
    let mut ran: Vec<u32> = runs.iter().map(|(n, _)| *n).collect();
    ran.sort_unstable();
    let mut expected: Vec<u32> = (0..20).chain([100, 105, 110, 115]).chain([3]).collect();
    expected.sort_unstable();
    assert_eq!(ran, expected, "each ran once, the one that failed twice");
    let attempts: Vec<(u32, u32)> = runs.iter().filter(|(_, attempt)| *attempt != 1).copied().collect();
    assert_eq!(attempts, [(3, 2)], "waiting for the slot spent no attempt; the failure spent one");
    assert!(t.dead_letters::<Sync>().is_empty());
    // A slot is given back on every outcome, the failure's too: nobody waited for one to expire
    // (a slot held to its expiry would have cost the 15 minutes of the batch's deadline).
    let took = t.clock().now() - started;
    assert!(took < chrono::Duration::minutes(5), "took {took} of the clock");
}

#[tokio::test]
async fn a_slot_whose_holder_died_is_free_once_its_time_is_up() {
    let t = TestHarness::new();
    let job = Sync::default();
    let runner = t.runner(job.clone());
    let now: DateTime<Utc> = t.clock().now();
    // The slot of an execution that crashed: its invocation ends in 10 minutes.
    let dead_until = now + chrono::Duration::minutes(10);
    t.store().put_if_vacant("sync:limit:st_1:0", "crashed-holder", dead_until, now).await.unwrap();
    let args = SyncArgs { store: "st_1".into(), n: 1, fail_once: false };
    t.enqueuer().perform_later::<Sync>(&args).await.unwrap();
    let report = t.drain(&runner).await;

    assert_eq!(report.succeeded(), 1);
    assert!(report.count(|s| *s == RecordStatus::Limited) >= 10, "it waited, 10-15 s at a time");
    assert!(t.clock().now() >= dead_until, "not before the dead holder's slot expired");
    assert_eq!(job.runs.lock().unwrap().clone(), [(1, 1)], "once, at its first attempt");
}
