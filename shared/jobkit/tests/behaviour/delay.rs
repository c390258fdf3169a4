use std::time::Duration;

use jobkit::{EnqueueError, EnqueueOptions, RecordStatus, testing::TestHarness};

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
