//! The cart janitor: idle carts become abandoned and give their reserved stock back (once), and
//! expired cart sessions are deleted, a bounded batch at a time.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use jobkit::JobError;

use crate::ports::CartRepository;

/// What one batch of abandonment did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AbandonBatch {
    /// Idle carts looked at.
    pub examined: usize,
    /// Carts this batch abandoned (others were taken by a concurrent run).
    pub abandoned: usize,
    /// Units of stock given back.
    pub units_released: u64,
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
    /// # Errors
    /// A storage failure: retryable when transient, permanent when the table refuses the request.
    pub async fn abandon_idle(
        &self,
        now: DateTime<Utc>,
        idle_after: Duration,
        limit: usize,
    ) -> Result<AbandonBatch, JobError> {
        let idle = self.carts.idle_active(now - idle_after, limit).await?;
        let mut batch = AbandonBatch { examined: idle.len(), ..AbandonBatch::default() };
        for mut cart in idle {
            let Some(releases) = cart.abandon(now, idle_after) else { continue };
            if self.carts.abandon(&cart.id, &releases).await? {
                batch.abandoned += 1;
                batch.units_released += releases.iter().map(|r| u64::from(r.quantity)).sum::<u64>();
            }
        }
        Ok(batch)
    }

    /// Deletes up to `limit` carts whose session expired at `now`; returns how many.
    ///
    /// # Errors
    /// A storage failure: retryable when transient, permanent when the table refuses the request.
    pub async fn delete_expired(&self, now: DateTime<Utc>, limit: usize) -> Result<usize, JobError> {
        let expired = self.carts.expired(now, limit).await?;
        Ok(self.carts.delete(&expired).await?)
    }
}
