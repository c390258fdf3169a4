//! A job that walks many records sets the one it cannot process aside and goes on: the run
//! succeeds, the record is counted in the batch's `set_aside` metric and emailed once per
//! (job, record id), however many runs set it aside again.

use std::{
    collections::HashSet,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use jobkit::{
    ErrorKind, Job, JobContext, JobError, RetryPolicy, SetAside, Wait,
    runner::{BatchOutcome, BatchRunner, RecordStatus, RunnerConfig, Runtime},
    set_aside::MAX_SET_ASIDE_EMAILS,
    telemetry::MetricsSink,
    testing::TestHarness,
};
use serde::{Deserialize, Serialize};

use crate::common::Captured;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct WalkArgs {
    records: usize,
    /// The records that cannot be processed.
    poison: Vec<String>,
    /// Fail (retryably) once the walk is done.
    #[serde(default)]
    fail_after: bool,
}

/// Walks `records` records in one step, 100 between checkpoints, as the cleanup jobs do; sets
/// aside the poison ones, with a reason that names a customer (redacted when reported).
#[derive(Debug, Clone, Default)]
struct Walk {
    processed: Arc<AtomicUsize>,
}

impl Job for Walk {
    type Args = WalkArgs;
    const NAME: &'static str = "walk";

    async fn perform(&self, args: WalkArgs, ctx: &mut JobContext) -> Result<(), JobError> {
        let poison: HashSet<String> = args.poison.into_iter().collect();
        ctx.step("records", 0usize, async |step| {
            while *step.cursor() < args.records {
                let id = format!("r-{}", step.cursor());
                if poison.contains(&id) {
                    // From inside a step: its context is shared, and setting aside needs no more.
                    let reason = format!("its owner ana@example.com has {} lines", 120);
                    step.context().set_aside(&id, reason).await;
                } else {
                    self.processed.fetch_add(1, Ordering::SeqCst);
                }
                *step.cursor_mut() += 1;
                if *step.cursor() % 100 == 0 {
                    step.checkpoint().await?;
                }
            }
            Ok(())
        })
        .await?;
        if args.fail_after {
            return Err(JobError::retryable(ErrorKind::UNAVAILABLE, "the store went away"));
        }
        Ok(())
    }

    fn retry_policy() -> RetryPolicy {
        RetryPolicy::new().retry_on([ErrorKind::UNAVAILABLE], Wait::Fixed(Duration::from_secs(30)), 3)
    }

    const TIMEOUT: Duration = Duration::from_secs(60);
}

/// The harness's runner of `job`, writing its EMF lines where the test reads them.
fn runner(t: &TestHarness, job: Walk, metrics: &Captured) -> BatchRunner<Walk> {
    let _queues = t.runner(job.clone());
    let runtime = Runtime {
        metrics: Some(MetricsSink::to_writer("Jobs", Box::new(metrics.clone()))),
        ..t.runtime().clone()
    };
    BatchRunner::new(job, runtime, RunnerConfig::new(TestHarness::queue_name::<Walk>(), "walk-dlq"))
}

async fn run(t: &TestHarness, runner: &BatchRunner<Walk>, args: &WalkArgs) -> BatchOutcome {
    t.enqueuer().perform_later::<Walk>(args).await.unwrap();
    let deadline = jobkit::clock::Clock::now(t.clock()) + chrono::Duration::minutes(15);
    runner.poll(10, Duration::ZERO, deadline).await.unwrap()
}

fn one_poison() -> WalkArgs {
    WalkArgs { records: 500, poison: vec!["r-137".into()], fail_after: false }
}

#[tokio::test]
async fn one_poison_record_among_500_is_set_aside_counted_and_emailed_and_the_run_succeeds() {
    let t = TestHarness::new();
    let job = Walk::default();
    let metrics = Captured::default();
    let runner = runner(&t, job.clone(), &metrics);

    let outcome = run(&t, &runner, &one_poison()).await;

    assert_eq!(outcome.records.len(), 1);
    let record = &outcome.records[0];
    assert_eq!(record.status, RecordStatus::Succeeded, "one bad record does not fail the run");
    assert_eq!(job.processed.load(Ordering::SeqCst), 499, "the walk went on past it");
    assert_eq!(
        record.set_aside,
        [SetAside::new("r-137", "its owner a***@example.com has 120 lines")],
        "the outcome names the record, its reason redacted"
    );
    assert_eq!(outcome.counts.set_aside, 1);
    let lines = metrics.lines();
    assert_eq!(lines.len(), 1, "one EMF line for the batch");
    assert_eq!(lines[0]["set_aside"], 1, "{}", lines[0]);
    let declared = lines[0]["_aws"]["CloudWatchMetrics"][0]["Metrics"].as_array().unwrap();
    assert!(
        declared.contains(&serde_json::json!({"Name": "set_aside", "Unit": "Count"})),
        "a Count metric: {declared:?}"
    );

    let emails = t.sent_emails();
    assert_eq!(emails.len(), 1, "one report: {emails:?}");
    let email = &emails[0];
    assert!(email.subject.contains("walk") && email.subject.contains("r-137"), "{}", email.subject);
    assert!(email.text.contains("Record:     r-137"), "{}", email.text);
    assert!(
        !email.text.contains("ana@example.com") && email.text.contains("a***@example.com"),
        "personal data redacted: {}",
        email.text
    );
}

#[tokio::test]
async fn the_same_record_set_aside_by_the_next_runs_is_counted_again_but_not_emailed_again() {
    let t = TestHarness::new();
    let metrics = Captured::default();
    let runner = runner(&t, Walk::default(), &metrics);

    assert_eq!(run(&t, &runner, &one_poison()).await.counts.set_aside, 1);
    // The next hourly runs, past the error emails' one-hour window: a job that cannot mark the
    // record meets it again every run.
    for _ in 0..3 {
        t.clock().advance(chrono::Duration::minutes(61));
        let outcome = run(&t, &runner, &one_poison()).await;
        assert_eq!(outcome.records[0].status, RecordStatus::Succeeded);
        assert_eq!(outcome.counts.set_aside, 1, "counted in every run that sets it aside");
    }
    assert_eq!(t.sent_emails().len(), 1, "reported once: {:?}", t.sent_emails());

    // Another record is news.
    let other = WalkArgs { poison: vec!["r-137".into(), "r-400".into()], ..one_poison() };
    assert_eq!(run(&t, &runner, &other).await.counts.set_aside, 2);
    let emails = t.sent_emails();
    assert_eq!(emails.len(), 2, "{emails:?}");
    assert!(emails[1].subject.contains("r-400"), "{}", emails[1].subject);
}

#[tokio::test]
async fn a_record_set_aside_before_the_job_failed_is_counted_with_the_failure() {
    let t = TestHarness::new();
    let metrics = Captured::default();
    let runner = runner(&t, Walk::default(), &metrics);

    let failing = WalkArgs { fail_after: true, ..one_poison() };
    let outcome = run(&t, &runner, &failing).await;

    assert!(matches!(outcome.records[0].status, RecordStatus::Retrying(_)), "{:?}", outcome.records[0]);
    assert_eq!((outcome.counts.retried, outcome.counts.set_aside), (1, 1));
    let emails = t.sent_emails();
    assert!(emails.iter().any(|e| e.subject.contains("r-137")), "the set-aside report: {emails:?}");
}

#[tokio::test]
async fn past_the_hourly_limit_one_email_says_so_instead_of_one_each() {
    let t = TestHarness::new();
    let metrics = Captured::default();
    let runner = runner(&t, Walk::default(), &metrics);
    let many = usize::try_from(MAX_SET_ASIDE_EMAILS).unwrap() + 15;
    let poison: Vec<String> = (0..many).map(|n| format!("r-{n}")).collect();

    let outcome = run(&t, &runner, &WalkArgs { records: 500, poison, fail_after: false }).await;

    assert_eq!(outcome.records[0].status, RecordStatus::Succeeded);
    assert_eq!(outcome.counts.set_aside, many as u64, "every one counted");
    let emails = t.sent_emails();
    let one_each = emails.iter().filter(|e| e.subject.contains("set a record aside")).count();
    let flood: Vec<_> = emails.iter().filter(|e| e.subject.contains("records aside")).collect();
    assert_eq!(one_each as i64, MAX_SET_ASIDE_EMAILS, "{emails:#?}");
    assert_eq!(flood.len(), 1, "{emails:#?}");
    assert!(flood[0].text.contains(&format!("r-{MAX_SET_ASIDE_EMAILS}")), "{}", flood[0].text);
}

#[tokio::test]
async fn a_record_set_aside_outside_a_runner_is_only_logged() {
    let t = TestHarness::new();
    let job = Walk::default();
    t.perform_now(&job, one_poison()).await.unwrap();
    assert_eq!(job.processed.load(Ordering::SeqCst), 499);
    assert!(t.sent_emails().is_empty(), "perform_now has no notifier to email with");
}
