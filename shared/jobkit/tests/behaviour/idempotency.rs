use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use jobkit::{
    ErrorKind, Job, JobContext, JobError, PortResult,
    message::{OutgoingMessage, attr},
    ports::{PutOutcome, Queue, StateStore},
    runner::{BatchRunner, RecordStatus, Runtime},
    testing::{StoreWrapper, TestHarness},
};
use tokio::sync::Notify;

use crate::common::{Behaviour, ScriptArgs, ScriptedJob};

fn with_job_id(body: &str, job_id: &str) -> OutgoingMessage {
    let attributes = BTreeMap::from([(attr::JOB_ID.to_owned(), job_id.to_owned())]);
    OutgoingMessage { body: body.to_owned(), attributes, ..Default::default() }
}

#[tokio::test]
async fn a_duplicate_delivery_of_a_completed_job_does_not_run_again() {
    let t = TestHarness::new();
    let job = ScriptedJob::default();
    let runner = t.runner(job.clone());
    let body = r#"{"id":"dup"}"#;
    t.queue().send("scripted", with_job_id(body, "job-1")).await.unwrap();
    assert_eq!(t.run_once(&runner).await[0].status, RecordStatus::Succeeded);

    t.queue().send("scripted", with_job_id(body, "job-1")).await.unwrap();
    assert_eq!(t.run_once(&runner).await[0].status, RecordStatus::Duplicate);
    assert_eq!(job.executions.count("dup"), 1);
}

#[tokio::test]
async fn a_key_reused_with_other_arguments_is_refused() {
    let t = TestHarness::new();
    let job = ScriptedJob::default();
    let runner = t.runner(job.clone());
    t.queue().send("scripted", with_job_id(r#"{"id":"one"}"#, "job-2")).await.unwrap();
    t.run_once(&runner).await;
    t.queue().send("scripted", with_job_id(r#"{"id":"two"}"#, "job-2")).await.unwrap();
    let outcome = t.run_once(&runner).await;
    assert_eq!(
        outcome[0].status,
        RecordStatus::DeadLettered(jobkit::runner::DlqReason::Discarded, ErrorKind::IDEMPOTENCY_KEY_REUSED)
    );
    assert_eq!(job.executions.count("two"), 0);
}

#[tokio::test]
async fn a_failed_run_frees_its_key_for_the_retry() {
    let t = TestHarness::new();
    let job = ScriptedJob::default();
    let runner = t.runner(job.clone());
    t.enqueuer()
        .perform_later::<ScriptedJob>(&ScriptArgs::new("f", Behaviour::TransientTimes(1)))
        .await
        .unwrap();
    let report = t.drain(&runner).await;
    assert_eq!(report.succeeded(), 1);
    assert_eq!(job.executions.count("f"), 2);
}

/// Blocks in `perform` until released, to hold its key in progress.
#[derive(Clone, Default)]
struct Slow {
    started: Arc<Notify>,
    release: Arc<Notify>,
}

impl Job for Slow {
    type Args = serde_json::Value;
    const NAME: &'static str = "slow";

    async fn perform(&self, _args: serde_json::Value, _ctx: &mut JobContext) -> Result<(), JobError> {
        self.started.notify_one();
        self.release.notified().await;
        Ok(())
    }
}

#[tokio::test]
async fn a_duplicate_of_a_job_in_progress_is_retried_later() {
    let t = TestHarness::new();
    let job = Slow::default();
    let runner = t.runner(job.clone());
    let q = t.queue();
    q.send("slow", with_job_id("{}", "job-3")).await.unwrap();
    q.send("slow", with_job_id("{}", "job-3")).await.unwrap();
    let mut messages = q.receive("slow", 10, Duration::ZERO).await.unwrap();
    let second = messages.pop().unwrap();
    let first = messages.pop().unwrap();
    let deadline = t.runtime().clock.now() + chrono::Duration::minutes(5);

    // The second delivery goes to another execution environment: another runner.
    let elsewhere = t.runner(job.clone());
    let (first_outcome, second_outcome) = tokio::join!(runner.process(vec![first], deadline), async {
        job.started.notified().await;
        let outcome = elsewhere.process(vec![second], deadline).await;
        job.release.notify_one();
        outcome
    });
    assert_eq!(first_outcome.records[0].status, RecordStatus::Succeeded);
    assert_eq!(second_outcome.records[0].status, RecordStatus::InProgressElsewhere);
    assert!(!second_outcome.records[0].status.is_done(), "reported as a batch item failure");
}

#[tokio::test]
async fn twins_in_one_batch_run_once_and_the_twin_is_acknowledged_when_the_first_is_done() {
    let t = TestHarness::new();
    let job = Slow::default();
    let runner = t.runner(job.clone());
    let q = t.queue();
    for _ in 0..3 {
        q.send("slow", with_job_id("{}", "job-4")).await.unwrap();
    }
    let messages = q.receive("slow", 10, Duration::ZERO).await.unwrap();
    assert_eq!(messages.len(), 3);
    let deadline = t.runtime().clock.now() + chrono::Duration::minutes(5);

    let (outcome, ()) = tokio::join!(runner.process(messages, deadline), async {
        job.started.notified().await;
        job.release.notify_one();
    });
    let mut statuses: Vec<String> = outcome.records.iter().map(|r| format!("{:?}", r.status)).collect();
    statuses.sort();
    assert_eq!(statuses, ["Duplicate", "Duplicate", "Succeeded"], "no twin handed back to wait");
}

/// The embedded store, except that the first idempotency key taken answers late: the twin's
/// refusal comes back first, as it can when two DynamoDB calls race.
#[derive(Debug)]
struct WinnerAnswersLast {
    inner: Arc<jobkit::embedded::EmbeddedStore>,
    answered_first: AtomicBool,
    twin_refused: AtomicBool,
}

#[async_trait]
impl StoreWrapper for WinnerAnswersLast {
    fn inner(&self) -> &dyn StateStore {
        self.inner.as_ref()
    }

    async fn put_if_vacant(
        &self,
        key: &str,
        value: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> PortResult<PutOutcome> {
        let outcome = self.inner.put_if_vacant(key, value, expires_at, now).await?;
        if !key.starts_with("scripted:idem:") {
            return Ok(outcome);
        }
        match outcome {
            PutOutcome::Written if !self.answered_first.swap(true, Ordering::SeqCst) => {
                // Lets the other records of the batch run until the twin has been refused (or,
                // when the twin does not ask the store, a bounded number of turns).
                for _ in 0..100 {
                    if self.twin_refused.load(Ordering::SeqCst) {
                        break;
                    }
                    tokio::task::yield_now().await;
                }
            }
            PutOutcome::Taken(_) => self.twin_refused.store(true, Ordering::SeqCst),
            PutOutcome::Written => {}
        }
        Ok(outcome)
    }
}

#[tokio::test]
async fn a_twin_whose_store_answer_beats_the_holders_still_waits_for_it_in_process() {
    let t = TestHarness::new();
    let job = ScriptedJob::default();
    let runner = t.runner(job.clone());
    let store = WinnerAnswersLast {
        inner: t.store().clone(),
        answered_first: AtomicBool::new(false),
        twin_refused: AtomicBool::new(false),
    };
    let runtime = Runtime { store: Arc::new(store), ..t.runtime().clone() };
    let runner = BatchRunner::new(job.clone(), runtime, runner.config().clone());
    for _ in 0..2 {
        t.queue().send("scripted", with_job_id(r#"{"id":"raced"}"#, "job-5")).await.unwrap();
    }
    let mut statuses: Vec<String> =
        t.run_once(&runner).await.iter().map(|o| format!("{:?}", o.status)).collect();
    statuses.sort();
    // Before the in-process hold was taken ahead of the store, the twin saw the key in
    // progress, found no holder yet, and was handed back until the invocation's deadline.
    assert_eq!(statuses, ["Duplicate", "Succeeded"]);
    assert_eq!(job.executions.count("raced"), 1);
}

#[tokio::test]
async fn a_scheduled_tick_delivered_twice_runs_once() {
    let t = TestHarness::new();
    let job = ScriptedJob::default();
    let runner = t.runner(job.clone());
    // What an EventBridge input transformer puts on the queue; delivered twice, as SQS may.
    // The clock at the second tick: a tick for a time to come would be refused.
    t.clock().set(chrono::DateTime::parse_from_rfc3339("2026-01-03T03:00:00Z").unwrap().to_utc());
    let tick =
        r#"{"id":"nightly","$schedule":{"rule":"clean-database-daily","time":"2026-01-02T03:00:00Z"}}"#;
    let next_tick =
        r#"{"id":"nightly","$schedule":{"rule":"clean-database-daily","time":"2026-01-03T03:00:00Z"}}"#;
    let mut statuses = Vec::new();
    for body in [tick, tick, next_tick] {
        t.queue()
            .send("scripted", OutgoingMessage { body: body.to_owned(), ..Default::default() })
            .await
            .unwrap();
        statuses.extend(t.run_once(&runner).await.into_iter().map(|o| o.status));
    }
    assert_eq!(statuses, [RecordStatus::Succeeded, RecordStatus::Duplicate, RecordStatus::Succeeded]);
    assert_eq!(job.executions.count("nightly"), 2, "one run per tick");
}
