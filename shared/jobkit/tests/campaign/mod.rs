//! The fault campaign: every path a job takes through the runner (a plain job, steps continued
//! 2-5 times, delays that hop, ticks delivered 2-3 times while their run continues, twins in a
//! batch and across workers, `unique_for` whose send fails, a worker shut down mid-step, the
//! members of a batch and its callback), run by
//! two workers as Lambda's event source mapping would (receive ten, run, delete what is done)
//! while faults are injected everywhere: scripted transient and permanent failures, panics,
//! runs that outlive their timeout, duplicate deliveries, and queue and store calls that fail
//! or lose their answer. Effects are counted per step (a job's page), and the report says, per
//! path, whether each step was applied exactly once, or the job is in the DLQ with its reason.
//! Shared by `tests/fault_campaign.rs` (the CI size), `benches/fault_campaign.rs` (10,000 jobs)
//! and the system tests' campaign on moto.

#![allow(dead_code)]

mod chaos;
mod job;
mod report;

use std::{collections::BTreeMap, ops::Range, sync::Arc, time::Duration};

pub use chaos::{Chaos, ChaosQueue, ChaosStore};
use chrono::{DateTime, Utc};
pub use job::{CampaignArgs, CampaignJob, Effects, FAULTS, Faults, Path, on_other_lane, unit};
use jobkit::{
    EnqueueError, EnqueueOptions, Enqueuer, Job, JobId, JobRef, Lane, RetryPolicy,
    batch::JobBatch,
    clock::{Clock, ManualClock},
    embedded::{EmbeddedDb, EmbeddedQueue, EmbeddedStore, QueueConfig},
    enqueue::QueueRoutes,
    message::{OutgoingMessage, ReceivedMessage, attr},
    ports::{Queue, StateStore},
    runner::{BatchRunner, RunnerConfig, Runtime},
    shutdown::Shutdown,
};
pub use report::Report;

const QUEUE: &str = "campaign";
const LANE_QUEUE: &str = "campaign_low";
const DLQ: &str = "campaign_dlq";
/// Each batch's deadline, as a Lambda timeout: room for the job's timeout and the runner's 1 s
/// margin, and the window of a run whose invocation was interrupted (real time on moto, so
/// kept short).
const INVOCATION_TIMEOUT: chrono::Duration = chrono::Duration::seconds(10);
/// Workers polling the queue at once (execution environments).
const WORKERS: usize = 2;

/// Where a campaign runs.
pub struct Backend {
    /// The queue the event source mapping receives from (no faults: Lambda's own).
    pub queue: Arc<dyn Queue>,
    /// The state store (faults are added around it).
    pub store: Arc<dyn StateStore>,
    /// The job's queue.
    pub queue_id: String,
    /// The queue of its other lane (low), redriving to the same DLQ.
    pub lane_queue_id: String,
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

impl Drive {
    /// How long a delayed job waits: minutes on the virtual clock (several hops of 15 minutes),
    /// seconds in real time (one hop).
    fn delay(&self, n: u64) -> chrono::Duration {
        match self {
            Drive::Virtual(..) => chrono::Duration::minutes(20 + (n % 31) as i64),
            Drive::Sqs(_) => chrono::Duration::seconds(2 + (n % 3) as i64),
        }
    }
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
    raw.create_queue(QUEUE, config.clone()).expect("queue");
    raw.create_queue(LANE_QUEUE, config).expect("lane queue");
    let backend = Backend {
        queue: raw.clone(),
        store: Arc::new(EmbeddedStore::new(db)),
        queue_id: QUEUE.to_owned(),
        lane_queue_id: LANE_QUEUE.to_owned(),
        dlq_id: DLQ.to_owned(),
        clock: Arc::new(clock.clone()),
        drive: Drive::Virtual(clock, raw),
    };
    run(backend, jobs, faults, seed).await
}

/// The job's retry policy.
fn policy() -> RetryPolicy {
    <CampaignJob as Job>::retry_policy()
}

/// The DLQ redrive threshold, as the template sets it: attempts + 5.
pub fn max_receive_count() -> u32 {
    policy().max_attempts() + 5
}

/// Runs `jobs` jobs (numbers `0..jobs`) on `backend` under `faults`; `seed` drives the port
/// faults.
///
/// # Panics
/// If the backend fails outside the injected faults, or the queue never drains.
pub async fn run(backend: Backend, jobs: u64, faults: Faults, seed: u64) -> Report {
    run_numbers(backend, 0..jobs, faults, seed).await
}

/// The ports, config and job the workers share.
struct Plant {
    runtime: Runtime,
    config: RunnerConfig,
    effects: Arc<Effects>,
    faults: Faults,
}

/// One execution environment: a runner with its own in-process state and its own stop switch.
struct Worker {
    runner: BatchRunner<CampaignJob>,
    shutdown: Shutdown,
}

impl Plant {
    fn worker(&self) -> Worker {
        let shutdown = Shutdown::new();
        let job =
            CampaignJob { effects: self.effects.clone(), faults: self.faults, shutdown: shutdown.clone() };
        let runner =
            BatchRunner::new(job, self.runtime.clone(), self.config.clone()).with_shutdown(shutdown.clone());
        Worker { runner, shutdown }
    }
}

/// [`run`] for the jobs numbered `numbers` (what each does follows from its number), so that
/// a long campaign can run in waves on fresh queues and still cover 10,000 different jobs.
///
/// # Panics
/// As [`run`].
pub async fn run_numbers(backend: Backend, numbers: Range<u64>, faults: Faults, seed: u64) -> Report {
    quiet_scripted_panics();
    let chaos = Arc::new(Chaos::new(faults.port, seed));
    let routes = backend.routes();
    let runtime = Runtime {
        queue: Arc::new(ChaosQueue { inner: backend.queue.clone(), chaos: chaos.clone() }),
        store: Arc::new(ChaosStore { inner: backend.store.clone(), chaos: chaos.clone() }),
        clock: backend.clock.clone(),
        notifier: None,
        metrics: None,
        routes: routes.clone(),
    };
    // Every checkpoint continues in a new message: the continuation path on every step.
    let config = RunnerConfig {
        continue_within: INVOCATION_TIMEOUT.to_std().unwrap_or_default(),
        ..RunnerConfig::new(backend.queue_id.clone(), backend.dlq_id.clone())
            .with_lane(Lane::Low, backend.lane_queue_id.clone())
    };
    let plant = Plant { runtime, config, effects: Arc::new(Effects::default()), faults };
    let started = backend.clock.now();
    let deliveries = enqueue(&backend, &plant.runtime, numbers.clone(), &faults, started).await;

    let mut workers: Vec<Worker> = (0..WORKERS).map(|_| plant.worker()).collect();
    let (mut batches, mut workers_stopped, mut settle_us) = (0, 0, Vec::new());
    loop {
        let rounds = futures::future::join_all(workers.iter().map(|w| round(&backend, w))).await;
        let handled: Vec<u64> = rounds.iter().filter(|(records, _)| *records > 0).map(|(_, s)| *s).collect();
        batches += handled.len() as u64;
        settle_us.extend(handled);
        // A worker asked to stop finished its batch as a stopping worker does; a new
        // execution environment takes its place.
        for worker in &mut workers {
            if worker.shutdown.requested() {
                *worker = plant.worker();
                workers_stopped += 1;
            }
        }
        if rounds.iter().all(|(records, _)| *records == 0) && !wait_for_more(&backend).await {
            break;
        }
        assert!(batches < (numbers.end - numbers.start) * 60, "the queue does not drain");
    }
    let dead = dead_letters(&backend).await;
    let (paths, other_lane) = report::tally(numbers, &plant.effects, &faults, &deliveries, &dead);
    Report {
        paths,
        other_lane,
        port_faults: chaos.injected(),
        lost_send_answers: chaos.lost_send_answers(),
        workers_stopped,
        batches,
        minutes: (backend.clock.now() - started).num_minutes(),
        settle_us,
    }
}

/// One worker's turn, as Lambda's event source mapping takes it (the deletes fail now and then
/// too: those come back). Returns the records handled and the batch's slowest settling in
/// microseconds.
async fn round(backend: &Backend, worker: &Worker) -> (usize, u64) {
    let wait = match backend.drive {
        Drive::Virtual(..) => Duration::ZERO,
        Drive::Sqs(_) => Duration::from_secs(1),
    };
    // Both lanes' mappings feed this environment: one batch from each, but none once it is
    // shutting down (Lambda gives a stopping environment no new invocation; receiving a batch
    // only to hand every record back would spend their receives).
    let (mut records, mut settle_us) = (0, 0);
    for (index, (_, queue)) in worker.runner.config().queues().enumerate() {
        if worker.shutdown.requested() {
            break;
        }
        // Only the first long-polls: an empty round waits once, not once per lane.
        let wait = if index == 0 { wait } else { Duration::ZERO };
        let deadline = backend.clock.now() + INVOCATION_TIMEOUT;
        let outcome = worker.runner.poll_queue(queue, 10, wait, deadline).await.expect("receive");
        records += outcome.records.len();
        settle_us = settle_us.max((outcome.counts.settle_ms_max * 1000.0) as u64);
    }
    (records, settle_us)
}

/// When every worker found nothing: moves the virtual clock to the next due message, or tells
/// whether SQS still holds any. False when the queue is drained.
async fn wait_for_more(backend: &Backend) -> bool {
    match &backend.drive {
        Drive::Virtual(clock, queue) => {
            let next = [&backend.queue_id, &backend.lane_queue_id]
                .into_iter()
                .filter_map(|q| queue.next_visible_at(q).expect("next visible"))
                .min();
            match next {
                Some(at) => {
                    clock.set(at.max(clock.now()));
                    true
                }
                None => false,
            }
        }
        Drive::Sqs(sqs) => {
            let mut left = 0;
            for queue in [&backend.queue_id, &backend.lane_queue_id] {
                let counts = sqs.approximate_counts(queue).await.expect("counts");
                left += counts.visible + counts.in_flight + counts.delayed;
            }
            left > 0
        }
    }
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

/// Sends every job as its path says; returns the messages sent per job.
async fn enqueue(
    backend: &Backend,
    runtime: &Runtime,
    numbers: Range<u64>,
    faults: &Faults,
    started: DateTime<Utc>,
) -> BTreeMap<u64, u64> {
    // Producers' sends are not the runner's business: only the `unique_for` caller's go through
    // the failing queue.
    let routes = backend.routes();
    let enqueuer =
        Enqueuer::new(backend.queue.clone(), backend.store.clone(), backend.clock.clone(), routes.clone());
    let failing = Enqueuer::new(runtime.queue.clone(), backend.store.clone(), backend.clock.clone(), routes);
    let numbers_again = numbers.clone();
    let mut deliveries = BTreeMap::new();
    for n in numbers {
        let copies = if unit(n, 2) < faults.duplicate { 2 } else { 1 };
        let job_id = || JobId::from(format!("job-{n}").as_str());
        let sent = match Path::of(n) {
            Path::Plain | Path::Steps | Path::Shutdown => {
                for _ in 0..copies {
                    let options = EnqueueOptions { job_id: Some(job_id()), ..EnqueueOptions::default() };
                    enqueuer
                        .perform_later_with::<CampaignJob>(&CampaignArgs::new(n), options)
                        .await
                        .expect("enqueue");
                }
                copies
            }
            Path::Delayed => {
                // Sent as a producer would by hand: no delay, a `not_before`; the runner hops.
                let due = started + backend.drive.delay(n);
                let attributes = BTreeMap::from([
                    (attr::JOB_ID.to_owned(), format!("job-{n}")),
                    (attr::NOT_BEFORE.to_owned(), due.to_rfc3339()),
                ]);
                for _ in 0..copies {
                    send(backend, n, format!(r#"{{"n":{n}}}"#), attributes.clone()).await;
                }
                copies
            }
            Path::Ticks => {
                let tick = format!(
                    r#"{{"n":{n},"$schedule":{{"rule":"campaign-tick-{n}","time":"{}"}}}}"#,
                    started.to_rfc3339()
                );
                let copies = 2 + n % 2;
                for _ in 0..copies {
                    send(backend, n, tick.clone(), BTreeMap::new()).await;
                }
                copies
            }
            Path::Twins => {
                for _ in 0..3 {
                    let options = EnqueueOptions { job_id: Some(job_id()), ..EnqueueOptions::default() };
                    enqueuer
                        .perform_later_with::<CampaignJob>(&CampaignArgs::new(n), options)
                        .await
                        .expect("enqueue");
                }
                3
            }
            Path::Unique => enqueue_unique(&failing, n).await,
            // Sent below, a batch at a time.
            Path::Batch => continue,
        };
        deliveries.insert(n, sent);
    }
    for members in job::batches(numbers_again) {
        let sends = enqueue_batch(&failing, &members).await;
        deliveries.extend(members.iter().map(|n| (*n, sends)));
    }
    deliveries
}

/// Enqueues `members` as one batch through a queue whose sends fail now and then, calling
/// again as a caller would until every member was sent (and the batch sealed). Returns the
/// calls made: each member may have reached the queue once per call.
async fn enqueue_batch(enqueuer: &Enqueuer, members: &[u64]) -> u64 {
    let first = members[0];
    let callback = JobRef::<CampaignArgs>::new(CampaignJob::NAME);
    let batch = JobBatch::new(format!("campaign-{first}"))
        .on_complete(&callback, &CampaignArgs::new(job::CALLBACK + first))
        .expect("the callback's arguments");
    for calls in 1..=20 {
        let args = members.iter().map(|n| CampaignArgs::new(*n));
        match enqueuer.perform_later_batch::<CampaignJob>(&batch, args, &EnqueueOptions::default()).await {
            Ok(answers) if answers.iter().all(Result::is_ok) => return calls,
            Ok(_) | Err(EnqueueError::Port(_)) => {}
            Err(other) => panic!("batch {first}: the caller's retry was refused: {other}"),
        }
    }
    panic!("batch {first} was not sent in 20 calls")
}

/// Enqueues job `n` with `unique_for` through a queue whose sends fail now and then, retrying
/// as a caller would until it is accepted, then once more (a duplicate the window refuses, or,
/// when marking the lock sent failed, a second copy with the same job id). Returns the sends
/// that may have reached the queue.
async fn enqueue_unique(enqueuer: &Enqueuer, n: u64) -> u64 {
    let unique = || EnqueueOptions::unique_for(Duration::from_secs(3600));
    let mut sends = 0;
    for _ in 0..20 {
        sends += 1;
        match enqueuer.perform_later_with::<CampaignJob>(&CampaignArgs::new(n), unique()).await {
            Ok(_) => break,
            Err(EnqueueError::Port(_)) => continue,
            Err(other) => panic!("job {n}: the caller's retry was refused: {other}"),
        }
    }
    match enqueuer.perform_later_with::<CampaignJob>(&CampaignArgs::new(n), unique()).await {
        Err(EnqueueError::Duplicate { .. }) => {}
        _ => sends += 1,
    }
    sends
}

/// Sends job `n` by hand (a producer's message, a scheduler's tick) to its lane's queue.
async fn send(backend: &Backend, n: u64, body: String, attributes: BTreeMap<String, String>) {
    let message = OutgoingMessage { body, attributes, ..OutgoingMessage::default() };
    let queue = if on_other_lane(n) { &backend.lane_queue_id } else { &backend.queue_id };
    backend.queue.send(queue, message).await.expect("send");
}

impl Backend {
    /// The job's queue and its other lane's.
    fn routes(&self) -> QueueRoutes {
        QueueRoutes::default().with(CampaignJob::NAME, self.queue_id.clone()).with_lane(
            CampaignJob::NAME,
            Lane::Low,
            self.lane_queue_id.clone(),
        )
    }
}
