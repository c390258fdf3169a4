//! The `Job` trait: typed arguments, one required `perform`, and defaulted hooks for the retry
//! policy, idempotency and timeout; a job's identity (its name, its queue named from it, its
//! lane).
//!
//! Invariant: a job's queues are named from its name by one convention ([`queue_name`],
//! [`lane_queue_name`], [`dlq_name`]). A lane is a priority (how many executions run at once)
//! and, for a job with other lanes than its own, one queue of that job: a run never leaves its
//! job's queues, and every lane of a job shares the job's DLQ.

use std::{future::Future, time::Duration};

use chrono::{DateTime, Utc};
use serde::{Serialize, de::DeserializeOwned};

use crate::{
    concurrency::ConcurrencyLimit,
    context::JobContext,
    error::{ErrorKind, JobError},
    ids::JobId,
    message::Metadata,
    policy::RetryPolicy,
};

/// A background job.
///
/// ```
/// use jobkit::{ErrorKind, Job, JobContext, JobError, Lane, RetryPolicy, Wait};
///
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct Args { store_id: String }
///
/// struct SyncStore;
///
/// impl Job for SyncStore {
///     type Args = Args;
///     const NAME: &'static str = "store_sync";
///     const LANE: Lane = Lane::High;
///
///     async fn perform(&self, args: Args, _ctx: &mut JobContext) -> Result<(), JobError> {
///         if args.store_id.is_empty() {
///             return Err(JobError::permanent(ErrorKind::NOT_FOUND, "no store"));
///         }
///         Ok(())
///     }
///
///     fn retry_policy() -> RetryPolicy {
///         RetryPolicy::new().retry_on([ErrorKind::THROTTLED], Wait::Polynomial, 10)
///     }
/// }
/// ```
pub trait Job: Send + Sync + 'static {
    /// The arguments: the message body. Unknown fields are always refused by the decoder.
    type Args: Serialize + DeserializeOwned + Send + Sync + 'static;

    /// The job's name (metrics, logs, DLQ attributes, the CLI), which names its queue: see
    /// [`queue_name`].
    const NAME: &'static str;

    /// Its priority (ActiveJob's `queue_as`, Sidekiq's queue): how many of its executions run
    /// at once. Its queue ([`queue_name`]) is this lane's. Defaults to [`Lane::Default`].
    const LANE: Lane = Lane::Default;

    /// The job's other lanes, each a queue of its own ([`lane_queue_name`]: `store-sync-low`)
    /// feeding the same function with the lane's concurrency. A run takes one by
    /// [`Job::lane`] or by the enqueue's [`crate::EnqueueOptions::lane`]. Defaults to none.
    const OTHER_LANES: &'static [Lane] = &[];

    /// The lane a run of `args` takes (ActiveJob's `queue_as` with a block): [`Job::LANE`] or
    /// one of [`Job::OTHER_LANES`]; an enqueue may still choose another of them. Defaults to
    /// [`Job::LANE`].
    fn lane(_args: &Self::Args) -> Lane {
        Self::LANE
    }

    /// Does the work. Return a retryable error to be retried by the policy, a permanent one to
    /// be discarded to the DLQ.
    fn perform(
        &self,
        args: Self::Args,
        ctx: &mut JobContext,
    ) -> impl Future<Output = Result<(), JobError>> + Send;

    /// Runs once the job is in its DLQ, discarded or with its retries exhausted (ActiveJob's
    /// `after_discard`): record the failure where people look, such as a store's sync state.
    /// Best effort: called after the DLQ copy is sent, bounded by the time left; an error is
    /// logged and not retried (the DLQ keeps the job). Defaults to doing nothing.
    fn after_discard(
        &self,
        _args: &Self::Args,
        _discarded: &Discarded,
    ) -> impl Future<Output = Result<(), JobError>> + Send {
        async { Ok(()) }
    }

    /// Which errors retry and which are discarded. Defaults to [`RetryPolicy::DEFAULT`].
    fn retry_policy() -> RetryPolicy {
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

    /// At most how many executions with one key may run at once (Solid Queue's
    /// `limits_concurrency`), e.g. `Some(ConcurrencyLimit::one_per(store_id))` so two syncs of
    /// one store never overlap. A record over the limit is re-sent to come back a little later,
    /// spending no attempt. Defaults to `None`: only the lane limits concurrency.
    fn concurrency_limit(&self, _args: &Self::Args) -> Option<ConcurrencyLimit> {
        None
    }

    /// The longest one execution may run; a record starts only if this fits before the
    /// Lambda deadline. Defaults to 60 seconds.
    const TIMEOUT: Duration = Duration::from_secs(60);
}

/// A job that landed in its DLQ, as [`Job::after_discard`] sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discarded {
    /// The job's id.
    pub job_id: JobId,
    /// The last error's kind.
    pub kind: ErrorKind,
    /// The last error's message, redacted as logs are.
    pub message: String,
    /// Discarded by the policy, or its retries exhausted.
    pub exhausted: bool,
    /// Executions that failed.
    pub attempts: u32,
    /// When it landed in the DLQ.
    pub at: DateTime<Utc>,
}

/// The idempotency key [`Job::idempotency_key`] uses by default.
pub fn default_idempotency_key(meta: &Metadata) -> String {
    if let Some(key) = &meta.idempotency_key {
        return key.clone();
    }
    match &meta.tick {
        Some(tick) => format!("tick:{}:{}", tick.rule, tick.time),
        None => default_job_key(meta.job_id.as_str()),
    }
}

/// The key of a job id's own run (`job:<id>`): the default key of a job enqueued without an
/// idempotency key, and where an operator's cancellation of the job id is marked.
pub fn default_job_key(job_id: &str) -> String {
    format!("job:{job_id}")
}

/// A job's priority: how many of its executions may run at once (the event source mapping's
/// maximum concurrency on AWS). The seeds' Sidekiq queues map onto lanes: `stores_sync` is
/// [`Lane::High`], `default` [`Lane::Default`], `low` [`Lane::Low`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Lane {
    /// Work users wait for (store syncs).
    High,
    /// Everything else.
    Default,
    /// Work that may wait (cleanups).
    Low,
}

impl Lane {
    /// The lane's name (`high`, `default`, `low`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::High => "high",
            Self::Default => "default",
            Self::Low => "low",
        }
    }

    /// Every lane, fastest first.
    pub const ALL: [Self; 3] = [Self::High, Self::Default, Self::Low];

    /// How often a worker polling several lanes of one job (`jobctl dev`) looks at this one
    /// first, relative to the others (Sidekiq's weighted queues, `urgent 6, default 3, low 1`):
    /// a busy fast lane does not starve a slow one.
    pub fn weight(self) -> u32 {
        match self {
            Self::High => 6,
            Self::Default => 3,
            Self::Low => 1,
        }
    }

    /// How many executions of one job of this lane may run at once on AWS (the event source
    /// mapping's `MaximumConcurrency`, at least 2).
    pub fn max_concurrency(self) -> u32 {
        match self {
            Self::High => 20,
            Self::Default => 5,
            Self::Low => 2,
        }
    }
}

impl std::str::FromStr for Lane {
    type Err = UnknownLane;

    fn from_str(name: &str) -> Result<Self, UnknownLane> {
        Self::ALL.into_iter().find(|lane| lane.as_str() == name).ok_or_else(|| UnknownLane(name.to_owned()))
    }
}

/// A lane's name that is none of `high`, `default`, `low`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no lane is named {0:?}: the lanes are high, default and low")]
pub struct UnknownLane(pub String);

impl std::fmt::Display for Lane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The name of job `job`'s queue: `store-sync` for `store_sync` (on AWS the stack's name
/// prefixes it: `store-jobs-store-sync`).
pub fn queue_name(job: &str) -> String {
    job.replace('_', "-")
}

/// The name of the queue of job `job`'s lane `lane`, when that is not the job's own lane
/// ([`Job::LANE`], whose queue is [`queue_name`]): `store-sync-low`.
pub fn lane_queue_name(job: &str, lane: Lane) -> String {
    format!("{}-{lane}", queue_name(job))
}

/// The lanes of `J`: its own first, then its others.
pub fn lanes_of<J: Job>() -> impl Iterator<Item = Lane> {
    std::iter::once(J::LANE).chain(J::OTHER_LANES.iter().copied().filter(|l| *l != J::LANE))
}

/// The name of job `job`'s DLQ, which every lane of the job shares: `store-sync-dlq`.
pub fn dlq_name(job: &str) -> String {
    format!("{}-dlq", queue_name(job))
}
