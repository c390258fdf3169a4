//! Batches (Sidekiq Pro's): members counted once however they are delivered, callbacks enqueued
//! once and never before the last member finished, `on_success` only when none failed.

use std::sync::{Arc, atomic::Ordering};

use async_trait::async_trait;
use jobkit::{
    EnqueueOptions, Enqueuer, Job, JobContext, JobError, JobRef,
    batch::{BatchSummary, JobBatch},
    cancel::cancel,
    clock::Clock,
    enqueue::QueueRoutes,
    error::{PortError, PortResult},
    message::{OutgoingMessage, attr},
    ports::Queue,
    testing::{QueueWrapper, TestHarness},
};
use serde::{Deserialize, Serialize};

use crate::common::{Behaviour, ScriptArgs, ScriptedJob};

/// The callback: records the outcome it was given.
#[derive(Debug, Clone, Default)]
struct Report {
    outcomes: Arc<std::sync::Mutex<Vec<(String, BatchSummary)>>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ReportArgs {
    which: String,
    batch: Option<BatchSummary>,
}

impl Job for Report {
    type Args = ReportArgs;
    const NAME: &'static str = "report";

    async fn perform(&self, args: ReportArgs, _ctx: &mut JobContext) -> Result<(), JobError> {
        let outcome = args.batch.expect("a callback gets the batch's outcome");
        self.outcomes.lock().unwrap().push((args.which, outcome));
        Ok(())
    }
}

const REPORT: JobRef<ReportArgs> = JobRef::new(Report::NAME);

fn report(which: &str) -> ReportArgs {
    ReportArgs { which: which.to_owned(), batch: None }
}

fn batch(id: &str) -> JobBatch {
    JobBatch::new(id)
        .description("nightly")
        .on_complete(&REPORT, &report("complete"))
        .unwrap()
        .on_success(&REPORT, &report("success"))
        .unwrap()
}

fn member(id: &str, behaviour: Behaviour) -> ScriptArgs {
    ScriptArgs::new(id, behaviour)
}

fn outcomes(job: &Report) -> Vec<(String, BatchSummary)> {
    job.outcomes.lock().unwrap().clone()
}

#[tokio::test]
async fn the_callbacks_come_once_after_the_last_member_with_the_counts_and_on_success_only_without_failures()
{
    let t = TestHarness::new();
    let opened = t.clock().now();
    let members = t.runner(ScriptedJob::default());
    let job = Report::default();
    let callbacks = t.runner(job.clone());
    let args = [
        member("a", Behaviour::Succeed),
        member("b", Behaviour::TransientTimes(2)),
        member("c", Behaviour::Permanent),
    ];
    let sent = t
        .enqueuer()
        .perform_later_batch::<ScriptedJob>(&batch("b1"), args, &EnqueueOptions::default())
        .await
        .unwrap();
    assert!(sent.iter().all(Result::is_ok), "{sent:?}");
    let pending = t.batch::<ScriptedJob>("b1").await.unwrap();
    assert_eq!((pending.total, pending.pending(), pending.sealed), (3, 3, true));

    // The first pass: a succeeds, b waits for its retry, c lands in the DLQ: not complete yet.
    t.run_once(&members).await;
    let partway = t.batch::<ScriptedJob>("b1").await.unwrap();
    assert_eq!((partway.succeeded, partway.failed, partway.pending()), (1, 1, 1));
    assert!(t.enqueued::<Report>().await.is_empty(), "no callback before the last member finished");

    t.drain(&members).await;
    let done = t.batch::<ScriptedJob>("b1").await.unwrap();
    assert!(done.is_complete() && done.callbacks_sent, "{done:?}");
    assert_eq!(t.drain(&callbacks).await.succeeded(), 1, "on_complete only: a member failed");
    let expected = BatchSummary {
        id: "b1".into(),
        description: "nightly".into(),
        created_at: opened,
        total: 3,
        succeeded: 2,
        failed: 1,
    };
    assert_eq!(outcomes(&job), [("complete".to_owned(), expected)], "opened at the start, on the test clock");

    // Without failures, both callbacks.
    let all_good = [member("d", Behaviour::Succeed), member("e", Behaviour::Succeed)];
    t.enqueuer()
        .perform_later_batch::<ScriptedJob>(&batch("b2"), all_good, &EnqueueOptions::default())
        .await
        .unwrap();
    t.drain(&members).await;
    t.drain(&callbacks).await;
    let b2: Vec<_> =
        outcomes(&job).into_iter().filter(|(_, o)| o.id == "b2").map(|(w, o)| (w, o.succeeded)).collect();
    assert_eq!(b2, [("complete".to_owned(), 2), ("success".to_owned(), 2)]);
}

#[tokio::test]
async fn every_member_delivered_twice_is_counted_once_and_the_callback_runs_once() {
    let t = TestHarness::new();
    let scripted = ScriptedJob::default();
    let members = t.runner(scripted.clone());
    let job = Report::default();
    let callbacks = t.runner(job.clone());
    let ids: Vec<String> = (0..8).map(|i| format!("m{i}")).collect();
    let args = ids.iter().map(|id| member(id, Behaviour::Succeed));
    let one_callback = JobBatch::new("twice").on_complete(&REPORT, &report("complete")).unwrap();
    t.enqueuer()
        .perform_later_batch::<ScriptedJob>(&one_callback, args, &EnqueueOptions::default())
        .await
        .unwrap();
    // SQS's at-least-once delivery: a second copy of every member, in reverse order.
    let queue = TestHarness::queue_name::<ScriptedJob>();
    let mut copies = t.queue().peek(&queue, usize::MAX).unwrap();
    copies.reverse();
    for copy in copies {
        let again =
            OutgoingMessage { body: copy.body, attributes: copy.attributes, ..OutgoingMessage::default() };
        t.queue().send(&queue, again).await.unwrap();
    }
    let report_of = t.drain(&members).await;
    assert_eq!(report_of.succeeded(), 8, "{:?}", report_of.records);
    assert_eq!(ids.iter().map(|id| scripted.executions.count(id)).sum::<usize>(), 8, "each member ran once");
    let status = t.batch::<ScriptedJob>("twice").await.unwrap();
    assert_eq!((status.total, status.succeeded, status.failed), (8, 8, 0));
    t.drain(&callbacks).await;
    assert_eq!(outcomes(&job).len(), 1, "one callback: {:?}", outcomes(&job));
}

/// The embedded queue, except that `send_batch` fails the message of the member named `failing`
/// while `fail` is set.
#[derive(Debug)]
struct DropsOneMember {
    inner: Arc<dyn Queue>,
    failing: String,
    fail: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl QueueWrapper for DropsOneMember {
    fn inner(&self) -> &dyn Queue {
        self.inner.as_ref()
    }

    async fn send_batch(
        &self,
        queue: &str,
        messages: Vec<OutgoingMessage>,
    ) -> PortResult<Vec<PortResult<String>>> {
        let mut answers = Vec::new();
        for message in messages {
            if self.fail.load(Ordering::SeqCst) && message.body.contains(&self.failing) {
                answers.push(Err(PortError::Throttled("slow down".into())));
            } else {
                answers.push(self.inner.send(queue, message).await);
            }
        }
        Ok(answers)
    }
}

#[tokio::test]
async fn a_batch_whose_send_failed_is_not_complete_until_the_retry_sends_the_rest_and_nothing_runs_twice() {
    let t = TestHarness::new();
    let scripted = ScriptedJob::default();
    let members = t.runner(scripted.clone());
    let job = Report::default();
    let callbacks = t.runner(job.clone());
    let queue =
        Arc::new(DropsOneMember { inner: t.queue().clone(), failing: "\"late\"".into(), fail: true.into() });
    let enqueuer =
        Enqueuer::new(queue.clone(), t.store().clone(), t.runtime().clock.clone(), QueueRoutes::default());
    let args = || [member("early", Behaviour::Succeed), member("late", Behaviour::Succeed)];
    let first = enqueuer
        .perform_later_batch::<ScriptedJob>(&batch("retried"), args(), &EnqueueOptions::default())
        .await
        .unwrap();
    assert!(first[0].is_ok() && first[1].is_err(), "{first:?}");

    // The member that was sent finishes: every registered member but one is done, and the
    // batch is not sealed, so nothing fires.
    t.drain(&members).await;
    let open = t.batch::<ScriptedJob>("retried").await.unwrap();
    assert!(!open.sealed && !open.is_complete(), "{open:?}");
    assert!(t.enqueued::<Report>().await.is_empty(), "no callback before the batch is sealed");

    // The caller retries the whole enqueue: the early member is sent again with its job id.
    queue.fail.store(false, Ordering::SeqCst);
    let again = enqueuer
        .perform_later_batch::<ScriptedJob>(&batch("retried"), args(), &EnqueueOptions::default())
        .await
        .unwrap();
    assert_eq!(first[0].as_ref().unwrap(), again[0].as_ref().unwrap(), "the same member, the same job");
    t.drain(&members).await;
    assert_eq!((scripted.executions.count("early"), scripted.executions.count("late")), (1, 1));
    let done = t.batch::<ScriptedJob>("retried").await.unwrap();
    assert_eq!((done.total, done.succeeded, done.sealed), (2, 2, true));
    t.drain(&callbacks).await;
    let fired: Vec<_> = outcomes(&job).into_iter().map(|(w, o)| (w, o.total)).collect();
    assert_eq!(fired, [("complete".to_owned(), 2), ("success".to_owned(), 2)]);
}

#[tokio::test]
async fn members_that_all_finished_before_the_seal_complete_it_and_an_empty_batch_completes_at_once() {
    let t = TestHarness::new();
    let job = Report::default();
    let callbacks = t.runner(job.clone());
    let none: [ScriptArgs; 0] = [];
    t.enqueuer()
        .perform_later_batch::<ScriptedJob>(&batch("empty"), none, &EnqueueOptions::default())
        .await
        .unwrap();
    t.drain(&callbacks).await;
    let fired: Vec<_> = outcomes(&job).into_iter().map(|(w, o)| (w, o.total)).collect();
    assert_eq!(fired, [("complete".to_owned(), 0), ("success".to_owned(), 0)]);
}

#[tokio::test]
async fn a_message_naming_a_batch_it_was_not_registered_in_is_not_counted() {
    let t = TestHarness::new();
    let members = t.runner(ScriptedJob::default());
    t.enqueuer()
        .perform_later_batch::<ScriptedJob>(
            &batch("guarded"),
            [member("real", Behaviour::Transient)],
            &EnqueueOptions::default(),
        )
        .await
        .unwrap();
    let mut forged = OutgoingMessage {
        body: serde_json::to_string(&member("forged", Behaviour::Succeed)).unwrap(),
        ..OutgoingMessage::default()
    };
    forged.attributes.insert(attr::BATCH.into(), "guarded".into());
    t.queue().send(&TestHarness::queue_name::<ScriptedJob>(), forged).await.unwrap();
    t.run_once(&members).await;
    let status = t.batch::<ScriptedJob>("guarded").await.unwrap();
    assert_eq!((status.total, status.succeeded, status.pending()), (1, 0, 1), "{status:?}");
}

#[tokio::test]
async fn a_cancelled_member_counts_as_failed_and_the_batch_completes_without_it() {
    let t = TestHarness::new();
    let scripted = ScriptedJob::default();
    let members = t.runner(scripted.clone());
    let job = Report::default();
    let callbacks = t.runner(job.clone());
    let sent = t
        .enqueuer()
        .perform_later_batch::<ScriptedJob>(
            &batch("cut"),
            [member("kept", Behaviour::Succeed), member("cut", Behaviour::Succeed)],
            &EnqueueOptions::default(),
        )
        .await
        .unwrap();
    let cut = sent[1].as_ref().unwrap();
    cancel(t.store().as_ref(), ScriptedJob::NAME, cut, t.clock().now()).await.unwrap();
    t.drain(&members).await;
    assert_eq!(scripted.executions.count("cut"), 0);
    t.drain(&callbacks).await;
    let fired: Vec<_> = outcomes(&job).into_iter().map(|(w, o)| (w, o.succeeded, o.failed)).collect();
    assert_eq!(fired, [("complete".to_owned(), 1, 1)]);
}

#[tokio::test]
async fn a_batch_id_that_could_not_name_its_records_and_callback_arguments_with_a_batch_field_are_refused() {
    let t = TestHarness::new();
    let refused = t
        .enqueuer()
        .perform_later_batch::<ScriptedJob>(
            &JobBatch::new("a:b"),
            [member("x", Behaviour::Succeed)],
            &EnqueueOptions::default(),
        )
        .await;
    assert!(matches!(refused, Err(jobkit::EnqueueError::InvalidArguments(_))), "{refused:?}");
    let outcome = BatchSummary {
        id: "x".into(),
        description: String::new(),
        created_at: t.clock().now(),
        total: 0,
        succeeded: 0,
        failed: 0,
    };
    let clash = ReportArgs { which: "x".into(), batch: Some(outcome) };
    assert!(JobBatch::new("ok").on_complete(&REPORT, &clash).is_err());
    assert!(
        t.queue().peek(&TestHarness::queue_name::<ScriptedJob>(), 10).unwrap().is_empty(),
        "nothing sent"
    );
}
