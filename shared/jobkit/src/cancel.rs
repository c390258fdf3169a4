//! Cancelling a pending job (Oban's `cancel_job`, Sidekiq's delete from the queue): an operator
//! marks the job id cancelled in the state store, and the runner acknowledges any delivery of
//! that job id without running it (its retries, hops, continuations and duplicates alike).
//!
//! Invariants:
//! - A cancellation marks the run at the job id's own key (`job:<id>`, the default idempotency
//!   key; see `runs`), which every claim of that run reads back at no cost: a job with the
//!   default key pays no read for cancellations.
//! - It is also a record `<job>:cancel:<job id>` (inside the job's key prefix, which its
//!   function may read), read before a delayed job hops and before a run keyed otherwise (an
//!   explicit idempotency key, a scheduled tick, no key) is entered.
//! - Both are kept for 14 days, SQS's longest retention: no message of the job outlives them.
//! - An execution already running finishes; the cancellation stops what would come after it.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::{
    error::PortResult,
    ids::JobId,
    keys::{kind, state_key},
    ports::StateStore,
};

/// How long a cancellation is kept: SQS's longest message retention.
pub const CANCELLATION_KEPT: Duration = Duration::from_secs(14 * 24 * 60 * 60);

/// What a cancellation found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelMark {
    /// The job is cancelled (or was already): nothing of it runs after an execution running now.
    Marked,
    /// The job's run had already completed: nothing of it is left to cancel.
    AlreadyCompleted,
}

/// Marks job `job_id` of `job` cancelled: its next deliveries are acknowledged without running.
///
/// # Errors
/// The store failing.
pub async fn cancel(
    store: &dyn StateStore,
    job: &str,
    job_id: &JobId,
    now: DateTime<Utc>,
) -> PortResult<CancelMark> {
    let until = now + chrono::Duration::from_std(CANCELLATION_KEPT).unwrap_or_default();
    let cancelled = serde_json::json!({ "cancelled_at": now }).to_string();
    store.put(&key(job, job_id), &cancelled, until).await?;
    crate::runs::mark_cancelled(store, job, job_id.as_str(), now).await
}

/// Whether job `job_id` of `job` was cancelled.
pub(crate) async fn is_cancelled(
    store: &dyn StateStore,
    job: &str,
    job_id: &JobId,
    now: DateTime<Utc>,
) -> PortResult<bool> {
    Ok(store.get(&key(job, job_id), now).await?.is_some())
}

fn key(job: &str, job_id: &JobId) -> String {
    state_key(job, kind::CANCEL, job_id.as_str())
}
