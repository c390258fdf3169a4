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
    BatchRunner, Job, JobContext, JobError, ManualClock, PortResult, RecordStatus, RunnerConfig, Runtime,
    Shutdown, StateStore,
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
        if !ctx.step_done("pages") {
            let mut page: u32 = ctx.cursor("pages").unwrap_or(0);
            while page < 10 {
                self.clock.advance(chrono::Duration::seconds(20));
                self.pages_done.lock().unwrap().push(page);
                page += 1;
                ctx.checkpoint("pages", &page).await?;
            }
            ctx.complete_step("pages").await?;
        }
        *self.finished.lock().unwrap() += 1;
        Ok(())
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(60)
    }
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
        let mut page: u32 = ctx.cursor("pages").unwrap_or(0);
        while page < 5 {
            let done = {
                let mut pages = self.pages_done.lock().unwrap();
                pages.push((name.clone(), page));
                pages.len()
            };
            if done == self.stop_at {
                self.shutdown.request();
            }
            page += 1;
            ctx.checkpoint("pages", &page).await?;
        }
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
        let mut page: u32 = ctx.cursor("pages").unwrap_or(0);
        while page < 2 {
            self.pages_done.lock().unwrap().push(page);
            page += 1;
            ctx.checkpoint("pages", &page).await?;
        }
        Ok(())
    }

    fn timeout(&self) -> Duration {
        Duration::from_millis(100)
    }
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
