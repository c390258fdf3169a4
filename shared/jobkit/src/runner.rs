//! The batch runner: one SQS batch in, one verdict per record out.
//!
//! Per record: decode, hop if not yet due, check the deadline, count the attempt, parse the
//! arguments, take the idempotency key, perform (panic caught, timeout enforced), then classify:
//! retry = `ChangeMessageVisibility` to the backoff + a batch item failure; exhausted or
//! discarded = a copy in the DLQ with the error in its attributes, then the record is let go.
//!
//! Invariants: a record is acknowledged (deleted) only once its effect is done, recorded as a
//! duplicate, re-sent (hop, continuation) or safely in the DLQ; anything else comes back. A panic
//! fails its record only. FIFO groups run in order, and a group stops at its first unfinished
//! record.

use std::{
    collections::{BTreeMap, HashMap},
    panic::AssertUnwindSafe,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use chrono::{DateTime, Utc};
use futures::{FutureExt, StreamExt};
use tokio::sync::watch;
use tracing::{Instrument, info_span};

use crate::{
    attempts::{self, JobHistory},
    clock::SharedClock,
    context::{JobContext, checkpoint_key},
    enqueue::{Enqueuer, QueueRoutes, hop_delay, payload_hash},
    error::{ErrorKind, JobError},
    idempotency::{Claim, IdempotencyKey},
    job::Job,
    message::{ArgsJson, Continuation, Envelope, Metadata, OutgoingMessage, ReceivedMessage, attr, decode},
    notify::{FailureEvent, FailureReport, Notifier},
    policy::Decision,
    ports::{Queue, StateStore},
    redact::redact,
    shutdown::Shutdown,
    telemetry::{BatchCounts, MetricsSink},
};

/// SQS allows at most 10 message attributes per message.
const MAX_ATTRIBUTES: usize = 10;
/// DLQ error messages are cut to this many characters (attributes count toward the 1 MiB limit).
const MAX_ERROR_MESSAGE: usize = 1000;

/// The adapters a runner works with, built once per process.
#[derive(Debug, Clone)]
pub struct Runtime {
    /// The queue port.
    pub queue: Arc<dyn Queue>,
    /// The idempotency/state store.
    pub store: Arc<dyn StateStore>,
    /// The clock.
    pub clock: SharedClock,
    /// Error emails, when configured.
    pub notifier: Option<Notifier>,
    /// EMF metric lines, when wanted.
    pub metrics: Option<MetricsSink>,
    /// Where jobs enqueued from jobs go.
    pub routes: QueueRoutes,
}

impl Runtime {
    /// An enqueuer on this runtime's ports.
    pub fn enqueuer(&self) -> Enqueuer {
        Enqueuer::new(self.queue.clone(), self.store.clone(), self.clock.clone(), self.routes.clone())
    }
}

/// Where the runner's records come from and go, and how hard it works.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// The queue the records came from (to re-send hops and continuations).
    pub queue: String,
    /// The job's DLQ.
    pub dead_letter_queue: String,
    /// Records run at once within a batch. Defaults to 8.
    pub concurrency: usize,
    /// A resumable job continues in a new invocation when this little time is left. Defaults to 10 s.
    pub continue_within: Duration,
    /// Kept free before the Lambda deadline to report the batch. Defaults to 1 s.
    pub deadline_margin: Duration,
}

impl RunnerConfig {
    /// A config for `queue` and its DLQ with the defaults.
    pub fn new(queue: impl Into<String>, dead_letter_queue: impl Into<String>) -> Self {
        Self {
            queue: queue.into(),
            dead_letter_queue: dead_letter_queue.into(),
            concurrency: 8,
            continue_within: Duration::from_secs(10),
            deadline_margin: Duration::from_secs(1),
        }
    }
}

/// Why a record went to the DLQ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DlqReason {
    /// The policy discarded it (or it could never run: bad arguments).
    Discarded,
    /// It ran out of attempts.
    Exhausted,
}

impl DlqReason {
    fn as_str(self) -> &'static str {
        match self {
            Self::Discarded => "discarded",
            Self::Exhausted => "exhausted",
        }
    }
}

/// What happened to one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordStatus {
    /// It ran and succeeded.
    Succeeded,
    /// A duplicate of a completed job: acknowledged without running.
    Duplicate,
    /// Not yet due: re-sent with the remaining delay.
    Hopped,
    /// Interrupted near the deadline: re-sent to resume from its checkpoint.
    Continued,
    /// Failed; comes back after this wait.
    Retrying(Duration),
    /// In the DLQ with its error.
    DeadLettered(DlqReason, ErrorKind),
    /// Not started (the deadline was too near); comes back at once.
    ReturnedUnstarted,
    /// Another execution holds its idempotency key; comes back later.
    InProgressElsewhere,
    /// Could not be handled (a port failed); comes back after the queue's visibility timeout.
    Unhandled(String),
}

impl RecordStatus {
    /// True when the record is finished with and may be deleted from its queue.
    pub fn is_done(&self) -> bool {
        matches!(
            self,
            Self::Succeeded | Self::Duplicate | Self::Hopped | Self::Continued | Self::DeadLettered(..)
        )
    }
}

/// One record's verdict.
#[derive(Debug, Clone)]
pub struct RecordOutcome {
    /// The queue's id of the message.
    pub message_id: String,
    /// Its receipt handle.
    pub receipt_handle: String,
    /// What happened.
    pub status: RecordStatus,
}

/// A batch's verdicts, in the order of the input.
#[derive(Debug, Clone, Default)]
pub struct BatchOutcome {
    /// One per record.
    pub records: Vec<RecordOutcome>,
    /// The totals.
    pub counts: BatchCounts,
}

impl BatchOutcome {
    /// The message ids to report as `batchItemFailures`.
    pub fn failures(&self) -> impl Iterator<Item = &str> {
        self.records.iter().filter(|r| !r.status.is_done()).map(|r| r.message_id.as_str())
    }
}

/// Runs batches of one job.
#[derive(Debug)]
pub struct BatchRunner<J: Job> {
    job: Arc<J>,
    runtime: Runtime,
    config: RunnerConfig,
    enqueuer: Arc<Enqueuer>,
    /// Idempotency keys this runner holds right now, each with a channel that closes when the
    /// record holding it is done: a twin in the same batch waits for that instead of coming back
    /// when the key's in-progress window ends.
    held_keys: Arc<Mutex<HashMap<String, watch::Receiver<()>>>>,
    /// The worker's stop request: records not started are handed back, steps stop at their
    /// next checkpoint.
    shutdown: Shutdown,
}

/// A key held by this runner; dropping it (the record is done) wakes the twins waiting on it.
struct HeldKey {
    id: String,
    held_keys: Arc<Mutex<HashMap<String, watch::Receiver<()>>>>,
    _done: watch::Sender<()>,
}

impl Drop for HeldKey {
    fn drop(&mut self) {
        self.held_keys.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.id);
    }
}

/// What one execution produced.
struct Execution {
    result: Result<(), JobError>,
    meta: Metadata,
    interrupted: bool,
    continuation: Continuation,
    checkpointed: bool,
}

impl<J: Job> BatchRunner<J> {
    /// A runner of `job`.
    pub fn new(job: J, runtime: Runtime, config: RunnerConfig) -> Self {
        let enqueuer = Arc::new(runtime.enqueuer());
        Self {
            job: Arc::new(job),
            runtime,
            config,
            enqueuer,
            held_keys: Arc::default(),
            shutdown: Shutdown::default(),
        }
    }

    /// The runner, stopping early once `shutdown` is requested (a worker's Ctrl-C or TERM).
    #[must_use]
    pub fn with_shutdown(mut self, shutdown: Shutdown) -> Self {
        self.shutdown = shutdown;
        self
    }

    /// The job.
    pub fn job(&self) -> &J {
        &self.job
    }

    /// The runner's configuration.
    pub fn config(&self) -> &RunnerConfig {
        &self.config
    }

    /// Handles a Lambda SQS event; records to retry are reported as batch item failures.
    pub async fn handle_sqs_event(&self, event: SqsEvent, deadline: DateTime<Utc>) -> SqsBatchResponse {
        let messages = event.records.into_iter().map(from_sqs_message).collect();
        let outcome = self.process(messages, deadline).await;
        let mut response = SqsBatchResponse::default();
        for id in outcome.failures() {
            response.add_failure(id);
        }
        response
    }

    /// Runs a batch of received messages before `deadline`.
    pub async fn process(&self, messages: Vec<ReceivedMessage>, deadline: DateTime<Utc>) -> BatchOutcome {
        let count = messages.len();
        let mut slots: Vec<Option<RecordOutcome>> = vec![None; count];
        let groups = group_in_order(messages);
        let mut results = futures::stream::iter(groups)
            .map(|group| self.run_group(group, deadline))
            .buffer_unordered(self.config.concurrency.max(1));
        let mut counts = BatchCounts::default();
        while let Some(group) = results.next().await {
            for (index, outcome, timing) in group {
                record_counts(&mut counts, &outcome.status, timing);
                slots[index] = Some(outcome);
            }
        }
        if let Some(metrics) = &self.runtime.metrics {
            metrics.emit(J::NAME, &counts, self.runtime.clock.now().timestamp_millis());
        }
        BatchOutcome { records: slots.into_iter().flatten().collect(), counts }
    }

    async fn run_group(
        &self,
        group: Vec<(usize, ReceivedMessage)>,
        deadline: DateTime<Utc>,
    ) -> Vec<(usize, RecordOutcome, Timing)> {
        let mut out = Vec::with_capacity(group.len());
        let mut blocked = false;
        for (index, message) in group {
            let (status, timing) = if blocked {
                // FIFO: a later record of a group must not overtake an unfinished earlier one.
                (self.return_unstarted(&message, None).await, Timing::default())
            } else {
                Box::pin(self.handle(&message, deadline)).await
            };
            blocked |= message.group_id.is_some() && !status.is_done();
            let outcome = RecordOutcome {
                message_id: message.message_id,
                receipt_handle: message.receipt_handle,
                status,
            };
            out.push((index, outcome, timing));
        }
        out
    }

    async fn handle(&self, message: &ReceivedMessage, deadline: DateTime<Utc>) -> (RecordStatus, Timing) {
        // The span's fields are known before decoding, so they are formatted once, at creation.
        let job_id =
            message.attributes.get(attr::JOB_ID).filter(|id| !id.is_empty()).unwrap_or(&message.message_id);
        let span = info_span!(
            "record",
            job = J::NAME,
            message_id = message.message_id.as_str(),
            job_id = job_id.as_str(),
            attempt = message.receive_count.max(1),
        );
        async {
            let mut timing = Timing::default();
            let status = self.handle_in_span(message, deadline, &mut timing).await;
            // A success is the common case: logged at debug so that a busy queue's logs (and
            // CloudWatch's bill) carry what needs a look; everything else is logged at info.
            if matches!(status, RecordStatus::Succeeded | RecordStatus::Hopped) {
                tracing::debug!(status = ?status, duration_ms = timing.duration_ms, "record handled");
            } else {
                tracing::info!(status = ?status, duration_ms = timing.duration_ms, "record handled");
            }
            (status, timing)
        }
        .instrument(span)
        .await
    }

    async fn handle_in_span(
        &self,
        message: &ReceivedMessage,
        deadline: DateTime<Utc>,
        timing: &mut Timing,
    ) -> RecordStatus {
        let now = self.runtime.clock.now();
        let envelope = match decode(message) {
            Ok(envelope) => envelope,
            Err(error) => return self.reject(message, &error).await,
        };
        let Envelope { args: args_json, mut meta } = envelope;
        if let Some(not_ready) = self.not_ready(message, &meta, now, deadline).await {
            return not_ready;
        }
        let history = match self.load_history(message, &meta, now).await {
            Ok(history) => history,
            Err(unhandled) => return unhandled,
        };
        meta.attempt =
            history.as_ref().map_or(message.receive_count.max(1), |h| h.attempt(message.receive_count));
        if meta.attempt != message.receive_count.max(1) {
            tracing::Span::current().record("attempt", meta.attempt);
        }
        let args: J::Args = match args_json.parse() {
            Ok(args) => args,
            Err(error) => return self.reject(message, &error).await,
        };
        let exec_deadline = self.execution_deadline(now, deadline);
        let key = self.job.idempotency_key(&args, &meta).map(|k| {
            IdempotencyKey::new(J::NAME, &k, payload_hash(&args_json.canonical()), meta.job_id.as_str())
        });
        let mut _held = None;
        if let Some(key) = &key {
            // A twin in this batch is waited for here, before the store is asked: taking the
            // in-process hold first means the twin that loses the race sees the holder, instead
            // of seeing the key in progress in the store and coming back only after the deadline.
            let held = self.hold_after_twins(key, deadline).await;
            // In progress until the invocation's own deadline, not the job's: past its timeout
            // the runner may still be recording the outcome, and a duplicate that took the key
            // then would apply the effect twice (the fault campaign on moto caught one). Only
            // after the deadline is the invocation surely gone (Lambda ends it).
            let claim = key.claim(self.runtime.store.as_ref(), deadline, self.runtime.clock.now()).await;
            match claim {
                Ok(Claim::Acquired) => _held = held,
                Ok(Claim::Completed) => return RecordStatus::Duplicate,
                // Back when the holder's window ends: one more receive, well inside
                // maxReceiveCount's margin (looking sooner and more often could exhaust it).
                Ok(Claim::InProgress(until)) => return self.return_unstarted(message, Some(until)).await,
                Ok(Claim::Mismatch) => {
                    let error = JobError::permanent(
                        ErrorKind::IDEMPOTENCY_KEY_REUSED,
                        "idempotency key already used with other arguments",
                    );
                    return self.finish_failure(message, &meta, history, error, &args_json).await;
                }
                Err(e) => return RecordStatus::Unhandled(format!("taking idempotency key: {e}")),
            }
        }
        let continuation = match self.load_continuation(message, &meta, now).await {
            Ok(c) => c,
            Err(status) => {
                self.release(key.as_ref()).await;
                return status;
            }
        };
        timing.queue_latency_ms = meta.enqueued_at.map(|t| (now - t).num_milliseconds().max(0) as f64);
        let started = Instant::now();
        let execution = self.execute(args, meta, (now, exec_deadline), continuation).await;
        timing.duration_ms = Some(started.elapsed().as_secs_f64() * 1000.0);
        self.settle(message, history, key, execution, &args_json).await
    }

    /// A record that must not start now: not yet due (it hops), too close to the deadline, or
    /// the worker is stopping.
    async fn not_ready(
        &self,
        message: &ReceivedMessage,
        meta: &Metadata,
        now: DateTime<Utc>,
        deadline: DateTime<Utc>,
    ) -> Option<RecordStatus> {
        if let Some(not_before) = meta.not_before.filter(|t| *t > now) {
            return Some(self.hop(message, not_before, now).await);
        }
        let needed = chrono::Duration::from_std(self.job.timeout() + self.config.deadline_margin)
            .unwrap_or(chrono::Duration::MAX);
        if deadline - now < needed || self.shutdown.requested() {
            return Some(self.return_unstarted(message, None).await);
        }
        None
    }

    /// The job's history, read only on a redelivery (a first delivery has none).
    async fn load_history(
        &self,
        message: &ReceivedMessage,
        meta: &Metadata,
        now: DateTime<Utc>,
    ) -> Result<Option<JobHistory>, RecordStatus> {
        if message.receive_count <= 1 {
            return Ok(None);
        }
        let key = attempts::history_key(J::NAME, meta.job_id.as_str());
        attempts::load(self.runtime.store.as_ref(), &key, now)
            .await
            .map_err(|e| RecordStatus::Unhandled(format!("loading history: {e}")))
    }

    /// Notes that this runner holds `key` until the returned guard is dropped, after waiting
    /// for any record of this runner (a twin in the same batch) that holds it now. `None` when
    /// the deadline passed while waiting: the claim then finds the key in the store's hands.
    async fn hold_after_twins(&self, key: &IdempotencyKey, deadline: DateTime<Utc>) -> Option<HeldKey> {
        loop {
            let mut twin = {
                let mut held = self.held_keys.lock().unwrap_or_else(|p| p.into_inner());
                match held.get(key.id()) {
                    Some(twin) => twin.clone(),
                    None => {
                        let (done, watching) = watch::channel(());
                        held.insert(key.id().to_owned(), watching);
                        return Some(HeldKey {
                            id: key.id().to_owned(),
                            held_keys: self.held_keys.clone(),
                            _done: done,
                        });
                    }
                }
            };
            let left = (deadline - self.runtime.clock.now()).to_std().unwrap_or_default();
            // The channel closes when the twin's guard is dropped; nothing is ever sent on it.
            if tokio::time::timeout(left, twin.changed()).await.is_err() {
                return None;
            }
        }
    }

    /// The job's own timeout, or the Lambda deadline less the margin, whichever comes first.
    fn execution_deadline(&self, now: DateTime<Utc>, deadline: DateTime<Utc>) -> DateTime<Utc> {
        let margin = chrono::Duration::from_std(self.config.deadline_margin).unwrap_or_default();
        let timeout = chrono::Duration::from_std(self.job.timeout()).unwrap_or(chrono::Duration::MAX);
        (deadline - margin).min(now + timeout)
    }

    async fn execute(
        &self,
        args: J::Args,
        meta: Metadata,
        (now, deadline): (DateTime<Utc>, DateTime<Utc>),
        continuation: Continuation,
    ) -> Execution {
        let clock = self.runtime.clock.clone();
        let allowed = (deadline - now).to_std().unwrap_or(Duration::ZERO);
        let mut ctx = JobContext::new(
            J::NAME,
            meta,
            deadline,
            self.config.continue_within,
            clock,
            self.enqueuer.clone(),
            self.runtime.store.clone(),
            self.shutdown.clone(),
            continuation,
        );
        // Boxed: a job's future can be large, and every enclosing future would otherwise carry (and move) it.
        let run = AssertUnwindSafe(Box::pin(self.job.perform(args, &mut ctx))).catch_unwind();
        let result = match tokio::time::timeout(allowed, run).await {
            Ok(Ok(result)) => result,
            Ok(Err(panic)) => {
                Err(JobError::retryable(ErrorKind::PANIC, format!("panicked: {}", panic_message(&panic))))
            }
            Err(_) => Err(JobError::retryable(ErrorKind::TIMEOUT, format!("ran longer than {allowed:?}"))),
        };
        let (interrupted, checkpointed) = (ctx.interrupted, ctx.checkpointed);
        let continuation = std::mem::take(&mut ctx.continuation);
        Execution { result, interrupted, continuation, checkpointed, meta: ctx.into_meta() }
    }

    async fn settle(
        &self,
        message: &ReceivedMessage,
        history: Option<JobHistory>,
        key: Option<IdempotencyKey>,
        execution: Execution,
        args_json: &ArgsJson<'_>,
    ) -> RecordStatus {
        let meta = &execution.meta;
        let store = self.runtime.store.as_ref();
        match execution.result {
            Ok(()) => {
                if let Some(key) = &key {
                    let now = self.runtime.clock.now();
                    let ttl = chrono::Duration::from_std(self.job.idempotency_ttl()).unwrap_or_default();
                    complete_key(key, store, now + ttl).await;
                }
                self.forget(meta, history.is_some(), execution.checkpointed || meta.continuation.is_some())
                    .await;
                RecordStatus::Succeeded
            }
            Err(_) if execution.interrupted => {
                self.release(key.as_ref()).await;
                self.continue_later(message, meta, execution.continuation.clone()).await
            }
            Err(error) => {
                self.release(key.as_ref()).await;
                self.finish_failure(message, meta, history, error, args_json).await
            }
        }
    }

    /// Classifies a failure by the policy: retry by visibility, or hand over to the DLQ.
    async fn finish_failure(
        &self,
        message: &ReceivedMessage,
        meta: &Metadata,
        history: Option<JobHistory>,
        error: JobError,
        args_json: &ArgsJson<'_>,
    ) -> RecordStatus {
        let now = self.runtime.clock.now();
        let mut history = history.unwrap_or_default();
        history.failures += 1;
        history.first_failed_at.get_or_insert(now);
        history.last_failed_at = Some(now);
        let decision = self.job.retry_policy().decide(&error, meta.attempt);
        tracing::warn!(error_kind = %error.kind(), error = %redact(error.message()), ?decision, "job failed");
        let history_key = attempts::history_key(J::NAME, meta.job_id.as_str());
        let store = self.runtime.store.as_ref();
        let (status, event) = match decision {
            Decision::Retry(delay) => {
                if let Err(e) = attempts::save(store, &history_key, &history, now).await {
                    tracing::warn!(error = %e, "could not record the failure");
                }
                if let Err(e) = self
                    .runtime
                    .queue
                    .change_visibility(&self.config.queue, &message.receipt_handle, delay)
                    .await
                {
                    tracing::warn!(error = %e, "could not set the retry delay; the queue's visibility timeout applies");
                }
                (RecordStatus::Retrying(delay), FailureEvent::Retrying)
            }
            Decision::Exhausted | Decision::Discard => {
                let reason =
                    if decision == Decision::Exhausted { DlqReason::Exhausted } else { DlqReason::Discarded };
                let status = self.dead_letter(message, meta.attempt, &history, &error, reason).await;
                if status.is_done() {
                    let _ = store.delete(&history_key).await;
                } else if let Err(e) = attempts::save(store, &history_key, &history, now).await {
                    tracing::warn!(error = %e, "could not record the failure");
                }
                (status, FailureEvent::DeadLettered)
            }
        };
        self.notify(meta, &message.message_id, &error, event, args_json).await;
        status
    }

    /// A record that can never run (undecodable, bad arguments): straight to the DLQ.
    async fn reject(&self, message: &ReceivedMessage, error: &JobError) -> RecordStatus {
        tracing::warn!(error = %redact(error.message()), "record rejected");
        let now = self.runtime.clock.now();
        let history =
            JobHistory { failures: 1, first_failed_at: Some(now), last_failed_at: Some(now), unstarted: 0 };
        self.dead_letter(message, message.receive_count.max(1), &history, error, DlqReason::Discarded).await
    }

    async fn dead_letter(
        &self,
        message: &ReceivedMessage,
        attempts: u32,
        history: &JobHistory,
        error: &JobError,
        reason: DlqReason,
    ) -> RecordStatus {
        let attributes = dlq_attributes(J::NAME, message, attempts, history, error, reason);
        let copy = OutgoingMessage {
            body: message.body.clone(),
            attributes,
            delay_seconds: 0,
            group_id: message.group_id.clone(),
            // FIFO DLQs need a deduplication id; the original id makes a repeated hand-off a no-op.
            dedup_id: message.group_id.as_ref().map(|_| message.message_id.clone()),
        };
        match self.runtime.queue.send(&self.config.dead_letter_queue, copy).await {
            Ok(_) => RecordStatus::DeadLettered(reason, error.kind().clone()),
            // The queue's own redrive (maxReceiveCount) is the safety net if this keeps failing.
            Err(e) => RecordStatus::Unhandled(format!("sending to the DLQ: {e}")),
        }
    }

    async fn hop(
        &self,
        message: &ReceivedMessage,
        not_before: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> RecordStatus {
        let again = OutgoingMessage {
            body: message.body.clone(),
            attributes: message.attributes.clone(),
            delay_seconds: hop_delay(not_before, now),
            group_id: message.group_id.clone(),
            dedup_id: fifo_dedup_id(message),
        };
        match self.runtime.queue.send(&self.config.queue, again).await {
            Ok(_) => RecordStatus::Hopped,
            Err(e) => RecordStatus::Unhandled(format!("re-sending a delayed job: {e}")),
        }
    }

    async fn continue_later(
        &self,
        message: &ReceivedMessage,
        meta: &Metadata,
        mut c: Continuation,
    ) -> RecordStatus {
        c.resumptions += 1;
        let mut attributes = message.attributes.clone();
        attributes.insert(attr::JOB_ID.into(), meta.job_id.to_string());
        attributes.insert(attr::JOB.into(), J::NAME.into());
        attributes.insert(attr::CONTINUATION.into(), serde_json::to_string(&c).unwrap_or_default());
        attributes.remove(attr::NOT_BEFORE);
        let again = OutgoingMessage {
            body: message.body.clone(),
            attributes,
            delay_seconds: 0,
            group_id: message.group_id.clone(),
            dedup_id: fifo_dedup_id(message),
        };
        match self.runtime.queue.send(&self.config.queue, again).await {
            Ok(_) => {
                tracing::info!(resumptions = c.resumptions, "job continues in a new invocation");
                RecordStatus::Continued
            }
            Err(e) => RecordStatus::Unhandled(format!("re-enqueueing the continuation: {e}")),
        }
    }

    /// Hands a record back without running it; `until` delays it (a duplicate in progress).
    async fn return_unstarted(
        &self,
        message: &ReceivedMessage,
        until: Option<DateTime<Utc>>,
    ) -> RecordStatus {
        let now = self.runtime.clock.now();
        let store = self.runtime.store.as_ref();
        if let Ok(envelope) = decode(message) {
            let key = attempts::history_key(J::NAME, envelope.meta.job_id.as_str());
            let mut history = attempts::load(store, &key, now).await.ok().flatten().unwrap_or_default();
            history.unstarted += 1;
            if let Err(e) = attempts::save(store, &key, &history, now).await {
                tracing::warn!(error = %e, "could not record an unstarted delivery");
            }
        }
        let wait = until.and_then(|t| (t - now).to_std().ok()).unwrap_or(Duration::ZERO);
        let wait = wait.max(if until.is_some() { Duration::from_secs(1) } else { Duration::ZERO });
        if let Err(e) =
            self.runtime.queue.change_visibility(&self.config.queue, &message.receipt_handle, wait).await
        {
            tracing::warn!(error = %e, "could not hand the record back early");
        }
        if until.is_some() { RecordStatus::InProgressElsewhere } else { RecordStatus::ReturnedUnstarted }
    }

    async fn load_continuation(
        &self,
        message: &ReceivedMessage,
        meta: &Metadata,
        now: DateTime<Utc>,
    ) -> Result<Continuation, RecordStatus> {
        let from_message = meta.continuation.clone().unwrap_or_default();
        // Only a redelivery or a continuation can have a newer checkpoint in the store.
        if message.receive_count <= 1 && meta.continuation.is_none() {
            return Ok(from_message);
        }
        let key = checkpoint_key(J::NAME, meta.job_id.as_str());
        match self.runtime.store.get(&key, now).await {
            Ok(Some(record)) => Ok(serde_json::from_str::<Continuation>(&record.value)
                .map(|stored| Continuation { resumptions: from_message.resumptions, ..stored })
                .unwrap_or(from_message)),
            Ok(None) => Ok(from_message),
            Err(e) => Err(RecordStatus::Unhandled(format!("loading the step checkpoint: {e}"))),
        }
    }

    async fn release(&self, key: Option<&IdempotencyKey>) {
        if let Some(key) = key {
            if let Err(e) = key.release(self.runtime.store.as_ref()).await {
                // The in-progress expiry frees it anyway.
                tracing::warn!(error = %e, "could not release the idempotency key");
            }
        }
    }

    /// Forgets a finished job's history and checkpoint.
    async fn forget(&self, meta: &Metadata, had_history: bool, had_checkpoint: bool) {
        let store = self.runtime.store.as_ref();
        if had_history {
            let _ = store.delete(&attempts::history_key(J::NAME, meta.job_id.as_str())).await;
        }
        if had_checkpoint {
            let _ = store.delete(&checkpoint_key(J::NAME, meta.job_id.as_str())).await;
        }
    }

    async fn notify(
        &self,
        meta: &Metadata,
        message_id: &str,
        error: &JobError,
        event: FailureEvent,
        args_json: &ArgsJson<'_>,
    ) {
        let Some(notifier) = &self.runtime.notifier else { return };
        let args = args_json.text();
        let report = FailureReport {
            job: J::NAME,
            job_id: meta.job_id.as_str(),
            message_id,
            attempt: meta.attempt,
            error,
            event,
            args: &args,
        };
        if let Err(e) = notifier.notify(self.runtime.store.as_ref(), &report, self.runtime.clock.now()).await
        {
            tracing::warn!(error = %e, "could not send the error email");
        }
    }
}

/// Execution time and queue latency of one record, for metrics.
#[derive(Debug, Default, Clone, Copy)]
struct Timing {
    duration_ms: Option<f64>,
    queue_latency_ms: Option<f64>,
}

fn record_counts(counts: &mut BatchCounts, status: &RecordStatus, timing: Timing) {
    match status {
        RecordStatus::Succeeded => counts.succeeded += 1,
        RecordStatus::Retrying(_) => counts.retried += 1,
        RecordStatus::DeadLettered(DlqReason::Exhausted, _) => counts.failed += 1,
        RecordStatus::DeadLettered(DlqReason::Discarded, _) => counts.discarded += 1,
        RecordStatus::Duplicate => counts.duplicates += 1,
        RecordStatus::ReturnedUnstarted | RecordStatus::InProgressElsewhere | RecordStatus::Unhandled(_) => {
            counts.returned += 1;
        }
        RecordStatus::Hopped | RecordStatus::Continued => {}
    }
    if let Some(d) = timing.duration_ms {
        counts.duration_ms_sum += d;
        counts.duration_ms_max = counts.duration_ms_max.max(d);
    }
    if let Some(l) = timing.queue_latency_ms {
        counts.queue_latency_ms_max = counts.queue_latency_ms_max.max(l);
    }
}

/// Splits a batch into groups that may run concurrently: one per FIFO message group (in
/// order), one per message otherwise. Each entry keeps its index in the batch.
fn group_in_order(messages: Vec<ReceivedMessage>) -> Vec<Vec<(usize, ReceivedMessage)>> {
    let mut groups: Vec<Vec<(usize, ReceivedMessage)>> = Vec::new();
    let mut by_group: BTreeMap<String, usize> = BTreeMap::new();
    for (index, message) in messages.into_iter().enumerate() {
        match message.group_id.clone() {
            Some(group) => match by_group.get(&group) {
                Some(&slot) => groups[slot].push((index, message)),
                None => {
                    by_group.insert(group, groups.len());
                    groups.push(vec![(index, message)]);
                }
            },
            None => groups.push(vec![(index, message)]),
        }
    }
    groups
}

/// The DLQ copy's attributes: who, what failed, how often, when; original attributes as room
/// allows (SQS takes 10 attributes, and attribute values may not be empty).
fn dlq_attributes(
    job: &str,
    message: &ReceivedMessage,
    attempts: u32,
    history: &JobHistory,
    error: &JobError,
    reason: DlqReason,
) -> BTreeMap<String, String> {
    let now_or = |t: Option<DateTime<Utc>>| t.unwrap_or_else(Utc::now).to_rfc3339();
    let job_id = message.attributes.get(attr::JOB_ID).cloned().unwrap_or_else(|| message.message_id.clone());
    let error_message: String = redact(error.message()).chars().take(MAX_ERROR_MESSAGE).collect();
    let mut attributes = BTreeMap::from([
        (attr::JOB.to_owned(), job.to_owned()),
        (attr::JOB_ID.to_owned(), job_id),
        (attr::ERROR_KIND.to_owned(), error.kind().to_string()),
        (attr::ERROR_MESSAGE.to_owned(), error_message),
        (attr::ATTEMPTS.to_owned(), attempts.to_string()),
        (attr::FIRST_FAILED_AT.to_owned(), now_or(history.first_failed_at)),
        (attr::LAST_FAILED_AT.to_owned(), now_or(history.last_failed_at)),
        (attr::ORIGINAL_MESSAGE_ID.to_owned(), message.message_id.clone()),
        (attr::DLQ_REASON.to_owned(), reason.as_str().to_owned()),
    ]);
    // Of the original attributes, these matter most for a redrive; the rest are dropped.
    for name in [attr::IDEMPOTENCY_KEY, attr::CONTINUATION, attr::ENQUEUED_AT, attr::TRACEPARENT] {
        if attributes.len() >= MAX_ATTRIBUTES {
            break;
        }
        if let Some(value) = message.attributes.get(name) {
            attributes.insert(name.to_owned(), value.clone());
        }
    }
    attributes.retain(|_, v| !v.is_empty());
    attributes
}

/// Tries of marking an idempotency key completed.
const COMPLETE_TRIES: u32 = 4;

/// Marks `key` completed, retrying a store that throttles or fails: a key left `IN_PROGRESS`
/// expires at the invocation's deadline, and a duplicate delivered after that would run the
/// job's effect a second time (the fault campaign found exactly that with one try).
async fn complete_key(key: &IdempotencyKey, store: &dyn StateStore, expires_at: DateTime<Utc>) {
    for attempt in 1..=COMPLETE_TRIES {
        match key.complete(store, expires_at).await {
            Ok(()) => return,
            Err(e) if attempt < COMPLETE_TRIES && e.is_transient() => {
                tracing::warn!(error = %e, attempt, "could not mark the idempotency key completed; trying again");
                tokio::time::sleep(Duration::from_millis(25 << attempt)).await;
            }
            Err(e) => {
                tracing::error!(error = %e, "could not mark the idempotency key completed: a duplicate delivered after its in-progress window would run again");
                return;
            }
        }
    }
}

/// A fresh deduplication id for a re-send on a FIFO queue (none on standard queues).
fn fifo_dedup_id(message: &ReceivedMessage) -> Option<String> {
    message.group_id.as_ref().map(|_| uuid::Uuid::new_v4().to_string())
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

/// Converts a Lambda SQS record to the runner's message; absent fields become defaults.
pub fn from_sqs_message(m: SqsMessage) -> ReceivedMessage {
    let receive_count = m.attributes.get("ApproximateReceiveCount").and_then(|c| c.parse().ok()).unwrap_or(1);
    let sent_at = m
        .attributes
        .get("SentTimestamp")
        .and_then(|t| t.parse::<i64>().ok())
        .and_then(DateTime::from_timestamp_millis);
    let group_id = m.attributes.get("MessageGroupId").cloned();
    let mut attributes = BTreeMap::new();
    let mut unreadable_attributes = Vec::new();
    for (name, value) in m.message_attributes {
        match (value.string_value, value.binary_value) {
            (Some(text), _) => {
                attributes.insert(name, text);
            }
            (None, Some(binary)) => match String::from_utf8(binary.0) {
                Ok(text) => {
                    attributes.insert(name, text);
                }
                Err(_) => unreadable_attributes.push(name),
            },
            (None, None) => {}
        }
    }
    ReceivedMessage {
        unreadable_attributes,
        message_id: m.message_id.unwrap_or_default(),
        receipt_handle: m.receipt_handle.unwrap_or_default(),
        body: m.body.unwrap_or_default(),
        attributes,
        receive_count,
        sent_at,
        group_id,
    }
}
