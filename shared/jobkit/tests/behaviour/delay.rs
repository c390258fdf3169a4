use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use async_trait::async_trait;
use jobkit::{
    EnqueueError, EnqueueOptions, Enqueuer, ErrorKind, PortError, PortResult,
    dead_letter::DeadLetterError,
    enqueue::QueueRoutes,
    message::{OutgoingMessage, attr},
    ports::Queue,
    runner::{BatchRunner, DlqReason, RecordStatus, Runtime},
    testing::{QueueWrapper, TestHarness},
};

use crate::common::{Behaviour, ScriptArgs, ScriptedJob};

#[tokio::test]
async fn a_two_hour_delay_arrives_after_two_hours_of_the_test_clock() {
    let t = TestHarness::new();
    let job = ScriptedJob::default();
    let runner = t.runner(job.clone());
    let start = t.runtime().clock.now();
    let args = ScriptArgs::new("later", Behaviour::Succeed);
    t.enqueuer()
        .perform_later_with::<ScriptedJob>(&args, EnqueueOptions::delay(Duration::from_secs(7200)))
        .await
        .unwrap();

    let report = t.drain(&runner).await;
    let runs = job.executions.of("later");
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].1 - start, chrono::Duration::hours(2), "ran exactly when due");
    // 7200 s = 8 hops of 900 s: 7 re-sends, then the run.
    assert_eq!(report.count(|s| *s == RecordStatus::Hopped), 7);
}

#[tokio::test]
async fn unique_for_refuses_the_duplicate_inside_its_window() {
    let t = TestHarness::new();
    let _runner = t.runner(ScriptedJob::default());
    let args = ScriptArgs::new("u", Behaviour::Succeed);
    let unique = || EnqueueOptions::unique_for(Duration::from_secs(600));
    let enqueuer = t.enqueuer();
    enqueuer.perform_later_with::<ScriptedJob>(&args, unique()).await.unwrap();
    let second = enqueuer.perform_later_with::<ScriptedJob>(&args, unique()).await;
    assert!(matches!(second, Err(EnqueueError::Duplicate { .. })), "{second:?}");
    let other = ScriptArgs::new("v", Behaviour::Succeed);
    enqueuer
        .perform_later_with::<ScriptedJob>(&other, unique())
        .await
        .expect("other arguments are not duplicates");

    t.clock().advance(chrono::Duration::seconds(600));
    enqueuer.perform_later_with::<ScriptedJob>(&args, unique()).await.expect("accepted after the window");
    assert_eq!(t.enqueued::<ScriptedJob>().await.len(), 3);
}

#[tokio::test]
async fn bulk_enqueue_sends_every_job() {
    let t = TestHarness::new();
    let job = ScriptedJob::default();
    let runner = t.runner(job.clone());
    let args: Vec<_> = (0..25).map(|i| ScriptArgs::new(&format!("bulk-{i}"), Behaviour::Succeed)).collect();
    let results = t.enqueuer().perform_later_bulk::<ScriptedJob>(args).await.unwrap();
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 25);
    t.assert_enqueued_with::<ScriptedJob>(&ScriptArgs::new("bulk-24", Behaviour::Succeed)).await;
    assert_eq!(t.drain(&runner).await.succeeded(), 25);
}

#[tokio::test]
async fn bulk_enqueue_with_a_delay_runs_every_job_when_due_and_refuses_per_job_options() {
    let t = TestHarness::new();
    let job = ScriptedJob::default();
    let runner = t.runner(job.clone());
    let start = t.runtime().clock.now();
    let args: Vec<_> = (0..12).map(|i| ScriptArgs::new(&format!("late-{i}"), Behaviour::Succeed)).collect();
    let options = EnqueueOptions::delay(Duration::from_secs(1800));
    let results = t.enqueuer().perform_later_bulk_with::<ScriptedJob>(args, &options).await.unwrap();
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 12);
    assert_eq!(t.drain(&runner).await.succeeded(), 12);
    for i in 0..12 {
        let runs = job.executions.of(&format!("late-{i}"));
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].1 - start, chrono::Duration::minutes(30), "each ran when due");
    }

    let one = vec![ScriptArgs::new("x", Behaviour::Succeed)];
    let refused = t
        .enqueuer()
        .perform_later_bulk_with::<ScriptedJob>(one, &EnqueueOptions::unique_for(Duration::from_secs(60)))
        .await;
    assert!(matches!(refused, Err(EnqueueError::InvalidArguments(_))), "{refused:?}");
}

/// The embedded queue, except that chosen sends do their work and then lose the answer, as a
/// call that times out after SQS accepted it does.
#[derive(Debug)]
struct LosesAnswers {
    inner: Arc<dyn Queue>,
    /// Sends left whose answer is lost.
    lose: AtomicU32,
}

#[async_trait]
impl QueueWrapper for LosesAnswers {
    fn inner(&self) -> &dyn Queue {
        self.inner.as_ref()
    }

    async fn send(&self, queue: &str, message: OutgoingMessage) -> PortResult<String> {
        let id = self.inner.send(queue, message).await?;
        if self.lose.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
            return Err(PortError::Unavailable("the answer was lost".into()));
        }
        Ok(id)
    }
}

/// An enqueuer on the harness whose next `refuse` sends fail before doing anything.
pub(crate) fn enqueuer_refusing_sends(t: &TestHarness, refuse: u32) -> Enqueuer {
    let refusing = RefusesSends { inner: t.queue().clone(), refuse: AtomicU32::new(refuse) };
    Enqueuer::new(Arc::new(refusing), t.store().clone(), t.runtime().clock.clone(), QueueRoutes::default())
}

/// The embedded queue, except that the next sends fail before doing anything.
#[derive(Debug)]
struct RefusesSends {
    inner: Arc<dyn Queue>,
    refuse: AtomicU32,
}

#[async_trait]
impl QueueWrapper for RefusesSends {
    fn inner(&self) -> &dyn Queue {
        self.inner.as_ref()
    }

    async fn send(&self, queue: &str, message: OutgoingMessage) -> PortResult<String> {
        if self.refuse.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
            return Err(PortError::Throttled("slow down".into()));
        }
        self.inner.send(queue, message).await
    }
}

#[tokio::test]
async fn a_hop_whose_answer_was_lost_keeps_the_job_id_so_the_two_copies_run_once() {
    let t = TestHarness::new();
    let job = ScriptedJob::default();
    let runner = t.runner(job.clone());
    // Sent by hand: no job id, so the job id is this message's SQS id.
    let due = t.runtime().clock.now() + chrono::Duration::minutes(40);
    let attributes = BTreeMap::from([(attr::NOT_BEFORE.to_owned(), due.to_rfc3339())]);
    let sent = OutgoingMessage { body: r#"{"id":"hop"}"#.into(), attributes, ..Default::default() };
    let original_id = t.queue().send("scripted", sent).await.unwrap();

    // The first hop's re-send is accepted but its answer lost: the original comes back and
    // hops again, so two copies travel on.
    let lossy = LosesAnswers { inner: t.queue().clone(), lose: AtomicU32::new(1) };
    let runtime = Runtime { queue: Arc::new(lossy), ..t.runtime().clone() };
    let hopping = BatchRunner::new(job.clone(), runtime, runner.config().clone());
    assert!(matches!(t.run_once(&hopping).await[0].status, RecordStatus::Unhandled(_)));
    let copies: Vec<_> =
        t.queue().peek("scripted", 10).unwrap().into_iter().filter(|m| m.message_id != original_id).collect();
    assert_eq!(copies.len(), 1, "{copies:?}");
    assert!(
        copies.iter().all(|m| m.attributes.get(attr::JOB_ID) == Some(&original_id)),
        "every re-send carries the original's job id: {copies:?}"
    );
    assert!(copies.iter().all(|m| m.attributes.get(attr::JOB).map(String::as_str) == Some("scripted")));

    // Before: each copy's job id was its own message id, so both ran.
    t.drain(&hopping).await;
    assert_eq!(job.executions.count("hop"), 1);
}

#[tokio::test]
async fn unique_for_is_released_when_the_send_fails_and_the_retry_is_accepted() {
    let t = TestHarness::new();
    let job = ScriptedJob::default();
    let runner = t.runner(job.clone());
    let args = ScriptArgs::new("once", Behaviour::Succeed);
    let unique = || EnqueueOptions::unique_for(Duration::from_secs(600));
    let enqueuer = enqueuer_refusing_sends(&t, 1);
    let first = enqueuer.perform_later_with::<ScriptedJob>(&args, unique()).await;
    assert!(matches!(first, Err(EnqueueError::Port(_))), "{first:?}");
    // Before: the lock outlived the failed send, and this retry was refused as a duplicate.
    enqueuer
        .perform_later_with::<ScriptedJob>(&args, unique())
        .await
        .expect("the caller's retry is accepted");
    let duplicate = enqueuer.perform_later_with::<ScriptedJob>(&args, unique()).await;
    assert!(matches!(duplicate, Err(EnqueueError::Duplicate { .. })), "{duplicate:?}");
    assert_eq!(t.drain(&runner).await.succeeded(), 1);
}

#[tokio::test]
async fn unique_for_whose_send_answer_was_lost_runs_the_job_once_after_the_callers_retry() {
    let t = TestHarness::new();
    let job = ScriptedJob::default();
    let runner = t.runner(job.clone());
    let args = ScriptArgs::new("lost", Behaviour::Succeed);
    let unique = || EnqueueOptions::unique_for(Duration::from_secs(600));
    let lossy = LosesAnswers { inner: t.queue().clone(), lose: AtomicU32::new(1) };
    let enqueuer =
        Enqueuer::new(Arc::new(lossy), t.store().clone(), t.runtime().clock.clone(), QueueRoutes::default());
    assert!(enqueuer.perform_later_with::<ScriptedJob>(&args, unique()).await.is_err());
    enqueuer
        .perform_later_with::<ScriptedJob>(&args, unique())
        .await
        .expect("the caller's retry is accepted");
    assert_eq!(t.enqueued::<ScriptedJob>().await.len(), 2, "both sends reached the queue");

    let report = t.drain(&runner).await;
    assert_eq!(job.executions.count("lost"), 1, "the two copies share a job id");
    assert_eq!(report.count(|s| *s == RecordStatus::Duplicate), 1);
}

#[tokio::test]
async fn a_not_before_more_than_a_year_ahead_is_refused_at_enqueue_and_at_receive() {
    let t = TestHarness::new();
    let job = ScriptedJob::default();
    let runner = t.runner(job.clone());
    let far = chrono::DateTime::parse_from_rfc3339("9999-12-31T00:00:00Z").unwrap().to_utc();
    let args = ScriptArgs::new("never", Behaviour::Succeed);
    let refused =
        t.enqueuer().perform_later_with::<ScriptedJob>(&args, EnqueueOptions::wait_until(far)).await;
    assert!(matches!(refused, Err(EnqueueError::InvalidArguments(_))), "{refused:?}");
    let in_a_year = EnqueueOptions::delay(Duration::from_secs(364 * 24 * 3600));
    t.enqueuer().perform_later_with::<ScriptedJob>(&args, in_a_year).await.expect("within a year is fine");

    // Sent by hand: before, it hopped every 15 minutes forever and never reached the DLQ.
    let attributes = BTreeMap::from([(attr::NOT_BEFORE.to_owned(), "9999-12-31T00:00:00Z".to_owned())]);
    let sent = OutgoingMessage { body: r#"{"id":"never"}"#.into(), attributes, ..Default::default() };
    t.queue().send("scripted", sent).await.unwrap();
    let outcomes = t.run_once(&runner).await;
    let refused: Vec<_> = outcomes
        .iter()
        .filter(|o| {
            o.status == RecordStatus::DeadLettered(DlqReason::Discarded, ErrorKind::INVALID_ARGUMENTS)
        })
        .collect();
    assert_eq!(refused.len(), 1, "{outcomes:?}");
    let error = DeadLetterError::read(&t.dead_letters::<ScriptedJob>()[0].attributes).unwrap();
    assert!(error.message.contains("not_before"), "{}", error.message);
}
