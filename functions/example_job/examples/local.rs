//! Runs the example job on the embedded backend (SQLite in memory, no AWS account): enqueues a
//! few jobs, one of which fails until it exhausts its retries, drains the queue with a test clock
//! that jumps over the backoffs, and prints what happened.
//!
//! `cargo run -p example_job --example local`

use example_job::{ExampleArgs, ExampleJob, FailureMode};
use jobkit::{runner::RecordStatus, testing::TestHarness};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    jobkit::telemetry::init_logging(false);
    let t = TestHarness::new();
    let runner = t.runner(ExampleJob);
    let enqueuer = t.enqueuer();
    let jobs = [
        ("Ada", None),
        ("Grace", None),
        ("Bob", Some(FailureMode::Transient)),
        ("Cy", Some(FailureMode::Permanent)),
    ];
    for (name, fail) in jobs {
        let id = enqueuer.perform_later::<ExampleJob>(&ExampleArgs { name: name.to_owned(), fail }).await?;
        println!("enqueued {name:<6} as job {id}");
    }
    let started = t.runtime().clock.now();
    let report = t.drain(&runner).await;
    let waited = t.runtime().clock.now() - started;
    println!();
    println!("succeeded: {}", report.succeeded());
    println!("retried:   {}", report.retried());
    println!("in DLQ:    {}", report.dead_lettered());
    for error in t.dead_letter_errors::<ExampleJob>().into_iter().flatten() {
        println!("  - {} ({}, {} attempt(s)): {}", error.kind, error.reason, error.attempts, error.message);
    }
    println!("error emails: {}", t.sent_emails().len());
    println!("test clock moved {}s through the backoffs", waited.num_seconds());
    let ok = report.count(|s| *s == RecordStatus::Succeeded) == 2 && report.dead_lettered() == 2;
    anyhow::ensure!(ok, "unexpected outcome: {report:?}");
    Ok(())
}
