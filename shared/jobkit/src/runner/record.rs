//! One record's way from delivery to execution: decode, check the contract, hop if not yet
//! due, check the deadline, parse the arguments, enter the run, perform.
//!
//! Invariant: the clock and the deadline are read again after anything that can wait (a twin
//! holding the run, the store's answer), so a record starts only if its whole timeout still
//! fits before the invocation's deadline, and the job gets only the time that remains.

use std::{
    collections::BTreeSet,
    panic::AssertUnwindSafe,
    sync::atomic::Ordering,
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use futures::FutureExt;
use tracing::{Instrument, info_span};

use super::{BatchRunner, RecordStatus, Timing, settle::Execution, twins::HeldRun};
use crate::{
    batch::MemberOutcome,
    cancel::is_cancelled,
    context::{Budget, JobContext},
    enqueue::payload_hash,
    error::{ErrorKind, JobError},
    job::{Job, default_job_key},
    keys::{kind, state_key},
    limits::MAX_MESSAGE_ATTRIBUTES,
    message::{ArgsJson, Envelope, Metadata, ReceivedMessage, attr, decode},
    runs::{Claim, Claimant, Run},
    set_aside::Reports,
    trace::{self, TraceContext},
};

/// What every record of one batch shares.
#[derive(Debug, Clone)]
pub(crate) struct Batch {
    /// The invocation's deadline.
    pub(crate) deadline: DateTime<Utc>,
    /// When the batch was received: SQS counts a message's 12-hour visibility limit from here.
    pub(crate) received_at: DateTime<Utc>,
    /// The queue it came from (the job's own lane's, or another's): its records are settled
    /// there, so a retry, a hop or a continuation stays on the run's lane.
    pub(crate) queue: String,
}

/// The attributes a continuation or a hop may add to a message.
const RE_SEND_ATTRIBUTES: [&str; 3] = [attr::JOB, attr::JOB_ID, attr::CONTINUATION];

impl<J: Job> BatchRunner<J> {
    pub(super) async fn handle(&self, message: &ReceivedMessage, batch: &Batch) -> (RecordStatus, Timing) {
        // The trace its producer started, if any: the record's lines carry its id, and what the
        // job enqueues joins it.
        let incoming = message
            .attributes
            .get(attr::TRACEPARENT)
            .and_then(|header| TraceContext::parse(header))
            .or_else(|| message.aws_trace_header.as_deref().and_then(TraceContext::from_xray));
        let (span, trace) = record_span::<J>(message, incoming);
        let in_trace = async {
            let mut timing = Timing::default();
            let status = self.handle_in_span(message, batch, &mut timing).await;
            // A success is the common case: logged at debug so that a busy queue's logs (and
            // CloudWatch's bill) carry what needs a look; everything else is logged at info.
            if matches!(status, RecordStatus::Succeeded | RecordStatus::Hopped) {
                tracing::debug!(status = ?status, duration_ms = timing.duration_ms, "record handled");
            } else {
                tracing::info!(
                    status = ?status,
                    duration_ms = timing.duration_ms,
                    settle_ms = timing.settle_ms,
                    "record handled"
                );
            }
            #[cfg(feature = "otel")]
            crate::otel::record_outcome(&tracing::Span::current(), &status);
            (status, timing)
        };
        trace::scope(trace, in_trace.instrument(span)).await
    }

    async fn handle_in_span(
        &self,
        message: &ReceivedMessage,
        batch: &Batch,
        timing: &mut Timing,
    ) -> RecordStatus {
        let now = self.runtime.clock.now();
        let Envelope { args: args_json, meta } = match decode(message) {
            Ok(envelope) => envelope,
            Err(error) => return self.reject(message, None, &error, batch).await,
        };
        if let Err(error) = self.admit(message, &meta, now) {
            return self.reject(message, Some(&meta), &error, batch).await;
        }
        if let Some(not_before) = meta.not_before.filter(|t| *t > now) {
            // A delayed job cancelled while it waits stops hopping now, not when it is due.
            if let Some(status) = self.cancelled(&meta, batch).await {
                return status;
            }
            return self.hop(message, &meta, not_before, batch).await;
        }
        if let Some(status) = self.must_wait(message, now, batch).await {
            return status;
        }
        let args: J::Args = match args_json.parse() {
            Ok(args) => args,
            Err(error) => return self.reject(message, Some(&meta), &error, batch).await,
        };
        // A run at the job id's own key reads its cancellation back with its claim (`runs`);
        // any other is looked up.
        let key = self.job.idempotency_key(&args, &meta);
        if key.as_deref() != Some(default_job_key(meta.job_id.as_str()).as_str())
            && let Some(status) = self.cancelled(&meta, batch).await
        {
            return status;
        }
        let token = meta.run_token.clone().unwrap_or_else(|| message.message_id.clone());
        let slot = match self.take_slot(message, &meta, &args, &token, batch).await {
            Ok(slot) => slot,
            Err(status) => return status,
        };
        let status = self.run_in_slot(message, args, &args_json, meta, key, &token, batch, timing).await;
        self.give_back(slot, batch).await;
        status
    }

    /// Enters the record's run, performs the job and settles the record.
    #[allow(clippy::too_many_arguments)]
    async fn run_in_slot(
        &self,
        message: &ReceivedMessage,
        args: J::Args,
        args_json: &ArgsJson<'_>,
        mut meta: Metadata,
        key: Option<String>,
        token: &str,
        batch: &Batch,
        timing: &mut Timing,
    ) -> RecordStatus {
        let hash = payload_hash(&args_json.canonical());
        let who = Claimant { token, hash: &hash, job_id: meta.job_id.as_str(), until: batch.deadline };
        let (run, _held) = match self.enter(message, &meta, key.as_deref(), &who, batch).await {
            Ok(entered) => entered,
            Err(status) => return status,
        };
        meta.attempt = run.attempt();
        if meta.attempt != message.receive_count.max(1) {
            tracing::Span::current().record("attempt", meta.attempt);
        }
        let now = self.runtime.clock.now();
        timing.queue_latency_ms = meta.enqueued_at.map(|t| (now - t).num_milliseconds().max(0) as f64);
        let started = Instant::now();
        let mut execution = self.execute(args, meta, run, now, batch.deadline).await;
        timing.duration_ms = Some(started.elapsed().as_secs_f64() * 1000.0);
        // Whatever the execution's outcome: what it set aside was set aside (and reported, and
        // maybe marked by the job) before it failed or stopped, so it is counted.
        timing.set_aside = std::mem::take(&mut execution.set_aside);
        let settling = Instant::now();
        let status = self.settle(message, execution, args_json, batch).await;
        timing.settle_ms = Some(settling.elapsed().as_secs_f64() * 1000.0);
        status
    }

    /// Refuses what could only cycle, be abused or run the wrong job: a message for another job,
    /// a `not_before` too far ahead, a tick for a time to come, attributes that leave a re-send
    /// no room.
    fn admit(&self, message: &ReceivedMessage, meta: &Metadata, now: DateTime<Utc>) -> Result<(), JobError> {
        if let Some(other) = meta.job.as_deref().filter(|job| *job != J::NAME) {
            return Err(JobError::permanent(
                ErrorKind::WRONG_QUEUE,
                format!("the message is for job {other}, and came on {}'s queue", J::NAME),
            ));
        }
        let invalid = |m: String| JobError::permanent(ErrorKind::INVALID_ARGUMENTS, m);
        let ahead =
            |limit: Duration| now + chrono::Duration::from_std(limit).unwrap_or(chrono::Duration::MAX);
        if let Some(not_before) = meta.not_before.filter(|t| *t > ahead(self.config.max_schedule_ahead)) {
            return Err(invalid(format!(
                "attribute {} ({}) is more than {} days ahead",
                attr::NOT_BEFORE,
                not_before.to_rfc3339(),
                self.config.max_schedule_ahead.as_secs() / 86_400
            )));
        }
        if let Some(tick) = &meta.tick {
            let time = DateTime::parse_from_rfc3339(&tick.time).map_err(|e| {
                invalid(format!("scheduled tick time {:?} is not an RFC 3339 time: {e}", tick.time))
            })?;
            if time > ahead(self.config.max_tick_ahead) {
                return Err(invalid(format!(
                    "scheduled tick for {} is ahead of the clock ({})",
                    tick.time,
                    now.to_rfc3339()
                )));
            }
        }
        let names = || message.attributes.keys().map(String::as_str);
        let continued: BTreeSet<&str> =
            names().chain(RE_SEND_ATTRIBUTES).filter(|name| *name != attr::NOT_BEFORE).collect();
        let hopped: BTreeSet<&str> = names().chain([attr::JOB, attr::JOB_ID]).collect();
        if continued.len().max(hopped.len()) > MAX_MESSAGE_ATTRIBUTES {
            return Err(invalid(format!(
                "{} message attributes leave no room for job, job_id and continuation, which a hop \
                 or a continuation adds (SQS takes {MAX_MESSAGE_ATTRIBUTES})",
                message.attributes.len()
            )));
        }
        Ok(())
    }

    /// `Cancelled` when an operator cancelled the job id (its unique lock given back: the job
    /// is done); `Unhandled` when the store did not say.
    async fn cancelled(&self, meta: &Metadata, batch: &Batch) -> Option<RecordStatus> {
        let now = self.runtime.clock.now();
        let asked = is_cancelled(self.runtime.store.as_ref(), J::NAME, &meta.job_id, now);
        match self.bounded(batch, "looking for a cancellation", asked).await {
            Ok(false) => None,
            Ok(true) => Some(self.acknowledge_cancelled(meta, batch).await),
            Err(e) => Some(RecordStatus::Unhandled(format!("looking for a cancellation: {e}"))),
        }
    }

    /// Acknowledges a cancelled job without running it: its unique lock given back (the job is
    /// done), and its batch told that it failed (the batch completes without it).
    async fn acknowledge_cancelled(&self, meta: &Metadata, batch: &Batch) -> RecordStatus {
        tracing::info!("cancelled by an operator: acknowledged without running");
        self.release_unique(meta, batch).await;
        if let Err(status) = self.count_in_batch(meta, MemberOutcome::Failed, batch).await {
            return status;
        }
        RecordStatus::Cancelled
    }

    /// A record that must not start now: too close to the deadline, or the worker is stopping.
    async fn must_wait(
        &self,
        message: &ReceivedMessage,
        now: DateTime<Utc>,
        batch: &Batch,
    ) -> Option<RecordStatus> {
        let needed = chrono::Duration::from_std(J::TIMEOUT + self.config.deadline_margin)
            .unwrap_or(chrono::Duration::MAX);
        if batch.deadline - now < needed || self.shutdown.requested() {
            return Some(self.return_unstarted(message, None, batch).await);
        }
        None
    }

    /// Enters the record's run: the free run of a job without a key, or the exclusive run of
    /// its key once any twin in this batch is done with it. The `Err` is the record's status
    /// when it may not run (a duplicate, busy elsewhere, the deadline too near now).
    async fn enter(
        &self,
        message: &ReceivedMessage,
        meta: &Metadata,
        key: Option<&str>,
        who: &Claimant<'_>,
        batch: &Batch,
    ) -> Result<(Run, Option<HeldRun>), RecordStatus> {
        let store = self.runtime.store.clone();
        let Some(key) = key else {
            let look = message.receive_count > 1 || meta.run_token.is_some();
            return Run::free(store, J::NAME, who, look, self.runtime.clock.now())
                .await
                .map(|run| (run, None))
                .map_err(|e| RecordStatus::Unhandled(format!("loading the run: {e}")));
        };
        let held =
            self.hold_after_twins(&state_key(J::NAME, kind::IDEMPOTENT_RUN, key), batch.deadline).await;
        // Waiting for a twin can take most of the invocation: look at the clock again.
        let now = self.runtime.clock.now();
        if let Some(status) = self.must_wait(message, now, batch).await {
            return Err(status);
        }
        match Run::claim(store, J::NAME, key, who, now).await {
            Ok(Claim::Entered(run)) => Ok((*run, held)),
            Ok(Claim::Done { succeeded }) => {
                // Done before (its lock given back and its batch told then, unless that
                // failed): give it back and tell it now; both are no-ops the second time.
                self.release_unique(meta, batch).await;
                let outcome = if succeeded { MemberOutcome::Succeeded } else { MemberOutcome::Failed };
                self.count_in_batch(meta, outcome, batch).await?;
                Err(RecordStatus::Duplicate)
            }
            // Back when the holder's window ends: one more receive, well inside
            // maxReceiveCount's margin (looking sooner and more often could exhaust it).
            Ok(Claim::Busy(until)) => Err(self.return_unstarted(message, Some(until), batch).await),
            Ok(Claim::Cancelled) => Err(self.acknowledge_cancelled(meta, batch).await),
            Ok(Claim::Mismatch) => {
                let error = JobError::permanent(
                    ErrorKind::IDEMPOTENCY_KEY_REUSED,
                    "idempotency key already used with other arguments",
                );
                Err(self.reject(message, Some(meta), &error, batch).await)
            }
            Err(e) => Err(RecordStatus::Unhandled(format!("entering the run: {e}"))),
        }
    }

    /// Performs the job with what is left of the time: its own timeout, or the deadline less
    /// the margin kept for settling, whichever comes first.
    async fn execute(
        &self,
        args: J::Args,
        meta: Metadata,
        run: Run,
        now: DateTime<Utc>,
        deadline: DateTime<Utc>,
    ) -> Execution {
        let margin = chrono::Duration::from_std(self.config.deadline_margin).unwrap_or_default();
        let timeout = chrono::Duration::from_std(J::TIMEOUT).unwrap_or(chrono::Duration::MAX);
        let until = (deadline - margin).min(now + timeout);
        let allowed = (until - now).to_std().unwrap_or(Duration::ZERO);
        let budget = Budget {
            deadline: until,
            continue_within: self.config.continue_within,
            checkpoint_every: self.config.checkpoint_every,
        };
        let mut ctx = JobContext::new(
            meta,
            budget,
            self.runtime.clock.clone(),
            self.enqueuer.clone(),
            self.shutdown.clone(),
            run,
        )
        .with_reports(Reports {
            job: J::NAME,
            notifier: self.runtime.notifier.clone(),
            store: self.runtime.store.clone(),
        });
        let saving = ctx.saving();
        // Boxed: a job's future can be large, and every enclosing future would otherwise carry (and move) it.
        let mut perform = AssertUnwindSafe(Box::pin(self.job.perform(args, &mut ctx))).catch_unwind();
        let finished = match tokio::time::timeout(allowed, &mut perform).await {
            Ok(finished) => Some(finished),
            // Cut off while writing a checkpoint, the step's effect would be done and its record
            // maybe not: a retry would apply it again. The write finishes (until half the margin
            // kept for settling is left before the invocation's deadline: its own timeout is the
            // job's, the deadline is Lambda's), and the checkpoint, past the job's time,
            // interrupts it.
            Err(_) if saving.load(Ordering::SeqCst) => {
                let half_margin =
                    chrono::Duration::from_std(self.config.deadline_margin / 2).unwrap_or_default();
                let grace = (deadline - half_margin - self.runtime.clock.now()).to_std().unwrap_or_default();
                tokio::time::timeout(grace, &mut perform).await.ok()
            }
            Err(_) => None,
        };
        let result = match finished {
            Some(Ok(result)) => result,
            Some(Err(panic)) => {
                Err(JobError::retryable(ErrorKind::PANIC, format!("panicked: {}", panic_message(&panic))))
            }
            None => Err(JobError::retryable(ErrorKind::TIMEOUT, format!("ran longer than {allowed:?}"))),
        };
        drop(perform);
        let (interrupted, lost) = (ctx.interrupted, ctx.lost);
        let set_aside = ctx.take_set_aside();
        let (meta, run) = ctx.into_parts();
        Execution { result, meta, run, interrupted, lost, set_aside }
    }
}

/// The record's span and the trace it runs in: `incoming`'s, or a new one. The span's fields are
/// known before decoding, so they are formatted once, at creation; but once spans are exported
/// (`otel`), a record that starts a trace takes the one its exported span started, so that the
/// logs' `trace_id` is the exported trace's, and that id is written when known.
fn record_span<J: Job>(
    message: &ReceivedMessage,
    incoming: Option<TraceContext>,
) -> (tracing::Span, TraceContext) {
    let job_id =
        message.attributes.get(attr::JOB_ID).filter(|id| !id.is_empty()).unwrap_or(&message.message_id);
    macro_rules! record_span {
        ($trace_id:expr) => {
            info_span!(
                "record",
                job = J::NAME,
                message_id = message.message_id.as_str(),
                job_id = job_id.as_str(),
                attempt = message.receive_count.max(1),
                trace_id = $trace_id,
            )
        };
    }
    #[cfg(feature = "otel")]
    if crate::otel::layer_made() {
        return match incoming {
            Some(trace) => {
                let span = record_span!(trace.trace_id());
                // Exported as a child of the producer's span, in the same trace.
                crate::otel::join_trace(&span, Some(&trace));
                (span, trace)
            }
            None => {
                let span = record_span!(tracing::field::Empty);
                let trace = crate::otel::join_trace(&span, None).unwrap_or_else(TraceContext::new_root);
                span.record("trace_id", trace.trace_id());
                (span, trace)
            }
        };
    }
    let trace = incoming.unwrap_or_else(TraceContext::new_root);
    (record_span!(trace.trace_id()), trace)
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "a non-string panic payload".to_owned()
    }
}
