use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use jobkit::{Job, JobContext, JobError, ManualClock, RecordStatus, testing::TestHarness};

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
    const QUEUE: &'static str = "import";

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
