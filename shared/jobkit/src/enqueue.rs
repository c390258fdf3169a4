//! Enqueueing (`perform_later`): delays and `wait_until` (hopping past SQS's 15 minutes), bulk
//! sends with `SendMessageBatch`, and `unique_for` (a duplicate enqueue inside a window is refused).
//!
//! Invariant: the body is exactly the arguments' JSON; everything else rides in attributes, so a
//! message an operator sends by hand and one sent here are read the same way.

use std::{collections::HashMap, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::{
    batch::{BatchError, JobBatch},
    clock::SharedClock,
    error::{ErrorKind, JobError, PortError},
    ids::JobId,
    job::{Job, queue_name},
    keys::{kind, state_key},
    message::{OutgoingMessage, attr, encode_args},
    ports::{PutOutcome, Queue, StateStore},
};

/// SQS's longest `DelaySeconds`.
pub const MAX_DELAY_SECONDS: u32 = 900;

/// How far ahead a job may be scheduled by default: further, it would hop every 15 minutes for
/// ever without reaching a DLQ, so it is refused as invalid (at enqueue and at receive).
pub const DEFAULT_MAX_SCHEDULE_AHEAD: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// Why an enqueue did not happen.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnqueueError {
    /// The arguments are not a JSON object.
    #[error(transparent)]
    InvalidArguments(#[from] JobError),
    /// `unique_for` refused a duplicate of a job enqueued inside the window.
    #[error("duplicate of {job} enqueued inside its unique window (until {until})")]
    Duplicate {
        /// The job's name.
        job: &'static str,
        /// When the window ends.
        until: DateTime<Utc>,
    },
    /// The queue or store failed.
    #[error(transparent)]
    Port(#[from] PortError),
}

/// Options of one enqueue; the defaults send now, with a new job id.
#[derive(Debug, Clone, Default)]
pub struct EnqueueOptions {
    /// Run after this long.
    pub delay: Option<Duration>,
    /// Run at (or after) this time; wins over `delay`.
    pub wait_until: Option<DateTime<Utc>>,
    /// Refuse another enqueue of the same job and arguments for this long.
    pub unique_for: Option<Duration>,
    /// Refuse another enqueue of the same job and arguments until this one succeeds or lands
    /// in the DLQ (Sidekiq Enterprise's `unique_until: :success`), and at most this long (a
    /// lock whose job was lost frees itself then).
    pub unique_until_done: Option<Duration>,
    /// The job id (defaults to a new random one).
    pub job_id: Option<JobId>,
    /// An explicit idempotency key.
    pub idempotency_key: Option<String>,
    /// The FIFO message group.
    pub group_id: Option<String>,
}

impl EnqueueOptions {
    /// Run after `delay`.
    pub fn delay(delay: Duration) -> Self {
        Self { delay: Some(delay), ..Self::default() }
    }

    /// Run at `at`.
    pub fn wait_until(at: DateTime<Utc>) -> Self {
        Self { wait_until: Some(at), ..Self::default() }
    }

    /// Refuse duplicates for `window`.
    pub fn unique_for(window: Duration) -> Self {
        Self { unique_for: Some(window), ..Self::default() }
    }

    /// Refuse duplicates until the job succeeds or lands in the DLQ, for at most `at_most`.
    pub fn unique_until_done(at_most: Duration) -> Self {
        Self { unique_until_done: Some(at_most), ..Self::default() }
    }

    /// The unique lock's window, and whether the runner gives it back when the job is done;
    /// both kinds at once is refused.
    fn unique(&self) -> Result<Option<(Duration, bool)>, JobError> {
        match (self.unique_for, self.unique_until_done) {
            (Some(_), Some(_)) => Err(JobError::permanent(
                ErrorKind::INVALID_ARGUMENTS,
                "unique_for and unique_until_done are two kinds of lock: choose one",
            )),
            (Some(window), None) => Ok(Some((window, false))),
            (None, Some(at_most)) => Ok(Some((at_most, true))),
            (None, None) => Ok(None),
        }
    }
}

/// Where each job's queue is: a queue id (an SQS URL, or an embedded queue's name) per job name.
#[derive(Debug, Clone, Default)]
pub struct QueueRoutes {
    routes: HashMap<String, String>,
}

impl QueueRoutes {
    /// Routes job `job` to `queue_id`.
    pub fn with(mut self, job: impl Into<String>, queue_id: impl Into<String>) -> Self {
        self.routes.insert(job.into(), queue_id.into());
        self
    }

    /// Reads `JOBKIT_QUEUE_URL_<JOB>` variables (`JOBKIT_QUEUE_URL_CUSTOMER_SYNC=https://...`):
    /// the template gives a function one per job it enqueues.
    pub fn from_env() -> Self {
        let routes = std::env::vars()
            .filter_map(|(k, v)| k.strip_prefix("JOBKIT_QUEUE_URL_").map(|job| (job.to_ascii_lowercase(), v)))
            .collect();
        Self { routes }
    }

    /// The queue id of job `job`: its route, else its queue's name by the convention
    /// ([`queue_name`]), which is the embedded backend's queue id.
    pub fn resolve(&self, job: &str) -> std::borrow::Cow<'_, str> {
        match self.routes.get(job) {
            Some(id) => std::borrow::Cow::Borrowed(id.as_str()),
            None => std::borrow::Cow::Owned(queue_name(job)),
        }
    }
}

/// A job's address for the jobs that enqueue it without depending on its crate: its name and
/// the type of its arguments (`shop::jobs::CUSTOMER_SYNC`). The job's own crate checks that its
/// `Job::NAME` and `Job::Args` are these.
pub struct JobRef<A> {
    name: &'static str,
    args: std::marker::PhantomData<fn(&A)>,
}

impl<A> JobRef<A> {
    /// The job named `name`, taking `A`.
    pub const fn new(name: &'static str) -> Self {
        Self { name, args: std::marker::PhantomData }
    }

    /// The job's name.
    pub const fn name(&self) -> &'static str {
        self.name
    }
}

impl<A> std::fmt::Debug for JobRef<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("JobRef").field(&self.name).finish()
    }
}

/// Sends jobs to their queues.
#[derive(Debug, Clone)]
pub struct Enqueuer {
    queue: Arc<dyn Queue>,
    store: Arc<dyn StateStore>,
    clock: SharedClock,
    routes: Arc<QueueRoutes>,
    max_schedule_ahead: Duration,
}

/// A `unique_for` lock: the job id it was taken for, and whether that job's send was answered.
/// A lock whose send failed is taken over by the caller's retry with the same job id, so a
/// send that did reach the queue and its retry are one job (the runner runs a job id once).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct UniqueLock {
    job_id: JobId,
    sent: bool,
}

/// A unique lock taken for a job about to be sent: its key, the lock, its window.
type HeldLock = (String, UniqueLock, Duration);

/// One prepared message and its job id.
struct Prepared {
    job_id: JobId,
    message: OutgoingMessage,
}

impl Enqueuer {
    /// An enqueuer on these ports.
    pub fn new(
        queue: Arc<dyn Queue>,
        store: Arc<dyn StateStore>,
        clock: SharedClock,
        routes: QueueRoutes,
    ) -> Self {
        Self { queue, store, clock, routes: Arc::new(routes), max_schedule_ahead: DEFAULT_MAX_SCHEDULE_AHEAD }
    }

    /// The enqueuer, refusing jobs scheduled further ahead than `limit` (default 365 days).
    #[must_use]
    pub fn with_max_schedule_ahead(mut self, limit: Duration) -> Self {
        self.max_schedule_ahead = limit;
        self
    }

    /// The queue port.
    pub fn queue(&self) -> &Arc<dyn Queue> {
        &self.queue
    }

    /// The queue id of a job.
    pub fn queue_id<J: Job>(&self) -> std::borrow::Cow<'_, str> {
        self.routes.resolve(J::NAME)
    }

    /// Enqueues `J` with `args` now.
    ///
    /// # Errors
    /// See [`Enqueuer::perform_later_with`].
    pub async fn perform_later<J: Job>(&self, args: &J::Args) -> Result<JobId, EnqueueError> {
        self.perform_later_with::<J>(args, EnqueueOptions::default()).await
    }

    /// Enqueues `J` with `args` and options; returns the job id.
    ///
    /// # Errors
    /// `Duplicate` when `unique_for` refuses it, `InvalidArguments` (arguments that are not an
    /// object, a time more than a year ahead), or a port failure. After a port failure the
    /// `unique_for` lock does not refuse the caller's retry.
    pub async fn perform_later_with<J: Job>(
        &self,
        args: &J::Args,
        options: EnqueueOptions,
    ) -> Result<JobId, EnqueueError> {
        self.send_to(J::NAME, encode_args(args)?, options).await
    }

    /// Enqueues the job `to` names, from a job that does not depend on its crate (chaining:
    /// the webhook job enqueues the customer sync). The arguments' type travels with the name.
    ///
    /// # Errors
    /// As [`Enqueuer::perform_later_with`].
    pub async fn perform_later_to<A: serde::Serialize>(
        &self,
        to: &JobRef<A>,
        args: &A,
        options: EnqueueOptions,
    ) -> Result<JobId, EnqueueError> {
        self.send_to(to.name(), encode_args(args)?, options).await
    }

    async fn send_to(
        &self,
        job: &'static str,
        body: String,
        mut options: EnqueueOptions,
    ) -> Result<JobId, EnqueueError> {
        let lock = match options.unique()? {
            Some((window, until_done)) => {
                let (key, lock) = self.claim_unique(job, &body, window, options.job_id.take()).await?;
                options.job_id = Some(lock.job_id.clone());
                Some((key, lock, window, until_done))
            }
            None => None,
        };
        let mut prepared = self.prepare(job, body, &options)?;
        if let Some((key, _, _, true)) = &lock {
            prepared.message.attributes.insert(attr::UNIQUE_LOCK.into(), key.clone());
        }
        self.queue.send(&self.routes.resolve(job), prepared.message).await?;
        if let Some((key, lock, window, _)) = lock {
            self.mark_sent(&key, lock, window).await;
        }
        Ok(prepared.job_id)
    }

    /// Enqueues many jobs of `J` with `SendMessageBatch` (10 a call); returns one result per
    /// argument set, in order, so a partial failure is visible.
    ///
    /// # Errors
    /// `InvalidArguments` before anything is sent, or a failure of the whole call.
    pub async fn perform_later_bulk<J: Job>(
        &self,
        args: impl IntoIterator<Item = J::Args>,
    ) -> Result<Vec<Result<JobId, EnqueueError>>, EnqueueError> {
        self.perform_later_bulk_with::<J>(args, &EnqueueOptions::default()).await
    }

    /// [`Self::perform_later_bulk`] with a delay, a time to run at, a group or
    /// `unique_until_done` for every job (a job refused as a duplicate is that job's answer).
    ///
    /// # Errors
    /// `InvalidArguments` before anything is sent, also for options that name one job (a job
    /// id, an idempotency key, `unique_for`); or a failure of the whole call.
    pub async fn perform_later_bulk_with<J: Job>(
        &self,
        args: impl IntoIterator<Item = J::Args>,
        options: &EnqueueOptions,
    ) -> Result<Vec<Result<JobId, EnqueueError>>, EnqueueError> {
        let bodies = bulk_bodies::<J>(args, options)?;
        self.send_bulk(J::NAME, bodies, options, None).await
    }

    /// Enqueues jobs of `J` as the members of `batch` (Sidekiq Pro's batches): each member is
    /// counted when it finishes (succeeded, or in the DLQ), and the batch's `on_complete` /
    /// `on_success` jobs are enqueued once, when the last one has. Options as
    /// [`Self::perform_later_bulk_with`]; a member refused by `unique_until_done` is not a
    /// member. Returns one answer per argument set, in order.
    ///
    /// The batch is sealed (may complete) once every member was sent. After a failed send, call
    /// again with the same batch id and arguments: the members have job ids of the batch's
    /// making, so those already sent are not sent as new jobs, and the batch is sealed then.
    /// Members with equal arguments are one member.
    ///
    /// # Errors
    /// As [`Self::perform_later_bulk_with`], an invalid batch id, or the store failing to open
    /// or seal the batch.
    pub async fn perform_later_batch<J: Job>(
        &self,
        batch: &JobBatch,
        args: impl IntoIterator<Item = J::Args>,
        options: &EnqueueOptions,
    ) -> Result<Vec<Result<JobId, EnqueueError>>, EnqueueError> {
        batch.validate()?;
        let bodies = bulk_bodies::<J>(args, options)?;
        let now = self.clock.now();
        let expires_at = crate::batch::open(self.store.as_ref(), J::NAME, batch, now).await?;
        let answers = self.send_bulk(J::NAME, bodies, options, Some((batch.id(), expires_at))).await?;
        let unsent =
            answers.iter().any(|a| matches!(a, Err(e) if !matches!(e, EnqueueError::Duplicate { .. })));
        if !unsent {
            let sealed = crate::batch::seal(self.store.as_ref(), self, J::NAME, batch.id(), self.clock.now());
            sealed.await.map_err(|e| match e {
                BatchError::Port(e) => EnqueueError::Port(e),
                BatchError::Callback(e) => e,
            })?;
        }
        Ok(answers)
    }

    /// Sends `bodies` of `job` with `SendMessageBatch`, each with its unique lock if asked, and
    /// registered in `batch` (its id and expiry) if given, before it is sent.
    async fn send_bulk(
        &self,
        job: &'static str,
        bodies: Vec<String>,
        options: &EnqueueOptions,
        batch: Option<(&str, DateTime<Utc>)>,
    ) -> Result<Vec<Result<JobId, EnqueueError>>, EnqueueError> {
        // Each job's unique lock first (a duplicate is that job's answer), then one batch send.
        let mut answers: Vec<(usize, Result<JobId, EnqueueError>)> = Vec::new();
        let mut ready: Vec<(usize, Prepared, Option<HeldLock>)> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (index, body) in bodies.into_iter().enumerate() {
            let mut one = options.clone();
            // A batch's member has a job id of the batch's making: a retry re-sends the same job.
            one.job_id = batch.map(|(id, _)| JobId::from(format!("{id}.{}", payload_hash(&body))));
            let lock = match options.unique_until_done {
                // A lock not yet marked sent is taken over (a failed send's retry), so a repeat
                // within this call must be caught here.
                Some(at_most) if !seen.insert(body.clone()) => {
                    let until = self.clock.now()
                        + chrono::Duration::from_std(at_most).unwrap_or(chrono::Duration::MAX);
                    answers.push((index, Err(EnqueueError::Duplicate { job, until })));
                    continue;
                }
                Some(at_most) => match self.claim_unique(job, &body, at_most, one.job_id.take()).await {
                    Ok((key, lock)) => {
                        one.job_id = Some(lock.job_id.clone());
                        Some((key, lock, at_most))
                    }
                    Err(refused) => {
                        answers.push((index, Err(refused)));
                        continue;
                    }
                },
                None => None,
            };
            let mut prepared = self.prepare(job, body, &one)?;
            if let Some((key, ..)) = &lock {
                prepared.message.attributes.insert(attr::UNIQUE_LOCK.into(), key.clone());
            }
            if let Some((id, expires_at)) = batch {
                let now = self.clock.now();
                crate::batch::register(self.store.as_ref(), job, id, &prepared.job_id, expires_at, now)
                    .await?;
                prepared.message.attributes.insert(attr::BATCH.into(), id.to_owned());
            }
            ready.push((index, prepared, lock));
        }
        let messages = ready.iter().map(|(_, p, _)| p.message.clone()).collect();
        let sent = self.queue.send_batch(&self.routes.resolve(job), messages).await?;
        for ((index, prepared, lock), result) in ready.into_iter().zip(sent) {
            match result {
                Ok(_) => {
                    if let Some((key, lock, window)) = lock {
                        self.mark_sent(&key, lock, window).await;
                    }
                    answers.push((index, Ok(prepared.job_id)));
                }
                Err(e) => answers.push((index, Err(e.into()))),
            }
        }
        answers.sort_by_key(|(index, _)| *index);
        Ok(answers.into_iter().map(|(_, answer)| answer).collect())
    }

    /// Sends a batch's callback job `job` (by name: the batch's record keeps it) with its job id.
    pub(crate) async fn send_callback(
        &self,
        job: &str,
        body: String,
        job_id: JobId,
    ) -> Result<(), EnqueueError> {
        let options = EnqueueOptions { job_id: Some(job_id), ..EnqueueOptions::default() };
        let prepared = self.prepare(job, body, &options)?;
        self.queue.send(&self.routes.resolve(job), prepared.message).await?;
        Ok(())
    }

    fn prepare(&self, job: &str, body: String, options: &EnqueueOptions) -> Result<Prepared, JobError> {
        let now = self.clock.now();
        let job_id = options.job_id.clone().unwrap_or_else(JobId::random);
        let mut message = OutgoingMessage { body, group_id: options.group_id.clone(), ..Default::default() };
        message.attributes.insert(attr::JOB.into(), job.into());
        message.attributes.insert(attr::JOB_ID.into(), job_id.to_string());
        message.attributes.insert(attr::ENQUEUED_AT.into(), now.to_rfc3339());
        if let Some(key) = &options.idempotency_key {
            message.attributes.insert(attr::IDEMPOTENCY_KEY.into(), key.clone());
        }
        // Enqueued by a running job: the new job joins its trace.
        if let Some(trace) = crate::trace::current() {
            message.attributes.insert(attr::TRACEPARENT.into(), trace.child_header());
        }
        if let Some(run_at) = self.run_at(options, now)? {
            message.delay_seconds = hop_delay(run_at, now);
            if (run_at - now).num_seconds() > i64::from(MAX_DELAY_SECONDS) {
                message.attributes.insert(attr::NOT_BEFORE.into(), run_at.to_rfc3339());
            }
        }
        Ok(Prepared { job_id, message })
    }

    /// When the job should run, if later than now; refused past the schedule limit.
    fn run_at(
        &self,
        options: &EnqueueOptions,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, JobError> {
        let too_far = || {
            JobError::permanent(
                ErrorKind::INVALID_ARGUMENTS,
                format!(
                    "a job may be scheduled at most {} days ahead",
                    self.max_schedule_ahead.as_secs() / 86_400
                ),
            )
        };
        let run_at = match (options.wait_until, options.delay) {
            (Some(at), _) => at,
            (None, Some(delay)) => chrono::Duration::from_std(delay)
                .ok()
                .and_then(|d| now.checked_add_signed(d))
                .ok_or_else(too_far)?,
            (None, None) => return Ok(None),
        };
        let limit = chrono::Duration::from_std(self.max_schedule_ahead).unwrap_or(chrono::Duration::MAX);
        if run_at - now > limit {
            return Err(too_far());
        }
        Ok(Some(run_at))
    }

    /// Takes the `unique_for` lock of `J` with `body`, or refuses a duplicate. A lock whose
    /// send failed is taken over with its job id.
    async fn claim_unique(
        &self,
        job: &'static str,
        body: &str,
        window: Duration,
        job_id: Option<JobId>,
    ) -> Result<(String, UniqueLock), EnqueueError> {
        let now = self.clock.now();
        let until = now + chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX);
        let key = state_key(job, kind::UNIQUE, &payload_hash(body));
        let lock = UniqueLock { job_id: job_id.unwrap_or_else(JobId::random), sent: false };
        let value = serde_json::to_string(&lock).unwrap_or_default();
        match self.store.put_if_vacant(&key, &value, until, now).await? {
            PutOutcome::Written => Ok((key, lock)),
            PutOutcome::Taken(existing) => match serde_json::from_str::<UniqueLock>(&existing.value) {
                Ok(unsent) if !unsent.sent => Ok((key, unsent)),
                _ => Err(EnqueueError::Duplicate { job, until: existing.expires_at }),
            },
        }
    }

    /// Notes that the locked job's send was answered, so later enqueues are duplicates.
    async fn mark_sent(&self, key: &str, mut lock: UniqueLock, window: Duration) {
        lock.sent = true;
        let until = self.clock.now() + chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX);
        let value = serde_json::to_string(&lock).unwrap_or_default();
        // If this fails, a later enqueue takes the lock over with the same job id: the runner
        // acknowledges that copy as a duplicate, so nothing runs twice.
        if let Err(e) = self.store.put(key, &value, until).await {
            tracing::warn!(error = %e, "could not mark the unique lock sent");
        }
    }
}

/// The bodies of a bulk enqueue, refusing options that name one job.
fn bulk_bodies<J: Job>(
    args: impl IntoIterator<Item = J::Args>,
    options: &EnqueueOptions,
) -> Result<Vec<String>, EnqueueError> {
    if options.job_id.is_some() || options.idempotency_key.is_some() || options.unique_for.is_some() {
        let message = "a job id, an idempotency key or unique_for names one job, not a bulk enqueue";
        return Err(JobError::permanent(ErrorKind::INVALID_ARGUMENTS, message).into());
    }
    Ok(args.into_iter().map(|a| encode_args(&a)).collect::<Result<Vec<_>, _>>()?)
}

/// Gives back the `unique_until_done` lock at `key` held by job `job_id` of `job`, once the job
/// is done (it succeeded or is in the DLQ): a later enqueue of the same job and arguments is
/// then accepted. A key outside the job's locks, or a lock another job id holds now, is left
/// alone (the attribute comes from the message, which anyone may send).
pub(crate) async fn release_unique(
    store: &Arc<dyn StateStore>,
    job: &str,
    key: &str,
    job_id: &JobId,
    now: DateTime<Utc>,
) -> Result<(), PortError> {
    if !key.starts_with(&state_key(job, kind::UNIQUE, "")) {
        return Ok(());
    }
    let Some(record) = store.get(key, now).await? else { return Ok(()) };
    match serde_json::from_str::<UniqueLock>(&record.value) {
        Ok(lock) if lock.job_id == *job_id => {
            store.replace(key, &record.value, &record.value, now).await.map(drop)
        }
        _ => Ok(()),
    }
}

/// The `DelaySeconds` that brings a message closest to `run_at` without passing SQS's limit;
/// rounded up so a message never runs early.
pub(crate) fn hop_delay(run_at: DateTime<Utc>, now: DateTime<Utc>) -> u32 {
    let millis = (run_at - now).num_milliseconds().max(0);
    let secs = u32::try_from((millis + 999) / 1000).unwrap_or(u32::MAX);
    secs.min(MAX_DELAY_SECONDS)
}

/// A stable hash of a body, for unique-job and idempotency keys.
pub(crate) fn payload_hash(body: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(body.as_bytes());
    digest
        .iter()
        .take(16)
        .flat_map(|b| [HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]])
        .map(char::from)
        .collect()
}
