//! What happens to a record after its execution, or instead of one: the run completed, continued
//! in a new message, retried by visibility, or sent to the DLQ with the error; a hop; a record
//! handed back unstarted.
//!
//! Invariants: every call here is bounded by the time left before the invocation's deadline
//! (an answer that comes too late is treated as no answer: the record comes back); the run's
//! record is written before the message that continues it is sent, so a continuation always
//! finds its checkpoint; a DLQ copy is sent before the run is marked dead, so a run is never
//! dead without its copy.

use std::{future::Future, time::Duration};

use chrono::{DateTime, Utc};

use super::{BatchRunner, DlqReason, RecordStatus, record::Batch};
use crate::{
    batch::MemberOutcome,
    dead_letter::{DeadLetterError, LastError, copy_for_dlq, save_last_error},
    enqueue::{hop_delay, release_unique},
    error::{JobError, PortError},
    job::{Discarded, Job},
    message::{ArgsJson, ContinuationRef, Metadata, OutgoingMessage, ReceivedMessage, attr},
    notify::{FailureEvent, FailureReport},
    policy::{Decision, MAX_WAIT},
    redact::redact,
    runs::{Ending, Run, RunWriteError},
    set_aside::SetAside,
};

/// Kept back from every settle call's time for answering the batch.
const ANSWER_RESERVE: Duration = Duration::from_millis(50);

/// DLQ error messages are cut to this many characters.
const MAX_ERROR_MESSAGE: usize = 1000;

/// Tries of the write that ends a run (completed, dead-lettered): a run left running would let
/// a duplicate delivered after its deadline run the effect again.
const ENDING_TRIES: u32 = 4;

/// What one execution produced.
pub(crate) struct Execution {
    pub(crate) result: Result<(), JobError>,
    pub(crate) meta: Metadata,
    pub(crate) run: Run,
    /// The job stopped at a checkpoint to continue in a new message.
    pub(crate) interrupted: bool,
    /// Another delivery took the run over while this one ran.
    pub(crate) lost: bool,
    /// The records the job set aside (already reported; counted by the runner).
    pub(crate) set_aside: Vec<SetAside>,
}

impl<J: Job> BatchRunner<J> {
    pub(super) async fn settle(
        &self,
        message: &ReceivedMessage,
        execution: Execution,
        args_json: &ArgsJson<'_>,
        batch: &Batch,
    ) -> RecordStatus {
        let Execution { result, meta, mut run, interrupted, lost, set_aside: _ } = execution;
        match result {
            Ok(()) => {
                let keep_until = self.runtime.clock.now()
                    + chrono::Duration::from_std(self.job.idempotency_ttl()).unwrap_or_default();
                self.end_run(&mut run, Ending::Completed { keep_until }, batch).await;
                self.release_unique(&meta, batch).await;
                // Not counted: the record comes back, a duplicate of a finished run, and counts.
                if let Err(status) = self.count_in_batch(&meta, MemberOutcome::Succeeded, batch).await {
                    return status;
                }
                RecordStatus::Succeeded
            }
            Err(_) if lost => {
                tracing::warn!("another delivery took the run over; this one stops");
                self.hand_back_busy(message, batch).await
            }
            Err(_) if interrupted => self.continue_later(message, &meta, &mut run, batch).await,
            Err(error) => self.fail(message, &meta, &mut run, error, args_json, batch).await,
        }
    }

    /// Classifies a failure by the policy: retry by visibility, or hand over to the DLQ.
    async fn fail(
        &self,
        message: &ReceivedMessage,
        meta: &Metadata,
        run: &mut Run,
        error: JobError,
        args_json: &ArgsJson<'_>,
        batch: &Batch,
    ) -> RecordStatus {
        let now = self.runtime.clock.now();
        let attempt = run.attempt();
        let decision = J::retry_policy().decide(&error, attempt);
        tracing::warn!(error_kind = %error.kind(), error = %redact(error.message()), ?decision, "job failed");
        self.record_last_error(meta.job_id.as_str(), &error, attempt, batch).await;
        let (status, event) = match decision {
            Decision::Retry(delay) => (self.retry(message, run, delay, batch).await, FailureEvent::Retrying),
            Decision::Exhausted | Decision::Discard => {
                let reason =
                    if decision == Decision::Exhausted { DlqReason::Exhausted } else { DlqReason::Discarded };
                run.note_final_failure(now);
                let record = run.record();
                let account = self.account(
                    message,
                    &error,
                    reason,
                    attempt,
                    (record.first_failed_at, record.last_failed_at),
                );
                let status = self
                    .dead_letter(
                        message,
                        meta.job_id.as_str(),
                        Some(run.token()),
                        account,
                        &error,
                        reason,
                        batch,
                    )
                    .await;
                if status.is_done() {
                    self.end_run(run, Ending::DeadLettered, batch).await;
                    self.release_unique(meta, batch).await;
                    self.count_dead_in_batch(meta, batch).await;
                    let discarded = Discarded {
                        job_id: meta.job_id.clone(),
                        kind: error.kind().clone(),
                        message: redact(error.message()),
                        exhausted: reason == DlqReason::Exhausted,
                        attempts: attempt,
                        at: now,
                    };
                    self.after_discard(args_json, &discarded, batch).await;
                }
                (status, FailureEvent::DeadLettered)
            }
        };
        self.notify(meta, &message.message_id, attempt, &error, event, args_json, batch).await;
        status
    }

    /// Keeps the error as the job id's last, for a copy that reaches the DLQ without it (SQS
    /// moved it after a crash loop, or it had no room).
    async fn record_last_error(&self, job_id: &str, error: &JobError, attempt: u32, batch: &Batch) {
        let now = self.runtime.clock.now();
        let last =
            LastError { kind: error.kind().to_string(), message: redact(error.message()), attempt, at: now };
        let saved = save_last_error(self.runtime.store.as_ref(), J::NAME, job_id, &last, now);
        if let Err(e) = self.bounded(batch, "recording the error", saved).await {
            tracing::warn!(error = %e, "could not record the last error");
        }
    }

    /// A retry: the run waits for its own message, which comes back after `delay`.
    async fn retry(
        &self,
        message: &ReceivedMessage,
        run: &mut Run,
        delay: Duration,
        batch: &Batch,
    ) -> RecordStatus {
        let now = self.runtime.clock.now();
        // SQS counts a message's 12 hours of visibility from when it was received.
        let spent = (now - batch.received_at).to_std().unwrap_or_default();
        let delay = delay.min(MAX_WAIT.saturating_sub(spent + Duration::from_secs(1)));
        let until = now + chrono::Duration::from_std(delay + J::TIMEOUT * 2).unwrap_or(chrono::Duration::MAX);
        match self.bounded(batch, "recording the failure", run.suspend_to_retry(until, now)).await {
            Ok(()) => {}
            Err(RunWriteError::Lost) => return self.hand_back_busy(message, batch).await,
            // The run stays held until the deadline; its message comes back after it.
            Err(e) => tracing::warn!(error = %e, "could not record the failure"),
        }
        let visibility = self.runtime.queue.change_visibility(&batch.queue, &message.receipt_handle, delay);
        if let Err(e) = self.bounded(batch, "setting the retry delay", visibility).await {
            tracing::warn!(error = %e, "could not set the retry delay; the queue's visibility timeout applies");
        }
        RecordStatus::Retrying(delay)
    }

    /// What the DLQ copy says about a failure.
    fn account(
        &self,
        message: &ReceivedMessage,
        error: &JobError,
        reason: DlqReason,
        attempts: u32,
        (first, last): (Option<DateTime<Utc>>, Option<DateTime<Utc>>),
    ) -> DeadLetterError {
        DeadLetterError {
            kind: error.kind().to_string(),
            message: redact(error.message()).chars().take(MAX_ERROR_MESSAGE).collect(),
            reason: reason.as_str().to_owned(),
            attempts,
            first_failed_at: first,
            last_failed_at: last,
            original_message_id: message.message_id.clone(),
            dropped_attributes: Vec::new(),
        }
    }

    /// A record that can never run (undecodable, bad arguments, refused by the contract): to
    /// the DLQ at once. `meta` is there when the record decoded.
    pub(super) async fn reject(
        &self,
        message: &ReceivedMessage,
        meta: Option<&Metadata>,
        error: &JobError,
        batch: &Batch,
    ) -> RecordStatus {
        tracing::warn!(error = %redact(error.message()), "record rejected");
        let now = self.runtime.clock.now();
        let job_id = meta.map_or_else(
            || {
                message
                    .attributes
                    .get(attr::JOB_ID)
                    .filter(|id| !id.is_empty())
                    .unwrap_or(&message.message_id)
                    .clone()
            },
            |m| m.job_id.to_string(),
        );
        let attempts = message.receive_count.max(1);
        // Kept by job id too: a body too close to SQS's limit leaves the copy no room for it.
        self.record_last_error(&job_id, error, attempts, batch).await;
        let account = self.account(message, error, DlqReason::Discarded, attempts, (Some(now), Some(now)));
        // No run reference: the record never entered one, and its own may be the reason.
        let status =
            self.dead_letter(message, &job_id, None, account, error, DlqReason::Discarded, batch).await;
        if let Some(meta) = meta.filter(|_| status.is_done()) {
            self.count_dead_in_batch(meta, batch).await;
        }
        status
    }

    #[allow(clippy::too_many_arguments)]
    async fn dead_letter(
        &self,
        message: &ReceivedMessage,
        job_id: &str,
        run: Option<&str>,
        account: DeadLetterError,
        error: &JobError,
        reason: DlqReason,
        batch: &Batch,
    ) -> RecordStatus {
        let copy = copy_for_dlq(message, J::NAME, job_id, run, account);
        let sent = self.runtime.queue.send(&self.config.dead_letter_queue, copy);
        match self.bounded(batch, "sending to the DLQ", sent).await {
            Ok(_) => RecordStatus::DeadLettered(reason, error.kind().clone()),
            // The queue's own redrive (maxReceiveCount) is the safety net if this keeps failing.
            Err(e) => RecordStatus::Unhandled(format!("sending to the DLQ: {e}")),
        }
    }

    /// Gives back the job's `unique_until_done` lock, if it holds one: the job is done. One not
    /// given back frees itself when its window ends.
    pub(super) async fn release_unique(&self, meta: &Metadata, batch: &Batch) {
        let Some(key) = meta.unique_lock.as_deref() else { return };
        let now = self.runtime.clock.now();
        let released = release_unique(&self.runtime.store, J::NAME, key, &meta.job_id, now);
        if let Err(e) = self.bounded(batch, "giving the unique lock back", released).await {
            tracing::warn!(error = %e, "unique lock not given back: it frees itself when its window ends");
        }
    }

    /// The job's `after_discard`, bounded by the time left; its failure is only logged.
    async fn after_discard(&self, args_json: &ArgsJson<'_>, discarded: &Discarded, batch: &Batch) {
        let Ok(args) = args_json.parse::<J::Args>() else { return };
        let called = self.job.after_discard(&args, discarded);
        if let Err(e) = self.bounded(batch, "after_discard", called).await {
            let error = redact(&e.to_string());
            tracing::warn!(%error, "after_discard failed (the job is in the DLQ all the same)");
        }
    }

    /// Writes the end of a run, trying again a few times: a run left running until its
    /// deadline would let a duplicate delivered after it apply the effect a second time (the
    /// fault campaign found exactly that with one try).
    async fn end_run(&self, run: &mut Run, ending: Ending, batch: &Batch) {
        for attempt in 1..=ENDING_TRIES {
            let now = self.runtime.clock.now();
            match self.bounded(batch, "ending the run", run.end(&ending, now)).await {
                Ok(()) => return,
                Err(RunWriteError::Port(e)) if attempt < ENDING_TRIES && e.is_transient() => {
                    tracing::warn!(error = %e, attempt, "could not record the run's end; trying again");
                    tokio::time::sleep(Duration::from_millis(25 << attempt)).await;
                }
                Err(e) => {
                    tracing::error!(error = %e, "could not record the run's end: a duplicate delivered after the invocation's deadline would run again");
                    return;
                }
            }
        }
    }

    /// Re-sends a record that is not yet due with the remaining delay, carrying its job id, so
    /// that two copies of a hop (an answer lost) are one job.
    pub(super) async fn hop(
        &self,
        message: &ReceivedMessage,
        meta: &Metadata,
        not_before: DateTime<Utc>,
        batch: &Batch,
    ) -> RecordStatus {
        let delay = hop_delay(not_before, self.runtime.clock.now());
        match self.re_send(message, meta, delay, batch, "re-sending a delayed job").await {
            Ok(()) => RecordStatus::Hopped,
            Err(status) => status,
        }
    }

    /// Sends a copy of `message` to come back in `delay_seconds`, with its job id and job, so
    /// that two copies (an answer lost) are one job; the original is then deleted.
    pub(super) async fn re_send(
        &self,
        message: &ReceivedMessage,
        meta: &Metadata,
        delay_seconds: u32,
        batch: &Batch,
        what: &str,
    ) -> Result<(), RecordStatus> {
        let mut attributes = message.attributes.clone();
        attributes.insert(attr::JOB_ID.into(), meta.job_id.to_string());
        attributes.insert(attr::JOB.into(), J::NAME.into());
        let again = OutgoingMessage {
            body: message.body.clone(),
            attributes,
            delay_seconds,
            group_id: message.group_id.clone(),
            dedup_id: fifo_dedup_id(message),
        };
        match self.bounded(batch, what, self.runtime.queue.send(&batch.queue, again)).await {
            Ok(_) => Ok(()),
            Err(e) => Err(RecordStatus::Unhandled(format!("{what}: {e}"))),
        }
    }

    /// The run stopped at a checkpoint: it waits for its continuation, sent now with a
    /// reference to the run (the checkpoint stays in the store).
    async fn continue_later(
        &self,
        message: &ReceivedMessage,
        meta: &Metadata,
        run: &mut Run,
        batch: &Batch,
    ) -> RecordStatus {
        let now = self.runtime.clock.now();
        let until = now + chrono::Duration::from_std(J::TIMEOUT * 2).unwrap_or(chrono::Duration::MAX);
        match self.bounded(batch, "suspending the run", run.suspend_to_continue(until, now)).await {
            Ok(()) => {}
            Err(RunWriteError::Lost) => return self.hand_back_busy(message, batch).await,
            Err(e) => return RecordStatus::Unhandled(format!("suspending the run: {e}")),
        }
        let mut attributes = message.attributes.clone();
        attributes.insert(attr::JOB_ID.into(), meta.job_id.to_string());
        attributes.insert(attr::JOB.into(), J::NAME.into());
        attributes.insert(
            attr::CONTINUATION.into(),
            ContinuationRef { run: run.token().to_owned() }.to_attribute(),
        );
        attributes.remove(attr::NOT_BEFORE);
        let again = OutgoingMessage {
            body: message.body.clone(),
            attributes,
            delay_seconds: 0,
            group_id: message.group_id.clone(),
            dedup_id: fifo_dedup_id(message),
        };
        match self
            .bounded(batch, "sending the continuation", self.runtime.queue.send(&batch.queue, again))
            .await
        {
            Ok(_) => {
                tracing::info!(resumptions = run.record().resumptions, "job continues in a new invocation");
                RecordStatus::Continued
            }
            // The run waits for its own message: this one, when it comes back.
            Err(e) => RecordStatus::Unhandled(format!("sending the continuation: {e}")),
        }
    }

    /// Another delivery holds the run now: hand this one back for a while.
    async fn hand_back_busy(&self, message: &ReceivedMessage, batch: &Batch) -> RecordStatus {
        let until = self.runtime.clock.now() + chrono::Duration::from_std(J::TIMEOUT).unwrap_or_default();
        self.return_unstarted(message, Some(until), batch).await
    }

    /// Hands a record back without running it; `until` delays it (its run is busy elsewhere).
    pub(super) async fn return_unstarted(
        &self,
        message: &ReceivedMessage,
        until: Option<DateTime<Utc>>,
        batch: &Batch,
    ) -> RecordStatus {
        let now = self.runtime.clock.now();
        let wait = until.and_then(|t| (t - now).to_std().ok()).unwrap_or(Duration::ZERO);
        let wait =
            wait.max(if until.is_some() { Duration::from_secs(1) } else { Duration::ZERO }).min(MAX_WAIT);
        let back = self.runtime.queue.change_visibility(&batch.queue, &message.receipt_handle, wait);
        if let Err(e) = self.bounded(batch, "handing the record back", back).await {
            tracing::warn!(error = %e, "could not hand the record back early");
        }
        if until.is_some() { RecordStatus::InProgressElsewhere } else { RecordStatus::ReturnedUnstarted }
    }

    #[allow(clippy::too_many_arguments)]
    async fn notify(
        &self,
        meta: &Metadata,
        message_id: &str,
        attempt: u32,
        error: &JobError,
        event: FailureEvent,
        args_json: &ArgsJson<'_>,
        batch: &Batch,
    ) {
        let Some(notifier) = &self.runtime.notifier else { return };
        let args = args_json.text();
        let report = FailureReport {
            job: J::NAME,
            job_id: meta.job_id.as_str(),
            message_id,
            attempt,
            error,
            event,
            args: &args,
        };
        let sent = notifier.notify(self.runtime.store.as_ref(), &report, self.runtime.clock.now());
        if let Err(e) = self.bounded(batch, "sending the error email", sent).await {
            tracing::warn!(error = %e, "could not send the error email");
        }
    }

    /// Runs one settle call with the time left before the deadline (less a little to answer
    /// the batch); a call still going then counts as failed, so the record comes back rather
    /// than the invocation outliving its deadline.
    pub(super) async fn bounded<T, E: From<PortError>>(
        &self,
        batch: &Batch,
        what: &str,
        call: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        let left = (batch.deadline - self.runtime.clock.now())
            .to_std()
            .unwrap_or_default()
            .saturating_sub(ANSWER_RESERVE);
        if left.is_zero() {
            return Err(PortError::Unavailable(format!("{what}: no time left before the deadline")).into());
        }
        match tokio::time::timeout(left, call).await {
            Ok(result) => result,
            Err(_) => Err(PortError::Unavailable(format!("{what}: no answer before the deadline")).into()),
        }
    }
}

/// A fresh deduplication id for a re-send on a FIFO queue (none on standard queues).
fn fifo_dedup_id(message: &ReceivedMessage) -> Option<String> {
    message.group_id.as_ref().map(|_| uuid::Uuid::new_v4().to_string())
}
