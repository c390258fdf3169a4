use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use jobkit::{
    Job, JobContext, JobError,
    ports::Queue,
    runner::{BatchRunner, RecordStatus, RunnerConfig},
    testing::TestHarness,
};

use crate::common::{Behaviour, RETRY_WAIT, ScriptArgs, ScriptedJob};

#[tokio::test]
async fn a_fifo_group_stops_at_its_first_unfinished_record() {
    let t = TestHarness::new();
    let job = ScriptedJob::default();
    let runner = t.runner(job.clone());
    let enqueuer = t.enqueuer();
    for (id, behaviour) in
        [("g-1", Behaviour::TransientTimes(1)), ("g-2", Behaviour::Succeed), ("solo", Behaviour::Succeed)]
    {
        enqueuer.perform_later::<ScriptedJob>(&ScriptArgs::new(id, behaviour)).await.unwrap();
    }
    let mut messages = t.queue().receive("scripted", 10, Duration::ZERO).await.unwrap();
    messages[0].group_id = Some("store-1".into());
    messages[1].group_id = Some("store-1".into());
    let deadline = t.runtime().clock.now() + chrono::Duration::minutes(5);

    let outcome = runner.process(messages, deadline).await;
    let statuses: Vec<_> = outcome.records.iter().map(|r| r.status.clone()).collect();
    assert_eq!(
        statuses,
        [RecordStatus::Retrying(RETRY_WAIT), RecordStatus::ReturnedUnstarted, RecordStatus::Succeeded],
        "g-2 must not overtake g-1; other groups go on"
    );
    assert_eq!(job.executions.count("g-2"), 0);
}

/// Counts how many executions run at once.
#[derive(Clone, Default)]
struct Gauge {
    running: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
}

impl Job for Gauge {
    type Args = serde_json::Value;
    const NAME: &'static str = "gauge";

    async fn perform(&self, _args: serde_json::Value, _ctx: &mut JobContext) -> Result<(), JobError> {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        // Yield a few times so that other records get the chance to start.
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        self.running.fetch_sub(1, Ordering::SeqCst);
        Ok(())
    }
}

#[tokio::test]
async fn records_run_concurrently_up_to_the_bound() {
    let t = TestHarness::new();
    let job = Gauge::default();
    let _ = t.runner(job.clone());
    let mut config = RunnerConfig::new("gauge", "gauge_dlq");
    config.concurrency = 3;
    let runner = BatchRunner::new(job.clone(), t.runtime().clone(), config);
    for i in 0..10 {
        t.enqueuer().perform_later::<Gauge>(&serde_json::json!({ "i": i })).await.unwrap();
    }
    let outcomes = t.run_once(&runner).await;
    assert_eq!(outcomes.len(), 10);
    assert!(outcomes.iter().all(|o| o.status == RecordStatus::Succeeded));
    assert_eq!(job.peak.load(Ordering::SeqCst), 3, "three at once, never more");
}
