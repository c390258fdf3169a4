//! Attempt counting and failure history per job id.
//!
//! Attempts count executions that started, not deliveries: attempt = the delivery's receive count
//! minus the deliveries the runner handed back unstarted (deadline, a duplicate in progress).
//! The hot path (first delivery, success) touches the store not at all: the record is read only
//! on redelivery and written only when a record fails or goes back unstarted.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{
    error::PortResult,
    keys::{kind, state_key},
    ports::StateStore,
};

/// How long a job's failure history is kept (longer than any retry timeline: 14 days, as a DLQ).
const HISTORY_TTL: chrono::Duration = chrono::Duration::days(14);

/// A job's history across deliveries.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct JobHistory {
    /// Deliveries returned without starting.
    #[serde(default)]
    pub unstarted: u32,
    /// Executions that failed.
    #[serde(default)]
    pub failures: u32,
    /// The first failure.
    #[serde(default)]
    pub first_failed_at: Option<DateTime<Utc>>,
    /// The last failure.
    #[serde(default)]
    pub last_failed_at: Option<DateTime<Utc>>,
}

impl JobHistory {
    /// Executions that started, the current one included, for a delivery with `receive_count`.
    pub(crate) fn attempt(&self, receive_count: u32) -> u32 {
        receive_count.saturating_sub(self.unstarted).max(1)
    }
}

pub(crate) fn history_key(job: &str, job_id: &str) -> String {
    state_key(job, kind::HISTORY, job_id)
}

pub(crate) async fn load(
    store: &dyn StateStore,
    key: &str,
    now: DateTime<Utc>,
) -> PortResult<Option<JobHistory>> {
    let record = store.get(key, now).await?;
    Ok(record.and_then(|r| serde_json::from_str(&r.value).ok()))
}

pub(crate) async fn save(
    store: &dyn StateStore,
    key: &str,
    history: &JobHistory,
    now: DateTime<Utc>,
) -> PortResult {
    let value = serde_json::to_string(history).unwrap_or_default();
    store.put(key, &value, now + HISTORY_TTL).await
}
