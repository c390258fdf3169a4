//! `after_discard` (ActiveJob's): called once when a job lands in its DLQ, discarded or
//! exhausted, with the redacted reason; never on a retry or a success; its failure leaves the
//! job in the DLQ.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use jobkit::{
    Discarded, ErrorKind, Job, JobContext, JobError, RetryPolicy, Wait, runner::RecordStatus,
    testing::TestHarness,
};

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Store {
    store: String,
}

#[derive(Clone, Default)]
struct Flaky {
    discarded: Arc<Mutex<Vec<(String, Discarded)>>>,
}

impl Job for Flaky {
    type Args = Store;
    const NAME: &'static str = "flaky";

    async fn perform(&self, args: Store, _ctx: &mut JobContext) -> Result<(), JobError> {
        match args.store.as_str() {
            "gone" => Err(JobError::permanent(ErrorKind::NOT_FOUND, "no such store (owner ann@example.com)")),
            "down" => Err(JobError::retryable(ErrorKind::UNAVAILABLE, "the shop is down")),
            _ => Ok(()),
        }
    }

    fn retry_policy() -> RetryPolicy {
        RetryPolicy::new().default_retry(Wait::Fixed(Duration::from_secs(5)), 3)
    }

    async fn after_discard(&self, args: &Store, discarded: &Discarded) -> Result<(), JobError> {
        self.discarded.lock().unwrap().push((args.store.clone(), discarded.clone()));
        if args.store == "down" {
            return Err(JobError::retryable(ErrorKind::UNAVAILABLE, "the state store is down too"));
        }
        Ok(())
    }
}

#[tokio::test]
async fn after_discard_runs_once_per_job_in_the_dlq_with_the_redacted_reason() {
    let t = TestHarness::new();
    let job = Flaky::default();
    let runner = t.runner(job.clone());
    for args in ["fine", "gone", "down"] {
        t.enqueuer().perform_later::<Flaky>(&Store { store: args.to_owned() }).await.unwrap();
    }
    let report = t.drain(&runner).await;

    assert_eq!(report.succeeded(), 1);
    assert_eq!(report.retried(), 2, "the outage retried twice before it was exhausted");
    let calls = job.discarded.lock().unwrap().clone();
    let called: Vec<(&str, bool, u32)> =
        calls.iter().map(|(a, d)| (a.as_str(), d.exhausted, d.attempts)).collect();
    assert_eq!(called, [("gone", false, 1), ("down", true, 3)], "once each, never on a retry or a success");
    let (_, gone) = &calls[0];
    assert_eq!(gone.kind, ErrorKind::NOT_FOUND);
    assert!(gone.message.contains("no such store") && !gone.message.contains("ann@example.com"), "{gone:?}");
    // The hook that failed changed nothing: both jobs are in the DLQ.
    assert_eq!(t.dead_letters::<Flaky>().len(), 2);
    assert_eq!(report.count(|s| matches!(s, RecordStatus::DeadLettered(..))), 2);
}
