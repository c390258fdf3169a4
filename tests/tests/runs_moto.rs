//! Runs on SQS and DynamoDB through the real SDK clients against moto: the run record's
//! compare-and-swap on DynamoDB's conditional writes, and ids that outgrow DynamoDB's key.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::Utc;
use jobkit::{
    Job, JobContext, JobError,
    aws::{DynamoStore, SqsQueue},
    clock::SystemClock,
    enqueue::QueueRoutes,
    message::{OutgoingMessage, attr},
    ports::{Queue, StateStore},
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

    fn timeout(&self) -> Duration {
        Duration::from_secs(5)
    }
}

struct Moto {
    queue: Arc<SqsQueue>,
    url: String,
    runner: BatchRunner<Pages>,
    job: Pages,
}

async fn moto_runner() -> Moto {
    let sdk = moto::sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let (url, dlq) = create_queue_with_dlq(&sqs, &moto::unique("runs"), Duration::from_secs(30), 10)
        .await
        .expect("queues");
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
    let table = moto::unique("runs-state");
    DynamoStore::create_table(&dynamo, &table).await.expect("table");
    let queue = Arc::new(SqsQueue::new(sqs));
    let store: Arc<dyn StateStore> = Arc::new(DynamoStore::new(dynamo, table));
    let runtime = Runtime {
        queue: queue.clone(),
        store,
        clock: Arc::new(SystemClock),
        notifier: None,
        metrics: None,
        routes: QueueRoutes::default().with(Pages::NAME, url.clone()),
    };
    let config =
        RunnerConfig { continue_within: Duration::from_secs(60), ..RunnerConfig::new(url.clone(), dlq) };
    let job = Pages::default();
    Moto { queue, url: url.clone(), runner: BatchRunner::new(job.clone(), runtime, config), job }
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
