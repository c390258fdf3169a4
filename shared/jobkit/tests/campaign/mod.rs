//! The fault campaign: jobs whose side effect is counted per job id, run by the batch runner
//! as Lambda's event source mapping would (receive ten, run, delete what is done) while faults
//! are injected everywhere: scripted transient and permanent failures, panics, runs that
//! outlive their timeout, duplicate deliveries, and queue and store calls that fail or throttle
//! (before or after doing their work). The report counts each job: completed exactly once, in
//! the DLQ with a reason, lost, or applied twice. Shared by `tests/fault_campaign.rs` (the CI
//! size) and `benches/fault_campaign.rs` (10,000 jobs).

#![allow(dead_code)]

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    ops::Range,
    sync::{Arc, Mutex},
    time::Duration,
};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use jobkit::{
    BatchRunner, Clock, EnqueueOptions, Enqueuer, ErrorKind, Job, JobContext, JobError, JobId, ManualClock,
    OutgoingMessage, PortError, PortResult, PutOutcome, Queue, QueueRoutes, ReceivedMessage, RetryPolicy,
    RunnerConfig, Runtime, StateStore, StoredRecord, Wait,
    dead_letter::DeadLetterError,
    embedded::{EmbeddedDb, EmbeddedQueue, EmbeddedStore, QueueConfig},
    message::attr,
};
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde::{Deserialize, Serialize};

/// How often each fault happens.
#[derive(Debug, Clone, Copy)]
pub struct Faults {
    /// Jobs that fail with an outage 1-3 times, then succeed.
    pub transient: f64,
    /// Jobs that fail for good (discarded to the DLQ).
    pub permanent: f64,
    /// Jobs that panic on their first run.
    pub panic: f64,
    /// Jobs whose first run outlives the job's timeout.
    pub overrun: f64,
    /// Jobs sent twice with the same job id.
    pub duplicate: f64,
    /// Queue and store calls that fail (half before doing their work, half after).
    pub port: f64,
}

/// The rates.
pub const FAULTS: Faults =
    Faults { transient: 0.20, permanent: 0.05, panic: 0.01, overrun: 0.01, duplicate: 0.10, port: 0.02 };

const QUEUE: &str = "campaign";
const DLQ: &str = "campaign_dlq";
/// The job's timeout; an overrun sleeps twice as long.
const TIMEOUT: Duration = Duration::from_millis(40);
/// Each batch's deadline, as a Lambda timeout: room for the job's timeout and the runner's 1 s
/// margin, and the in-progress window of a key whose invocation was interrupted (real time on
/// moto, so kept short).
const INVOCATION_TIMEOUT: chrono::Duration = chrono::Duration::seconds(10);

/// What job number `n` is scripted to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Script {
    /// Succeeds.
    Clean,
    /// Fails with an outage this many times, then succeeds.
    Transient(u32),
    /// Fails for good.
    Permanent,
    /// Panics on its first run.
    Panic,
    /// Outlives its timeout on its first run.
    Overrun,
}

/// A uniform number in [0, 1) from `n` (SplitMix64), so a job's script does not depend on
/// the order things run in.
fn unit(n: u64, salt: u64) -> f64 {
    let mut z = n.wrapping_add(salt).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// The script of job `n` under `faults`.
pub fn script(n: u64, faults: &Faults) -> Script {
    let u = unit(n, 1);
    let mut edge = faults.permanent;
    if u < edge {
        return Script::Permanent;
    }
    edge += faults.panic;
    if u < edge {
        return Script::Panic;
    }
    edge += faults.overrun;
    if u < edge {
        return Script::Overrun;
    }
    edge += faults.transient;
    if u < edge {
        return Script::Transient(1 + (n % 3) as u32);
    }
    Script::Clean
}

/// The side effect: a counter per job number.
#[derive(Debug, Default)]
pub struct Effects {
    counts: Mutex<HashMap<u64, u32>>,
    runs: Mutex<HashMap<u64, u32>>,
}

impl Effects {
    fn apply(&self, n: u64) {
        *self.counts.lock().unwrap().entry(n).or_default() += 1;
    }

    fn run(&self, n: u64) -> u32 {
        let mut runs = self.runs.lock().unwrap();
        let run = runs.entry(n).or_default();
        *run += 1;
        *run
    }

    fn count(&self, n: u64) -> u32 {
        self.counts.lock().unwrap().get(&n).copied().unwrap_or(0)
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct CampaignArgs {
    n: u64,
}

/// The job under test.
#[derive(Clone)]
pub struct CampaignJob {
    effects: Arc<Effects>,
    faults: Faults,
}

impl Job for CampaignJob {
    type Args = CampaignArgs;
    const NAME: &'static str = "campaign";
    const QUEUE: &'static str = QUEUE;

    async fn perform(&self, args: CampaignArgs, _ctx: &mut JobContext) -> Result<(), JobError> {
        let run = self.effects.run(args.n);
        match script(args.n, &self.faults) {
            Script::Permanent => {
                return Err(JobError::permanent(ErrorKind::INVALID_INPUT, "scripted: refused for good"));
            }
            Script::Panic if run == 1 => panic!("scripted panic of job {}", args.n),
            Script::Overrun if run == 1 => tokio::time::sleep(TIMEOUT * 2).await,
            Script::Transient(failures) if run <= failures => {
                return Err(JobError::retryable(ErrorKind::UNAVAILABLE, "scripted outage"));
            }
            _ => {}
        }
        self.effects.apply(args.n);
        Ok(())
    }

    fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy::new().default_retry(Wait::Fixed(Duration::from_secs(5)), 8)
    }

    fn timeout(&self) -> Duration {
        TIMEOUT
    }
}

/// Fails calls at random, half before doing the work and half after (the answer lost).
#[derive(Debug)]
pub struct Chaos {
    rate: f64,
    rng: Mutex<StdRng>,
    injected: Mutex<u64>,
}

enum Strike {
    Before,
    After,
    None,
}

impl Chaos {
    pub fn new(rate: f64, seed: u64) -> Self {
        Self { rate, rng: Mutex::new(StdRng::seed_from_u64(seed)), injected: Mutex::new(0) }
    }

    fn strike(&self) -> Strike {
        let mut rng = self.rng.lock().unwrap();
        if rng.random::<f64>() >= self.rate {
            return Strike::None;
        }
        *self.injected.lock().unwrap() += 1;
        if rng.random::<bool>() { Strike::Before } else { Strike::After }
    }

    fn error(&self, call: &str) -> PortError {
        PortError::Throttled(format!("chaos: {call} throttled"))
    }

    /// Calls that failed on purpose so far.
    pub fn injected(&self) -> u64 {
        *self.injected.lock().unwrap()
    }

    async fn call<T>(
        &self,
        name: &str,
        work: impl std::future::Future<Output = PortResult<T>>,
    ) -> PortResult<T> {
        match self.strike() {
            Strike::Before => Err(self.error(name)),
            Strike::After => {
                work.await?;
                Err(self.error(name))
            }
            Strike::None => work.await,
        }
    }
}

/// A queue that fails at random.
#[derive(Debug)]
pub struct ChaosQueue {
    inner: Arc<dyn Queue>,
    chaos: Arc<Chaos>,
}

#[async_trait]
impl Queue for ChaosQueue {
    async fn send(&self, queue: &str, message: OutgoingMessage) -> PortResult<String> {
        self.chaos.call("send", self.inner.send(queue, message)).await
    }

    async fn send_batch(
        &self,
        queue: &str,
        messages: Vec<OutgoingMessage>,
    ) -> PortResult<Vec<PortResult<String>>> {
        self.chaos.call("send_batch", self.inner.send_batch(queue, messages)).await
    }

    async fn receive(&self, queue: &str, max: usize, wait: Duration) -> PortResult<Vec<ReceivedMessage>> {
        self.inner.receive(queue, max, wait).await
    }

    async fn delete(&self, queue: &str, receipt_handle: &str) -> PortResult {
        self.chaos.call("delete", self.inner.delete(queue, receipt_handle)).await
    }

    async fn change_visibility(&self, queue: &str, receipt_handle: &str, timeout: Duration) -> PortResult {
        self.chaos
            .call("change_visibility", self.inner.change_visibility(queue, receipt_handle, timeout))
            .await
    }
}

/// A state store that fails at random.
#[derive(Debug)]
pub struct ChaosStore {
    inner: Arc<dyn StateStore>,
    chaos: Arc<Chaos>,
}

#[async_trait]
impl StateStore for ChaosStore {
    async fn get(&self, key: &str, now: DateTime<Utc>) -> PortResult<Option<StoredRecord>> {
        self.chaos.call("get", self.inner.get(key, now)).await
    }

    async fn put_if_vacant(
        &self,
        key: &str,
        value: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> PortResult<PutOutcome> {
        self.chaos.call("put_if_vacant", self.inner.put_if_vacant(key, value, expires_at, now)).await
    }

    async fn put(&self, key: &str, value: &str, expires_at: DateTime<Utc>) -> PortResult {
        self.chaos.call("put", self.inner.put(key, value, expires_at)).await
    }

    async fn replace(
        &self,
        key: &str,
        expected: &str,
        value: &str,
        expires_at: DateTime<Utc>,
    ) -> PortResult<bool> {
        self.chaos.call("replace", self.inner.replace(key, expected, value, expires_at)).await
    }

    async fn delete(&self, key: &str) -> PortResult {
        self.chaos.call("delete", self.inner.delete(key)).await
    }

    async fn increment(&self, key: &str, expires_at: DateTime<Utc>, now: DateTime<Utc>) -> PortResult<i64> {
        self.chaos.call("increment", self.inner.increment(key, expires_at, now)).await
    }

    async fn purge_expired(&self, now: DateTime<Utc>, limit: usize) -> PortResult<usize> {
        self.inner.purge_expired(now, limit).await
    }
}

/// What the campaign found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Distinct jobs enqueued.
    pub jobs: u64,
    /// Extra deliveries sent on purpose (same job id).
    pub duplicates_sent: u64,
    /// Effect applied exactly once, not in the DLQ.
    pub exactly_once: u64,
    /// Not applied, in the DLQ with an error kind and reason.
    pub in_dlq_with_reason: u64,
    /// Of those, scripted to fail for good (the rest are findings).
    pub in_dlq_scripted: u64,
    /// Not applied, in the DLQ without a reason (moved there by SQS's `maxReceiveCount`).
    pub in_dlq_without_reason: u64,
    /// Neither applied nor in the DLQ.
    pub lost: u64,
    /// Applied more than once.
    pub doubled: u64,
    /// Applied once and also in the DLQ.
    pub applied_and_dead: u64,
    /// Queue and store calls failed on purpose.
    pub port_faults: u64,
    /// Batches the runner handled.
    pub batches: u64,
    /// How far the virtual clock moved.
    pub virtual_minutes: i64,
}

impl Report {
    /// Adds `other`'s counts to these (waves of one campaign).
    pub fn add(&mut self, other: &Report) {
        self.jobs += other.jobs;
        self.duplicates_sent += other.duplicates_sent;
        self.exactly_once += other.exactly_once;
        self.in_dlq_with_reason += other.in_dlq_with_reason;
        self.in_dlq_scripted += other.in_dlq_scripted;
        self.in_dlq_without_reason += other.in_dlq_without_reason;
        self.lost += other.lost;
        self.doubled += other.doubled;
        self.applied_and_dead += other.applied_and_dead;
        self.port_faults += other.port_faults;
        self.batches += other.batches;
        self.virtual_minutes += other.virtual_minutes;
    }

    /// The Markdown row of this report.
    pub fn row(&self, backend: &str) -> String {
        format!(
            "| {backend} | {} | {} | {} | {} ({} scripted) | **{}** | **{}** | {} | {} |",
            self.jobs,
            self.duplicates_sent,
            self.exactly_once,
            self.in_dlq_with_reason,
            self.in_dlq_scripted,
            self.lost,
            self.doubled,
            self.port_faults,
            self.virtual_minutes
        )
    }
}

/// The header of [`Report::row`].
pub const HEADER: &str = "| backend | jobs | duplicates sent | exactly once | in the DLQ with reason | lost | applied twice | port faults injected | virtual minutes |\n|---|---|---|---|---|---|---|---|---|";

/// Where a campaign runs.
pub struct Backend {
    /// The queue the event source mapping receives from (no faults: Lambda's own).
    pub queue: Arc<dyn Queue>,
    /// The state store (faults are added around it).
    pub store: Arc<dyn StateStore>,
    /// The job's queue.
    pub queue_id: String,
    /// Its DLQ.
    pub dlq_id: String,
    /// The runner's clock.
    pub clock: Arc<dyn Clock>,
    /// How to tell what is left and to wait for it.
    pub drive: Drive,
}

/// How the campaign waits for messages that are not visible yet.
pub enum Drive {
    /// Moves this virtual clock to the embedded queue's next visible message.
    Virtual(ManualClock, Arc<EmbeddedQueue>),
    /// Long-polls SQS in real time; done when the queue's counts are all zero.
    Sqs(Arc<jobkit::aws::SqsQueue>),
}

/// Runs `jobs` jobs on the embedded backend with a virtual clock that jumps to the next due
/// message.
///
/// # Panics
/// If the embedded backend cannot be set up, or the queue never drains.
pub async fn run_embedded(jobs: u64, faults: Faults, seed: u64) -> Report {
    let clock = ManualClock::new(Utc::now());
    let db = EmbeddedDb::in_memory().expect("sqlite");
    let raw = Arc::new(EmbeddedQueue::new(db.clone(), Arc::new(clock.clone())));
    raw.create_queue(DLQ, QueueConfig::default()).expect("dlq");
    let config = QueueConfig {
        visibility_timeout: Duration::from_secs(60),
        max_receive_count: Some(max_receive_count()),
        dead_letter_queue: Some(DLQ.to_owned()),
        fifo: false,
    };
    raw.create_queue(QUEUE, config).expect("queue");
    let backend = Backend {
        queue: raw.clone(),
        store: Arc::new(EmbeddedStore::new(db)),
        queue_id: QUEUE.to_owned(),
        dlq_id: DLQ.to_owned(),
        clock: Arc::new(clock.clone()),
        drive: Drive::Virtual(clock, raw),
    };
    run(backend, jobs, faults, seed).await
}

/// The DLQ redrive threshold, as the template sets it: attempts + 5.
pub fn max_receive_count() -> u32 {
    CampaignJob { effects: Arc::default(), faults: FAULTS }.retry_policy().max_attempts() + 5
}

/// Runs `jobs` jobs (numbers `0..jobs`) on `backend` under `faults`; `seed` drives the port
/// faults.
///
/// # Panics
/// If the backend fails outside the injected faults, or the queue never drains.
pub async fn run(backend: Backend, jobs: u64, faults: Faults, seed: u64) -> Report {
    run_numbers(backend, 0..jobs, faults, seed).await
}

/// [`run`] for the jobs numbered `numbers` (what each does follows from its number), so that
/// a long campaign can run in waves on fresh queues and still cover 10,000 different jobs.
///
/// # Panics
/// As [`run`].
pub async fn run_numbers(backend: Backend, numbers: Range<u64>, faults: Faults, seed: u64) -> Report {
    quiet_scripted_panics();
    let job = CampaignJob { effects: Arc::new(Effects::default()), faults };
    let chaos = Arc::new(Chaos::new(faults.port, seed));
    let routes = QueueRoutes::default().with(QUEUE, backend.queue_id.clone());
    let runtime = Runtime {
        queue: Arc::new(ChaosQueue { inner: backend.queue.clone(), chaos: chaos.clone() }),
        store: Arc::new(ChaosStore { inner: backend.store.clone(), chaos: chaos.clone() }),
        clock: backend.clock.clone(),
        notifier: None,
        metrics: None,
        routes: routes.clone(),
    };
    let config = RunnerConfig::new(backend.queue_id.clone(), backend.dlq_id.clone());
    let runner = BatchRunner::new(job.clone(), runtime.clone(), config);
    let enqueuer = Enqueuer::new(backend.queue.clone(), backend.store.clone(), backend.clock.clone(), routes);
    let duplicates_sent = enqueue(&enqueuer, numbers.clone(), &faults).await;

    let started = backend.clock.now();
    let mut batches = 0;
    loop {
        let wait = match backend.drive {
            Drive::Virtual(..) => Duration::ZERO,
            Drive::Sqs(_) => Duration::from_secs(1),
        };
        let messages = backend.queue.receive(&backend.queue_id, 10, wait).await.expect("receive");
        if messages.is_empty() {
            match &backend.drive {
                Drive::Virtual(clock, queue) => {
                    match queue.next_visible_at(&backend.queue_id).expect("next visible") {
                        Some(at) => clock.set(at.max(clock.now())),
                        None => break,
                    }
                }
                Drive::Sqs(sqs) => {
                    let counts = sqs.approximate_counts(&backend.queue_id).await.expect("counts");
                    if counts.visible + counts.in_flight + counts.delayed == 0 {
                        break;
                    }
                }
            }
            continue;
        }
        let outcome = runner.process(messages, backend.clock.now() + INVOCATION_TIMEOUT).await;
        let done: Vec<String> =
            outcome.records.iter().filter(|r| r.status.is_done()).map(|r| r.receipt_handle.clone()).collect();
        // The event source mapping's delete fails now and then too; those come back.
        let _ = runtime.queue.delete_batch(&backend.queue_id, &done).await;
        batches += 1;
        assert!(batches < (numbers.end - numbers.start) * 50, "the queue does not drain");
    }
    let dead = dead_letters(&backend).await;
    let mut report = tally(numbers, &job, &faults, &dead);
    report.duplicates_sent = duplicates_sent;
    report.port_faults = chaos.injected();
    report.batches = batches;
    report.virtual_minutes = (backend.clock.now() - started).num_minutes();
    report
}

/// Everything in the DLQ.
async fn dead_letters(backend: &Backend) -> Vec<ReceivedMessage> {
    match &backend.drive {
        Drive::Virtual(_, queue) => queue.peek(&backend.dlq_id, usize::MAX).expect("dlq"),
        Drive::Sqs(_) => {
            let mut all: Vec<ReceivedMessage> = Vec::new();
            loop {
                let batch =
                    backend.queue.receive(&backend.dlq_id, 10, Duration::from_secs(1)).await.expect("dlq");
                if batch.is_empty() {
                    return all;
                }
                all.extend(batch);
            }
        }
    }
}

/// The runner catches the scripted panics; their default report would only be noise.
fn quiet_scripted_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let scripted =
            info.payload().downcast_ref::<String>().is_some_and(|m| m.starts_with("scripted panic"));
        if !scripted {
            default(info);
        }
    }));
}

/// Sends every job once (its job id `job-<n>`), and again for the duplicated ones.
async fn enqueue(enqueuer: &Enqueuer, numbers: Range<u64>, faults: &Faults) -> u64 {
    let mut duplicates = 0;
    for n in numbers {
        let copies = if unit(n, 2) < faults.duplicate { 2 } else { 1 };
        duplicates += copies - 1;
        for _ in 0..copies {
            let options = EnqueueOptions {
                job_id: Some(JobId::from(format!("job-{n}").as_str())),
                ..EnqueueOptions::default()
            };
            enqueuer.perform_later_with::<CampaignJob>(&CampaignArgs { n }, options).await.expect("enqueue");
        }
    }
    duplicates
}

fn tally(numbers: Range<u64>, job: &CampaignJob, faults: &Faults, dead: &[ReceivedMessage]) -> Report {
    let mut dead_ids: BTreeMap<u64, bool> = BTreeMap::new();
    for message in dead {
        let Some(n) = message
            .attributes
            .get(attr::JOB_ID)
            .and_then(|id| id.strip_prefix("job-"))
            .and_then(|n| n.parse().ok())
        else {
            continue;
        };
        let reasoned = DeadLetterError::read(&message.attributes).is_some_and(|e| !e.reason.is_empty());
        *dead_ids.entry(n).or_default() |= reasoned;
    }
    let mut report = Report { jobs: numbers.end - numbers.start, ..Report::default() };
    let scripted: BTreeSet<u64> =
        numbers.clone().filter(|n| script(*n, faults) == Script::Permanent).collect();
    for n in numbers {
        let applied = job.effects.count(n);
        let dead = dead_ids.get(&n).copied();
        match (applied, dead) {
            (0, Some(true)) => {
                report.in_dlq_with_reason += 1;
                report.in_dlq_scripted += u64::from(scripted.contains(&n));
            }
            (0, Some(false)) => report.in_dlq_without_reason += 1,
            (0, None) => report.lost += 1,
            (1, None) => report.exactly_once += 1,
            (1, Some(_)) => report.applied_and_dead += 1,
            _ => report.doubled += 1,
        }
    }
    report
}
