//! The retention cleaner: deletes what has been kept long enough, a bounded batch at a time, so
//! the job can checkpoint between batches. Two sources: the shop's history (sync runs, audit
//! entries, temporary records, each with its retention) and jobkit's state store (idempotency
//! keys, checkpoints, counters whose expiry passed).
//!
//! Invariant: no record can stop a purge. Both sources delete by kind and time (or expiry)
//! alone and never read a record's body, so a record that does not decode is deleted like any
//! other when its time comes; there is nothing to set aside.

use std::{collections::HashMap, sync::Arc};

use chrono::{DateTime, Duration, Utc};
use jobkit::{JobError, ports::StateStore};

use crate::{history::RecordKind, ports::History};

/// How long each kind of history record is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retention {
    periods: HashMap<RecordKind, Duration>,
}

impl Default for Retention {
    /// Each kind's [`RecordKind::default_retention`].
    fn default() -> Self {
        Self { periods: RecordKind::ALL.into_iter().map(|k| (k, k.default_retention())).collect() }
    }
}

impl Retention {
    /// Keeps `kind` for `period` instead.
    pub fn keep(mut self, kind: RecordKind, period: Duration) -> Self {
        self.periods.insert(kind, period);
        self
    }

    /// How long `kind` is kept.
    pub fn period(&self, kind: RecordKind) -> Duration {
        self.periods.get(&kind).copied().unwrap_or_else(|| kind.default_retention())
    }
}

/// Deletes expired records.
#[derive(Debug, Clone)]
pub struct RetentionCleaner {
    history: Arc<dyn History>,
    job_state: Arc<dyn StateStore>,
    retention: Retention,
}

impl RetentionCleaner {
    /// A cleaner of `history` and `job_state` under `retention`.
    pub fn new(history: Arc<dyn History>, job_state: Arc<dyn StateStore>, retention: Retention) -> Self {
        Self { history, job_state, retention }
    }

    /// The retention it applies.
    pub fn retention(&self) -> &Retention {
        &self.retention
    }

    /// Deletes up to `limit` records of `kind` older than its retention at `now`; returns how many.
    /// An entry whose body does not decode is deleted like the others ([`History::purge_before`]).
    ///
    /// # Errors
    /// A storage failure (retryable).
    pub async fn purge_history(
        &self,
        kind: RecordKind,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<usize, JobError> {
        let cutoff = now - self.retention.period(kind);
        Ok(self.history.purge_before(kind, cutoff, limit).await?)
    }

    /// Deletes up to `limit` job-state records whose expiry passed at `now`; returns how many.
    ///
    /// # Errors
    /// A storage failure (retryable).
    pub async fn purge_job_state(&self, now: DateTime<Utc>, limit: usize) -> Result<usize, JobError> {
        Ok(self.job_state.purge_expired(now, limit).await?)
    }
}
