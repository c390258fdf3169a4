//! A batch member's finish, counted in its batch ([`crate::batch`]): when its run ends
//! (succeeded, or in the DLQ), when it is cancelled, and on a duplicate of a finished run (the
//! delivery that finished it may have stopped before counting; counting again is a no-op).

use std::time::Duration;

use super::{BatchRunner, RecordStatus, record::Batch};
use crate::{
    batch::{MemberOutcome, member_finished},
    job::Job,
    message::Metadata,
};

/// Tries of counting a member in the DLQ (see [`BatchRunner::count_dead_in_batch`]).
const COUNT_TRIES: u32 = 4;

impl<J: Job> BatchRunner<J> {
    /// Counts the finish of `meta`'s job in its batch, if it is a member (and completes the
    /// batch if it was the last). `Err` carries the status of a record that must come back to
    /// be counted then.
    pub(super) async fn count_in_batch(
        &self,
        meta: &Metadata,
        outcome: MemberOutcome,
        batch: &Batch,
    ) -> Result<(), RecordStatus> {
        let Some(id) = meta.batch.as_deref() else { return Ok(()) };
        let now = self.runtime.clock.now();
        let store = self.runtime.store.as_ref();
        let counted = member_finished(store, &self.enqueuer, J::NAME, id, &meta.job_id, outcome, now);
        self.bounded(batch, "counting the batch member", counted)
            .await
            .map_err(|e| RecordStatus::Unhandled(format!("counting the batch member: {e}")))
    }

    /// Counts a member that is in the DLQ. Its record cannot come back for it (the run's own
    /// message would re-enter the dead run), so the count is tried a few times (counting again
    /// is a no-op) and a last failure logged: a redrive of its DLQ copy counts it when that run
    /// ends.
    pub(super) async fn count_dead_in_batch(&self, meta: &Metadata, batch: &Batch) {
        for attempt in 1..=COUNT_TRIES {
            match self.count_in_batch(meta, MemberOutcome::Failed, batch).await {
                Ok(()) => return,
                Err(_) if attempt < COUNT_TRIES => {
                    tokio::time::sleep(Duration::from_millis(25 << attempt)).await;
                }
                Err(status) => {
                    tracing::error!(batch = meta.batch.as_deref(), status = ?status, "batch member in the DLQ not counted: its batch completes when a redrive of it ends");
                }
            }
        }
    }
}
