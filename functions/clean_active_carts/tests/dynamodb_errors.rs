//! clean_active_carts on the DynamoDB adapter (the real SDK client, retries off) against a
//! loopback stand-in for DynamoDB answering its JSON errors, run by jobkit's harness: a missing
//! table goes to the DLQ after one attempt, a throttle is retried.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region, retry::RetryConfig};
use clean_active_carts::CleanActiveCarts;
use jobkit::{
    ErrorKind,
    message::OutgoingMessage,
    ports::Queue,
    runner::{DlqReason, RecordStatus},
    testing::TestHarness,
};
use shop::aws::DynamoCarts;
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::TcpListener,
};

/// A name as CloudFormation generates it: the DLQ's (redacted) message must still show it.
const CARTS: &str = "store-jobs-CartsTable-1XK2Q7ZP3M4N";

/// A stand-in for DynamoDB on loopback: answers the n-th request with the n-th answer (the last
/// one repeats) and records each request's operation (`X-Amz-Target`).
struct Stub {
    url: String,
    operations: Arc<Mutex<Vec<String>>>,
}

impl Stub {
    async fn start(answers: Vec<(u16, String)>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let operations = Arc::new(Mutex::new(Vec::new()));
        let seen = operations.clone();
        let answers = Arc::new(answers);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (seen, answers) = (seen.clone(), answers.clone());
                tokio::spawn(async move {
                    let (read, mut write) = stream.into_split();
                    let mut read = BufReader::new(read);
                    // One request after another on the connection (the SDK keeps it alive).
                    loop {
                        let (mut length, mut operation) = (0usize, String::new());
                        loop {
                            let mut line = String::new();
                            if read.read_line(&mut line).await.unwrap_or(0) == 0 {
                                return;
                            }
                            let line = line.trim_end();
                            if line.is_empty() {
                                break;
                            }
                            if let Some((name, value)) = line.split_once(':') {
                                match name.trim().to_ascii_lowercase().as_str() {
                                    "content-length" => length = value.trim().parse().unwrap_or(0),
                                    "x-amz-target" => operation = value.trim().to_owned(),
                                    _ => {}
                                }
                            }
                        }
                        let mut body = vec![0; length];
                        if read.read_exact(&mut body).await.is_err() {
                            return;
                        }
                        let (status, answer) = {
                            let mut seen = seen.lock().unwrap();
                            seen.push(operation);
                            answers[(seen.len() - 1).min(answers.len() - 1)].clone()
                        };
                        let response = format!(
                            "HTTP/1.1 {status} Stub\r\ncontent-type: application/x-amz-json-1.0\r\n\
                             content-length: {}\r\n\r\n{answer}",
                            answer.len()
                        );
                        if write.write_all(response.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Self { url, operations }
    }

    fn operations(&self) -> Vec<String> {
        self.operations.lock().unwrap().clone()
    }
}

fn error(code: &str, message: &str) -> (u16, String) {
    (400, format!(r#"{{"__type":"com.amazonaws.dynamodb.v20120810#{code}","message":"{message}"}}"#))
}

/// Query's and Scan's answer when nothing matches.
fn nothing() -> (u16, String) {
    (200, r#"{"Count":0,"Items":[],"ScannedCount":0}"#.to_owned())
}

/// The job on the DynamoDB adapter, its tables behind `stub`.
fn job(stub: &Stub) -> CleanActiveCarts {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .endpoint_url(&stub.url)
        .retry_config(RetryConfig::disabled())
        .build();
    let carts = DynamoCarts::new(aws_sdk_dynamodb::Client::from_conf(config), CARTS, "shop-inventory-test");
    CleanActiveCarts::new(Arc::new(carts), chrono::Duration::hours(2))
}

async fn enqueue(t: &TestHarness) {
    let message = OutgoingMessage { body: "{}".to_owned(), ..Default::default() };
    t.queue().send(&TestHarness::queue_name::<CleanActiveCarts>(), message).await.unwrap();
}

#[tokio::test]
async fn a_missing_carts_table_sends_the_job_to_the_dlq_after_one_attempt() {
    let stub = Stub::start(vec![error("ResourceNotFoundException", "Requested resource not found")]).await;
    let t = TestHarness::new();
    let runner = t.runner(job(&stub));
    enqueue(&t).await;
    let report = tokio::time::timeout(Duration::from_secs(30), t.drain(&runner)).await.expect("drained");

    let statuses: Vec<_> = report.records.iter().map(|r| r.status.clone()).collect();
    assert_eq!(statuses, [RecordStatus::DeadLettered(DlqReason::Discarded, ErrorKind::NOT_FOUND)]);
    let errors = t.dead_letter_errors::<CleanActiveCarts>();
    let [Some(dead)] = errors.as_slice() else { panic!("one dead letter with its error: {errors:?}") };
    assert_eq!((dead.kind.as_str(), dead.reason.as_str(), dead.attempts), ("not_found", "discarded", 1));
    assert!(
        dead.message
            .contains(&format!("DynamoDB refused Query on table `{CARTS}`: ResourceNotFoundException")),
        "the DLQ names the table and the operation: {}",
        dead.message
    );
    assert_eq!(stub.operations(), ["DynamoDB_20120810.Query"], "one attempt, one request");
}

#[tokio::test]
async fn a_throttled_query_is_retried_and_the_job_then_succeeds() {
    let throttle = error(
        "ProvisionedThroughputExceededException",
        "The level of configured provisioned throughput for the table was exceeded.",
    );
    let stub = Stub::start(vec![throttle, nothing()]).await;
    let t = TestHarness::new();
    let runner = t.runner(job(&stub));
    enqueue(&t).await;
    let report = tokio::time::timeout(Duration::from_secs(30), t.drain(&runner)).await.expect("drained");

    assert_eq!(report.retried(), 1, "{:?}", report.records);
    assert_eq!(report.succeeded(), 1, "{:?}", report.records);
    assert_eq!(report.dead_lettered(), 0);
    assert!(t.dead_letters::<CleanActiveCarts>().is_empty());
    // The throttled Query, then the second attempt's Query (idle carts) and one Query per
    // deletable status of the index of expired sessions (abandoned, checked out, active).
    assert_eq!(stub.operations(), ["DynamoDB_20120810.Query"; 5]);
}

#[tokio::test]
async fn a_throttle_that_lasts_spends_the_policys_attempts_before_the_dlq() {
    let stub =
        Stub::start(vec![error("ThrottlingException", "Rate of requests exceeds the allowed throughput.")])
            .await;
    let t = TestHarness::new();
    let runner = t.runner(job(&stub));
    enqueue(&t).await;
    let report = tokio::time::timeout(Duration::from_secs(30), t.drain(&runner)).await.expect("drained");

    assert_eq!(report.retried(), 4, "{:?}", report.records);
    let errors = t.dead_letter_errors::<CleanActiveCarts>();
    let [Some(dead)] = errors.as_slice() else { panic!("one dead letter with its error: {errors:?}") };
    assert_eq!((dead.kind.as_str(), dead.reason.as_str(), dead.attempts), ("throttled", "exhausted", 5));
    assert_eq!(stub.operations().len(), 5, "one Query per attempt");
}
