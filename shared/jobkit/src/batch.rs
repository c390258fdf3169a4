//! Batches (Sidekiq Pro's, Solid Queue's): jobs of one kind enqueued as one set, whose progress
//! is counted as its members finish, and whose callback jobs are enqueued once, when the last
//! member has finished: `on_complete` whatever the outcomes, `on_success` only if none failed.
//!
//! Records, all under the members' job's key prefix (its function's IAM already allows them)
//! and all expiring with the batch, after [`BATCH_KEPT`]:
//! - `<job>:batch:<id>`: the batch (description, callbacks, sealed, callbacks sent), JSON;
//! - `<job>:batch:<id>:registered`, `:succeeded`, `:failed`: counters;
//! - `<job>:batchm:<id>:<job id>`: a member, registered before it is sent;
//! - `<job>:batchd:<id>:<job id>`: a member that finished, with its outcome.
//!
//! Invariants:
//! - A member is registered before it is sent, so it is counted in `registered` before it can
//!   finish: `succeeded + failed` never passes `registered`, and a message claiming a batch it
//!   was never registered in (the attribute is the sender's to write) is not counted.
//! - A member's finish is counted once, however often it is delivered: its marker and the
//!   counter are taken in one atomic write ([`StateStore::increment_once`]).
//! - Callbacks are looked at only once the batch is sealed, which the enqueuer does after every
//!   member was sent: a batch never completes while members are still being added, however
//!   fast the first ones finish.
//! - A callback job has a job id of the batch's making, so two members that both see the batch
//!   complete send one job twice and its run (keyed by job id) runs it once; once sent, the batch
//!   says so and later finishers send nothing.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{
    enqueue::{EnqueueError, Enqueuer, JobRef},
    error::{ErrorKind, JobError, PortError, PortResult},
    ids::JobId,
    keys::{kind, state_key},
    message::encode_args,
    ports::{PutOutcome, StateStore},
};

/// How long a batch's records are kept: SQS's longest retention, so no member outlives them.
pub const BATCH_KEPT: Duration = Duration::from_secs(14 * 24 * 60 * 60);

/// The field of a callback job's arguments that carries the batch's outcome.
pub const OUTCOME_FIELD: &str = "batch";

/// The counters' names.
const REGISTERED: &str = "registered";
const SUCCEEDED: &str = "succeeded";
const FAILED: &str = "failed";

/// A batch to enqueue jobs in: its id (stable across a retry of the enqueue, so the retry
/// adds to the same batch), what it is for, and the jobs enqueued when it completes. See
/// [`Enqueuer::perform_later_batch`].
#[derive(Debug, Clone, PartialEq)]
pub struct JobBatch {
    id: String,
    description: String,
    on_complete: Option<Callback>,
    on_success: Option<Callback>,
}

/// A job to enqueue when a batch completes: its name and arguments (an object, to which the
/// batch's outcome is added as [`OUTCOME_FIELD`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Callback {
    job: String,
    args: Map<String, Value>,
}

impl JobBatch {
    /// A batch named `id` (a tick's or a job's id makes a good one: a retry finds the batch).
    pub fn new(id: impl Into<String>) -> Self {
        Self { id: id.into(), description: String::new(), on_complete: None, on_success: None }
    }

    /// What the batch is for, for people (`jobctl batches`).
    #[must_use]
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    /// Enqueues `job` with `args` when every member has finished, succeeded or not.
    ///
    /// # Errors
    /// Arguments that are not a JSON object, or that already have a `batch` field.
    pub fn on_complete<A: Serialize>(mut self, job: &JobRef<A>, args: &A) -> Result<Self, JobError> {
        self.on_complete = Some(Callback::new(job, args)?);
        Ok(self)
    }

    /// Enqueues `job` with `args` when every member has succeeded (never, if one failed).
    ///
    /// # Errors
    /// As [`JobBatch::on_complete`].
    pub fn on_success<A: Serialize>(mut self, job: &JobRef<A>, args: &A) -> Result<Self, JobError> {
        self.on_success = Some(Callback::new(job, args)?);
        Ok(self)
    }

    /// The batch's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// A batch named `prefix` and what a batch id may hold of `job_id` (the enqueuing job's:
    /// its retries keep it, so a retry finds the batch), e.g. `fan-out-<job id>`.
    pub fn for_job(prefix: &str, job_id: &JobId) -> Self {
        let kept: String =
            job_id.as_str().chars().filter(|c| is_id_char(*c)).take(MAX_ID_BYTES / 2).collect();
        Self::new(format!("{prefix}-{kept}"))
    }

    /// Refuses an id that could not name the batch's records unambiguously.
    pub(crate) fn validate(&self) -> Result<(), JobError> {
        if self.id.is_empty() || self.id.len() > MAX_ID_BYTES || !self.id.chars().all(is_id_char) {
            return Err(invalid(format!(
                "batch id {:?}: 1 to {MAX_ID_BYTES} letters, digits, '-', '_' or '.'",
                self.id
            )));
        }
        Ok(())
    }
}

/// What a batch id is made of (no ':', which separates the parts of its records' keys).
fn is_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

/// The longest batch id (its members' job ids and callbacks' add to it).
const MAX_ID_BYTES: usize = 200;

impl Callback {
    fn new<A: Serialize>(job: &JobRef<A>, args: &A) -> Result<Self, JobError> {
        let Value::Object(mut args) = serde_json::from_str(&encode_args(args)?).unwrap_or(Value::Null) else {
            return Err(invalid("a callback's arguments must be a JSON object"));
        };
        // `batch: None` (the field declared, as it must be) is the batch's to fill.
        if args.get(OUTCOME_FIELD).is_some_and(|v| !v.is_null()) {
            return Err(invalid(format!(
                "a callback's arguments get the batch's outcome as {OUTCOME_FIELD:?}: leave it out"
            )));
        }
        args.remove(OUTCOME_FIELD);
        Ok(Self { job: job.name().to_owned(), args })
    }
}

fn invalid(message: impl Into<String>) -> JobError {
    JobError::permanent(ErrorKind::INVALID_ARGUMENTS, message)
}

/// What a callback job gets in its arguments' `batch` field (declare it as
/// `batch: Option<BatchSummary>` in the callback job's arguments).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchSummary {
    /// The batch's id.
    pub id: String,
    /// What it was for.
    pub description: String,
    /// When it was opened.
    pub created_at: DateTime<Utc>,
    /// Its members.
    pub total: u64,
    /// Members that succeeded.
    pub succeeded: u64,
    /// Members that landed in the DLQ (or were cancelled).
    pub failed: u64,
}

/// A batch's progress, as `jobctl batches` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BatchStatus {
    /// The members' job.
    pub job: String,
    /// The batch's id.
    pub id: String,
    /// What it is for.
    pub description: String,
    /// When it was opened.
    pub created_at: DateTime<Utc>,
    /// Every member was sent (it may complete).
    pub sealed: bool,
    /// Members registered.
    pub total: u64,
    /// Members that succeeded.
    pub succeeded: u64,
    /// Members that failed.
    pub failed: u64,
    /// Its callbacks were sent.
    pub callbacks_sent: bool,
}

impl BatchStatus {
    /// Members not yet finished.
    pub fn pending(&self) -> u64 {
        self.total.saturating_sub(self.succeeded + self.failed)
    }

    /// Sealed, and every member finished.
    pub fn is_complete(&self) -> bool {
        self.sealed && self.pending() == 0
    }
}

/// The batch's record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct BatchRecord {
    description: String,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    on_complete: Option<Callback>,
    on_success: Option<Callback>,
    sealed: bool,
    callbacks_sent: bool,
}

/// How a member finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MemberOutcome {
    /// It succeeded.
    Succeeded,
    /// It landed in the DLQ, or was cancelled.
    Failed,
}

fn record_key(job: &str, id: &str) -> String {
    state_key(job, kind::BATCH, id)
}

fn counter_key(job: &str, id: &str, counter: &str) -> String {
    state_key(job, kind::BATCH, &format!("{id}:{counter}"))
}

fn member_key(job: &str, kind: &str, id: &str, job_id: &JobId) -> String {
    state_key(job, kind, &format!("{id}:{job_id}"))
}

/// Why a batch operation failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BatchError {
    /// The store failed.
    #[error(transparent)]
    Port(#[from] PortError),
    /// A callback could not be sent.
    #[error("sending the batch's callback: {0}")]
    Callback(#[from] EnqueueError),
}

/// The batch's record, and its text as stored (for a compare-and-swap).
async fn read(
    store: &dyn StateStore,
    job: &str,
    id: &str,
    now: DateTime<Utc>,
) -> PortResult<Option<(BatchRecord, String)>> {
    let Some(stored) = store.get(&record_key(job, id), now).await? else { return Ok(None) };
    let record = serde_json::from_str(&stored.value)
        .map_err(|e| PortError::Invalid(format!("batch {id} of {job} is unreadable: {e}")))?;
    Ok(Some((record, stored.value)))
}

/// Opens batch `batch` of `job`'s members (or finds it, on a retry of the enqueue); returns
/// when its records expire.
pub(crate) async fn open(
    store: &dyn StateStore,
    job: &str,
    batch: &JobBatch,
    now: DateTime<Utc>,
) -> PortResult<DateTime<Utc>> {
    let expires_at = now + chrono::Duration::from_std(BATCH_KEPT).unwrap_or_default();
    let record = BatchRecord {
        description: batch.description.clone(),
        created_at: now,
        expires_at,
        on_complete: batch.on_complete.clone(),
        on_success: batch.on_success.clone(),
        sealed: false,
        callbacks_sent: false,
    };
    let value = serde_json::to_string(&record).map_err(|e| PortError::Invalid(e.to_string()))?;
    match store.put_if_vacant(&record_key(job, &batch.id), &value, expires_at, now).await? {
        PutOutcome::Written => Ok(expires_at),
        PutOutcome::Taken(existing) => serde_json::from_str::<BatchRecord>(&existing.value)
            .map(|r| r.expires_at)
            .map_err(|e| PortError::Invalid(format!("batch {} of {job} is unreadable: {e}", batch.id))),
    }
}

/// Registers member `job_id` (before it is sent); registering it again changes nothing.
pub(crate) async fn register(
    store: &dyn StateStore,
    job: &str,
    id: &str,
    job_id: &JobId,
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> PortResult<()> {
    let marker = member_key(job, kind::BATCH_MEMBER, id, job_id);
    store
        .increment_once(&marker, REGISTERED, &counter_key(job, id, REGISTERED), expires_at, now)
        .await
        .map(drop)
}

/// Seals the batch (every member was sent), then completes it if its members already finished.
pub(crate) async fn seal(
    store: &dyn StateStore,
    enqueuer: &Enqueuer,
    job: &str,
    id: &str,
    now: DateTime<Utc>,
) -> Result<(), BatchError> {
    loop {
        let Some((mut record, seen)) = read(store, job, id, now).await? else {
            return Err(PortError::Invalid(format!("batch {id} of {job} is gone (expired?)")).into());
        };
        if record.sealed {
            break;
        }
        record.sealed = true;
        let value = serde_json::to_string(&record).map_err(|e| PortError::Invalid(e.to_string()))?;
        if store.replace(&record_key(job, id), &seen, &value, record.expires_at).await? {
            break;
        }
    }
    complete_if_done(store, enqueuer, job, id, now).await
}

/// Counts member `job_id`'s finish (once, however often it is told), then completes the batch
/// if it was the last. A member the batch never registered is not counted.
pub(crate) async fn member_finished(
    store: &dyn StateStore,
    enqueuer: &Enqueuer,
    job: &str,
    id: &str,
    job_id: &JobId,
    outcome: MemberOutcome,
    now: DateTime<Utc>,
) -> Result<(), BatchError> {
    let Some((record, _)) = read(store, job, id, now).await? else {
        tracing::warn!(batch = id, "the batch is gone (expired?): the member's finish is not counted");
        return Ok(());
    };
    if store.get(&member_key(job, kind::BATCH_MEMBER, id, job_id), now).await?.is_none() {
        tracing::warn!(batch = id, "not a registered member of the batch: not counted");
        return Ok(());
    }
    let counter = match outcome {
        MemberOutcome::Succeeded => SUCCEEDED,
        MemberOutcome::Failed => FAILED,
    };
    let marker = member_key(job, kind::BATCH_DONE, id, job_id);
    store.increment_once(&marker, counter, &counter_key(job, id, counter), record.expires_at, now).await?;
    complete_if_done(store, enqueuer, job, id, now).await
}

/// Sends the callbacks of a sealed batch whose members all finished, unless they were sent.
///
/// Called after a write (a member's count, the seal), it reads the batch afresh: the enqueuer
/// seals and then reads the counts, a member counts and then reads the seal, so whichever of
/// the two writes last sees the other's, and a batch never completes unnoticed.
async fn complete_if_done(
    store: &dyn StateStore,
    enqueuer: &Enqueuer,
    job: &str,
    id: &str,
    now: DateTime<Utc>,
) -> Result<(), BatchError> {
    let Some((record, seen)) = read(store, job, id, now).await? else { return Ok(()) };
    if !record.sealed || record.callbacks_sent {
        return Ok(());
    }
    let status = counts(store, job, id, &record, now).await?;
    if !status.is_complete() {
        return Ok(());
    }
    let outcome = BatchSummary {
        id: id.to_owned(),
        description: record.description.clone(),
        created_at: record.created_at,
        total: status.total,
        succeeded: status.succeeded,
        failed: status.failed,
    };
    let on_success = record.on_success.as_ref().filter(|_| status.failed == 0);
    for (callback, which) in [(record.on_complete.as_ref(), "on_complete"), (on_success, "on_success")] {
        let Some(callback) = callback else { continue };
        let mut args = callback.args.clone();
        args.insert(OUTCOME_FIELD.to_owned(), serde_json::to_value(&outcome).unwrap_or(Value::Null));
        let body = Value::Object(args).to_string();
        // One job id per batch and callback: two finishers' sends are one job.
        let job_id = JobId::from(format!("{job}.{id}.{which}"));
        enqueuer.send_callback(&callback.job, body, job_id).await?;
    }
    tracing::info!(
        batch = id,
        total = status.total,
        succeeded = status.succeeded,
        failed = status.failed,
        "batch complete"
    );
    let sent = BatchRecord { callbacks_sent: true, ..record };
    let value = serde_json::to_string(&sent).map_err(|e| PortError::Invalid(e.to_string()))?;
    // Losing this swap means another finisher marked it first: the same callbacks, sent once.
    store.replace(&record_key(job, id), &seen, &value, sent.expires_at).await?;
    Ok(())
}

async fn counts(
    store: &dyn StateStore,
    job: &str,
    id: &str,
    record: &BatchRecord,
    now: DateTime<Utc>,
) -> PortResult<BatchStatus> {
    let count = |counter| async move {
        store.count(&counter_key(job, id, counter), now).await.map(|n| u64::try_from(n).unwrap_or(0))
    };
    // Finishes first: a member is registered before it can finish, so reading the finishes
    // before the registrations never shows more finished than registered.
    let succeeded = count(SUCCEEDED).await?;
    let failed = count(FAILED).await?;
    let total = count(REGISTERED).await?;
    Ok(BatchStatus {
        job: job.to_owned(),
        id: id.to_owned(),
        description: record.description.clone(),
        created_at: record.created_at,
        sealed: record.sealed,
        total,
        succeeded,
        failed,
        callbacks_sent: record.callbacks_sent,
    })
}

/// When batch `id` of `job`'s members was opened; `None` when there is none (or it expired).
/// One read: what a listing sorts by before it reads the counts of those it shows.
///
/// # Errors
/// The store failing, or a record it cannot read.
pub async fn opened_at(
    store: &dyn StateStore,
    job: &str,
    id: &str,
    now: DateTime<Utc>,
) -> PortResult<Option<DateTime<Utc>>> {
    Ok(read(store, job, id, now).await?.map(|(record, _)| record.created_at))
}

/// Batch `id` of `job`'s members, with its counts; `None` when there is none (or it expired).
///
/// # Errors
/// The store failing, or a record it cannot read.
pub async fn status(
    store: &dyn StateStore,
    job: &str,
    id: &str,
    now: DateTime<Utc>,
) -> PortResult<Option<BatchStatus>> {
    match read(store, job, id, now).await? {
        Some((record, _)) => counts(store, job, id, &record, now).await.map(Some),
        None => Ok(None),
    }
}

/// The prefix of the state store keys of `job`'s batches and their counters (see
/// [`batch_id_of_key`]): what an operator's listing scans for.
pub fn keys_prefix(job: &str) -> String {
    record_key(job, "")
}

/// The batch id in a key starting with [`keys_prefix`], if it is a batch's own record (not one
/// of its counters).
pub fn batch_id_of_key<'a>(job: &str, key: &'a str) -> Option<&'a str> {
    let id = key.strip_prefix(&keys_prefix(job))?;
    // Batch ids hold no ':' (see `JobBatch::validate`): one is a counter's.
    (!id.is_empty() && !id.contains(':')).then_some(id)
}
