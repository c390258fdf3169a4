//! The cart janitor: idle carts become abandoned and give their reserved stock back (once), and
//! expired cart sessions are deleted, a bounded batch at a time.
//!
//! Invariants:
//! - A cart the janitor cannot process (it does not read, or its abandon is more than the
//!   repository takes in one write) never stops the walk: it is set aside
//!   ([`CartStatus::SetAside`](crate::CartStatus::SetAside)), so the next batches and runs leave
//!   it out, and returned in [`AbandonBatch::set_aside`] for the job to report.
//! - A cart marked set aside is always in a batch the caller gets back: carts are marked after
//!   the batch's abandons, and a failure to mark one after others were marked ends the batch
//!   with those (the unmarked one, still active, comes back in the next batch). Were the error
//!   returned instead, the marked carts would never be returned, and never reported.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use jobkit::{JobError, SetAside};

use crate::{
    ids::CartId,
    ports::{CartRepository, RepoError},
};

/// What one batch of abandonment did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AbandonBatch {
    /// Idle carts looked at (those set aside among them).
    pub examined: usize,
    /// Carts this batch abandoned (others were taken by a concurrent run).
    pub abandoned: usize,
    /// Units of stock given back.
    pub units_released: u64,
    /// Carts this batch set aside, with why: already marked (no later batch returns them), for
    /// the job to report, each with `ctx.set_aside(&record.id, &record.reason)`.
    pub set_aside: Vec<SetAside>,
}

/// Cleans carts.
#[derive(Debug, Clone)]
pub struct CartJanitor {
    carts: Arc<dyn CartRepository>,
}

impl CartJanitor {
    /// A janitor on `carts`.
    pub fn new(carts: Arc<dyn CartRepository>) -> Self {
        Self { carts }
    }

    /// Abandons up to `limit` carts idle for `idle_after` at `now`, releasing their stock.
    ///
    /// A cart it cannot process (it does not read; it gives stock back to more variants than
    /// the repository takes in one write) is set aside, out of every later batch, and returned
    /// in [`AbandonBatch::set_aside`]; the walk goes on with the next cart. A batch is done
    /// when it examined fewer than `limit` carts.
    ///
    /// # Errors
    /// A storage failure: retryable when transient, permanent when the table refuses the request.
    /// Nothing returned in an error was set aside.
    pub async fn abandon_idle(
        &self,
        now: DateTime<Utc>,
        idle_after: Duration,
        limit: usize,
    ) -> Result<AbandonBatch, JobError> {
        let idle = self.carts.idle_active(now - idle_after, limit).await?;
        let mut batch = AbandonBatch { examined: idle.len(), ..AbandonBatch::default() };
        let mut unprocessable = Vec::new();
        for found in idle {
            let mut cart = match found {
                Ok(cart) => cart,
                Err(unreadable) => {
                    unprocessable.push(unreadable);
                    continue;
                }
            };
            let Some(releases) = cart.abandon(now, idle_after) else { continue };
            match self.carts.abandon(&cart.id, &releases).await {
                Ok(true) => {
                    batch.abandoned += 1;
                    batch.units_released += releases.iter().map(|r| u64::from(r.quantity)).sum::<u64>();
                }
                Ok(false) => {}
                Err(RepoError::Unprocessable { id, reason }) => {
                    unprocessable
                        .push(SetAside::new(id, format_args!("the cart cannot be abandoned: {reason}")));
                }
                Err(e) => return Err(e.into()),
            }
        }
        for record in unprocessable {
            let id = CartId::from(record.id.as_str());
            match self.carts.set_aside(&id, &record.reason, now).await {
                Ok(true) => batch.set_aside.push(record),
                // Checked out or abandoned since it was read: nothing left to set aside.
                Ok(false) => {}
                Err(e) if batch.set_aside.is_empty() => return Err(e.into()),
                Err(e) => {
                    tracing::warn!(
                        cart_id = %id,
                        error = %jobkit::redact::redact(&e.to_string()),
                        "could not set the cart aside; it comes back in the next batch"
                    );
                    break;
                }
            }
        }
        Ok(batch)
    }

    /// Deletes up to `limit` carts whose session expired at `now`; returns how many. Carts set
    /// aside are kept for the operator.
    ///
    /// # Errors
    /// A storage failure: retryable when transient, permanent when the table refuses the request.
    pub async fn delete_expired(&self, now: DateTime<Utc>, limit: usize) -> Result<usize, JobError> {
        let expired = self.carts.expired(now, limit).await?;
        Ok(self.carts.delete(&expired).await?)
    }
}
