//! Test helpers in the spirit of ActiveJob::TestHelper: perform now, assert enqueued, and drain
//! queues on the embedded backend with a hand-turned clock, so retries, delays and continuations
//! can be walked through deterministically.
//!
//! ```
//! # tokio_test_block(async {
//! use jobkit::{testing::TestHarness, Job, JobContext, JobError};
//!
//! #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
//! struct Args { n: u32 }
//! struct Double;
//! impl Job for Double {
//!     type Args = Args;
//!     const NAME: &'static str = "double";
//!     async fn perform(&self, _args: Args, _ctx: &mut JobContext) -> Result<(), JobError> { Ok(()) }
//! }
//!
//! let t = TestHarness::new();
//! let runner = t.runner(Double);
//! t.enqueuer().perform_later::<Double>(&Args { n: 2 }).await.unwrap();
//! assert_eq!(t.enqueued::<Double>().await, vec![Args { n: 2 }]);
//! let report = t.drain(&runner).await;
//! assert_eq!(report.succeeded(), 1);
//! # });
//! # fn tokio_test_block<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
//! # }
//! ```

mod wrappers;

pub use wrappers::{QueueWrapper, StoreWrapper};

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};

use crate::{
    clock::ManualClock,
    context::{Budget, JobContext},
    dead_letter::DeadLetterError,
    embedded::{EmbeddedDb, EmbeddedQueue, EmbeddedStore, InMemoryMailer, QueueConfig},
    enqueue::{Enqueuer, QueueRoutes},
    error::JobError,
    ids::JobId,
    job::{Job, dlq_name, lane_queue_name, queue_name},
    message::{Metadata, ReceivedMessage, decode},
    notify::{Notifier, NotifyConfig},
    ports::Email,
    runner::{BatchRunner, RecordOutcome, RecordStatus, RunnerConfig, Runtime},
    runs::{Claimant, Run},
};

/// The most batches one drain runs before it gives up (a job that re-enqueues itself forever).
const MAX_DRAIN_BATCHES: usize = 10_000;

/// An in-memory embedded backend with a manual clock and a recording mailer.
#[derive(Debug)]
pub struct TestHarness {
    clock: ManualClock,
    queue: Arc<EmbeddedQueue>,
    store: Arc<EmbeddedStore>,
    mailer: Arc<InMemoryMailer>,
    runtime: Runtime,
}

impl Default for TestHarness {
    fn default() -> Self {
        Self::new()
    }
}

impl TestHarness {
    /// A fresh backend; error emails go from `jobs@example.com` to `ops@example.com`.
    ///
    /// # Panics
    /// If SQLite cannot open an in-memory database (a broken build, not a test failure).
    pub fn new() -> Self {
        let clock = ManualClock::default();
        let shared: crate::clock::SharedClock = Arc::new(clock.clone());
        let db = EmbeddedDb::in_memory().expect("an in-memory SQLite database opens");
        let queue = Arc::new(EmbeddedQueue::new(db.clone(), shared.clone()));
        let store = Arc::new(EmbeddedStore::new(db));
        let mailer = Arc::new(InMemoryMailer::default());
        let config = NotifyConfig {
            from: "jobs@example.com".into(),
            to: vec!["ops@example.com".into()],
            window: Duration::from_secs(3600),
        };
        let runtime = Runtime {
            queue: queue.clone(),
            store: store.clone(),
            clock: shared,
            notifier: Some(Notifier::new(mailer.clone(), config)),
            metrics: None,
            routes: QueueRoutes::default(),
        };
        Self { clock, queue, store, mailer, runtime }
    }

    /// The clock; advance it to walk through delays and backoffs.
    pub fn clock(&self) -> &ManualClock {
        &self.clock
    }

    /// The embedded queue.
    pub fn queue(&self) -> &Arc<EmbeddedQueue> {
        &self.queue
    }

    /// The embedded store.
    pub fn store(&self) -> &Arc<EmbeddedStore> {
        &self.store
    }

    /// The runtime (ports) the harness's runners use.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// An enqueuer on the harness's queue.
    pub fn enqueuer(&self) -> Enqueuer {
        self.runtime.enqueuer()
    }

    /// The name of `J`'s queue, by jobkit's convention ([`queue_name`]).
    pub fn queue_name<J: Job>() -> String {
        queue_name(J::NAME)
    }

    /// The name of `J`'s DLQ, by jobkit's convention ([`dlq_name`]).
    pub fn dlq_name<J: Job>() -> String {
        dlq_name(J::NAME)
    }

    /// The names of `J`'s queues: its own, then one per other lane ([`lane_queue_name`]).
    pub fn queue_names<J: Job>() -> Vec<String> {
        std::iter::once(queue_name(J::NAME))
            .chain(J::OTHER_LANES.iter().map(|&lane| lane_queue_name(J::NAME, lane)))
            .collect()
    }

    /// The name of the queue of `J`'s lane `lane`.
    ///
    /// # Panics
    /// When `lane` is not one of `J`'s.
    pub fn lane_queue<J: Job>(lane: crate::Lane) -> String {
        if lane == J::LANE {
            return queue_name(J::NAME);
        }
        assert!(J::OTHER_LANES.contains(&lane), "{} has no {lane} lane", J::NAME);
        lane_queue_name(J::NAME, lane)
    }

    /// Creates `J`'s queues (one per lane) and DLQ (`maxReceiveCount` 3 above the policy's
    /// attempts, as the template does) and returns a runner for it.
    ///
    /// # Panics
    /// If the embedded queue cannot be created.
    pub fn runner<J: Job>(&self, job: J) -> BatchRunner<J> {
        let dlq = Self::dlq_name::<J>();
        let max_receives = J::retry_policy().max_attempts() + 3;
        let visibility = J::TIMEOUT * 6;
        self.queue
            .create_queue(&dlq, QueueConfig { visibility_timeout: visibility, ..QueueConfig::default() })
            .expect("the DLQ is created");
        let config = QueueConfig {
            visibility_timeout: visibility,
            max_receive_count: Some(max_receives),
            dead_letter_queue: Some(dlq.clone()),
            fifo: false,
        };
        let mut runner = RunnerConfig::new(Self::queue_name::<J>(), dlq);
        for &lane in J::OTHER_LANES {
            runner = runner.with_lane(lane, lane_queue_name(J::NAME, lane));
        }
        for (_, queue) in runner.queues() {
            self.queue.create_queue(queue, config.clone()).expect("the queue is created");
        }
        BatchRunner::new(job, self.runtime.clone(), runner)
    }

    /// Runs `job` with `args` right here, without a queue (ActiveJob's `perform_now`).
    ///
    /// # Errors
    /// Whatever the job returns.
    pub async fn perform_now<J: Job>(&self, job: &J, args: J::Args) -> Result<(), JobError> {
        let now = self.clock.now_utc();
        let job_id = JobId::random();
        let meta = Metadata {
            job_id: job_id.clone(),
            job: Some(J::NAME.to_owned()),
            message_id: String::new(),
            attempt: 1,
            receive_count: 1,
            enqueued_at: Some(now),
            not_before: None,
            idempotency_key: None,
            tick: None,
            run_token: None,
            traceparent: None,
            group_id: None,
            unique_lock: None,
            batch: None,
        };
        let deadline = now + chrono::Duration::from_std(J::TIMEOUT).unwrap_or_default();
        // A free run of its own: its checkpoints are kept, nothing is claimed.
        let token = format!("perform-now-{job_id}");
        let who = Claimant { token: &token, hash: "", job_id: job_id.as_str(), until: deadline };
        let run = Run::free(self.runtime.store.clone(), J::NAME, &who, false, now).await?;
        let budget = Budget { deadline, continue_within: Duration::ZERO, checkpoint_every: Duration::ZERO };
        let mut ctx = JobContext::new(
            meta,
            budget,
            self.runtime.clock.clone(),
            Arc::new(self.enqueuer()),
            crate::shutdown::Shutdown::default(),
            run,
        );
        job.perform(args, &mut ctx).await
    }

    /// The arguments of every `J` waiting in its queue (visible or delayed), oldest first.
    ///
    /// # Panics
    /// If the queue cannot be read or holds a message that is not `J`'s arguments.
    pub async fn enqueued<J: Job>(&self) -> Vec<J::Args> {
        let mut messages = Vec::new();
        for queue in Self::queue_names::<J>() {
            // A lane whose queue was never created holds nothing.
            if self.queue.queue_names().expect("the queues can be listed").contains(&queue) {
                messages.extend(self.queue.peek(&queue, usize::MAX).expect("the queue can be read"));
            }
        }
        messages
            .iter()
            .filter(|m| m.attributes.get(crate::message::attr::JOB).is_none_or(|j| j == J::NAME))
            .map(|m| {
                let envelope = decode(m).expect("an enqueued message decodes");
                envelope.args.parse().expect("an enqueued message holds the job's arguments")
            })
            .collect()
    }

    /// Asserts that `J` was enqueued with `args`.
    ///
    /// # Panics
    /// When it was not.
    pub async fn assert_enqueued_with<J: Job>(&self, args: &J::Args)
    where
        J::Args: PartialEq + std::fmt::Debug,
    {
        let enqueued = self.enqueued::<J>().await;
        assert!(
            enqueued.contains(args),
            "{} was not enqueued with {args:?}; enqueued: {enqueued:?}",
            J::NAME
        );
    }

    /// Runs `block` and asserts that it enqueued `J` with `args` (Rails' block form of
    /// `assert_enqueued_with`, RSpec's `have_enqueued_job`): what was queued before the block
    /// does not count. Returns the block's output.
    ///
    /// # Panics
    /// When the block did not enqueue it.
    pub async fn assert_enqueues_with<J: Job, T>(&self, args: &J::Args, block: impl Future<Output = T>) -> T
    where
        J::Args: PartialEq + std::fmt::Debug,
    {
        let count = |jobs: &[J::Args]| jobs.iter().filter(|a| *a == args).count();
        let before = count(&self.enqueued::<J>().await);
        let output = block.await;
        let after = self.enqueued::<J>().await;
        assert!(
            count(&after) > before,
            "the block did not enqueue {} with {args:?}; enqueued now: {after:?}",
            J::NAME
        );
        output
    }

    /// Performs every `J` waiting in its queue with `runner`, through its retries and delays on
    /// the test clock (Rails' `perform_enqueued_jobs`), and asserts that `succeeded` of them
    /// succeeded (`assert_performed_jobs`). Returns what happened to each record.
    ///
    /// # Panics
    /// When another number succeeded.
    pub async fn assert_performed<J: Job>(&self, runner: &BatchRunner<J>, succeeded: usize) -> DrainReport {
        let report = self.drain(runner).await;
        assert_eq!(
            report.succeeded(),
            succeeded,
            "{} jobs performed: {:?}",
            J::NAME,
            report.records.iter().map(|r| &r.status).collect::<Vec<_>>()
        );
        report
    }

    /// The progress of batch `id` of `J`'s members (`None` when there is none).
    ///
    /// # Panics
    /// If the store cannot be read.
    pub async fn batch<J: Job>(&self, id: &str) -> Option<crate::batch::BatchStatus> {
        let now = self.clock.now_utc();
        crate::batch::status(self.store.as_ref(), J::NAME, id, now).await.expect("the store can be read")
    }

    /// The messages in `J`'s DLQ.
    ///
    /// # Panics
    /// If the DLQ cannot be read.
    pub fn dead_letters<J: Job>(&self) -> Vec<ReceivedMessage> {
        self.queue.peek(&Self::dlq_name::<J>(), usize::MAX).expect("the DLQ can be read")
    }

    /// The account of the failure on each message in `J`'s DLQ, in the order of
    /// [`Self::dead_letters`] (`None` for a message SQS moved there without one).
    ///
    /// # Panics
    /// If the DLQ cannot be read.
    pub fn dead_letter_errors<J: Job>(&self) -> Vec<Option<DeadLetterError>> {
        self.dead_letters::<J>().iter().map(|m| DeadLetterError::read(&m.attributes)).collect()
    }

    /// Emails sent so far.
    pub fn sent_emails(&self) -> Vec<Email> {
        self.mailer.sent()
    }

    /// Receives one batch (up to 10) that is visible now, runs it with a 15-minute deadline and
    /// deletes what is done, as Lambda's event source mapping does: from the job's own queue,
    /// else from the first of its other lanes' queues that has one.
    ///
    /// # Panics
    /// If the embedded queue fails.
    pub async fn run_once<J: Job>(&self, runner: &BatchRunner<J>) -> Vec<RecordOutcome> {
        let deadline = self.clock.now_utc() + chrono::Duration::minutes(15);
        self.run_once_with_deadline(runner, deadline).await
    }

    /// [`TestHarness::run_once`] with a chosen deadline.
    ///
    /// # Panics
    /// If the embedded queue fails.
    pub async fn run_once_with_deadline<J: Job>(
        &self,
        runner: &BatchRunner<J>,
        deadline: DateTime<Utc>,
    ) -> Vec<RecordOutcome> {
        for (_, queue) in runner.config().queues() {
            let outcome = runner
                .poll_queue(queue, 10, Duration::ZERO, deadline)
                .await
                .expect("the queue can be received from");
            if !outcome.records.is_empty() {
                return outcome.records;
            }
        }
        Vec::new()
    }

    /// Runs `J`'s queue until nothing is left, moving the clock to each next message's visibility
    /// (retries, delays, hops), and reports every record's outcome.
    ///
    /// # Panics
    /// If the embedded queue fails, or after 10,000 batches (a job that never ends).
    pub async fn drain<J: Job>(&self, runner: &BatchRunner<J>) -> DrainReport {
        let mut report = DrainReport::default();
        for _ in 0..MAX_DRAIN_BATCHES {
            let records = self.run_once(runner).await;
            if records.is_empty() {
                let next = runner
                    .config()
                    .queues()
                    .filter_map(|(_, queue)| {
                        self.queue.next_visible_at(queue).expect("the queue can be read")
                    })
                    .min();
                match next {
                    Some(at) => self.clock.set(at.max(self.clock.now_utc())),
                    None => return report,
                }
                continue;
            }
            report.batches += 1;
            report.records.extend(records);
        }
        panic!("{} did not drain in {MAX_DRAIN_BATCHES} batches", J::NAME);
    }
}

/// What a drain did.
#[derive(Debug, Default)]
pub struct DrainReport {
    /// Batches run.
    pub batches: usize,
    /// Every record's outcome, in order.
    pub records: Vec<RecordOutcome>,
}

impl DrainReport {
    /// Records whose status satisfies `f`.
    pub fn count(&self, f: impl Fn(&RecordStatus) -> bool) -> usize {
        self.records.iter().filter(|r| f(&r.status)).count()
    }

    /// Records that ran and succeeded.
    pub fn succeeded(&self) -> usize {
        self.count(|s| *s == RecordStatus::Succeeded)
    }

    /// Records that failed and were set to retry.
    pub fn retried(&self) -> usize {
        self.count(|s| matches!(s, RecordStatus::Retrying(_)))
    }

    /// Records sent to the DLQ.
    pub fn dead_lettered(&self) -> usize {
        self.count(|s| matches!(s, RecordStatus::DeadLettered(..)))
    }
}

impl ManualClock {
    fn now_utc(&self) -> DateTime<Utc> {
        crate::clock::Clock::now(self)
    }
}
