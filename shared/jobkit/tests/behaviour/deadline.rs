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
    ErrorKind, Job, JobContext, JobError, PortError, PortResult,
    clock::ManualClock,
    message::{OutgoingMessage, attr},
    ports::{PutOutcome, Queue, StateStore},
    runner::{BatchRunner, RecordStatus, Runtime},
    testing::{QueueWrapper, StoreWrapper, TestHarness},
};

use crate::common::{Behaviour, ScriptArgs, ScriptedJob};

#[tokio::test]
async fn records_that_cannot_finish_before_the_deadline_come_back_unstarted() {
    let t = TestHarness::new();
    let job = ScriptedJob::default();
    let runner = t.runner(job.clone());
    for id in ["x", "y", "z"] {
        t.enqueuer().perform_later::<ScriptedJob>(&ScriptArgs::new(id, Behaviour::Succeed)).await.unwrap();
    }
    // The job's timeout is 10 s: with 5 s left none of them may start.
    let deadline = t.runtime().clock.now() + chrono::Duration::seconds(5);
    let outcomes = t.run_once_with_deadline(&runner, deadline).await;
    assert_eq!(outcomes.len(), 3);
    assert!(outcomes.iter().all(|o| o.status == RecordStatus::ReturnedUnstarted));
    assert_eq!(job.executions.count("x"), 0);

    // They are visible again at once, and the unstarted delivery is not counted as an attempt.
    let again = t.run_once(&runner).await;
    assert!(again.iter().all(|o| o.status == RecordStatus::Succeeded));
    assert_eq!(job.executions.of("x")[0].0, 1, "first execution is attempt 1 on the second delivery");
}

/// The embedded store, except that the first claim of an idempotency key takes `delay` of the
/// test clock and then fails: its twin, waiting in the invocation, wakes that much later.
#[derive(Debug)]
struct SlowFailingClaim {
    inner: Arc<dyn StateStore>,
    clock: ManualClock,
    delay: chrono::Duration,
    struck: AtomicBool,
}

#[async_trait]
impl StoreWrapper for SlowFailingClaim {
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
        if key.contains("idem:") && !self.struck.swap(true, Ordering::SeqCst) {
            // Lets the twin start (and read the clock) before this claim's time passes.
            for _ in 0..10 {
                tokio::task::yield_now().await;
            }
            self.clock.advance(self.delay);
            return Err(PortError::Unavailable("the claim timed out".into()));
        }
        self.inner.put_if_vacant(key, value, expires_at, now).await
    }
}

#[tokio::test]
async fn a_twin_that_waited_checks_the_deadline_again_before_it_starts() {
    let t = TestHarness::new();
    let job = ScriptedJob::default();
    let runner = t.runner(job.clone());
    let store = SlowFailingClaim {
        inner: t.store().clone(),
        clock: t.clock().clone(),
        delay: chrono::Duration::seconds(8),
        struck: AtomicBool::new(false),
    };
    let runtime = Runtime { store: Arc::new(store), ..t.runtime().clone() };
    let runner = BatchRunner::new(job.clone(), runtime, runner.config().clone());
    let attributes = BTreeMap::from([(attr::JOB_ID.to_owned(), "job-twin".to_owned())]);
    for _ in 0..2 {
        let message = OutgoingMessage {
            body: r#"{"id":"late"}"#.into(),
            attributes: attributes.clone(),
            ..Default::default()
        };
        t.queue().send("scripted", message).await.unwrap();
    }
    // 15 s to go: room for the job's 10 s timeout and the margin, but not after waiting 8 s
    // for the twin holding the key.
    let deadline = t.runtime().clock.now() + chrono::Duration::seconds(15);
    let outcomes = t.run_once_with_deadline(&runner, deadline).await;
    let mut statuses: Vec<String> = outcomes.iter().map(|o| format!("{:?}", o.status)).collect();
    statuses.sort();
    // Before: the twin started with the clock it read before waiting, and could run 8 s past
    // the Lambda deadline.
    assert_eq!(statuses[0], "ReturnedUnstarted", "{statuses:?}");
    assert!(statuses[1].starts_with("Unhandled"), "{statuses:?}");
    assert_eq!(job.executions.count("late"), 0);
}

/// The embedded queue, except that sends to the DLQ never answer.
#[derive(Debug)]
struct DlqHangs {
    inner: Arc<dyn Queue>,
}

#[async_trait]
impl QueueWrapper for DlqHangs {
    fn inner(&self) -> &dyn Queue {
        self.inner.as_ref()
    }

    async fn send(&self, queue: &str, message: OutgoingMessage) -> PortResult<String> {
        if queue.ends_with("-dlq") {
            std::future::pending::<()>().await;
        }
        self.inner.send(queue, message).await
    }
}

/// Fails for good at once; its timeout is one second, so a short deadline still lets it start.
#[derive(Clone)]
struct Refused;

impl Job for Refused {
    type Args = serde_json::Value;
    const NAME: &'static str = "refused";

    async fn perform(&self, _args: serde_json::Value, _ctx: &mut JobContext) -> Result<(), JobError> {
        Err(JobError::permanent(ErrorKind::NOT_FOUND, "gone for good"))
    }

    const TIMEOUT: Duration = Duration::from_secs(1);
}

#[tokio::test]
async fn a_settle_call_that_hangs_is_bounded_by_the_time_left() {
    let t = TestHarness::new();
    let runner = t.runner(Refused);
    let runtime = Runtime { queue: Arc::new(DlqHangs { inner: t.queue().clone() }), ..t.runtime().clone() };
    let runner = BatchRunner::new(Refused, runtime, runner.config().clone());
    t.enqueuer().perform_later::<Refused>(&serde_json::json!({})).await.unwrap();
    let messages = t.queue().receive("refused", 10, Duration::ZERO).await.unwrap();
    // Three seconds of the (frozen) test clock: the runner has about that long in real time.
    let deadline = t.runtime().clock.now() + chrono::Duration::seconds(3);

    // Before: the batch waited on the DLQ send for as long as it hung, past the Lambda
    // deadline, and Lambda would have redelivered the whole batch.
    let outcome = tokio::time::timeout(Duration::from_secs(10), runner.process(messages, deadline))
        .await
        .expect("the batch is answered before the deadline");
    assert!(matches!(outcome.records[0].status, RecordStatus::Unhandled(_)), "{:?}", outcome.records);
}
