//! What a running job can see and do: its metadata, the time left, enqueueing other jobs,
//! resumable steps (ActiveJob::Continuable) with checkpointed cursors, and setting aside a record
//! it cannot process ([`crate::set_aside`]).
//!
//! Invariants: a checkpoint is saved to the run's record before the job is interrupted, so the
//! continuation resumes from the last cursor, never from before it; a checkpoint is written
//! only while this execution holds the run. Checkpoints are written at most every
//! [`crate::runner::RunnerConfig::checkpoint_every`]; the last one is in every write of the run
//! (a retry's, a continuation's, the DLQ's), so only a crash resumes from an older cursor.

use std::{
    fmt,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use chrono::{DateTime, Utc};

use crate::{
    clock::SharedClock,
    enqueue::Enqueuer,
    error::{ErrorKind, JobError},
    message::Metadata,
    notify::{SetAsideNotice, SetAsideReport},
    redact::redact,
    runs::{Checkpoint, Run, RunWriteError},
    set_aside::{Reports, SetAside},
    shutdown::Shutdown,
};

/// The kind of the error `checkpoint` returns to stop a job that must continue later. The runner
/// turns it into a continuation, never into a failure.
pub const INTERRUPTED: ErrorKind = ErrorKind::new_static("interrupted");

/// The kind of the error a checkpoint returns when another delivery took the run over (this
/// execution outlived its invocation): the runner hands the record back instead of failing it.
pub(crate) const RUN_LOST: ErrorKind = ErrorKind::new_static("run_lost");

/// The running job's view of the world.
#[derive(Debug)]
pub struct JobContext {
    meta: Metadata,
    deadline: DateTime<Utc>,
    continue_within: Duration,
    /// At most how often a checkpoint is written (see `save`).
    checkpoint_every: Duration,
    /// When this execution last wrote a checkpoint (at first: when it started).
    last_written: DateTime<Utc>,
    /// True while the run's record in memory holds a checkpoint not yet written.
    unwritten: bool,
    clock: SharedClock,
    enqueuer: Arc<Enqueuer>,
    shutdown: Shutdown,
    pub(crate) run: Run,
    pub(crate) interrupted: bool,
    pub(crate) lost: bool,
    /// The steps this execution reached, to refuse a name used twice.
    pub(crate) steps_seen: Vec<String>,
    /// True once a step finished in this execution: the next one may wait for a new one.
    pub(crate) step_finished_here: bool,
    /// True while a checkpoint is being written: the runner lets that write finish rather than
    /// cut the job off between a step's effect and its record.
    saving: Arc<AtomicBool>,
    /// Where records set aside are emailed; `None` (only logged and counted) outside a runner.
    reports: Option<Reports>,
    /// The records this execution set aside, their reasons redacted: the runner counts them.
    /// Behind a lock because a job sets records aside through `&self` (from inside a step,
    /// whose [`crate::Step::context`] is shared); never held across an await.
    set_aside: Mutex<Vec<SetAside>>,
}

/// Where a context's execution runs: its deadline and how near it a step job continues.
#[derive(Debug, Clone)]
pub(crate) struct Budget {
    pub(crate) deadline: DateTime<Utc>,
    pub(crate) continue_within: Duration,
    pub(crate) checkpoint_every: Duration,
}

impl JobContext {
    pub(crate) fn new(
        meta: Metadata,
        budget: Budget,
        clock: SharedClock,
        enqueuer: Arc<Enqueuer>,
        shutdown: Shutdown,
        run: Run,
    ) -> Self {
        Self {
            meta,
            deadline: budget.deadline,
            continue_within: budget.continue_within,
            checkpoint_every: budget.checkpoint_every,
            last_written: clock.now(),
            unwritten: false,
            clock,
            enqueuer,
            shutdown,
            run,
            interrupted: false,
            lost: false,
            steps_seen: Vec::new(),
            step_finished_here: false,
            saving: Arc::default(),
            reports: None,
            set_aside: Mutex::default(),
        }
    }

    /// The context, reporting the records the job sets aside through `reports`.
    pub(crate) fn with_reports(mut self, reports: Reports) -> Self {
        self.reports = Some(reports);
        self
    }

    /// The records this execution set aside, in the order it set them aside.
    pub(crate) fn take_set_aside(&mut self) -> Vec<SetAside> {
        std::mem::take(self.set_aside.get_mut().unwrap_or_else(|p| p.into_inner()))
    }

    /// A flag that is true while a checkpoint is being written.
    pub(crate) fn saving(&self) -> Arc<AtomicBool> {
        self.saving.clone()
    }

    /// Gives the metadata and the run back when the execution is over.
    pub(crate) fn into_parts(self) -> (Metadata, Run) {
        (self.meta, self.run)
    }

    /// The record's metadata (job id, attempt, tick, ...).
    pub fn meta(&self) -> &Metadata {
        &self.meta
    }

    /// Enqueues other jobs (or this one again).
    pub fn enqueuer(&self) -> &Enqueuer {
        &self.enqueuer
    }

    /// The current time of the runner's clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Time left before this execution must stop.
    pub fn remaining(&self) -> Duration {
        (self.deadline - self.clock.now()).to_std().unwrap_or(Duration::ZERO)
    }

    /// True when the job should checkpoint and continue in a new invocation: the deadline is
    /// near, or the worker is shutting down.
    pub fn should_continue_later(&self) -> bool {
        self.shutdown.requested() || self.remaining() <= self.continue_within
    }

    /// Sets aside record `record_id`, which the job cannot process, and lets the job go on
    /// without it: one bad record must not fail the run (and, when the next run meets it first,
    /// every run after it). The job's part is to leave the record out of the next runs' work
    /// (mark it) where it can; jobkit's is to report it:
    ///
    /// - logged at warn, with the job, the job id, `record_id` and `reason` (redacted);
    /// - counted in the batch's `set_aside` metric (its EMF line), and listed in the record's
    ///   [`RecordOutcome::set_aside`](crate::runner::RecordOutcome::set_aside);
    /// - emailed to the operators once per (job, `record_id`): set aside again by a later run,
    ///   it is not emailed again for [`SET_ASIDE_REPORTED_FOR`](crate::set_aside::SET_ASIDE_REPORTED_FOR)
    ///   (and past [`MAX_SET_ASIDE_EMAILS`](crate::set_aside::MAX_SET_ASIDE_EMAILS) records of
    ///   the job in an hour, one email says so instead of one each).
    ///
    /// `record_id` is an id, never personal data: it is logged and mailed as it is. Setting the
    /// same record aside twice in one execution counts it once. Never fails: the email is
    /// best effort, within the time the execution has left, and a failure to send it is logged.
    ///
    /// ```
    /// # use jobkit::{JobContext, JobError, ErrorKind};
    /// # struct Cart { id: String, lines: usize }
    /// async fn clean(carts: Vec<Cart>, ctx: &JobContext) -> Result<u32, JobError> {
    ///     let mut cleaned = 0;
    ///     for cart in carts {
    ///         if cart.lines > 99 {
    ///             ctx.set_aside(&cart.id, format_args!("{} lines: more than one transaction takes", cart.lines)).await;
    ///             continue;
    ///         }
    ///         cleaned += 1;
    ///     }
    ///     Ok(cleaned)
    /// }
    /// ```
    pub async fn set_aside(&self, record_id: &str, reason: impl fmt::Display) {
        let reason = redact(&reason.to_string());
        let job =
            self.reports.as_ref().map_or_else(|| self.meta.job.as_deref().unwrap_or_default(), |r| r.job);
        let job_id = self.meta.job_id.as_str();
        {
            let mut set_aside = self.set_aside.lock().unwrap_or_else(|p| p.into_inner());
            if set_aside.iter().any(|r| r.id == record_id) {
                tracing::debug!(job, job_id, record_id, "record already set aside in this execution");
                return;
            }
            set_aside.push(SetAside { id: record_id.to_owned(), reason: reason.clone() });
        }
        tracing::warn!(job, job_id, record_id, reason = %reason, "record set aside");
        let Some(Reports { job, notifier: Some(notifier), store }) = &self.reports else { return };
        let report = SetAsideReport {
            job,
            job_id,
            message_id: &self.meta.message_id,
            attempt: self.meta.attempt,
            record_id,
            reason: &reason,
        };
        // Within the execution's own time: a slow mail service must not make the job overrun.
        let notice = notifier.notify_set_aside(store.as_ref(), &report, self.now());
        match tokio::time::timeout(self.remaining(), notice).await {
            Ok(Ok(SetAsideNotice::Sent)) => tracing::debug!(record_id, "set-aside record emailed"),
            Ok(Ok(SetAsideNotice::AlreadyReported)) => {
                tracing::debug!(record_id, "set-aside record emailed before: not again");
            }
            Ok(Ok(SetAsideNotice::FloodReported | SetAsideNotice::Suppressed)) => {
                tracing::debug!(record_id, "too many records set aside this hour: not emailed one by one");
            }
            Ok(Err(e)) => tracing::warn!(record_id, error = %e, "could not email the set-aside record"),
            Err(_) => tracing::warn!(record_id, "no time left to email the set-aside record"),
        }
    }

    pub(crate) fn checkpoint_state(&self) -> &Checkpoint {
        &self.run.record().checkpoint
    }

    /// How many times this run has continued in a new invocation.
    pub fn resumptions(&self) -> u32 {
        self.run.record().resumptions
    }

    /// Interrupts the job when it should continue later: the runner turns the error into a
    /// continuation. A checkpoint not yet written is written first, so the continuation's
    /// record holds it even if suspending the run then fails. `at` says where, for the log.
    pub(crate) async fn interrupt_if_due(&mut self, at: impl FnOnce() -> String) -> Result<(), JobError> {
        if !self.should_continue_later() {
            return Ok(());
        }
        if self.unwritten {
            let checkpoint = self.checkpoint_state().clone();
            self.write(checkpoint).await?;
        }
        self.interrupted = true;
        Err(JobError::retryable(INTERRUPTED, at()))
    }

    /// Saves the run's new checkpoint: written when the job is to be interrupted (it must be
    /// there for the continuation) or the last write is `checkpoint_every` old, else kept in
    /// the run's record in memory, which the run's next write carries and its completion
    /// drops (a step that finishes within seconds writes nothing). A run taken over by another
    /// delivery stops the job.
    pub(crate) async fn save(&mut self, checkpoint: Checkpoint) -> Result<(), JobError> {
        let now = self.clock.now();
        let due = chrono::Duration::from_std(self.checkpoint_every).unwrap_or(chrono::Duration::MAX);
        if !self.should_continue_later() && now - self.last_written < due {
            self.run.keep_checkpoint(checkpoint);
            self.unwritten = true;
            return Ok(());
        }
        self.write(checkpoint).await
    }

    /// Writes the run's checkpoint now.
    async fn write(&mut self, checkpoint: Checkpoint) -> Result<(), JobError> {
        let now = self.clock.now();
        self.saving.store(true, Ordering::SeqCst);
        let saved = self.run.save_checkpoint(checkpoint, now).await;
        self.saving.store(false, Ordering::SeqCst);
        self.last_written = now;
        match saved {
            Ok(()) => {
                self.unwritten = false;
                Ok(())
            }
            Err(RunWriteError::Lost) => {
                self.lost = true;
                Err(JobError::retryable(RUN_LOST, "another delivery took this run over"))
            }
            Err(RunWriteError::Port(e)) => Err(e.into()),
        }
    }
}
