//! Resumable steps (ActiveJob::Continuable): a job's work in named steps, each with a typed
//! cursor that jobkit saves, resumes and completes, so a job writes only what a step does.
//!
//! [`JobContext::step`] runs its body with a [`Step`] holding the cursor: the start value the
//! first time, the saved one when the run stopped inside the step. Each [`Step::advance`] (or
//! [`Step::checkpoint`]) saves the cursor in the run's record (written at most every
//! [`crate::runner::RunnerConfig::checkpoint_every`], 5 s by default, and always before an
//! interruption; a retry, a continuation or the DLQ writes the last one with the run); near the
//! deadline or on shutdown it then interrupts the job, which continues in a new message from
//! that cursor. A body that
//! returns `Ok` finishes the step: its final cursor is recorded, and a later execution skips the
//! step and gets that cursor back, so what a cursor carries (counts, a start time) flows on into
//! the next step.
//!
//! Invariants:
//! - A cursor is in the run's record before the job is interrupted (a checkpoint kept in memory
//!   is written first), and in the record a retry or the DLQ writes, so a continuation, a retry or a redrive resumes from the last advance,
//!   never from before it. A crash (the process killed) resumes from the last checkpoint
//!   written, at most `checkpoint_every` of progress before the last advance: a step's effects
//!   are idempotent per cursor, as on any redelivery.
//! - A finished step never runs again in its run.
//! - A saved cursor or step that no longer fits the job's code (a deploy changed the cursor's
//!   type, or renamed the step the run stopped in) is a permanent `corrupt_record` error naming
//!   the step, never a silent fresh start.

use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;

use crate::{
    context::JobContext,
    error::{ErrorKind, JobError},
};

/// A step in progress: its cursor, and the checkpoints that save it. See [`JobContext::step`].
#[derive(Debug)]
pub struct Step<'a, C> {
    ctx: &'a mut JobContext,
    name: &'a str,
    cursor: C,
}

/// Where a step stands, as the run's record says.
enum Standing<C> {
    /// Finished in an earlier execution, with its final cursor (`None` in a record written
    /// before final cursors were kept).
    Finished(Option<C>),
    /// Interrupted at this cursor.
    Stopped(C),
    /// Not started.
    New,
}

impl JobContext {
    /// Runs the step `name` (ActiveJob::Continuable's `step`) and gives back its final cursor.
    ///
    /// `body` gets a [`Step`] whose cursor is `start`, or the cursor saved when the run stopped
    /// inside this step. [`Step::advance`] and [`Step::checkpoint`] save it; near the deadline
    /// or when the worker is shutting down they return an `interrupted` error: propagate it
    /// with `?` and the job continues in a new message from that cursor. When `body` returns
    /// `Ok` the step is finished: its final cursor is recorded and returned, and a later
    /// execution of the run (a continuation, a retry) skips the step and returns that cursor
    /// without running `body`. Between steps, a job that finished a step in this execution and
    /// is near its deadline continues in a new message before starting the next one.
    ///
    /// Step names are unique within a job; the cursor type is the step's, and a saved cursor
    /// that no longer decodes into it is an error, never a fresh start.
    ///
    /// ```
    /// use jobkit::{JobContext, JobError};
    ///
    /// /// The page to fetch next, and the products so far: a continuation carries both.
    /// #[derive(serde::Serialize, serde::Deserialize)]
    /// struct Progress { page: Option<String>, products: u64 }
    ///
    /// # async fn fetch(_page: Option<&str>) -> Result<(u64, Option<String>), JobError> { Ok((3, None)) }
    /// async fn sync(ctx: &mut JobContext) -> Result<u64, JobError> {
    ///     let start = Progress { page: None, products: 0 };
    ///     let done = ctx
    ///         .step("products", start, async |step| loop {
    ///             let (upserted, next) = fetch(step.cursor().page.as_deref()).await?;
    ///             let progress = step.cursor_mut();
    ///             progress.products += upserted;
    ///             progress.page = next;
    ///             if progress.page.is_none() {
    ///                 return Ok(()); // the last page: the step is finished
    ///             }
    ///             step.checkpoint().await?; // saved; near the deadline the job continues later
    ///         })
    ///         .await?;
    ///     Ok(done.products)
    /// }
    /// ```
    ///
    /// # Errors
    /// Whatever `body` returns (the `interrupted` error among them); `corrupt_record`
    /// (permanent) when the saved cursor does not decode into `C` or the run stopped in a step
    /// the job did not reach first; a permanent error when `name` was already run in this
    /// execution; a store failure (retryable) when the step's finish is not recorded.
    pub async fn step<C, F>(&mut self, name: &str, start: C, body: F) -> Result<C, JobError>
    where
        C: Serialize + DeserializeOwned,
        F: AsyncFnOnce(&mut Step<'_, C>) -> Result<(), JobError>,
    {
        let cursor = match self.standing(name)? {
            Standing::Finished(cursor) => {
                tracing::debug!(step = name, "step skipped: it finished in an earlier execution");
                return Ok(cursor.unwrap_or(start));
            }
            Standing::Stopped(cursor) => {
                tracing::debug!(step = name, "step resumed from its cursor");
                cursor
            }
            Standing::New => start,
        };
        // Rails' checkpoint before each step but the first: what finished here is recorded, so
        // near the deadline the next step starts in a new execution rather than half runs here.
        if self.step_finished_here {
            self.interrupt_if_due(|| format!("continuing later before step {name}")).await?;
        }
        let mut step = Step { ctx: self, name, cursor };
        body(&mut step).await?;
        let cursor = step.cursor;
        self.finish_step(name, &cursor).await?;
        Ok(cursor)
    }

    /// Where step `name` stands in the run; refuses a name already run in this execution.
    fn standing<C: DeserializeOwned>(&mut self, name: &str) -> Result<Standing<C>, JobError> {
        if self.steps_seen.iter().any(|s| s == name) {
            let message = format!("step {name} runs twice in one execution: step names must be unique");
            return Err(JobError::permanent(ErrorKind::UNKNOWN, message));
        }
        self.steps_seen.push(name.to_owned());
        let checkpoint = self.checkpoint_state();
        if checkpoint.completed.iter().any(|s| s == name) {
            let cursor = checkpoint.final_cursors.get(name).map(|c| decode(name, c)).transpose()?;
            return Ok(Standing::Finished(cursor));
        }
        match &checkpoint.current {
            None => Ok(Standing::New),
            Some((current, cursor)) if current == name => Ok(Standing::Stopped(decode(name, cursor)?)),
            // Starting this step would leave the other one's progress behind for good.
            Some((current, _)) => Err(JobError::permanent(
                ErrorKind::CORRUPT_RECORD,
                format!("step {name} was reached before step {current}, where the run stopped"),
            )),
        }
    }

    /// Records step `name` as finished at `cursor`.
    async fn finish_step<C: Serialize>(&mut self, name: &str, cursor: &C) -> Result<(), JobError> {
        let mut checkpoint = self.checkpoint_state().clone();
        checkpoint.completed.push(name.to_owned());
        checkpoint.final_cursors.insert(name.to_owned(), encode(name, cursor)?);
        checkpoint.current = None;
        self.save(checkpoint).await?;
        self.step_finished_here = true;
        Ok(())
    }
}

impl<C> Step<'_, C> {
    /// The step's name.
    pub fn name(&self) -> &str {
        self.name
    }

    /// The cursor: where the step stands.
    pub fn cursor(&self) -> &C {
        &self.cursor
    }

    /// The cursor, to change in place; the change is saved by the next [`Step::checkpoint`],
    /// and is the step's final cursor if the body returns `Ok` first.
    pub fn cursor_mut(&mut self) -> &mut C {
        &mut self.cursor
    }

    /// The running job's context (metadata, clock, enqueuer).
    pub fn context(&self) -> &JobContext {
        self.ctx
    }
}

impl<C: Serialize> Step<'_, C> {
    /// Moves the cursor to `next` and saves it (ActiveJob's `step.set!`): see
    /// [`Step::checkpoint`].
    ///
    /// # Errors
    /// As [`Step::checkpoint`].
    pub async fn advance(&mut self, next: C) -> Result<(), JobError> {
        self.cursor = next;
        self.checkpoint().await
    }

    /// Saves the cursor as it stands in the run's record (written at most every
    /// `checkpoint_every`, and always when it interrupts). Near the deadline, or when the worker
    /// is shutting down, it then returns an `interrupted` error: propagate it with `?` and the
    /// job continues in a new message, where this step resumes at this cursor.
    ///
    /// # Errors
    /// The `interrupted` error described above; a store failure (retryable); a cursor that does
    /// not serialise (permanent).
    pub async fn checkpoint(&mut self) -> Result<(), JobError> {
        let cursor = encode(self.name, &self.cursor)?;
        let mut checkpoint = self.ctx.checkpoint_state().clone();
        checkpoint.current = Some((self.name.to_owned(), cursor));
        self.ctx.save(checkpoint).await?;
        self.ctx.interrupt_if_due(|| format!("continuing later from step {}", self.name)).await
    }
}

fn encode<C: Serialize>(step: &str, cursor: &C) -> Result<Value, JobError> {
    serde_json::to_value(cursor).map_err(|e| {
        JobError::permanent(ErrorKind::UNKNOWN, format!("the cursor of step {step} does not serialise: {e}"))
    })
}

fn decode<C: DeserializeOwned>(step: &str, saved: &Value) -> Result<C, JobError> {
    C::deserialize(saved).map_err(|e| {
        let message = format!("the saved cursor of step {step} does not decode: {e}");
        JobError::permanent(ErrorKind::CORRUPT_RECORD, message)
    })
}
