//! The `Job` trait: typed arguments, one required `perform`, and defaulted hooks for the retry
//! policy, idempotency and timeout.

use std::{future::Future, time::Duration};

use serde::{Serialize, de::DeserializeOwned};

use crate::{context::JobContext, error::JobError, message::Metadata, policy::RetryPolicy};

/// A background job.
///
/// ```
/// use jobkit::{ErrorKind, Job, JobContext, JobError, RetryPolicy, Wait};
///
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct Args { store_id: String }
///
/// struct SyncStore;
///
/// impl Job for SyncStore {
///     type Args = Args;
///     const NAME: &'static str = "store_sync";
///     const QUEUE: &'static str = "stores_sync";
///
///     async fn perform(&self, args: Args, _ctx: &mut JobContext) -> Result<(), JobError> {
///         if args.store_id.is_empty() {
///             return Err(JobError::permanent(ErrorKind::NOT_FOUND, "no store"));
///         }
///         Ok(())
///     }
///
///     fn retry_policy(&self) -> RetryPolicy {
///         RetryPolicy::new().retry_on([ErrorKind::THROTTLED], Wait::Polynomial, 10)
///     }
/// }
/// ```
pub trait Job: Send + Sync + 'static {
    /// The arguments: the message body. Unknown fields are always refused by the decoder.
    type Args: Serialize + DeserializeOwned + Send + Sync + 'static;

    /// The job's name (metrics, logs, DLQ attributes, the CLI).
    const NAME: &'static str;

    /// The logical name of the job's queue.
    const QUEUE: &'static str;

    /// Does the work. Return a retryable error to be retried by the policy, a permanent one to
    /// be discarded to the DLQ.
    fn perform(
        &self,
        args: Self::Args,
        ctx: &mut JobContext,
    ) -> impl Future<Output = Result<(), JobError>> + Send;

    /// Which errors retry and which are discarded. Defaults to [`RetryPolicy::DEFAULT`].
    fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy::DEFAULT
    }

    /// The key that makes a second delivery a no-op, or `None` to run every delivery.
    ///
    /// Defaults to the explicit `idempotency_key` attribute, else the scheduled tick
    /// (rule + time), else the job id, so SQS's at-least-once delivery runs a job once.
    fn idempotency_key(&self, _args: &Self::Args, meta: &Metadata) -> Option<String> {
        Some(default_idempotency_key(meta))
    }

    /// How long a completed key keeps refusing duplicates. Defaults to 24 hours.
    fn idempotency_ttl(&self) -> Duration {
        Duration::from_secs(24 * 60 * 60)
    }

    /// The longest one execution may run; a record starts only if this fits before the
    /// Lambda deadline. Defaults to 60 seconds.
    fn timeout(&self) -> Duration {
        Duration::from_secs(60)
    }
}

/// The idempotency key [`Job::idempotency_key`] uses by default.
pub fn default_idempotency_key(meta: &Metadata) -> String {
    if let Some(key) = &meta.idempotency_key {
        return key.clone();
    }
    match &meta.tick {
        Some(tick) => format!("tick:{}:{}", tick.rule, tick.time),
        None => format!("job:{}", meta.job_id),
    }
}
