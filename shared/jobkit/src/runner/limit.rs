//! A record's slot under its job's per-key concurrency limit: taken before the run is
//! entered, given back once the record is settled; a record that finds no slot is re-sent to
//! come back a little later (see `crate::concurrency`).

use std::time::Duration;

use rand::Rng;

use super::{BatchRunner, RecordStatus, record::Batch};
use crate::{
    concurrency::{self, Acquired, Slot},
    job::Job,
    message::{Metadata, ReceivedMessage},
};

impl<J: Job> BatchRunner<J> {
    /// The record's slot (`None` when its job declares no limit for these arguments). The
    /// `Err` is the record's status when it may not run now: re-sent for later, or back to the
    /// queue when the store did not answer.
    pub(super) async fn take_slot(
        &self,
        message: &ReceivedMessage,
        meta: &Metadata,
        args: &J::Args,
        holder: &str,
        batch: &Batch,
    ) -> Result<Option<Slot>, RecordStatus> {
        let Some(limit) = self.job.concurrency_limit(args) else {
            return Ok(None);
        };
        let store = &self.runtime.store;
        let now = self.runtime.clock.now();
        let expires_at = concurrency::slot_expiry(&limit, J::TIMEOUT, now, batch.deadline);
        let taken = concurrency::acquire(store, J::NAME, &limit, holder, expires_at, now);
        match self.bounded(batch, "taking a concurrency slot", taken).await {
            Ok(Acquired::Slot(slot)) => Ok(Some(slot)),
            Ok(Acquired::Full(frees_at)) => {
                let frees_in = (frees_at - now).to_std().unwrap_or_default();
                let delay = come_back_in(self.config.limit_wait.min(frees_in).max(Duration::from_secs(1)));
                tracing::info!(
                    limit_key = limit.key(),
                    limit = limit.to(),
                    back_in_s = delay,
                    "over the job's concurrency limit: back later, no attempt spent"
                );
                let what = "re-sending a record over its concurrency limit";
                Err(self
                    .re_send(message, meta, delay, batch, what)
                    .await
                    .map_or_else(|s| s, |()| RecordStatus::Limited))
            }
            Err(e) => Err(RecordStatus::Unhandled(format!("taking a concurrency slot: {e}"))),
        }
    }

    /// Gives `slot` back; one not given back frees itself when it expires.
    pub(super) async fn give_back(&self, slot: Option<Slot>, batch: &Batch) {
        let Some(slot) = slot else { return };
        let released = slot.release(&self.runtime.store, self.runtime.clock.now());
        if let Err(e) = self.bounded(batch, "giving a concurrency slot back", released).await {
            tracing::warn!(error = %e, "concurrency slot not given back: it frees itself when it expires");
        }
    }
}

/// Whole seconds (SQS's delay unit) for `wait`, plus up to half as much again at random, so
/// records waiting for one key do not all come back at the same moment.
fn come_back_in(wait: Duration) -> u32 {
    let secs =
        u32::try_from(wait.as_secs().max(1)).unwrap_or(u32::MAX).min(crate::enqueue::MAX_DELAY_SECONDS);
    let jitter = rand::rng().random_range(0..=secs / 2);
    (secs + jitter).min(crate::enqueue::MAX_DELAY_SECONDS)
}
