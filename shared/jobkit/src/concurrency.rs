//! Per-key concurrency limits (Solid Queue's `limits_concurrency to:, key:, duration:`, Sidekiq
//! Enterprise's limiters): at most `to` executions of a job with the same key at once.
//!
//! A limit is `to` slots in the state store, `<job>:limit:<key>:<n>`, each taken with a
//! conditional write that succeeds only on a vacant slot (absent, or past its expiry) and given
//! back by expiring it. A record that finds every slot taken is re-sent with a short delay and
//! its message deleted: it comes back later as a new message, so waiting spends neither an
//! attempt of its policy nor a receive towards the queue's `maxReceiveCount`.
//!
//! Invariants:
//! - A slot is held from before the run is entered until the record is settled, so two
//!   executions with one key never overlap while both holders live.
//! - A holder that died (a crash, a killed invocation) frees its slot when the slot expires:
//!   after the declared duration, and never before the job's own timeout.
//! - Only the holder gives a slot back (a compare-and-swap on its token), so a late release
//!   never frees a slot another execution has taken since.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};

use crate::{
    keys::{kind, state_key},
    ports::{PutOutcome, StateStore},
};

/// How many executions of a job may run at once for one key. See [`crate::Job::concurrency_limit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConcurrencyLimit {
    key: String,
    to: u32,
    duration: Duration,
}

impl ConcurrencyLimit {
    /// At most one execution at a time for `key` (a store's id, say).
    pub fn one_per(key: impl Into<String>) -> Self {
        Self { key: key.into(), to: 1, duration: Duration::ZERO }
    }

    /// At most `to` executions at a time for `key` (at least one).
    pub fn per(key: impl Into<String>, to: u32) -> Self {
        Self { key: key.into(), to: to.max(1), duration: Duration::ZERO }
    }

    /// How long a slot stays taken when its holder dies without giving it back. Never shorter
    /// than the job's timeout (a live execution keeps its slot); that is the default.
    #[must_use]
    pub fn duration(mut self, duration: Duration) -> Self {
        self.duration = duration;
        self
    }

    /// The key executions are counted by.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// How many may run at once.
    pub fn to(&self) -> u32 {
        self.to
    }
}

/// A slot taken for one execution; give it back with [`Slot::release`].
#[derive(Debug)]
pub(crate) struct Slot {
    key: String,
    holder: String,
}

/// The answer of [`acquire`].
#[derive(Debug)]
pub(crate) enum Acquired {
    /// A slot is ours until it is released or expires.
    Slot(Slot),
    /// Every slot is taken; the soonest frees by itself at this time.
    Full(DateTime<Utc>),
}

/// Takes a vacant slot of `limit` for job `job`, held by `holder` (the record's run token)
/// until `expires_at` at the latest (the limit's duration, at least the job's timeout).
pub(crate) async fn acquire(
    store: &Arc<dyn StateStore>,
    job: &str,
    limit: &ConcurrencyLimit,
    holder: &str,
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> crate::error::PortResult<Acquired> {
    let mut soonest: Option<DateTime<Utc>> = None;
    for n in 0..limit.to {
        let key = state_key(job, kind::LIMIT, &format!("{}:{n}", limit.key));
        match store.put_if_vacant(&key, holder, expires_at, now).await? {
            PutOutcome::Written => return Ok(Acquired::Slot(Slot { key, holder: holder.to_owned() })),
            PutOutcome::Taken(record) => {
                soonest = Some(soonest.map_or(record.expires_at, |s| s.min(record.expires_at)));
            }
        }
    }
    Ok(Acquired::Full(soonest.unwrap_or(expires_at)))
}

impl Slot {
    /// Gives the slot back by expiring it, if it is still this holder's.
    pub(crate) async fn release(
        &self,
        store: &Arc<dyn StateStore>,
        now: DateTime<Utc>,
    ) -> crate::error::PortResult<()> {
        store.replace(&self.key, &self.holder, &self.holder, now).await.map(drop)
    }
}

/// When a holder of `limit` that dies frees its slot: the limit's duration, and never before
/// the job's `timeout` and the invocation's `deadline` have passed.
pub(crate) fn slot_expiry(
    limit: &ConcurrencyLimit,
    timeout: Duration,
    now: DateTime<Utc>,
    deadline: DateTime<Utc>,
) -> DateTime<Utc> {
    let held = chrono::Duration::from_std(limit.duration.max(timeout)).unwrap_or(chrono::Duration::MAX);
    now.checked_add_signed(held).unwrap_or(DateTime::<Utc>::MAX_UTC).max(deadline)
}
