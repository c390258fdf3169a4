//! Counting what a job would cost on AWS: the calls moto's server counts per access key
//! (`scripts/lib/moto_server.py`, `/moto-api/counts`), and a metered Lambda that runs a function
//! binary on its queue as the event source mapping does while timing each invocation and
//! keeping every byte the function writes (CloudWatch Logs bills stdout and stderr alike).
//!
//! [`crate::lambda::LocalLambda`] plays the mapping for the system tests, with crashes and
//! timeouts; it keeps no timings and only stderr. The metered one knows only the answered path,
//! which is all a cost run takes: anything else stops the run.

use std::{
    io::{Read, Write},
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::{Context, bail, ensure};
use aws_config::{BehaviorVersion, Region, SdkConfig};
use serde::{Deserialize, Serialize};

use crate::{
    function::FunctionProcess,
    moto,
    runtime_api::{Answer, RuntimeApi},
    sqs::{create_queue_with_dlq, now_ms, queue_arn, receive_batch, sqs_event},
};

/// One line of moto's counts: a service's action on one resource.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Call {
    /// `sqs`, `dynamodb`, `ses`, `sns`, `secretsmanager`...
    pub service: String,
    /// `SendMessage`, `PutItem`...
    pub action: String,
    /// The queue or table (empty for other services).
    pub resource: String,
    /// Requests made.
    pub requests: f64,
    /// SQS: messages sent, received, deleted or changed (batch entries).
    #[serde(skip_serializing_if = "is_zero")]
    pub entries: f64,
    /// SQS: receives that returned nothing.
    #[serde(skip_serializing_if = "is_zero")]
    pub empty: f64,
    /// DynamoDB read capacity units.
    #[serde(skip_serializing_if = "is_zero")]
    pub rcu: f64,
    /// DynamoDB write capacity units.
    #[serde(skip_serializing_if = "is_zero")]
    pub wcu: f64,
    /// SES emails (one per recipient).
    #[serde(skip_serializing_if = "is_zero")]
    pub emails: f64,
    /// SNS texts.
    #[serde(skip_serializing_if = "is_zero")]
    pub texts: f64,
    /// Requests that failed.
    #[serde(skip_serializing_if = "is_zero")]
    pub errors: f64,
    /// Requests failed on purpose (an armed fault).
    #[serde(skip_serializing_if = "is_zero")]
    pub faults: f64,
    /// DynamoDB writes whose condition failed.
    #[serde(skip_serializing_if = "is_zero")]
    pub conditional_failures: f64,
    /// DynamoDB units by the kind of record a `<job>:<kind>:<id>` key names (`wcu.idem`,
    /// `rcu.cancel`: what jobkit's state table spends them on).
    #[serde(flatten)]
    pub by_kind: std::collections::BTreeMap<String, f64>,
}

fn is_zero(value: &f64) -> bool {
    *value == 0.0
}

#[derive(Deserialize)]
struct CountsAnswer {
    calls: Vec<Call>,
}

/// moto's counter for one access key: every client and function given [`Self::sdk_config`] or
/// [`Self::function_env`] is counted here, apart from anything else on the server.
#[derive(Debug, Clone)]
pub struct Meter {
    /// The access key id the counts are filed under.
    pub key: String,
}

impl Meter {
    /// A meter under a key no one else uses.
    pub fn new() -> Self {
        Self { key: format!("meter{}", &uuid::Uuid::new_v4().simple().to_string()[..12]) }
    }

    /// An SDK config on moto under this meter's key.
    pub async fn sdk_config(&self) -> SdkConfig {
        let credentials = aws_sdk_sqs::config::Credentials::new(&self.key, "testing", None, None, "meter");
        aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(moto::endpoint())
            .credentials_provider(credentials)
            .load()
            .await
    }

    /// [`moto::function_env`] under this meter's key.
    pub fn function_env(&self) -> Vec<(&'static str, String)> {
        moto::function_env()
            .into_iter()
            .map(|(k, v)| if k == "AWS_ACCESS_KEY_ID" { (k, self.key.clone()) } else { (k, v) })
            .collect()
    }

    /// What was counted since the last reset.
    ///
    /// # Errors
    /// If moto cannot be reached or answers something else.
    pub async fn calls(&self) -> anyhow::Result<Vec<Call>> {
        let url = format!("{}/moto-api/counts?key={}", moto::endpoint(), self.key);
        let body = tokio::task::spawn_blocking(move || moto::http_get(&url)).await??;
        let answer: CountsAnswer = serde_json::from_str(&body).context("moto's counts are not JSON")?;
        Ok(answer.calls)
    }

    /// Forgets the counts and armed faults.
    ///
    /// # Errors
    /// If moto cannot be reached.
    pub async fn reset(&self) -> anyhow::Result<()> {
        let path = format!("/moto-api/counts/reset?key={}", self.key);
        post(path, String::new()).await
    }

    /// Makes the next `times` DynamoDB requests of this key fail once each (a 400 no SDK
    /// retries), except those to `except_table`.
    ///
    /// # Errors
    /// If moto refuses.
    pub async fn fail_dynamodb(&self, times: usize, except_table: &str) -> anyhow::Result<()> {
        self.arm_dynamodb(times, except_table, 400).await
    }

    /// Makes the next `times` DynamoDB requests of this key fail once each with a 500 (an
    /// outage: the SDK retries it, and a job whose every attempt failed retries), except those
    /// to `except_table`.
    ///
    /// # Errors
    /// If moto refuses.
    pub async fn outage_dynamodb(&self, times: usize, except_table: &str) -> anyhow::Result<()> {
        self.arm_dynamodb(times, except_table, 500).await
    }

    async fn arm_dynamodb(&self, times: usize, except_table: &str, status: u16) -> anyhow::Result<()> {
        let fault = serde_json::json!({
            "key": self.key, "service": "dynamodb", "exclude_resource": except_table, "times": times,
            "status": status,
        });
        post("/moto-api/counts/faults".to_owned(), fault.to_string()).await
    }
}

impl Default for Meter {
    fn default() -> Self {
        Self::new()
    }
}

async fn post(path: String, body: String) -> anyhow::Result<()> {
    let endpoint = moto::endpoint();
    tokio::task::spawn_blocking(move || {
        let host = endpoint.strip_prefix("http://").context("moto's endpoint is not http")?.to_owned();
        let mut stream = std::net::TcpStream::connect(&host)?;
        write!(
            stream,
            "POST {path} HTTP/1.0\r\nHost: {host}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        ensure!(
            response.starts_with("HTTP/1.0 200") || response.starts_with("HTTP/1.1 200"),
            "POST {path}: {response}"
        );
        Ok(())
    })
    .await?
}

/// jobkit's example job (`{"name": ...}`, doing nothing; `"fail": "flaky"` fails its first
/// attempt) at `memory_mb`, on a state table and a queue of its own as
/// `system_tests::example_stack` deploys it, under `meter`: its environment and its mapping
/// (`batch_size` records gathered for up to `batching_window`). The table and queues are
/// created outside the meter, so they are not counted.
///
/// # Errors
/// If moto refuses.
pub async fn noop_function(
    meter: &Meter,
    memory_mb: i32,
    batch_size: usize,
    batching_window: Duration,
) -> anyhow::Result<(std::collections::BTreeMap<String, String>, MeteredMapping)> {
    let sdk = moto::sdk_config().await;
    let state_table = moto::unique("noop-state");
    jobkit::aws::DynamoStore::create_table(&aws_sdk_dynamodb::Client::new(&sdk), &state_table).await?;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let (queue_url, dlq_url) =
        create_queue_with_dlq(&sqs, &moto::unique("noop"), Duration::from_secs(600), 10).await?;
    let env = meter
        .function_env()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .chain(
            [
                ("JOBKIT_QUEUE_URL", queue_url.clone()),
                ("JOBKIT_DLQ_URL", dlq_url),
                ("JOBKIT_STATE_TABLE", state_table),
                ("RUST_LOG", "info".to_owned()),
                ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", memory_mb.to_string()),
            ]
            .map(|(k, v)| (k.to_owned(), v)),
        )
        .collect();
    let mapping = MeteredMapping {
        queue_arn: queue_arn(&sqs, &queue_url).await?,
        queue_url,
        batch_size,
        batching_window,
        timeout: Duration::from_secs(600),
    };
    Ok((env, mapping))
}

/// One invocation: when it started, how long it ran and what it was given.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// When the event was handed to the function.
    pub invoked_at: Instant,
    /// Invoke -> answer, what Lambda bills (rounded up to the millisecond).
    pub duration: Duration,
    /// The ids of the messages in its event.
    pub message_ids: Vec<String>,
    /// Records in its event.
    pub records: usize,
    /// Records it reported failed.
    pub failed: usize,
}

/// The mapping a metered function runs under (the template's values, read back from moto).
#[derive(Debug, Clone)]
pub struct MeteredMapping {
    /// The queue.
    pub queue_url: String,
    /// Its ARN.
    pub queue_arn: String,
    /// `BatchSize`.
    pub batch_size: usize,
    /// `MaximumBatchingWindowInSeconds`.
    pub batching_window: Duration,
    /// The function's timeout.
    pub timeout: Duration,
}

struct Environment {
    api: RuntimeApi,
    process: FunctionProcess,
}

/// A function binary under an event source mapping, metered.
pub struct MeteredLambda {
    sqs: aws_sdk_sqs::Client,
    mapping: MeteredMapping,
    binary: PathBuf,
    env: Vec<(String, String)>,
    environment: Option<Environment>,
    /// Every invocation, in order.
    pub invocations: Vec<Invocation>,
    /// Each cold start: exec -> the first `GET /runtime/invocation/next`.
    pub inits: Vec<Duration>,
    /// Bytes the ended environments wrote to stdout and stderr.
    pub log_bytes: u64,
    /// Lines they wrote (each a CloudWatch Logs event).
    pub log_lines: u64,
    /// Records deleted after succeeding.
    pub deleted: usize,
}

impl MeteredLambda {
    /// `binary` with environment `env` on `mapping`'s queue, receiving through `sqs` (whose key
    /// the mapping's receives and deletes are counted under).
    pub fn new(
        sqs: aws_sdk_sqs::Client,
        mapping: MeteredMapping,
        binary: PathBuf,
        env: Vec<(String, String)>,
    ) -> Self {
        Self {
            sqs,
            mapping,
            binary,
            env,
            environment: None,
            invocations: Vec::new(),
            inits: Vec::new(),
            log_bytes: 0,
            log_lines: 0,
            deleted: 0,
        }
    }

    /// Polls until `records` records have succeeded (been deleted) or `limit` passes.
    ///
    /// # Errors
    /// If an invocation does not answer cleanly, SQS fails, or the limit passes first.
    pub async fn run_until_deleted(&mut self, records: usize, limit: Duration) -> anyhow::Result<()> {
        let started = Instant::now();
        while self.deleted < records {
            if started.elapsed() > limit {
                bail!("{} of {records} records done after {limit:?}", self.deleted);
            }
            self.poll(Duration::from_secs(1)).await?;
        }
        Ok(())
    }

    /// One poll: a batch as the mapping gathers it, the invocation, the deletes.
    async fn poll(&mut self, wait: Duration) -> anyhow::Result<()> {
        let mapping = &self.mapping;
        let messages =
            receive_batch(&self.sqs, &mapping.queue_url, mapping.batch_size, mapping.batching_window, wait)
                .await?;
        if messages.is_empty() {
            return Ok(());
        }
        if self.environment.is_none() {
            let api = RuntimeApi::start().await?;
            let env: Vec<(&str, String)> = self.env.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
            let started = Instant::now();
            let process = FunctionProcess::start(&self.binary, &api.endpoint(), &env)?;
            api.wait_for_first_next().await;
            self.inits.push(api.first_next_at().context("no first next")?.duration_since(started));
            self.environment = Some(Environment { api, process });
        }
        let environment = self.environment.as_ref().context("no environment")?;
        let event = sqs_event(&messages, &self.mapping.queue_arn);
        let deadline = now_ms() + u64::try_from(self.mapping.timeout.as_millis())?;
        let invoked = Instant::now();
        let answer = tokio::time::timeout(self.mapping.timeout, environment.api.invoke(event, deadline))
            .await
            .context("the invocation timed out")??;
        let duration = invoked.elapsed();
        let response = match answer {
            Answer::Response(response) => response,
            Answer::Error(error) => bail!("the invocation failed: {error}\n{}", environment.process.stderr()),
        };
        let failed: Vec<&str> = response["batchItemFailures"]
            .as_array()
            .map(|items| items.iter().filter_map(|i| i["itemIdentifier"].as_str()).collect())
            .unwrap_or_default();
        self.invocations.push(Invocation {
            invoked_at: invoked,
            duration,
            message_ids: messages.iter().filter_map(|m| m.message_id.clone()).collect(),
            records: messages.len(),
            failed: failed.len(),
        });
        self.deleted +=
            crate::sqs::delete_all_but(&self.sqs, &self.mapping.queue_url, &messages, &failed).await?;
        Ok(())
    }

    /// Stops the function, counting what it wrote.
    ///
    /// # Errors
    /// If the process cannot be stopped.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(environment) = self.environment.take() {
            let (stdout, stderr) = environment.process.stop().await?;
            for text in [stdout, stderr] {
                self.log_bytes += u64::try_from(text.len())?;
                self.log_lines += u64::try_from(text.lines().count())?;
            }
        }
        Ok(())
    }
}
