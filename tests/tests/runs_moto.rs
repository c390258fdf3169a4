//! Runs on SQS and DynamoDB through the real SDK clients against moto: the run record's
//! compare-and-swap on DynamoDB's conditional writes, ids that outgrow DynamoDB's key, per-key
//! limits and batches raced by workers.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::Utc;
use jobkit::{
    Job, JobContext, JobError, JobRef,
    aws::{DynamoStore, SqsQueue},
    batch::{BatchSummary, JobBatch},
    clock::SystemClock,
    enqueue::QueueRoutes,
    message::{OutgoingMessage, attr},
    ports::Queue,
    runner::{BatchRunner, RecordStatus, RunnerConfig, Runtime},
};
use system_tests::{moto, sqs::create_queue_with_dlq};

/// Walks four pages, checkpointing each; with `continue_within` above its timeout, every
/// checkpoint continues in a new message.
#[derive(Clone, Default)]
struct Pages {
    walked: Arc<Mutex<Vec<(String, u32)>>>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct PagesArgs {
    name: String,
}

impl Job for Pages {
    type Args = PagesArgs;
    const NAME: &'static str = "pages";

    async fn perform(&self, args: PagesArgs, ctx: &mut JobContext) -> Result<(), JobError> {
        ctx.step("pages", 0_u32, async |step| {
            while *step.cursor() < 4 {
                self.walked.lock().unwrap().push((args.name.clone(), *step.cursor()));
                step.advance(*step.cursor() + 1).await?;
            }
            Ok(())
        })
        .await
        .map(drop)
    }

    const TIMEOUT: Duration = Duration::from_secs(5);
}

struct Moto {
    runtime: Runtime,
    queue: Arc<SqsQueue>,
    url: String,
    runner: BatchRunner<Pages>,
    job: Pages,
}

/// A job's queue and DLQ on moto's SQS, a state table on its DynamoDB, and the runtime on them
/// (the real SDK clients, the system clock); returns the runtime, its SQS port, the queue and
/// the DLQ.
async fn moto_runtime(job: &str) -> (Runtime, Arc<SqsQueue>, String, String) {
    let sdk = moto::sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let (url, dlq) =
        create_queue_with_dlq(&sqs, &moto::unique(job), Duration::from_secs(30), 10).await.expect("queues");
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
    let table = moto::unique(&format!("{job}-state"));
    DynamoStore::create_table(&dynamo, &table).await.expect("table");
    let queue = Arc::new(SqsQueue::new(sqs));
    let runtime = Runtime {
        queue: queue.clone(),
        store: Arc::new(DynamoStore::new(dynamo, table)),
        clock: Arc::new(SystemClock),
        notifier: None,
        metrics: None,
        routes: QueueRoutes::default().with(job, url.clone()),
    };
    (runtime, queue, url, dlq)
}

async fn moto_runner() -> Moto {
    let (runtime, queue, url, dlq) = moto_runtime(Pages::NAME).await;
    let config =
        RunnerConfig { continue_within: Duration::from_secs(60), ..RunnerConfig::new(url.clone(), dlq) };
    let job = Pages::default();
    Moto {
        runtime: runtime.clone(),
        queue,
        url: url.clone(),
        runner: BatchRunner::new(job.clone(), runtime, config),
        job,
    }
}

impl Moto {
    /// Receives one message and runs it alone, as its own invocation; deletes it when done.
    async fn run_one(&self) -> Option<RecordStatus> {
        let messages = self.queue.receive(&self.url, 1, Duration::from_secs(1)).await.expect("receive");
        let deadline = Utc::now() + chrono::Duration::seconds(30);
        let outcome = self.runner.process(messages, deadline).await.records.pop()?;
        if outcome.status.is_done() {
            self.queue.delete(&self.url, &outcome.receipt_handle).await.expect("delete");
        }
        Some(outcome.status)
    }

    /// Runs messages one at a time until the queue is empty, in flight and delayed included.
    async fn drain(&self) -> Vec<RecordStatus> {
        let mut statuses = Vec::new();
        loop {
            match self.run_one().await {
                Some(status) => statuses.push(status),
                None => {
                    let counts = self.queue.approximate_counts(&self.url).await.expect("counts");
                    if counts.visible + counts.in_flight + counts.delayed == 0 {
                        return statuses;
                    }
                }
            }
        }
    }

    fn walked(&self) -> Vec<(String, u32)> {
        let mut walked = self.job.walked.lock().unwrap().clone();
        walked.sort();
        walked
    }
}

fn every_page_of(name: &str) -> Vec<(String, u32)> {
    (0..4).map(|p| (name.to_owned(), p)).collect()
}

#[tokio::test]
async fn a_tick_delivered_twice_while_its_run_continues_runs_each_page_once_on_dynamodb() {
    let m = moto_runner().await;
    let tick = format!(
        r#"{{"name":"carts","$schedule":{{"rule":"clean-active-carts-hourly","time":"{}"}}}}"#,
        Utc::now().to_rfc3339()
    );
    for _ in 0..2 {
        m.queue
            .send(&m.url, OutgoingMessage { body: tick.clone(), ..Default::default() })
            .await
            .expect("sent");
    }
    let statuses = m.drain().await;
    assert_eq!(m.walked(), every_page_of("carts"), "{statuses:?}");
    assert!(statuses.iter().filter(|s| **s == RecordStatus::Continued).count() >= 3, "{statuses:?}");
    assert!(
        statuses.contains(&RecordStatus::InProgressElsewhere),
        "handed back while the run was unfinished"
    );
    assert_eq!(statuses.iter().filter(|s| **s == RecordStatus::Succeeded).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == RecordStatus::Duplicate).count(), 1, "{statuses:?}");
}

#[tokio::test]
async fn a_job_id_longer_than_a_dynamodb_key_runs_once() {
    let m = moto_runner().await;
    // Before: the run's key (and the history's) was over 2,048 bytes, DynamoDB refused every
    // write, and the message came back as an outage until SQS moved it without a reason.
    let long_id = "j".repeat(3000);
    for _ in 0..2 {
        let attributes = BTreeMap::from([(attr::JOB_ID.to_owned(), long_id.clone())]);
        let message = OutgoingMessage { body: r#"{"name":"long"}"#.into(), attributes, ..Default::default() };
        m.queue.send(&m.url, message).await.expect("sent");
    }
    let statuses = m.drain().await;
    assert_eq!(m.walked(), every_page_of("long"), "{statuses:?}");
    assert!(
        !statuses.iter().any(|s| matches!(s, RecordStatus::Unhandled(_))),
        "nothing came back as an outage: {statuses:?}"
    );
}

/// A store's sync limited to one execution per store, working 50 ms; it records how many of one
/// store's syncs run at once.
#[derive(Clone, Default)]
struct StoreSyncLimited {
    running: Arc<std::sync::atomic::AtomicUsize>,
    most: Arc<std::sync::atomic::AtomicUsize>,
    /// (n, attempt) of every execution.
    runs: Arc<Mutex<Vec<(u32, u32)>>>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct StoreArgs {
    store_id: String,
    n: u32,
}

impl Job for StoreSyncLimited {
    type Args = StoreArgs;
    const NAME: &'static str = "limited_sync";

    async fn perform(&self, args: StoreArgs, ctx: &mut JobContext) -> Result<(), JobError> {
        use std::sync::atomic::Ordering::SeqCst;
        let now = self.running.fetch_add(1, SeqCst) + 1;
        self.most.fetch_max(now, SeqCst);
        // The sync's work: long enough that the other workers' deliveries arrive meanwhile.
        tokio::time::sleep(Duration::from_millis(50)).await;
        self.running.fetch_sub(1, SeqCst);
        self.runs.lock().unwrap().push((args.n, ctx.meta().attempt));
        Ok(())
    }

    fn concurrency_limit(&self, args: &StoreArgs) -> Option<jobkit::ConcurrencyLimit> {
        Some(jobkit::ConcurrencyLimit::one_per(&args.store_id))
    }
    const TIMEOUT: Duration = Duration::from_secs(5);
}

/// Solid Queue's `limits_concurrency` on DynamoDB: 20 deliveries of one store's sync, raced by
/// four workers polling one SQS queue (as four Lambda invocations would), never overlap, each
/// runs once, and waiting for the slot spends no attempt.
#[tokio::test]
async fn twenty_syncs_of_one_store_raced_by_four_workers_run_one_at_a_time_on_dynamodb() {
    let (runtime, queue, url, dlq) = moto_runtime(StoreSyncLimited::NAME).await;
    let config = RunnerConfig { limit_wait: Duration::from_secs(1), ..RunnerConfig::new(url.clone(), dlq) };
    let job = StoreSyncLimited::default();
    let runner = Arc::new(BatchRunner::new(job.clone(), runtime.clone(), config));
    for n in 0..20 {
        let args = StoreArgs { store_id: "st_42".into(), n };
        runtime.enqueuer().perform_later::<StoreSyncLimited>(&args).await.expect("enqueued");
    }

    let limited = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (runner, job, limited) = (runner.clone(), job.clone(), limited.clone());
            tokio::spawn(async move {
                let give_up = std::time::Instant::now() + Duration::from_secs(120);
                while job.runs.lock().unwrap().len() < 20 {
                    assert!(std::time::Instant::now() < give_up, "20 syncs did not run in 2 minutes");
                    let deadline = Utc::now() + chrono::Duration::seconds(30);
                    let outcome = runner.poll(10, Duration::from_secs(1), deadline).await.expect("polled");
                    let over = outcome.records.iter().filter(|r| r.status == RecordStatus::Limited).count();
                    limited.fetch_add(over, std::sync::atomic::Ordering::SeqCst);
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.expect("worker");
    }

    assert_eq!(job.most.load(std::sync::atomic::Ordering::SeqCst), 1, "never two syncs of one store at once");
    let mut runs = job.runs.lock().unwrap().clone();
    runs.sort_unstable();
    assert_eq!(runs, (0..20).map(|n| (n, 1)).collect::<Vec<_>>(), "each once, at its first attempt");
    assert!(limited.load(std::sync::atomic::Ordering::SeqCst) > 0, "deliveries raced for the slot");
    let counts = queue.approximate_counts(&runner.config().dead_letter_queue).await.expect("counts");
    assert_eq!(counts.visible, 0, "nothing in the DLQ");
}

/// Sidekiq Enterprise's `unique_until: :success` on DynamoDB: a duplicate is refused while the
/// job is pending, and accepted once the runner gave the lock back at the job's success.
#[tokio::test]
async fn unique_until_done_refuses_a_duplicate_until_the_job_succeeded_on_dynamodb() {
    let m = moto_runner().await;
    let enqueuer = m.runtime.enqueuer();
    let until_done = || jobkit::EnqueueOptions::unique_until_done(Duration::from_secs(3600));
    let args = PagesArgs { name: "st_42".into() };
    enqueuer.perform_later_with::<Pages>(&args, until_done()).await.expect("enqueued");
    let duplicate = enqueuer.perform_later_with::<Pages>(&args, until_done()).await;
    assert!(matches!(duplicate, Err(jobkit::EnqueueError::Duplicate { .. })), "{duplicate:?}");
    let statuses = m.drain().await;
    assert_eq!(m.walked(), every_page_of("st_42"), "{statuses:?}");
    enqueuer.perform_later_with::<Pages>(&args, until_done()).await.expect("accepted once it succeeded");
}

/// A batch's member: fails for good when its `n` is a multiple of 6, else succeeds after 20 ms.
#[derive(Clone, Default)]
struct Member {
    runs: Arc<Mutex<Vec<u32>>>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct MemberArgs {
    n: u32,
}

impl Job for Member {
    type Args = MemberArgs;
    const NAME: &'static str = "member";

    async fn perform(&self, args: MemberArgs, _ctx: &mut JobContext) -> Result<(), JobError> {
        tokio::time::sleep(Duration::from_millis(20)).await;
        self.runs.lock().unwrap().push(args.n);
        if args.n.is_multiple_of(6) {
            return Err(JobError::permanent(jobkit::ErrorKind::NOT_FOUND, "store gone"));
        }
        Ok(())
    }

    const TIMEOUT: Duration = Duration::from_secs(1);
}

/// The batch's callback: keeps what it was told.
#[derive(Clone, Default)]
struct Tally {
    told: Arc<Mutex<Vec<(String, BatchSummary)>>>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct TallyArgs {
    which: String,
    batch: Option<BatchSummary>,
}

impl Job for Tally {
    type Args = TallyArgs;
    const NAME: &'static str = "tally";

    async fn perform(&self, args: TallyArgs, _ctx: &mut JobContext) -> Result<(), JobError> {
        let summary = args
            .batch
            .ok_or_else(|| JobError::permanent(jobkit::ErrorKind::INVALID_ARGUMENTS, "no batch"))?;
        self.told.lock().unwrap().push((args.which, summary));
        Ok(())
    }
}

/// Sidekiq Pro's batches on DynamoDB, against the callbacks that fire twice or early: 20
/// members, every one delivered twice, raced by four workers; each is counted once, and the
/// `on_complete` callback runs once, after the last, with the counts (no `on_success`: three
/// members failed).
#[tokio::test]
async fn a_batch_of_twenty_delivered_twice_and_raced_by_four_workers_calls_back_once_on_dynamodb() {
    let (mut runtime, queue, url, dlq) = moto_runtime(Member::NAME).await;
    let sqs = aws_sdk_sqs::Client::new(&moto::sdk_config().await);
    let (tally_url, tally_dlq) =
        create_queue_with_dlq(&sqs, &moto::unique(Tally::NAME), Duration::from_secs(30), 10)
            .await
            .expect("queues");
    runtime.routes = runtime.routes.clone().with(Tally::NAME, tally_url.clone());
    let member = Member::default();
    let runner =
        Arc::new(BatchRunner::new(member.clone(), runtime.clone(), RunnerConfig::new(url.clone(), dlq)));

    let tally = JobRef::<TallyArgs>::new(Tally::NAME);
    let batch = JobBatch::new("nightly")
        .on_complete(&tally, &TallyArgs { which: "complete".into(), batch: None })
        .and_then(|b| b.on_success(&tally, &TallyArgs { which: "success".into(), batch: None }))
        .expect("callbacks");
    let members = (1..=20).map(|n| MemberArgs { n });
    let sent = runtime
        .enqueuer()
        .perform_later_batch::<Member>(&batch, members, &Default::default())
        .await
        .expect("enqueued");
    assert!(sent.iter().all(Result::is_ok), "{sent:?}");
    // SQS's at-least-once delivery: a copy of every member.
    let mut copies = Vec::new();
    while copies.len() < 20 {
        copies.extend(queue.receive(&url, 10, Duration::from_secs(1)).await.expect("received"));
    }
    for copy in &copies {
        let again = OutgoingMessage {
            body: copy.body.clone(),
            attributes: copy.attributes.clone(),
            ..Default::default()
        };
        queue.send(&url, again).await.expect("sent");
        queue.change_visibility(&url, &copy.receipt_handle, Duration::ZERO).await.expect("visible again");
    }

    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (runner, queue, url) = (runner.clone(), queue.clone(), url.clone());
            tokio::spawn(async move {
                let give_up = std::time::Instant::now() + Duration::from_secs(120);
                loop {
                    let counts = queue.approximate_counts(&url).await.expect("counts");
                    if counts.visible + counts.in_flight + counts.delayed == 0 {
                        return;
                    }
                    assert!(std::time::Instant::now() < give_up, "the members did not finish in 2 minutes");
                    // Short invocations: a copy handed back while its twin runs is back within 5 s.
                    let deadline = Utc::now() + chrono::Duration::seconds(5);
                    runner.poll(10, Duration::from_millis(200), deadline).await.expect("polled");
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.expect("worker");
    }

    let mut runs = member.runs.lock().unwrap().clone();
    runs.sort_unstable();
    assert_eq!(runs, (1..=20).collect::<Vec<_>>(), "each member ran once");
    let status = jobkit::batch::status(runtime.store.as_ref(), Member::NAME, "nightly", Utc::now())
        .await
        .expect("status")
        .expect("the batch");
    assert_eq!((status.total, status.succeeded, status.failed), (20, 17, 3), "{status:?}");
    assert!(status.is_complete() && status.callbacks_sent, "{status:?}");

    let job = Tally::default();
    let callbacks =
        BatchRunner::new(job.clone(), runtime.clone(), RunnerConfig::new(tally_url.clone(), tally_dlq));
    // Finishers that raced may each have sent the callback's message: one job id, one run.
    let mut statuses = Vec::new();
    loop {
        let deadline = Utc::now() + chrono::Duration::minutes(2);
        let outcome = callbacks.poll(10, Duration::from_millis(500), deadline).await.expect("polled");
        if outcome.records.is_empty() {
            break;
        }
        statuses.extend(outcome.records.into_iter().map(|r| r.status));
    }
    assert!(
        statuses.iter().all(|s| matches!(s, RecordStatus::Succeeded | RecordStatus::Duplicate)),
        "{statuses:?}"
    );
    let told = job.told.lock().unwrap().clone();
    let told: Vec<_> =
        told.into_iter().map(|(which, s)| (which, s.id, s.total, s.succeeded, s.failed)).collect();
    assert_eq!(
        told,
        [("complete".to_owned(), "nightly".to_owned(), 20, 17, 3)],
        "one callback, with the counts"
    );
}
