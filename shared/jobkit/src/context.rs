//! What a running job can see and do: its metadata, the time left, enqueueing other jobs, and
//! resumable steps (ActiveJob::Continuable) with checkpointed cursors.
//!
//! Invariant: a checkpoint is saved to the state store before the job is interrupted, so the
//! continuation (or a crash's redelivery) resumes from the last cursor, never from before it.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use serde::{Serialize, de::DeserializeOwned};

use crate::{
    clock::SharedClock,
    enqueue::Enqueuer,
    error::{ErrorKind, JobError},
    keys::{kind, state_key},
    message::{Continuation, Metadata},
    ports::StateStore,
    shutdown::Shutdown,
};

/// How long a step checkpoint is kept after the last write.
const CHECKPOINT_TTL: chrono::Duration = chrono::Duration::days(7);

/// The kind of the error `checkpoint` returns to stop a job that must continue later. The runner
/// turns it into a continuation, never into a failure.
pub const INTERRUPTED: ErrorKind = ErrorKind::new_static("interrupted");

/// The running job's view of the world.
#[derive(Debug)]
pub struct JobContext {
    meta: Metadata,
    deadline: DateTime<Utc>,
    continue_within: Duration,
    clock: SharedClock,
    enqueuer: Arc<Enqueuer>,
    store: Arc<dyn StateStore>,
    shutdown: Shutdown,
    job: &'static str,
    pub(crate) continuation: Continuation,
    pub(crate) checkpointed: bool,
    pub(crate) interrupted: bool,
}

impl JobContext {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        job: &'static str,
        meta: Metadata,
        deadline: DateTime<Utc>,
        continue_within: Duration,
        clock: SharedClock,
        enqueuer: Arc<Enqueuer>,
        store: Arc<dyn StateStore>,
        shutdown: Shutdown,
        continuation: Continuation,
    ) -> Self {
        Self {
            meta,
            deadline,
            continue_within,
            clock,
            enqueuer,
            store,
            shutdown,
            job,
            checkpointed: false,
            interrupted: false,
            continuation,
        }
    }

    /// Gives the metadata back when the execution is over.
    pub(crate) fn into_meta(self) -> Metadata {
        self.meta
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

    /// True when `step` finished in an earlier invocation.
    pub fn step_done(&self, step: &str) -> bool {
        self.continuation.completed.iter().any(|s| s == step)
    }

    /// The cursor saved for `step`, if the step was interrupted before.
    pub fn cursor<T: DeserializeOwned>(&self, step: &str) -> Option<T> {
        match &self.continuation.current {
            Some((name, cursor)) if name == step => serde_json::from_value(cursor.clone()).ok(),
            _ => None,
        }
    }

    /// How many times this job has continued in a new invocation.
    pub fn resumptions(&self) -> u32 {
        self.continuation.resumptions
    }

    /// Saves `cursor` as the progress of `step`. When the deadline is near (or the worker is
    /// shutting down) it returns an `interrupted` error: propagate it with `?` and the runner
    /// re-enqueues the job, which resumes at this cursor.
    ///
    /// # Errors
    /// The `interrupted` error described above, or a store failure (retryable).
    pub async fn checkpoint<T: Serialize>(&mut self, step: &str, cursor: &T) -> Result<(), JobError> {
        let cursor = serde_json::to_value(cursor).map_err(|e| {
            JobError::permanent(ErrorKind::UNKNOWN, format!("cursor does not serialise: {e}"))
        })?;
        self.continuation.current = Some((step.to_owned(), cursor));
        self.save().await?;
        if self.should_continue_later() {
            self.interrupted = true;
            return Err(JobError::retryable(INTERRUPTED, format!("continuing later from step {step}")));
        }
        Ok(())
    }

    /// Marks `step` finished; a continuation skips it.
    ///
    /// # Errors
    /// A store failure (retryable).
    pub async fn complete_step(&mut self, step: &str) -> Result<(), JobError> {
        if !self.step_done(step) {
            self.continuation.completed.push(step.to_owned());
        }
        if matches!(&self.continuation.current, Some((name, _)) if name == step) {
            self.continuation.current = None;
        }
        self.save().await
    }

    async fn save(&mut self) -> Result<(), JobError> {
        let value = serde_json::to_string(&self.continuation).map_err(|e| {
            JobError::permanent(ErrorKind::UNKNOWN, format!("continuation does not serialise: {e}"))
        })?;
        let key = checkpoint_key(self.job, self.meta.job_id.as_str());
        self.store.put(&key, &value, self.clock.now() + CHECKPOINT_TTL).await?;
        self.checkpointed = true;
        Ok(())
    }
}

/// The state-store key of a job's step checkpoint.
pub(crate) fn checkpoint_key(job: &str, job_id: &str) -> String {
    state_key(job, kind::STEPS, job_id)
}
