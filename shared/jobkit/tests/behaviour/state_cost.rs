//! What a job's runs cost the state store (each call a DynamoDB request on AWS): a plain job
//! takes its key and completes it, two writes and no read; a step job's checkpoints are written
//! at most every `checkpoint_every`, and one not yet written travels with the retry; a
//! cancellation comes back with the claim, and an execution holding the run when it is cancelled
//! finishes.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use jobkit::{
    ErrorKind, Job, JobContext, JobError, JobId, PortResult, RetryPolicy, Wait,
    cancel::{CancelMark, cancel},
    clock::{Clock, ManualClock},
    embedded::EmbeddedStore,
    ports::{PutOutcome, StateStore, StoredRecord},
    runner::{BatchRunner, RecordStatus, Runtime},
    testing::{StoreWrapper, TestHarness},
};

use crate::common::{Behaviour, ScriptArgs, ScriptedJob};

/// The embedded store, counting reads and writes as DynamoDB would bill them (a refused
/// conditional write is still a write).
#[derive(Debug)]
struct Metered {
    inner: Arc<EmbeddedStore>,
    reads: AtomicUsize,
    writes: AtomicUsize,
}

impl Metered {
    fn on(t: &TestHarness) -> Arc<Self> {
        Arc::new(Self { inner: t.store().clone(), reads: AtomicUsize::new(0), writes: AtomicUsize::new(0) })
    }

    fn write(&self) {
        self.writes.fetch_add(1, Ordering::SeqCst);
    }

    /// (reads, writes) so far.
    fn counts(&self) -> (usize, usize) {
        (self.reads.load(Ordering::SeqCst), self.writes.load(Ordering::SeqCst))
    }
}

#[async_trait]
impl StoreWrapper for Metered {
    fn inner(&self) -> &dyn StateStore {
        self.inner.as_ref()
    }

    async fn get(&self, key: &str, now: DateTime<Utc>) -> PortResult<Option<StoredRecord>> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.get(key, now).await
    }

    async fn put_if_vacant(
        &self,
        key: &str,
        value: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> PortResult<PutOutcome> {
        self.write();
        self.inner.put_if_vacant(key, value, expires_at, now).await
    }

    async fn put(&self, key: &str, value: &str, expires_at: DateTime<Utc>) -> PortResult {
        self.write();
        self.inner.put(key, value, expires_at).await
    }

    async fn replace(
        &self,
        key: &str,
        expected: &str,
        value: &str,
        expires_at: DateTime<Utc>,
    ) -> PortResult<bool> {
        self.write();
        self.inner.replace(key, expected, value, expires_at).await
    }

    async fn delete(&self, key: &str) -> PortResult {
        self.write();
        self.inner.delete(key).await
    }

    async fn increment(&self, key: &str, expires_at: DateTime<Utc>, now: DateTime<Utc>) -> PortResult<i64> {
        self.write();
        self.inner.increment(key, expires_at, now).await
    }
}

/// `job`'s runner on `t`, its state store metered.
fn metered_runner<J: Job + Clone>(t: &TestHarness, job: J) -> (BatchRunner<J>, Arc<Metered>) {
    let metered = Metered::on(t);
    let runtime = Runtime { store: metered.clone(), ..t.runtime().clone() };
    let config = t.runner(job.clone()).config().clone();
    (BatchRunner::new(job, runtime, config), metered)
}

#[tokio::test]
async fn a_plain_job_writes_its_key_twice_and_reads_nothing() {
    let t = TestHarness::new();
    let (runner, metered) = metered_runner(&t, ScriptedJob::default());
    t.enqueuer().perform_later::<ScriptedJob>(&ScriptArgs::new("plain", Behaviour::Succeed)).await.unwrap();

    let report = t.drain(&runner).await;
    assert_eq!(report.succeeded(), 1, "{:?}", report.records);
    // The key taken (in progress), then completed; the cancellation came back with the claim.
    assert_eq!(metered.counts(), (0, 2), "(reads, writes) of a plain job");
}

/// `pages` pages in three steps, each page `page_takes` of the test clock; with `fail_at`, the
/// first execution fails there (after the pages before it advanced).
#[derive(Clone)]
struct Pages {
    clock: ManualClock,
    pages: u32,
    page_takes: chrono::Duration,
    fail_at: Option<u32>,
    walked: Arc<Mutex<Vec<u32>>>,
}

impl Pages {
    fn new(t: &TestHarness, pages: u32, page_takes: chrono::Duration) -> Self {
        Self { clock: t.clock().clone(), pages, page_takes, fail_at: None, walked: Arc::default() }
    }

    fn walked(&self) -> Vec<u32> {
        self.walked.lock().unwrap().clone()
    }
}

impl Job for Pages {
    type Args = serde_json::Value;
    const NAME: &'static str = "pages";

    async fn perform(&self, _args: serde_json::Value, ctx: &mut JobContext) -> Result<(), JobError> {
        let first = ctx.meta().attempt == 1;
        ctx.step("prepare", (), async |_| Ok(())).await?;
        ctx.step("pages", 0_u32, async |step| {
            while *step.cursor() < self.pages {
                let page = *step.cursor();
                if first && self.fail_at == Some(page) {
                    return Err(JobError::retryable(ErrorKind::UNAVAILABLE, "the shop answered 503"));
                }
                self.clock.advance(self.page_takes);
                self.walked.lock().unwrap().push(page);
                step.advance(page + 1).await?;
            }
            Ok(())
        })
        .await?;
        ctx.step("report", (), async |_| Ok(())).await?;
        Ok(())
    }

    fn retry_policy() -> RetryPolicy {
        RetryPolicy::new().retry_on([ErrorKind::UNAVAILABLE], Wait::Fixed(Duration::from_secs(30)), 3)
    }

    const TIMEOUT: Duration = Duration::from_secs(600);
}

#[tokio::test]
async fn a_step_job_that_finishes_within_seconds_writes_no_checkpoint() {
    let t = TestHarness::new();
    let job = Pages::new(&t, 20, chrono::Duration::milliseconds(100));
    let (runner, metered) = metered_runner(&t, job.clone());
    t.enqueuer().perform_later::<Pages>(&serde_json::json!({})).await.unwrap();

    assert_eq!(t.drain(&runner).await.succeeded(), 1);
    assert_eq!(job.walked(), (0..20).collect::<Vec<_>>());
    // Three steps and twenty advances in two seconds: the claim and the completion only.
    assert_eq!(metered.counts(), (0, 2), "(reads, writes)");
}

#[tokio::test]
async fn a_long_step_writes_its_checkpoint_every_five_seconds() {
    let t = TestHarness::new();
    let job = Pages::new(&t, 20, chrono::Duration::seconds(1));
    let (runner, metered) = metered_runner(&t, job.clone());
    t.enqueuer().perform_later::<Pages>(&serde_json::json!({})).await.unwrap();

    assert_eq!(t.drain(&runner).await.succeeded(), 1);
    // Twenty advances a second apart: written at 5, 10, 15 and 20 s, besides claim and completion.
    assert_eq!(metered.counts(), (0, 2 + 4), "(reads, writes)");
}

#[tokio::test]
async fn a_checkpoint_not_yet_written_travels_with_the_retry_which_resumes_from_it() {
    let t = TestHarness::new();
    let job = Pages { fail_at: Some(3), ..Pages::new(&t, 6, chrono::Duration::milliseconds(100)) };
    let runner = t.runner(job.clone());
    t.enqueuer().perform_later::<Pages>(&serde_json::json!({})).await.unwrap();

    let report = t.drain(&runner).await;
    assert_eq!((report.retried(), report.succeeded()), (1, 1), "{:?}", report.records);
    // Pages 0-2 advanced within a second (kept in memory), then page 3 failed: the retry's
    // write carried the cursor, and the retry started at page 3.
    assert_eq!(job.walked(), [0, 1, 2, 3, 4, 5], "no page walked twice");
}

/// Cancels its own job id on its first execution (an operator acting while it runs), then
/// succeeds or fails as scripted.
#[derive(Clone)]
struct CancelledWhileRunning {
    store: Arc<EmbeddedStore>,
    fail: bool,
    executions: Arc<AtomicUsize>,
}

impl Job for CancelledWhileRunning {
    type Args = serde_json::Value;
    const NAME: &'static str = "cancelled_while_running";

    async fn perform(&self, _args: serde_json::Value, ctx: &mut JobContext) -> Result<(), JobError> {
        self.executions.fetch_add(1, Ordering::SeqCst);
        let mark = cancel(self.store.as_ref(), Self::NAME, &ctx.meta().job_id, ctx.now()).await;
        assert_eq!(mark.expect("the store answers"), CancelMark::Marked);
        if self.fail {
            return Err(JobError::retryable(ErrorKind::UNAVAILABLE, "down"));
        }
        Ok(())
    }
}

#[tokio::test]
async fn an_execution_running_when_its_job_is_cancelled_finishes_and_nothing_comes_after_it() {
    let t = TestHarness::new();
    for fail in [false, true] {
        let job = CancelledWhileRunning { store: t.store().clone(), fail, executions: Arc::default() };
        let runner = t.runner(job.clone());
        let id = JobId::from(format!("cancelled-{fail}").as_str());
        let options = jobkit::EnqueueOptions { job_id: Some(id.clone()), ..Default::default() };
        let enqueuer = t.enqueuer();
        enqueuer
            .perform_later_with::<CancelledWhileRunning>(&serde_json::json!({}), options.clone())
            .await
            .unwrap();

        let first = t.run_once(&runner).await;
        if fail {
            // Its failure was recorded (the mark kept): the retry comes back and is refused.
            assert!(matches!(first[0].status, RecordStatus::Retrying(_)), "{first:?}");
            let rest = t.drain(&runner).await;
            assert_eq!(rest.count(|s| *s == RecordStatus::Cancelled), 1, "{:?}", rest.records);
        } else {
            // It finished, and its completion was recorded over the mark: a copy is a duplicate.
            assert_eq!(first[0].status, RecordStatus::Succeeded, "{first:?}");
            enqueuer
                .perform_later_with::<CancelledWhileRunning>(&serde_json::json!({}), options)
                .await
                .unwrap();
            let copy = t.drain(&runner).await;
            assert_eq!(copy.count(|s| *s == RecordStatus::Duplicate), 1, "{:?}", copy.records);
            let again = cancel(t.store().as_ref(), CancelledWhileRunning::NAME, &id, t.clock().now()).await;
            assert_eq!(again.unwrap(), CancelMark::AlreadyCompleted);
        }
        assert_eq!(job.executions.load(Ordering::SeqCst), 1, "one execution (fail: {fail})");
        assert!(t.dead_letters::<CancelledWhileRunning>().is_empty());
    }
}

/// The embedded store, failing the writes that suspend a run to continue it (its phase
/// `waiting` with a resumption counted) for as many tries as the runner makes of one, as an
/// outage at that moment would.
#[derive(Debug)]
struct SuspendFailsOnce {
    inner: Arc<EmbeddedStore>,
    failed: AtomicUsize,
}

#[async_trait]
impl StoreWrapper for SuspendFailsOnce {
    fn inner(&self) -> &dyn StateStore {
        self.inner.as_ref()
    }

    async fn replace(
        &self,
        key: &str,
        expected: &str,
        value: &str,
        expires_at: DateTime<Utc>,
    ) -> PortResult<bool> {
        let suspends = value.contains(r#""phase":"waiting""#) && value.contains(r#""resumptions":1"#);
        if suspends && self.failed.fetch_add(1, Ordering::SeqCst) < 4 {
            return Err(jobkit::PortError::Unavailable("the table did not answer".to_owned()));
        }
        self.inner.replace(key, expected, value, expires_at).await
    }
}

/// Two steps: the first quick, then the clock runs to near the deadline before the second.
#[derive(Clone)]
struct QuickThenLate {
    clock: ManualClock,
    firsts: Arc<AtomicUsize>,
    seconds: Arc<AtomicUsize>,
}

impl Job for QuickThenLate {
    type Args = serde_json::Value;
    const NAME: &'static str = "quick_then_late";

    async fn perform(&self, _args: serde_json::Value, ctx: &mut JobContext) -> Result<(), JobError> {
        ctx.step("first", (), async |_| {
            self.firsts.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
        .await?;
        if ctx.meta().attempt == 1 && ctx.resumptions() == 0 {
            // Its finish was kept in memory (within 5 s of the start); now the deadline is near.
            self.clock.advance(chrono::Duration::seconds(55));
        }
        ctx.step("second", (), async |_| {
            self.seconds.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
        .await?;
        Ok(())
    }

    const TIMEOUT: Duration = Duration::from_secs(60);
}

#[tokio::test]
async fn a_finished_step_is_written_before_the_job_is_interrupted_even_if_suspending_then_fails() {
    let t = TestHarness::new();
    let job = QuickThenLate { clock: t.clock().clone(), firsts: Arc::default(), seconds: Arc::default() };
    let store = Arc::new(SuspendFailsOnce { inner: t.store().clone(), failed: AtomicUsize::new(0) });
    let runtime = Runtime { store: store.clone(), ..t.runtime().clone() };
    let config = t.runner(job.clone()).config().clone();
    let runner = BatchRunner::new(job.clone(), runtime, config);
    t.enqueuer().perform_later::<QuickThenLate>(&serde_json::json!({})).await.unwrap();

    let report = t.drain(&runner).await;
    assert_eq!(report.succeeded(), 1, "{:?}", report.records);
    assert!(
        report.count(|s| matches!(s, RecordStatus::Unhandled(_))) >= 1,
        "suspending the run failed: {:?}",
        report.records
    );
    // The message came back after the holder's deadline and took the run over: the first step,
    // written when the job was interrupted, was not run again.
    assert_eq!(job.firsts.load(Ordering::SeqCst), 1, "the first step ran once");
    assert_eq!(job.seconds.load(Ordering::SeqCst), 1);
}
