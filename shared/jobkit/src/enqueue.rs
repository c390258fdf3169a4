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
    job::{Job, Lane, lane_queue_name, queue_name},
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
    /// The job's lane has no queue this process knows (on AWS, no `JOBKIT_QUEUE_URL_<JOB>__<LANE>`).
    #[error(
        "no queue is known for {job}'s {lane} lane: set JOBKIT_QUEUE_URL_{}__{} (the template gives it to every function that enqueues {job})",
        job.to_ascii_uppercase(),
        lane.as_str().to_ascii_uppercase()
    )]
    NoLaneQueue {
        /// The job's name.
        job: String,
        /// The lane.
        lane: Lane,
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
    /// The lane this run takes (ActiveJob's `set(queue:)`), instead of the one the job picks
    /// from its arguments ([`Job::lane`]); it must be one of the job's lanes.
    pub lane: Option<Lane>,
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

    /// Run on `lane`, one of the job's lanes.
    pub fn on_lane(lane: Lane) -> Self {
        Self { lane: Some(lane), ..Self::default() }
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

/// Where each job's queues are: a queue id (an SQS URL, or an embedded queue's name) per job
/// name, and per lane of a job that has other lanes than its own.
#[derive(Debug, Clone, Default)]
pub struct QueueRoutes {
    /// By `job` (its own lane's queue) and `job/lane` (another lane's).
    routes: HashMap<String, String>,
}

/// A route's key: the job, or the job and one of its other lanes.
fn route_key(job: &str, lane: Option<Lane>) -> String {
    match lane {
        None => job.to_owned(),
        Some(lane) => format!("{job}/{lane}"),
    }
}

impl QueueRoutes {
    /// Routes job `job` (its own lane) to `queue_id`.
    pub fn with(mut self, job: impl Into<String>, queue_id: impl Into<String>) -> Self {
        self.routes.insert(job.into(), queue_id.into());
        self
    }

    /// Routes job `job`'s other lane `lane` to `queue_id`.
    pub fn with_lane(mut self, job: &str, lane: Lane, queue_id: impl Into<String>) -> Self {
        self.routes.insert(route_key(job, Some(lane)), queue_id.into());
        self
    }

    /// Reads `JOBKIT_QUEUE_URL_<JOB>` variables (`JOBKIT_QUEUE_URL_CUSTOMER_SYNC=https://...`)
    /// and `JOBKIT_QUEUE_URL_<JOB>__<LANE>` ones for a job's other lanes
    /// (`JOBKIT_QUEUE_URL_STORE_SYNC__LOW`): the template gives a function those of every job
    /// it enqueues, and its own.
    pub fn from_env() -> Self {
        Self::from_vars(std::env::vars())
    }

    fn from_vars(vars: impl Iterator<Item = (String, String)>) -> Self {
        let routes = vars
            .filter_map(|(k, v)| {
                let name = k.strip_prefix("JOBKIT_QUEUE_URL_")?.to_ascii_lowercase();
                match name.split_once("__") {
                    Some((job, lane)) => Some((route_key(job, Some(lane.parse().ok()?)), v)),
                    None => Some((name, v)),
                }
            })
            .collect();
        Self { routes }
    }

    /// The queue id of job `job` (its own lane): its route, else its queue's name by the
    /// convention ([`queue_name`]), which is the embedded backend's queue id.
    pub fn resolve(&self, job: &str) -> std::borrow::Cow<'_, str> {
        match self.routes.get(job) {
            Some(id) => std::borrow::Cow::Borrowed(id.as_str()),
            None => std::borrow::Cow::Owned(queue_name(job)),
        }
    }

    /// The queue id of job `job` on `lane` (`None`: its own lane): the lane's route, else, when
    /// the job has no routes at all (the embedded backend), the lane queue's name by the
    /// convention ([`lane_queue_name`]).
    ///
    /// # Errors
    /// [`EnqueueError::NoLaneQueue`] when the job is routed (on AWS) but that lane is not.
    pub fn resolve_lane(
        &self,
        job: &str,
        lane: Option<Lane>,
    ) -> Result<std::borrow::Cow<'_, str>, EnqueueError> {
        let Some(lane) = lane else { return Ok(self.resolve(job)) };
        match self.routes.get(&route_key(job, Some(lane))) {
            Some(id) => Ok(std::borrow::Cow::Borrowed(id.as_str())),
            None if self.routes.contains_key(job) => {
                Err(EnqueueError::NoLaneQueue { job: job.to_owned(), lane })
            }
            None => Ok(std::borrow::Cow::Owned(lane_queue_name(job, lane))),
        }
    }
}

/// A job's lanes as an enqueuer sees them: its own (whose queue is the job's) and its others.
#[derive(Debug, Clone, Copy)]
struct Lanes {
    own: Lane,
    others: &'static [Lane],
}

impl Lanes {
    /// Where a run on `chosen` goes: `None` for the job's own queue, the lane for another's.
    ///
    /// # Errors
    /// An invalid-arguments error naming the job's lanes when `chosen` is none of them.
    fn route(self, job: &str, chosen: Lane) -> Result<Option<Lane>, JobError> {
        if chosen == self.own {
            Ok(None)
        } else if self.others.contains(&chosen) {
            Ok(Some(chosen))
        } else {
            let lanes: Vec<&str> =
                std::iter::once(self.own).chain(self.others.iter().copied()).map(Lane::as_str).collect();
            let message = format!("{job} has no {chosen} lane (its lanes: {})", lanes.join(", "));
            Err(JobError::permanent(ErrorKind::INVALID_ARGUMENTS, message))
        }
    }
}

/// A job's address for the jobs that enqueue it without depending on its crate: its name, the
/// type of its arguments (`shop::jobs::CUSTOMER_SYNC`) and, for a job with several lanes, its
/// lanes and how it picks one. The job's own crate checks that these are its `Job::NAME`,
/// `Job::Args`, `Job::LANE`, `Job::OTHER_LANES` and `Job::lane`.
pub struct JobRef<A> {
    name: &'static str,
    lanes: Option<(Lanes, LaneChooser<A>)>,
}

/// How a job picks a run's lane from its arguments (its `Job::lane`).
type LaneChooser<A> = fn(&A) -> Lane;

impl<A> Clone for JobRef<A> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<A> Copy for JobRef<A> {}

impl<A> JobRef<A> {
    /// The job named `name`, taking `A`, with one lane: every run goes to its queue.
    pub const fn new(name: &'static str) -> Self {
        Self { name, lanes: None }
    }

    /// The job with its own lane `own`, its `others`, and `choose` picking a run's lane from
    /// its arguments (what its `Job::lane` does).
    #[must_use]
    pub const fn with_lanes(self, own: Lane, others: &'static [Lane], choose: fn(&A) -> Lane) -> Self {
        Self { name: self.name, lanes: Some((Lanes { own, others }, choose)) }
    }

    /// The job's name.
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// The job's own lane and its others, when this address declares them.
    pub fn lanes(&self) -> Option<(Lane, &'static [Lane])> {
        self.lanes.map(|(lanes, _)| (lanes.own, lanes.others))
    }

    /// The lane a run of `args` takes unless the enqueue chooses one, when this address
    /// declares the job's lanes.
    pub fn lane_of(&self, args: &A) -> Option<Lane> {
        self.lanes.map(|(_, choose)| choose(args))
    }

    /// Where a run of `args` goes (`None`: the job's own queue).
    fn route(&self, args: &A, chosen: Option<Lane>) -> Result<Option<Lane>, JobError> {
        match (self.lanes, chosen) {
            (Some((lanes, choose)), chosen) => lanes.route(self.name, chosen.unwrap_or_else(|| choose(args))),
            (None, None) => Ok(None),
            (None, Some(lane)) => {
                let message = format!(
                    "{} is addressed here with its own lane only: its address (JobRef) does not declare a {lane} lane",
                    self.name
                );
                Err(JobError::permanent(ErrorKind::INVALID_ARGUMENTS, message))
            }
        }
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
        let lane = lane_of::<J>(args, options.lane)?;
        self.send_to(J::NAME, encode_args(args)?, options, lane).await
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
        let lane = to.route(args, options.lane)?;
        self.send_to(to.name(), encode_args(args)?, options, lane).await
    }

    /// Sends one job to its queue on `lane` (`None`: the job's own).
    async fn send_to(
        &self,
        job: &'static str,
        body: String,
        mut options: EnqueueOptions,
        lane: Option<Lane>,
    ) -> Result<JobId, EnqueueError> {
        let queue = self.routes.resolve_lane(job, lane)?;
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
        self.queue.send(&queue, prepared.message).await?;
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

    /// Sends `bodies` of `job` with `SendMessageBatch` (one call per lane they go to), each
    /// with its unique lock if asked, and registered in `batch` (its id and expiry) if given,
    /// before it is sent.
    async fn send_bulk(
        &self,
        job: &'static str,
        bodies: Vec<(String, Option<Lane>)>,
        options: &EnqueueOptions,
        batch: Option<(&str, DateTime<Utc>)>,
    ) -> Result<Vec<Result<JobId, EnqueueError>>, EnqueueError> {
        // Each job's unique lock first (a duplicate is that job's answer), then one batch send.
        let mut answers: Vec<(usize, Result<JobId, EnqueueError>)> = Vec::new();
        let mut ready: Vec<(usize, Prepared, Option<HeldLock>, Option<Lane>)> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let lanes: Vec<Option<Lane>> = bodies.iter().map(|(_, lane)| *lane).collect();
        let mut queues = HashMap::new();
        for lane in lanes {
            if let std::collections::hash_map::Entry::Vacant(slot) = queues.entry(lane) {
                slot.insert(self.routes.resolve_lane(job, lane)?);
            }
        }
        for (index, (body, lane)) in bodies.into_iter().enumerate() {
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
            ready.push((index, prepared, lock, lane));
        }
        // One send per lane, each keeping its members' order.
        let mut sent = Vec::with_capacity(ready.len());
        for (lane, queue) in &queues {
            let of_lane: Vec<_> = ready.iter().filter(|(.., l)| l == lane).collect();
            if of_lane.is_empty() {
                continue;
            }
            let messages = of_lane.iter().map(|(_, p, ..)| p.message.clone()).collect();
            let results = self.queue.send_batch(queue, messages).await?;
            sent.extend(of_lane.iter().map(|(index, ..)| *index).zip(results));
        }
        sent.sort_by_key(|(index, _)| *index);
        for ((index, prepared, lock, _), (_, result)) in ready.into_iter().zip(sent) {
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
        if let Some(header) = crate::trace::header_for_child() {
            message.attributes.insert(attr::TRACEPARENT.into(), header);
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

/// The bodies of a bulk enqueue, each with the lane it goes to, refusing options that name
/// one job.
fn bulk_bodies<J: Job>(
    args: impl IntoIterator<Item = J::Args>,
    options: &EnqueueOptions,
) -> Result<Vec<(String, Option<Lane>)>, EnqueueError> {
    if options.job_id.is_some() || options.idempotency_key.is_some() || options.unique_for.is_some() {
        let message = "a job id, an idempotency key or unique_for names one job, not a bulk enqueue";
        return Err(JobError::permanent(ErrorKind::INVALID_ARGUMENTS, message).into());
    }
    let bodies = args.into_iter().map(|a| Ok((encode_args(&a)?, lane_of::<J>(&a, options.lane)?)));
    Ok(bodies.collect::<Result<Vec<_>, JobError>>()?)
}

/// Where a run of `J` with `args` goes (`None`: the job's own queue): the enqueue's lane if it
/// chose one, else the job's pick.
///
/// # Errors
/// An invalid-arguments error when the lane is none of the job's.
fn lane_of<J: Job>(args: &J::Args, chosen: Option<Lane>) -> Result<Option<Lane>, JobError> {
    Lanes { own: J::LANE, others: J::OTHER_LANES }.route(J::NAME, chosen.unwrap_or_else(|| J::lane(args)))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> QueueRoutes {
        QueueRoutes::from_vars(pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())))
    }

    #[test]
    fn the_templates_variables_route_a_job_and_each_of_its_other_lanes() {
        let routes = vars(&[
            ("JOBKIT_QUEUE_URL_STORE_SYNC", "https://sqs/store-sync"),
            ("JOBKIT_QUEUE_URL_STORE_SYNC__LOW", "https://sqs/store-sync-low"),
            ("JOBKIT_QUEUE_URL_CUSTOMER_SYNC", "https://sqs/customer-sync"),
            // Not a lane: ignored rather than taken for a job named `store_sync__fast`.
            ("JOBKIT_QUEUE_URL_STORE_SYNC__FAST", "https://sqs/nowhere"),
        ]);
        assert_eq!(routes.resolve("store_sync"), "https://sqs/store-sync");
        assert_eq!(routes.resolve_lane("store_sync", Some(Lane::Low)).unwrap(), "https://sqs/store-sync-low");
        assert_eq!(routes.resolve_lane("store_sync", None).unwrap(), "https://sqs/store-sync");
        // Routed on AWS but not on that lane: a clear error, not a send to a made-up name.
        let missing = routes.resolve_lane("customer_sync", Some(Lane::Low)).unwrap_err();
        assert!(missing.to_string().contains("set JOBKIT_QUEUE_URL_CUSTOMER_SYNC__LOW"), "{missing}");
        // Unrouted (the embedded backend): the convention's names.
        assert_eq!(routes.resolve_lane("clean_database", Some(Lane::High)).unwrap(), "clean-database-high");
        assert_eq!(routes.resolve("clean_database"), "clean-database");
    }
}
