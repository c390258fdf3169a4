//! An example job that proves the Lambda path end to end: it greets, or fails the way its
//! arguments ask (transiently, permanently, by panicking), so system tests can drive the built
//! binary through success, retry and the DLQ.

use std::time::Duration;

use jobkit::{ErrorKind, Job, JobContext, JobError, RetryPolicy, Wait};
use serde::{Deserialize, Serialize};

/// How the example should fail, if at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureMode {
    /// A retryable `unavailable` error, every time.
    Transient,
    /// A retryable `unavailable` error on the first attempt only: one retry, then success.
    Flaky,
    /// A permanent `not_found` error.
    Permanent,
    /// A panic.
    Panic,
}

/// `{"name": "Ada"}`, or `{"name": "Ada", "fail": "transient"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExampleArgs {
    /// Who to greet.
    pub name: String,
    /// How to fail instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail: Option<FailureMode>,
}

/// The example job.
#[derive(Debug, Default, Clone, Copy)]
pub struct ExampleJob;

impl Job for ExampleJob {
    type Args = ExampleArgs;
    const NAME: &'static str = "example";

    fn retry_policy() -> RetryPolicy {
        RetryPolicy::new()
            .retry_on([ErrorKind::UNAVAILABLE], Wait::Polynomial, 3)
            .discard_on([ErrorKind::NOT_FOUND])
    }

    const TIMEOUT: Duration = Duration::from_secs(10);

    async fn perform(&self, args: ExampleArgs, ctx: &mut JobContext) -> Result<(), JobError> {
        match args.fail {
            None => {
                tracing::info!(name = %args.name, attempt = ctx.meta().attempt, "hello");
                Ok(())
            }
            Some(FailureMode::Flaky) if ctx.meta().attempt > 1 => {
                tracing::info!(name = %args.name, attempt = ctx.meta().attempt, "hello, at last");
                Ok(())
            }
            Some(FailureMode::Transient | FailureMode::Flaky) => {
                Err(JobError::retryable(ErrorKind::UNAVAILABLE, "the greeter is down"))
            }
            Some(FailureMode::Permanent) => {
                Err(JobError::permanent(ErrorKind::NOT_FOUND, "nobody by that name"))
            }
            Some(FailureMode::Panic) => panic!("asked to panic"),
        }
    }
}
