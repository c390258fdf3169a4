//! Idempotency per record with Powertools' semantics, on any [`StateStore`].
//!
//! A conditional put takes the key `IN_PROGRESS` until the execution's deadline; success marks
//! it `COMPLETED` for the job's TTL; failure deletes it so the retry can run. A duplicate of a
//! completed job is acknowledged without running; a duplicate of one in progress is retried
//! later; a key reused with other arguments is refused (the payload hash differs). Expiry is
//! checked in code by the store, since TTL deletion is late.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{
    error::PortResult,
    keys::{kind, state_key},
    ports::{PutOutcome, StateStore},
};

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
enum Status {
    InProgress,
    Completed,
}

#[derive(Debug, Serialize, Deserialize)]
struct IdempotencyRecord {
    status: Status,
    hash: String,
    job_id: String,
}

/// What taking a key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Claim {
    /// The key is ours: run.
    Acquired,
    /// The job already completed: acknowledge without running.
    Completed,
    /// Another execution holds it until this time: retry after it.
    InProgress(DateTime<Utc>),
    /// The key was used with other arguments.
    Mismatch,
}

/// An idempotency key bound to a payload, for one record.
#[derive(Debug)]
pub(crate) struct IdempotencyKey {
    key: String,
    hash: String,
    job_id: String,
}

impl IdempotencyKey {
    pub(crate) fn new(job: &str, key: &str, payload_hash: String, job_id: &str) -> Self {
        Self { key: state_key(job, kind::IDEMPOTENT_RUN, key), hash: payload_hash, job_id: job_id.to_owned() }
    }

    /// The key as stored, which names it within the state store.
    pub(crate) fn id(&self) -> &str {
        &self.key
    }

    fn value(&self, status: Status) -> String {
        let record = IdempotencyRecord { status, hash: self.hash.clone(), job_id: self.job_id.clone() };
        serde_json::to_string(&record).unwrap_or_default()
    }

    /// Takes the key `IN_PROGRESS` until `in_progress_until`.
    pub(crate) async fn claim(
        &self,
        store: &dyn StateStore,
        in_progress_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> PortResult<Claim> {
        let value = self.value(Status::InProgress);
        let existing = match store.put_if_vacant(&self.key, &value, in_progress_until, now).await? {
            PutOutcome::Written => return Ok(Claim::Acquired),
            PutOutcome::Taken(existing) => existing,
        };
        // A record we cannot read is treated as in progress: waiting is safe, running twice is not.
        let Ok(record) = serde_json::from_str::<IdempotencyRecord>(&existing.value) else {
            return Ok(Claim::InProgress(existing.expires_at));
        };
        Ok(if record.hash != self.hash {
            Claim::Mismatch
        } else if record.status == Status::Completed {
            Claim::Completed
        } else {
            Claim::InProgress(existing.expires_at)
        })
    }

    /// Marks the key `COMPLETED` until `expires_at`.
    pub(crate) async fn complete(&self, store: &dyn StateStore, expires_at: DateTime<Utc>) -> PortResult {
        store.put(&self.key, &self.value(Status::Completed), expires_at).await
    }

    /// Frees the key so a retry can run.
    pub(crate) async fn release(&self, store: &dyn StateStore) -> PortResult {
        store.delete(&self.key).await
    }
}
