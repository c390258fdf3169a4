//! Resumable steps: a step resumes from its cursor after a continuation, a finished step is
//! skipped, several steps run in order, and a saved cursor that no longer fits the job is an error.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use jobkit::{
    ErrorKind, Job, JobContext, JobError, PortResult,
    clock::ManualClock,
    ports::StateStore,
    runner::{BatchRunner, RecordStatus, RunnerConfig, Runtime},
    shutdown::Shutdown,
    testing::{StoreWrapper, TestHarness},
};

/// Imports 10 pages, each taking 20 s of the test clock, checkpointing the page cursor.
#[derive(Clone)]
struct Import {
    clock: ManualClock,
    pages_done: Arc<Mutex<Vec<u32>>>,
    finished: Arc<Mutex<u32>>,
}

impl Job for Import {
    type Args = serde_json::Value;
    const NAME: &'static str = "import";

    async fn perform(&self, _args: serde_json::Value, ctx: &mut JobContext) -> Result<(), JobError> {
        ctx.step("pages", 0_u32, async |step| {
            while *step.cursor() < 10 {
                self.clock.advance(chrono::Duration::seconds(20));
                self.pages_done.lock().unwrap().push(*step.cursor());
                step.advance(step.cursor() + 1).await?;
            }
            Ok(())
        })
        .await?;
        *self.finished.lock().unwrap() += 1;
        Ok(())
    }

    const TIMEOUT: Duration = Duration::from_secs(60);
}

#[tokio::test]
async fn a_step_job_continues_near_the_deadline_and_resumes_from_its_cursor() {
    let t = TestHarness::new();
    let job = Import { clock: t.clock().clone(), pages_done: Arc::default(), finished: Arc::default() };
    let runner = t.runner(job.clone());
    t.enqueuer().perform_later::<Import>(&serde_json::json!({})).await.unwrap();

    let report = t.drain(&runner).await;
    assert_eq!(*job.pages_done.lock().unwrap(), (0..10).collect::<Vec<_>>(), "every page once, in order");
    assert_eq!(*job.finished.lock().unwrap(), 1);
    let continued = report.count(|s| *s == RecordStatus::Continued);
    assert!(continued >= 2, "a 200 s import in 60 s executions continues at least twice, got {continued}");
    assert_eq!(report.succeeded(), 1);
}

/// Walks 5 pages, checkpointing each; the worker is asked to stop once `stop_at` pages are done.
#[derive(Clone, Default)]
struct Walk {
    shutdown: Shutdown,
    stop_at: usize,
    pages_done: Arc<Mutex<Vec<(String, u32)>>>,
}

impl Job for Walk {
    type Args = serde_json::Value;
    const NAME: &'static str = "walk";

    async fn perform(&self, args: serde_json::Value, ctx: &mut JobContext) -> Result<(), JobError> {
        let name = args["name"].as_str().unwrap_or_default().to_owned();
        ctx.step("pages", 0_u32, async |step| {
            while *step.cursor() < 5 {
                let done = {
                    let mut pages = self.pages_done.lock().unwrap();
                    pages.push((name.clone(), *step.cursor()));
                    pages.len()
                };
                if done == self.stop_at {
                    self.shutdown.request();
                }
                step.advance(step.cursor() + 1).await?;
            }
            Ok(())
        })
        .await?;
        Ok(())
    }
}

#[tokio::test]
async fn a_worker_shutting_down_stops_a_step_job_at_its_checkpoint_and_hands_back_what_has_not_started() {
    let t = TestHarness::new();
    let shutdown = Shutdown::new();
    let job = Walk { shutdown: shutdown.clone(), stop_at: 2, pages_done: Arc::default() };
    let runner = t.runner(job.clone());
    // One record at a time, so the second has not started when the stop comes.
    let config = RunnerConfig { concurrency: 1, ..runner.config().clone() };
    let stopping = BatchRunner::new(job.clone(), t.runtime().clone(), config).with_shutdown(shutdown);
    for name in ["first", "second"] {
        t.enqueuer().perform_later::<Walk>(&serde_json::json!({ "name": name })).await.unwrap();
    }

    let statuses: Vec<RecordStatus> = t.run_once(&stopping).await.into_iter().map(|o| o.status).collect();
    assert_eq!(statuses, [RecordStatus::Continued, RecordStatus::ReturnedUnstarted]);
    assert_eq!(*job.pages_done.lock().unwrap(), [("first".to_owned(), 0), ("first".to_owned(), 1)]);

    // The next worker picks both up: the first resumes at its cursor, nothing runs twice.
    let report = t.drain(&runner).await;
    assert_eq!(report.succeeded(), 2);
    let mut pages = job.pages_done.lock().unwrap().clone();
    pages.sort();
    let expected: Vec<(String, u32)> =
        ["first", "second"].iter().flat_map(|n| (0..5).map(move |p| ((*n).to_owned(), p))).collect();
    assert_eq!(pages, expected, "every page of both walks once");
    assert!(t.dead_letters::<Walk>().is_empty());
}

/// The embedded store, except that the first checkpoint of a run (its first compare-and-swap)
/// takes 300 ms of real time before it writes.
#[derive(Debug)]
struct SlowFirstSave {
    inner: Arc<dyn StateStore>,
    slowed: AtomicBool,
}

#[async_trait]
impl StoreWrapper for SlowFirstSave {
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
        if !self.slowed.swap(true, Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        self.inner.replace(key, expected, value, expires_at).await
    }
}

/// Walks two pages with a 100 ms timeout.
#[derive(Clone, Default)]
struct Quick {
    pages_done: Arc<Mutex<Vec<u32>>>,
}

impl Job for Quick {
    type Args = serde_json::Value;
    const NAME: &'static str = "quick";

    async fn perform(&self, _args: serde_json::Value, ctx: &mut JobContext) -> Result<(), JobError> {
        ctx.step("pages", 0_u32, async |step| {
            while *step.cursor() < 2 {
                self.pages_done.lock().unwrap().push(*step.cursor());
                step.advance(step.cursor() + 1).await?;
            }
            Ok(())
        })
        .await?;
        Ok(())
    }

    const TIMEOUT: Duration = Duration::from_millis(100);
}

#[tokio::test]
async fn a_job_that_runs_out_of_time_while_writing_a_checkpoint_is_not_cut_in_half() {
    let t = TestHarness::new();
    let job = Quick::default();
    let plain = t.runner(job.clone());
    let store = SlowFirstSave { inner: t.store().clone(), slowed: AtomicBool::new(false) };
    let runtime = Runtime { store: Arc::new(store), ..t.runtime().clone() };
    let runner = BatchRunner::new(job.clone(), runtime, plain.config().clone());
    t.enqueuer().perform_later::<Quick>(&serde_json::json!({})).await.unwrap();

    // Before: the timeout cut the checkpoint's write off, the execution failed as a timeout, and
    // its retry walked page 0 a second time.
    let first = t.run_once(&runner).await;
    assert_eq!(first[0].status, RecordStatus::Continued, "the write finished and the job continues");
    t.drain(&runner).await;
    assert_eq!(*job.pages_done.lock().unwrap(), [0, 1], "each page once");
}

/// Where the count stands: the next item, and the total so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
struct Counted {
    next: u32,
    total: u64,
}

/// Counts three items in step `count`, then reports the total in step `report`, whose first
/// attempt fails before it checkpoints.
#[derive(Clone, Default)]
struct Tally {
    counted: Arc<Mutex<Vec<u32>>>,
    reported_from: Arc<Mutex<Vec<Counted>>>,
    failed: Arc<AtomicBool>,
}

impl Job for Tally {
    type Args = serde_json::Value;
    const NAME: &'static str = "tally";

    async fn perform(&self, _args: serde_json::Value, ctx: &mut JobContext) -> Result<(), JobError> {
        let counted = ctx
            .step("count", Counted::default(), async |step| {
                while step.cursor().next < 3 {
                    let item = step.cursor().next;
                    self.counted.lock().unwrap().push(item);
                    let total = step.cursor().total + u64::from(item) * 10;
                    step.advance(Counted { next: item + 1, total }).await?;
                }
                Ok(())
            })
            .await?;
        ctx.step("report", counted, async |step| {
            self.reported_from.lock().unwrap().push(*step.cursor());
            if !self.failed.swap(true, Ordering::SeqCst) {
                return Err(JobError::retryable(ErrorKind::UNAVAILABLE, "the report service is down"));
            }
            Ok(())
        })
        .await?;
        Ok(())
    }
}

#[tokio::test]
async fn a_finished_step_is_skipped_on_a_retry_and_gives_back_its_final_cursor() {
    let t = TestHarness::new();
    let job = Tally::default();
    let runner = t.runner(job.clone());
    t.enqueuer().perform_later::<Tally>(&serde_json::json!({})).await.unwrap();

    let report = t.drain(&runner).await;
    assert_eq!(report.retried(), 1);
    assert_eq!(report.succeeded(), 1);
    assert_eq!(*job.counted.lock().unwrap(), [0, 1, 2], "the finished step did not run again");
    let total = Counted { next: 3, total: 30 };
    assert_eq!(*job.reported_from.lock().unwrap(), [total, total], "the retry starts from the count");
}

/// Where `load` stands: the next item, and how many `transform` handed over.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
struct Loaded {
    next: u32,
    of: usize,
}

/// Three steps of four items each, 20 s of the test clock an item, in 60 s executions: the job
/// continues inside steps and between them. Each step's cursor is of its own type.
#[derive(Clone)]
struct Pipeline {
    clock: ManualClock,
    done: Arc<Mutex<Vec<(&'static str, u32)>>>,
    loaded: Arc<Mutex<Option<Loaded>>>,
}

impl Pipeline {
    fn item(&self, step: &'static str, item: u32) {
        self.clock.advance(chrono::Duration::seconds(20));
        self.done.lock().unwrap().push((step, item));
    }
}

impl Job for Pipeline {
    type Args = serde_json::Value;
    const NAME: &'static str = "pipeline";

    async fn perform(&self, _args: serde_json::Value, ctx: &mut JobContext) -> Result<(), JobError> {
        ctx.step("fetch", 0_u32, async |step| {
            while *step.cursor() < 4 {
                self.item("fetch", *step.cursor());
                step.advance(step.cursor() + 1).await?;
            }
            Ok(())
        })
        .await?;
        let transformed = ctx
            .step("transform", Vec::<u32>::new(), async |step| {
                while step.cursor().len() < 4 {
                    let item = step.cursor().len() as u32;
                    self.item("transform", item);
                    step.cursor_mut().push(item * 2);
                    step.checkpoint().await?;
                }
                Ok(())
            })
            .await?;
        let loaded = ctx
            .step("load", Loaded { next: 0, of: transformed.len() }, async |step| {
                loop {
                    self.item("load", step.cursor().next);
                    step.cursor_mut().next += 1;
                    if step.cursor().next == 4 {
                        // The last item: the step finishes here, with no checkpoint to fall due.
                        return Ok(());
                    }
                    step.checkpoint().await?;
                }
            })
            .await?;
        *self.loaded.lock().unwrap() = Some(loaded);
        Ok(())
    }

    const TIMEOUT: Duration = Duration::from_secs(60);
}

#[tokio::test]
async fn several_steps_run_in_order_each_item_once_across_continuations() {
    let t = TestHarness::new();
    let job = Pipeline { clock: t.clock().clone(), done: Arc::default(), loaded: Arc::default() };
    let runner = t.runner(job.clone());
    t.enqueuer().perform_later::<Pipeline>(&serde_json::json!({})).await.unwrap();

    let report = t.drain(&runner).await;
    let expected: Vec<(&str, u32)> =
        ["fetch", "transform", "load"].into_iter().flat_map(|s| (0..4).map(move |i| (s, i))).collect();
    assert_eq!(*job.done.lock().unwrap(), expected, "every item once, step after step");
    assert_eq!(report.count(|s| *s == RecordStatus::Continued), 3, "three items an execution, in four");
    assert_eq!(report.succeeded(), 1);
    assert_eq!(*job.loaded.lock().unwrap(), Some(Loaded { next: 4, of: 4 }));
}

/// Step `slow` takes 55 s of a 60 s execution without a checkpoint; step `next` follows.
#[derive(Clone)]
struct SlowThenNext {
    clock: ManualClock,
    done: Arc<Mutex<Vec<&'static str>>>,
}

impl Job for SlowThenNext {
    type Args = serde_json::Value;
    const NAME: &'static str = "slow_then_next";

    async fn perform(&self, _args: serde_json::Value, ctx: &mut JobContext) -> Result<(), JobError> {
        ctx.step("slow", (), async |_| {
            self.clock.advance(chrono::Duration::seconds(55));
            self.done.lock().unwrap().push("slow");
            Ok(())
        })
        .await?;
        ctx.step("next", (), async |_| {
            self.done.lock().unwrap().push("next");
            Ok(())
        })
        .await?;
        Ok(())
    }

    const TIMEOUT: Duration = Duration::from_secs(60);
}

#[tokio::test]
async fn near_the_deadline_the_next_step_starts_in_a_new_execution() {
    let t = TestHarness::new();
    let job = SlowThenNext { clock: t.clock().clone(), done: Arc::default() };
    let runner = t.runner(job.clone());
    t.enqueuer().perform_later::<SlowThenNext>(&serde_json::json!({})).await.unwrap();

    let first = t.run_once(&runner).await;
    assert_eq!(first[0].status, RecordStatus::Continued, "stopped between the steps");
    assert_eq!(*job.done.lock().unwrap(), ["slow"]);
    let report = t.drain(&runner).await;
    assert_eq!(report.succeeded(), 1);
    assert_eq!(*job.done.lock().unwrap(), ["slow", "next"], "the finished step is not run again");
}

/// The first version of job `versioned`: step `pages`, a page number for a cursor, 30 s a page
/// in 60 s executions.
#[derive(Clone)]
struct VersionOne {
    clock: ManualClock,
}

impl Job for VersionOne {
    type Args = serde_json::Value;
    const NAME: &'static str = "versioned";

    async fn perform(&self, _args: serde_json::Value, ctx: &mut JobContext) -> Result<(), JobError> {
        ctx.step("pages", 0_u32, async |step| {
            while *step.cursor() < 4 {
                self.clock.advance(chrono::Duration::seconds(30));
                step.advance(step.cursor() + 1).await?;
            }
            Ok(())
        })
        .await?;
        Ok(())
    }

    const TIMEOUT: Duration = Duration::from_secs(60);
}

/// A page token: the cursor of the second version's step.
#[derive(serde::Serialize, serde::Deserialize)]
struct PageToken {
    token: String,
}

/// The second version of job `versioned`, deployed while a run of the first is continuing:
/// its first step is `step`, with a page token for a cursor.
#[derive(Clone)]
struct VersionTwo {
    step: &'static str,
    started: Arc<AtomicBool>,
}

impl Job for VersionTwo {
    type Args = serde_json::Value;
    const NAME: &'static str = "versioned";

    async fn perform(&self, _args: serde_json::Value, ctx: &mut JobContext) -> Result<(), JobError> {
        ctx.step(self.step, PageToken { token: String::new() }, async |_| {
            self.started.store(true, Ordering::SeqCst);
            Ok(())
        })
        .await?;
        Ok(())
    }
}

/// Runs the first version until it continues, then the second, with its first step named
/// `step`; returns the second's DLQ error, and whether its step ran.
async fn deploy_version_two_mid_run(step: &'static str) -> (jobkit::dead_letter::DeadLetterError, bool) {
    let t = TestHarness::new();
    let one = t.runner(VersionOne { clock: t.clock().clone() });
    t.enqueuer().perform_later::<VersionOne>(&serde_json::json!({})).await.unwrap();
    let first = t.run_once(&one).await;
    assert_eq!(first[0].status, RecordStatus::Continued, "the first version stopped in step pages");

    let two = VersionTwo { step, started: Arc::default() };
    let runner = BatchRunner::new(two.clone(), t.runtime().clone(), one.config().clone());
    let report = t.drain(&runner).await;
    assert_eq!(report.dead_lettered(), 1);
    let errors = t.dead_letter_errors::<VersionTwo>();
    let error = errors.into_iter().flatten().next().expect("the DLQ copy says why");
    (error, two.started.load(Ordering::SeqCst))
}

#[tokio::test]
async fn a_saved_cursor_that_no_longer_decodes_is_an_error_naming_the_step_never_a_fresh_start() {
    // Before: the cursor read as "no cursor" and the step started again from its first page.
    let (error, started) = deploy_version_two_mid_run("pages").await;
    assert!(!started, "the step did not start again");
    assert_eq!(error.kind, "corrupt_record");
    assert_eq!(error.reason, "discarded");
    assert!(error.message.contains("step pages"), "names the step: {}", error.message);
    assert!(error.message.contains("invalid type"), "gives the decode error: {}", error.message);
}

#[tokio::test]
async fn a_run_stopped_in_a_step_the_job_no_longer_reaches_first_is_an_error() {
    let (error, started) = deploy_version_two_mid_run("items").await;
    assert!(!started, "step items did not start in place of pages");
    assert_eq!(error.kind, "corrupt_record");
    assert!(
        error.message.contains("step items") && error.message.contains("step pages"),
        "names both steps: {}",
        error.message
    );
}

/// Runs step `same` twice in one execution.
#[derive(Clone)]
struct Twice;

impl Job for Twice {
    type Args = serde_json::Value;
    const NAME: &'static str = "twice";

    async fn perform(&self, _args: serde_json::Value, ctx: &mut JobContext) -> Result<(), JobError> {
        ctx.step("same", (), async |_| Ok(())).await?;
        ctx.step("same", (), async |_| Ok(())).await?;
        Ok(())
    }
}

#[tokio::test]
async fn a_step_name_used_twice_in_a_job_is_an_error() {
    let t = TestHarness::new();
    let error = t.perform_now(&Twice, serde_json::json!({})).await.expect_err("the second is refused");
    assert!(!error.is_retryable());
    assert!(error.message().contains("step same"), "{}", error.message());
}
