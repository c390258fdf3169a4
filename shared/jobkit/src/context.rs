//! What a running job can see and do: its metadata, the time left, enqueueing other jobs, and
//! resumable steps (ActiveJob::Continuable) with checkpointed cursors.
//!
//! Invariant: a checkpoint is saved to the run's record before the job is interrupted, so the
//! continuation (or a crash's redelivery) resumes from the last cursor, never from before it;
//! a checkpoint is written only while this execution holds the run.

use std::{
    sync::{
        Arc,
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
    runs::{Checkpoint, Run, RunWriteError},
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
}

/// Where a context's execution runs: its deadline and how near it a step job continues.
#[derive(Debug, Clone)]
pub(crate) struct Budget {
    pub(crate) deadline: DateTime<Utc>,
    pub(crate) continue_within: Duration,
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
            clock,
            enqueuer,
            shutdown,
            run,
            interrupted: false,
            lost: false,
            steps_seen: Vec::new(),
            step_finished_here: false,
            saving: Arc::default(),
        }
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

    pub(crate) fn checkpoint_state(&self) -> &Checkpoint {
        &self.run.record().checkpoint
    }

    /// How many times this run has continued in a new invocation.
    pub fn resumptions(&self) -> u32 {
        self.run.record().resumptions
    }

    /// Interrupts the job when it should continue later: the runner turns the error into a
    /// continuation. `at` says where, for the log.
    pub(crate) fn interrupt_if_due(&mut self, at: impl FnOnce() -> String) -> Result<(), JobError> {
        if !self.should_continue_later() {
            return Ok(());
        }
        self.interrupted = true;
        Err(JobError::retryable(INTERRUPTED, at()))
    }

    /// Saves the run's new checkpoint; a run taken over by another delivery stops the job.
    pub(crate) async fn save(&mut self, checkpoint: Checkpoint) -> Result<(), JobError> {
        self.saving.store(true, Ordering::SeqCst);
        let saved = self.run.save_checkpoint(checkpoint, self.clock.now()).await;
        self.saving.store(false, Ordering::SeqCst);
        match saved {
            Ok(()) => Ok(()),
            Err(RunWriteError::Lost) => {
                self.lost = true;
                Err(JobError::retryable(RUN_LOST, "another delivery took this run over"))
            }
            Err(RunWriteError::Port(e)) => Err(e.into()),
        }
    }
}
