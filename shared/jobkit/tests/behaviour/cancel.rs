//! Cancelling a pending job: whatever delivery comes next (a retry, a delayed run, a copy) is
//! acknowledged without running, and its `unique_until_done` lock is given back.

use std::time::Duration;

use jobkit::{EnqueueOptions, cancel::cancel, clock::Clock, runner::RecordStatus, testing::TestHarness};

use crate::common::{Behaviour, ScriptArgs, ScriptedJob};

#[tokio::test]
async fn a_cancelled_job_waiting_for_its_retry_or_its_time_never_runs_again() {
    let t = TestHarness::new();
    let job = ScriptedJob::default();
    let runner = t.runner(job.clone());
    let enqueuer = t.enqueuer();
    let until_done = EnqueueOptions::unique_until_done(Duration::from_secs(3600));
    let flaky = ScriptArgs::new("flaky", Behaviour::Transient);
    let retrying = enqueuer.perform_later_with::<ScriptedJob>(&flaky, until_done.clone()).await.unwrap();
    let later = ScriptArgs::new("later", Behaviour::Succeed);
    let delayed = enqueuer
        .perform_later_with::<ScriptedJob>(&later, EnqueueOptions::delay(Duration::from_secs(2 * 3600)))
        .await
        .unwrap();
    let kept = ScriptArgs::new("kept", Behaviour::Succeed);
    enqueuer.perform_later::<ScriptedJob>(&kept).await.unwrap();
    let first = t.run_once(&runner).await;
    assert!(first.iter().any(|r| matches!(r.status, RecordStatus::Retrying(_))), "{first:?}");

    let now = t.clock().now();
    for id in [&retrying, &delayed] {
        cancel(t.store().as_ref(), "scripted", id, now).await.unwrap();
    }
    let report = t.drain(&runner).await;
    assert_eq!(report.count(|s| *s == RecordStatus::Cancelled), 2, "{:?}", report.records);
    assert_eq!(job.executions.of("flaky").len(), 1, "the retry did not run");
    assert!(job.executions.of("later").is_empty(), "the delayed job did not run");
    assert_eq!(job.executions.of("kept").len(), 1, "the others ran");
    assert!(t.dead_letters::<ScriptedJob>().is_empty(), "acknowledged, not dead-lettered");
    // Cancelled is done: its unique lock was given back.
    enqueuer.perform_later_with::<ScriptedJob>(&flaky, until_done).await.expect("accepted again");
}
