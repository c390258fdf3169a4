use chrono::Duration;
use jobkit::{runner::RecordStatus, testing::TestHarness};

use crate::common::{ATTEMPTS, Behaviour, RETRY_WAIT, ScriptArgs, ScriptedJob};

#[tokio::test]
async fn retry_sets_the_visibility_to_the_policys_delay() {
    let t = TestHarness::new();
    let job = ScriptedJob::default();
    let runner = t.runner(job.clone());
    t.enqueuer()
        .perform_later::<ScriptedJob>(&ScriptArgs::new("a", Behaviour::TransientTimes(1)))
        .await
        .unwrap();

    let first = t.run_once(&runner).await;
    assert_eq!(first[0].status, RecordStatus::Retrying(RETRY_WAIT));

    t.clock().advance(Duration::seconds(29));
    assert!(t.run_once(&runner).await.is_empty(), "hidden until the retry delay has passed");
    t.clock().advance(Duration::seconds(1));
    let second = t.run_once(&runner).await;
    assert_eq!(second[0].status, RecordStatus::Succeeded);
    assert_eq!(job.executions.count("a"), 2);
}

#[tokio::test]
async fn attempts_count_executions_and_exhaustion_goes_to_the_dlq() {
    let t = TestHarness::new();
    let job = ScriptedJob::default();
    let runner = t.runner(job.clone());
    t.enqueuer().perform_later::<ScriptedJob>(&ScriptArgs::new("b", Behaviour::Transient)).await.unwrap();

    let report = t.drain(&runner).await;
    let attempts: Vec<u32> = job.executions.of("b").iter().map(|(attempt, _)| *attempt).collect();
    assert_eq!(attempts, [1, 2, 3]);
    assert_eq!(report.retried(), (ATTEMPTS - 1) as usize);
    assert_eq!(report.dead_lettered(), 1);
    let dead = t.dead_letters::<ScriptedJob>();
    assert_eq!(dead.len(), 1);
    let error =
        jobkit::dead_letter::DeadLetterError::read(&dead[0].attributes).expect("the error is recorded");
    assert_eq!(error.reason, "exhausted");
    assert_eq!(error.attempts, 3);
}

#[tokio::test]
async fn a_panicking_record_fails_alone() {
    let t = TestHarness::new();
    let job = ScriptedJob::default();
    let runner = t.runner(job.clone());
    let enqueuer = t.enqueuer();
    for (id, behaviour) in [("p1", Behaviour::Succeed), ("p2", Behaviour::Panic), ("p3", Behaviour::Succeed)]
    {
        enqueuer.perform_later::<ScriptedJob>(&ScriptArgs::new(id, behaviour)).await.unwrap();
    }
    let outcomes = t.run_once(&runner).await;
    assert_eq!(outcomes[0].status, RecordStatus::Succeeded);
    assert_eq!(outcomes[2].status, RecordStatus::Succeeded);
    // A panic is a retryable `panic` error; no rule names it, so the default polynomial wait applies.
    let RecordStatus::Retrying(wait) = outcomes[1].status else { panic!("{:?}", outcomes[1].status) };
    assert!((3.0..=3.2).contains(&wait.as_secs_f64()), "1^4 + 2 s plus up to 15 % jitter, got {wait:?}");
    assert_eq!(job.executions.count("p2"), 1);
}
