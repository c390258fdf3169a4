//! The batch runner: one SQS batch in, one verdict per record out.
//!
//! Per record (`record.rs`): decode, check the contract, hop if not yet due, check the deadline,
//! parse the arguments, enter the run (an exclusive run per idempotency key, after any twin of
//! this batch holding it), perform (panic caught, timeout enforced); then settle (`settle.rs`):
//! success completes the run, an interruption continues it in a new message, a failure retries
//! it by visibility or sends it to the DLQ with the error in one attribute.
//!
//! Invariants: a record is acknowledged (deleted) only once its effect is done, recorded as a
//! duplicate of a finished run, re-sent (hop, continuation) or safely in the DLQ; anything else
//! comes back. A panic fails its record only. FIFO groups run in order, and a group stops at its
//! first unfinished record. Nothing the runner does after an execution outlives the invocation's
//! deadline: every settle call is bounded by the time left.

mod limit;
mod members;
mod record;
mod settle;
mod twins;

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::{DateTime, Utc};
use futures::StreamExt;

use crate::{
    clock::SharedClock,
    enqueue::{DEFAULT_MAX_SCHEDULE_AHEAD, Enqueuer, QueueRoutes},
    error::{ErrorKind, PortResult},
    job::{Job, Lane},
    message::ReceivedMessage,
    notify::Notifier,
    ports::{Queue, StateStore},
    set_aside::SetAside,
    shutdown::Shutdown,
    telemetry::{BatchCounts, MetricsSink},
};

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

/// How often a step's checkpoints are written at most, by default: see
/// [`RunnerConfig::checkpoint_every`].
pub const DEFAULT_CHECKPOINT_EVERY: Duration = Duration::from_secs(5);

/// Where the runner's records come from and go, and how hard it works.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// The job's queue (its own lane's).
    pub queue: String,
    /// The queues of the job's other lanes ([`Job::OTHER_LANES`]). A record is settled on the
    /// queue it came from: retried by its visibility there, and hops and continuations re-sent
    /// there, so a run stays on its lane.
    pub lanes: Vec<(Lane, String)>,
    /// The job's DLQ.
    pub dead_letter_queue: String,
    /// Records run at once within a batch. Defaults to 8.
    pub concurrency: usize,
    /// A resumable job continues in a new invocation when this little time is left. Defaults to 10 s.
    pub continue_within: Duration,
    /// At most how often a step's checkpoints are written while it runs (Sidekiq's iterable
    /// jobs flush their state every 5 s too): one within this long of the last is kept in
    /// memory, and written with the run's next write (a retry's, a continuation's, the DLQ's)
    /// or dropped by its completion. A checkpoint that interrupts the job is always written.
    /// What a crash (the process killed) loses is at most this much of a step's progress: it
    /// resumes from the last checkpoint written. Defaults to 5 s; `Duration::ZERO` writes
    /// every checkpoint.
    pub checkpoint_every: Duration,
    /// Kept free before the Lambda deadline to settle the last records (DLQ copy, run record,
    /// email) and report the batch: an execution ends this long before it. Defaults to 1 s
    /// (settling measured at most a few hundred milliseconds on moto; see RELIABILITY.md).
    pub deadline_margin: Duration,
    /// A `not_before` further ahead than this is refused as invalid (it would hop every 15
    /// minutes for ever). Defaults to 365 days.
    pub max_schedule_ahead: Duration,
    /// A scheduled tick for a time further ahead than this is refused, so that no sender can
    /// claim a future tick's key before it fires. Defaults to 5 minutes (clock skew).
    pub max_tick_ahead: Duration,
    /// How soon a record over its job's concurrency limit comes back (at most; sooner when the
    /// slot holding it up expires sooner), plus up to half as much again at random so waiting
    /// records do not all return at once. Defaults to 10 s.
    pub limit_wait: Duration,
}

impl RunnerConfig {
    /// A config for `queue` and its DLQ with the defaults.
    pub fn new(queue: impl Into<String>, dead_letter_queue: impl Into<String>) -> Self {
        Self {
            queue: queue.into(),
            lanes: Vec::new(),
            dead_letter_queue: dead_letter_queue.into(),
            concurrency: 8,
            continue_within: Duration::from_secs(10),
            checkpoint_every: DEFAULT_CHECKPOINT_EVERY,
            deadline_margin: Duration::from_secs(1),
            max_schedule_ahead: DEFAULT_MAX_SCHEDULE_AHEAD,
            max_tick_ahead: Duration::from_secs(5 * 60),
            limit_wait: Duration::from_secs(10),
        }
    }

    /// The config with `queue` as the queue of the job's other lane `lane`.
    #[must_use]
    pub fn with_lane(mut self, lane: Lane, queue: impl Into<String>) -> Self {
        self.lanes.push((lane, queue.into()));
        self
    }

    /// Every queue the runner takes records from, each with its lane (`None`: the job's own).
    pub fn queues(&self) -> impl Iterator<Item = (Option<Lane>, &str)> {
        std::iter::once((None, self.queue.as_str()))
            .chain(self.lanes.iter().map(|(lane, queue)| (Some(*lane), queue.as_str())))
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
    /// The reason as the DLQ copy names it.
    pub fn as_str(self) -> &'static str {
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
    /// A duplicate of a finished run: acknowledged without running.
    Duplicate,
    /// Not yet due: re-sent with the remaining delay.
    Hopped,
    /// Interrupted near the deadline: re-sent to resume from its checkpoint.
    Continued,
    /// Over its concurrency limit: re-sent to come back a little later, no attempt spent.
    Limited,
    /// Cancelled by an operator: acknowledged without running.
    Cancelled,
    /// Failed; comes back after this wait.
    Retrying(Duration),
    /// In the DLQ with its error.
    DeadLettered(DlqReason, ErrorKind),
    /// Not started (the deadline was too near); comes back at once.
    ReturnedUnstarted,
    /// Another delivery holds its run (running, or waiting for its own message); comes back later.
    InProgressElsewhere,
    /// Could not be handled (a port failed); comes back after the queue's visibility timeout.
    Unhandled(String),
}

impl RecordStatus {
    /// The status's name, as an exported span's `status` gives it: `succeeded`, `retrying`,
    /// `dead_lettered`, ...
    pub fn name(&self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Duplicate => "duplicate",
            Self::Hopped => "hopped",
            Self::Continued => "continued",
            Self::Limited => "limited",
            Self::Cancelled => "cancelled",
            Self::Retrying(_) => "retrying",
            Self::DeadLettered(..) => "dead_lettered",
            Self::ReturnedUnstarted => "returned_unstarted",
            Self::InProgressElsewhere => "in_progress_elsewhere",
            Self::Unhandled(_) => "unhandled",
        }
    }

    /// True when the record is finished with and may be deleted from its queue.
    pub fn is_done(&self) -> bool {
        matches!(
            self,
            Self::Succeeded
                | Self::Duplicate
                | Self::Hopped
                | Self::Continued
                | Self::Limited
                | Self::Cancelled
                | Self::DeadLettered(..)
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
    /// The records its execution set aside ([`crate::JobContext::set_aside`]), their reasons
    /// redacted; counted in the batch's `set_aside` metric.
    pub set_aside: Vec<SetAside>,
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
    /// Runs this runner holds right now, by store key, each with a channel that closes when the
    /// record holding it is done: a twin in the same batch waits for that instead of coming
    /// back when the run's window ends.
    held: twins::HeldRuns,
    /// The worker's stop request: records not started are handed back, steps stop at their
    /// next checkpoint.
    shutdown: Shutdown,
}

impl<J: Job> BatchRunner<J> {
    /// A runner of `job`.
    pub fn new(job: J, runtime: Runtime, config: RunnerConfig) -> Self {
        let enqueuer = Arc::new(runtime.enqueuer().with_max_schedule_ahead(config.max_schedule_ahead));
        Self {
            job: Arc::new(job),
            runtime,
            config,
            enqueuer,
            held: Arc::new(Mutex::new(HashMap::new())),
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

    /// One turn of Lambda's event source mapping: receives up to `max` visible messages of the
    /// runner's queue (waiting up to `wait` for the first), runs them before `deadline`, and
    /// deletes what is done. The records that are not done come back by themselves; so do
    /// done ones whose delete failed (logged, as Lambda's mapping does), and the runner
    /// acknowledges those as duplicates. `jobctl dev`, the test harness, the fault campaign
    /// and the benchmarks all poll with this.
    ///
    /// # Errors
    /// The receive failing.
    pub async fn poll(
        &self,
        max: usize,
        wait: Duration,
        deadline: DateTime<Utc>,
    ) -> PortResult<BatchOutcome> {
        let queue = self.config.queue.clone();
        self.poll_queue(&queue, max, wait, deadline).await
    }

    /// [`Self::poll`] on `queue`, one of the runner's queues ([`RunnerConfig::queues`]): its
    /// own lane's or another's.
    ///
    /// # Errors
    /// The receive failing.
    pub async fn poll_queue(
        &self,
        queue_id: &str,
        max: usize,
        wait: Duration,
        deadline: DateTime<Utc>,
    ) -> PortResult<BatchOutcome> {
        let queue = self.runtime.queue.as_ref();
        let messages = queue.receive(queue_id, max, wait).await?;
        if messages.is_empty() {
            return Ok(BatchOutcome::default());
        }
        let outcome = self.process_from(queue_id, messages, deadline).await;
        let done: Vec<String> =
            outcome.records.iter().filter(|r| r.status.is_done()).map(|r| r.receipt_handle.clone()).collect();
        if let Err(e) = queue.delete_batch(queue_id, &done).await {
            tracing::warn!(error = %e, "could not delete the records that are done; they come back as duplicates");
        }
        Ok(outcome)
    }

    /// Runs a batch of messages received from the job's own queue before `deadline`.
    pub async fn process(&self, messages: Vec<ReceivedMessage>, deadline: DateTime<Utc>) -> BatchOutcome {
        let queue = self.config.queue.clone();
        self.process_from(&queue, messages, deadline).await
    }

    /// Runs a batch of messages received from `queue_id` (one of the runner's queues) before
    /// `deadline`; they are settled there.
    pub async fn process_from(
        &self,
        queue_id: &str,
        messages: Vec<ReceivedMessage>,
        deadline: DateTime<Utc>,
    ) -> BatchOutcome {
        let count = messages.len();
        let batch =
            record::Batch { deadline, received_at: self.runtime.clock.now(), queue: queue_id.to_owned() };
        let mut slots: Vec<Option<RecordOutcome>> = vec![None; count];
        let groups = group_in_order(messages);
        let mut results = futures::stream::iter(groups)
            .map(|group| self.run_group(group, &batch))
            .buffer_unordered(self.config.concurrency.max(1));
        let mut counts = BatchCounts::default();
        while let Some(group) = results.next().await {
            for (index, outcome, timing) in group {
                record_counts(&mut counts, &outcome, timing);
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
        batch: &record::Batch,
    ) -> Vec<(usize, RecordOutcome, Timing)> {
        let mut out = Vec::with_capacity(group.len());
        let mut blocked = false;
        for (index, message) in group {
            let (status, mut timing) = if blocked {
                // FIFO: a later record of a group must not overtake an unfinished earlier one.
                (self.return_unstarted(&message, None, batch).await, Timing::default())
            } else {
                Box::pin(self.handle(&message, batch)).await
            };
            blocked |= message.group_id.is_some() && !status.is_done();
            let outcome = RecordOutcome {
                message_id: message.message_id,
                receipt_handle: message.receipt_handle,
                status,
                set_aside: std::mem::take(&mut timing.set_aside),
            };
            out.push((index, outcome, timing));
        }
        out
    }
}

/// Execution time, queue latency and settling time of one record, for metrics, and the records
/// its execution set aside (for the record's outcome).
#[derive(Debug, Default, Clone)]
pub(crate) struct Timing {
    duration_ms: Option<f64>,
    queue_latency_ms: Option<f64>,
    settle_ms: Option<f64>,
    set_aside: Vec<SetAside>,
}

fn record_counts(counts: &mut BatchCounts, outcome: &RecordOutcome, timing: Timing) {
    counts.set_aside += outcome.set_aside.len() as u64;
    match &outcome.status {
        RecordStatus::Succeeded => counts.succeeded += 1,
        RecordStatus::Retrying(_) => counts.retried += 1,
        RecordStatus::DeadLettered(DlqReason::Exhausted, _) => counts.failed += 1,
        RecordStatus::DeadLettered(DlqReason::Discarded, _) => counts.discarded += 1,
        RecordStatus::Duplicate => counts.duplicates += 1,
        RecordStatus::Cancelled => counts.cancelled += 1,
        RecordStatus::ReturnedUnstarted | RecordStatus::InProgressElsewhere | RecordStatus::Unhandled(_) => {
            counts.returned += 1;
        }
        RecordStatus::Limited => counts.limited += 1,
        RecordStatus::Hopped | RecordStatus::Continued => {}
    }
    if let Some(d) = timing.duration_ms {
        counts.duration_ms_sum += d;
        counts.duration_ms_max = counts.duration_ms_max.max(d);
        counts.durations_ms.push(d);
    }
    if let Some(l) = timing.queue_latency_ms {
        counts.queue_latency_ms_max = counts.queue_latency_ms_max.max(l);
        counts.queue_latencies_ms.push(l);
    }
    if let Some(s) = timing.settle_ms {
        counts.settle_ms_max = counts.settle_ms_max.max(s);
        counts.settles_ms.push(s);
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
