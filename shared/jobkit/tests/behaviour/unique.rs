//! `unique_until_done` (Sidekiq Enterprise's `unique_until: :success`): at most one pending job
//! per job and arguments, the lock given back when the job succeeds or lands in the DLQ, never
//! while it waits for a retry, and never leaked by a failed send.

use std::time::Duration;

use jobkit::{EnqueueError, EnqueueOptions, runner::RecordStatus, testing::TestHarness};

use crate::{
    common::{Behaviour, ScriptArgs, ScriptedJob},
    delay::enqueuer_refusing_sends,
};

fn until_done() -> EnqueueOptions {
    EnqueueOptions::unique_until_done(Duration::from_secs(6 * 60 * 60))
}

fn is_duplicate<T: std::fmt::Debug>(answer: &Result<T, EnqueueError>) -> bool {
    matches!(answer, Err(EnqueueError::Duplicate { .. }))
}

#[tokio::test]
async fn a_duplicate_is_refused_while_the_job_is_pending_or_retrying_and_accepted_once_it_is_done() {
    let t = TestHarness::new();
    let runner = t.runner(ScriptedJob::default());
    let enqueuer = t.enqueuer();
    let flaky = ScriptArgs::new("flaky", Behaviour::TransientTimes(1));
    enqueuer.perform_later_with::<ScriptedJob>(&flaky, until_done()).await.unwrap();
    assert!(is_duplicate(&enqueuer.perform_later_with::<ScriptedJob>(&flaky, until_done()).await));
    let failed = t.run_once(&runner).await;
    assert!(matches!(failed[0].status, RecordStatus::Retrying(_)), "{failed:?}");
    let retrying = enqueuer.perform_later_with::<ScriptedJob>(&flaky, until_done()).await;
    assert!(is_duplicate(&retrying), "a job waiting for its retry is still pending: {retrying:?}");
    assert_eq!(t.drain(&runner).await.succeeded(), 1);
    enqueuer
        .perform_later_with::<ScriptedJob>(&flaky, until_done())
        .await
        .expect("accepted once it succeeded");

    // Landing in the DLQ is done too.
    let gone = ScriptArgs::new("gone", Behaviour::Permanent);
    enqueuer.perform_later_with::<ScriptedJob>(&gone, until_done()).await.unwrap();
    t.drain(&runner).await;
    assert_eq!(t.dead_letters::<ScriptedJob>().len(), 1);
    enqueuer.perform_later_with::<ScriptedJob>(&gone, until_done()).await.expect("accepted once in the DLQ");
}

#[tokio::test]
async fn a_lock_whose_send_failed_is_not_leaked_the_next_enqueue_takes_it_and_the_job_runs_once() {
    let t = TestHarness::new();
    let job = ScriptedJob::default();
    let runner = t.runner(job.clone());
    let enqueuer = enqueuer_refusing_sends(&t, 1);
    let args = ScriptArgs::new("once", Behaviour::Succeed);
    let first = enqueuer.perform_later_with::<ScriptedJob>(&args, until_done()).await;
    assert!(matches!(first, Err(EnqueueError::Port(_))), "{first:?}");
    // Another caller (the next fan-out, say), not a retry with the same job id.
    enqueuer.perform_later_with::<ScriptedJob>(&args, until_done()).await.expect("the lock was not leaked");
    assert!(is_duplicate(&enqueuer.perform_later_with::<ScriptedJob>(&args, until_done()).await));
    assert_eq!(t.drain(&runner).await.succeeded(), 1);
    assert_eq!(job.executions.of("once").len(), 1);
}

#[tokio::test]
async fn a_bulk_enqueue_answers_duplicates_per_job_and_sends_the_rest() {
    let t = TestHarness::new();
    let runner = t.runner(ScriptedJob::default());
    let enqueuer = t.enqueuer();
    let store = |id: &str| ScriptArgs::new(id, Behaviour::Succeed);
    let answers = enqueuer
        .perform_later_bulk_with::<ScriptedJob>([store("a"), store("b"), store("a")], &until_done())
        .await
        .unwrap();
    let refused: Vec<bool> = answers.iter().map(is_duplicate).collect();
    assert_eq!(refused, [false, false, true], "{answers:?}");
    assert!(answers[0].is_ok() && answers[1].is_ok());
    // The next fan-out while both are pending adds nothing.
    let again = enqueuer
        .perform_later_bulk_with::<ScriptedJob>([store("a"), store("b")], &until_done())
        .await
        .unwrap();
    assert!(again.iter().all(is_duplicate), "{again:?}");
    assert_eq!(t.drain(&runner).await.succeeded(), 2);
    let after = enqueuer.perform_later_bulk_with::<ScriptedJob>([store("a")], &until_done()).await.unwrap();
    assert!(after[0].is_ok(), "{after:?}");
}

#[tokio::test]
async fn unique_for_and_unique_until_done_together_are_refused() {
    let t = TestHarness::new();
    let options = EnqueueOptions { unique_for: Some(Duration::from_secs(60)), ..until_done() };
    let answer = t
        .enqueuer()
        .perform_later_with::<ScriptedJob>(&ScriptArgs::new("x", Behaviour::Succeed), options)
        .await;
    assert!(matches!(answer, Err(EnqueueError::InvalidArguments(_))), "{answer:?}");
}
