//! The Lambda glue: build the adapters from the environment once, then answer SQS events with
//! the job's batch runner, so a function's `main.rs` is one call.
//!
//! Environment: `JOBKIT_QUEUE_URL` (the function's queue), `JOBKIT_DLQ_URL` (its DLQ),
//! `JOBKIT_STATE_TABLE` (the DynamoDB table), optional `JOBKIT_ALERT_FROM` / `JOBKIT_ALERT_TO`
//! (error emails), `JOBKIT_METRICS_NAMESPACE` (default `Jobs`), `JOBKIT_CONCURRENCY` (default 8),
//! and `JOBKIT_QUEUE_URL_<JOB>` (`JOBKIT_QUEUE_URL_CUSTOMER_SYNC`) for the queues of the jobs this
//! one enqueues. With the `otel` feature, `OTEL_EXPORTER_OTLP_ENDPOINT` turns on the export of
//! spans ([`crate::otel::SpanExport::from_env`]), flushed at the end of every invocation.

use std::{collections::BTreeMap, future::Future, sync::Arc};

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use chrono::{DateTime, Utc};
use lambda_runtime::{LambdaEvent, service_fn};

use crate::{
    aws::{DynamoStore, SesMailer, SqsQueue},
    clock::SystemClock,
    enqueue::QueueRoutes,
    job::Job,
    message::ReceivedMessage,
    notify::{Notifier, NotifyConfig},
    runner::{BatchRunner, RunnerConfig, Runtime},
    telemetry::{MetricsSink, init_logging},
};

/// A setting the function needs is missing or unreadable.
#[derive(Debug, thiserror::Error)]
#[error("environment variable {name} {problem}")]
pub struct SetupError {
    name: &'static str,
    problem: &'static str,
}

/// A setting the function cannot run without, from the environment.
///
/// # Errors
/// A [`SetupError`] naming the variable when it is unset or empty.
pub fn setting(name: &'static str) -> Result<String, SetupError> {
    std::env::var(name).ok().filter(|v| !v.is_empty()).ok_or(SetupError { name, problem: "is not set" })
}

pub use aws_types::SdkConfig;

/// The SDK configuration inside Lambda, from the variables Lambda sets: `AWS_REGION`, the
/// execution role's `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN`, and
/// `AWS_ENDPOINT_URL` when given (moto, LocalStack). Not aws-config's credential chain: a
/// function never needs profiles, SSO, STS or IMDS, and that chain would double the size of
/// every bootstrap (see BENCHMARKS.md). Tools outside Lambda use [`crate::aws::sdk_config`].
///
/// # Errors
/// A [`SetupError`] naming a variable Lambda should have set.
pub fn sdk_config() -> Result<SdkConfig, SetupError> {
    use aws_credential_types::{Credentials, provider::SharedCredentialsProvider};
    use aws_sdk_sqs::config::BehaviorVersion;

    let credentials = Credentials::new(
        setting("AWS_ACCESS_KEY_ID")?,
        setting("AWS_SECRET_ACCESS_KEY")?,
        std::env::var("AWS_SESSION_TOKEN").ok().filter(|t| !t.is_empty()),
        None,
        "lambda-environment",
    );
    let mut config = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(aws_types::region::Region::new(setting("AWS_REGION")?))
        .credentials_provider(SharedCredentialsProvider::new(credentials));
    let endpoint = std::env::var("AWS_ENDPOINT_URL").ok().filter(|e| !e.is_empty());
    // A custom HTTPS endpoint (LocalStack, a proxy) may present any certificate: it keeps the
    // SDK's default client and the system's roots. Plain-HTTP endpoints (moto) never use TLS.
    if !endpoint.as_deref().is_some_and(|e| e.starts_with("https://")) {
        config = config.http_client(aws_https_client());
    }
    if let Some(endpoint) = endpoint {
        config = config.endpoint_url(endpoint);
    }
    Ok(config.build())
}

/// The roots AWS service endpoints chain to: Amazon Root CA 1-4 and the Starfield Services
/// root that cross-signs them (<https://www.amazontrust.com/repository/>).
const AMAZON_TRUST_SERVICES_PEM: &[u8] = include_bytes!("amazon_trust_services.pem");

/// The SDK's HTTPS client trusting only Amazon Trust Services. Every AWS endpoint serves an
/// ATS certificate, and the SDK's default loads and parses the whole system bundle (about 150
/// roots, twice on Amazon Linux) on every cold start: several milliseconds of init for roots a
/// function never uses (see BENCHMARKS.md). A smaller trust store is also a smaller attack
/// surface.
fn aws_https_client() -> aws_sdk_sqs::config::SharedHttpClient {
    use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};

    let trust = TrustStore::empty().with_native_roots(false).with_pem_certificate(AMAZON_TRUST_SERVICES_PEM);
    let builder =
        aws_smithy_http_client::Builder::new().tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc));
    match TlsContext::builder().with_trust_store(trust).build() {
        Ok(context) => builder.tls_context(context).build_https(),
        Err(error) => {
            tracing::warn!(%error, "Amazon roots rejected; using the system's trust store");
            builder.build_https()
        }
    }
}

/// A positive whole-number setting (minutes, days, a count), `default` when unset.
///
/// # Errors
/// A [`SetupError`] naming the variable when it is set to anything but a positive whole number.
pub fn positive_setting(name: &'static str, default: u32) -> Result<u32, SetupError> {
    match std::env::var(name) {
        Ok(raw) => raw
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or(SetupError { name, problem: "is not a positive whole number" }),
        Err(_) => Ok(default),
    }
}

/// Builds `job`'s runner on the AWS adapters from the environment.
///
/// # Errors
/// A [`SetupError`] naming the missing variable.
pub async fn runner_from_env<J: Job>(job: J) -> Result<BatchRunner<J>, SetupError> {
    runner_on(job, &sdk_config()?)
}

fn runner_on<J: Job>(job: J, sdk: &SdkConfig) -> Result<BatchRunner<J>, SetupError> {
    let queue_url = setting("JOBKIT_QUEUE_URL")?;
    let dlq_url = setting("JOBKIT_DLQ_URL")?;
    let table = setting("JOBKIT_STATE_TABLE")?;
    let routes = QueueRoutes::from_env().with(J::NAME, queue_url.clone());
    let mut config = RunnerConfig::new(queue_url, dlq_url);
    for &lane in J::OTHER_LANES {
        // A lane's queue is one the function reads: without it, its records could not be settled.
        let url = routes.resolve_lane(J::NAME, Some(lane)).map_err(|_| {
            // Once per cold start, and only on the way to an error.
            let name = format!(
                "JOBKIT_QUEUE_URL_{}__{}",
                J::NAME.to_ascii_uppercase(),
                lane.as_str().to_ascii_uppercase()
            );
            SetupError {
                name: Box::leak(name.into_boxed_str()),
                problem: "is unset: it is the queue of one of the job's lanes",
            }
        })?;
        config = config.with_lane(lane, url.into_owned());
    }
    if let Ok(raw) = std::env::var("JOBKIT_CONCURRENCY") {
        config.concurrency = raw
            .parse()
            .map_err(|_| SetupError { name: "JOBKIT_CONCURRENCY", problem: "is not a whole number" })?;
    }
    let ses = SesMailer::new(aws_sdk_sesv2::Client::new(sdk));
    let namespace = std::env::var("JOBKIT_METRICS_NAMESPACE").unwrap_or_else(|_| "Jobs".to_owned());
    let runtime = Runtime {
        queue: Arc::new(SqsQueue::new(aws_sdk_sqs::Client::new(sdk))),
        store: Arc::new(DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), table)),
        clock: Arc::new(SystemClock),
        notifier: NotifyConfig::from_env().map(|c| Notifier::new(Arc::new(ses), c)),
        metrics: Some(MetricsSink::stdout(&namespace)),
        routes,
    };
    Ok(BatchRunner::new(job, runtime, config))
}

/// Runs `job` as a Lambda function on SQS events. Call it from `main`.
///
/// # Errors
/// A setup error, or the Lambda runtime's own failure.
pub async fn run<J: Job>(job: J) -> Result<(), Error> {
    run_with(|_| async { Ok::<_, Error>(job) }).await
}

/// Builds the job from the AWS configuration (its own clients, table names from the
/// environment), then runs it as [`run`] does. Building happens once per cold start.
///
/// ```ignore
/// #[tokio::main]
/// async fn main() -> Result<(), jobkit::lambda::Error> {
///     jobkit::lambda::run_with(store_sync::StoreSync::from_aws).await
/// }
/// ```
///
/// # Errors
/// The builder's error, a setup error, or the Lambda runtime's own failure.
pub async fn run_with<J, F, Fut, E>(build: F) -> Result<(), Error>
where
    J: Job,
    F: FnOnce(SdkConfig) -> Fut,
    Fut: Future<Output = Result<J, E>>,
    E: Into<Error>,
{
    #[cfg(feature = "otel")]
    let export = init_logging_and_export::<J>();
    #[cfg(not(feature = "otel"))]
    init_logging(true);
    let sdk = sdk_config()?;
    let job = build(sdk.clone()).await.map_err(Into::into)?;
    let handler = Arc::new(Handler {
        runner: runner_on(job, &sdk)?,
        #[cfg(feature = "otel")]
        export,
    });
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let handler = handler.clone();
        async move { Ok::<_, Error>(handler.answer(event).await) }
    }))
    .await
}

/// What answers each invocation: the job's runner, and with `otel` the export of its spans.
struct Handler<J: Job> {
    runner: BatchRunner<J>,
    #[cfg(feature = "otel")]
    export: Option<crate::otel::SpanExport>,
}

impl<J: Job> Handler<J> {
    async fn answer(&self, event: LambdaEvent<SqsEvent>) -> SqsBatchResponse {
        let deadline = i64::try_from(event.context.deadline)
            .ok()
            .and_then(DateTime::from_timestamp_millis)
            .unwrap_or_else(|| Utc::now() + chrono::Duration::minutes(1));
        let response = self.runner.handle_sqs_event(event.payload, deadline).await;
        #[cfg(feature = "otel")]
        if let Some(export) = &self.export {
            flush_before(export, deadline).await;
        }
        response
    }
}

/// Time kept after the spans' flush to post the answer to the Runtime API (a loopback call).
#[cfg(feature = "otel")]
const ANSWER_RESERVE: chrono::Duration = chrono::Duration::milliseconds(200);

/// Installs logging with the export of spans when the environment configures one; a
/// configuration that cannot be used is logged and spans are not exported, but jobs run.
#[cfg(feature = "otel")]
fn init_logging_and_export<J: Job>() -> Option<crate::otel::SpanExport> {
    match crate::otel::SpanExport::from_env(J::NAME) {
        Ok(Some(export)) => {
            crate::telemetry::init_logging_exporting(true, &export);
            Some(export)
        }
        Ok(None) => {
            init_logging(true);
            None
        }
        Err(error) => {
            init_logging(true);
            tracing::error!(%error, "OpenTelemetry export is configured but cannot start: spans are not exported");
            None
        }
    }
}

/// Exports the invocation's spans before Lambda gets its answer: once it has it, Lambda may
/// freeze the process until the next event (as lambda_runtime's `OpenTelemetryLayer` flushes
/// after each invocation). Bounded by the deadline: spans not exported by then are dropped
/// rather than the invocation timing out.
#[cfg(feature = "otel")]
async fn flush_before(export: &crate::otel::SpanExport, deadline: DateTime<Utc>) {
    let within = (deadline - Utc::now() - ANSWER_RESERVE).to_std().unwrap_or_default();
    if let Err(error) = export.flush(within).await {
        tracing::warn!(%error, "spans not exported");
    }
}

impl<J: Job> BatchRunner<J> {
    /// Handles a Lambda SQS event; records to retry are reported as batch item failures. The
    /// records are settled on the queue they came from (an event source mapping reads one
    /// queue: the job's own, or one of its other lanes').
    pub async fn handle_sqs_event(&self, event: SqsEvent, deadline: DateTime<Utc>) -> SqsBatchResponse {
        let source = event.records.first().and_then(|r| r.event_source_arn.clone());
        let queue = self.queue_of_source(source.as_deref()).to_owned();
        let messages = event.records.into_iter().map(from_sqs_message).collect();
        let outcome = self.process_from(&queue, messages, deadline).await;
        let mut response = SqsBatchResponse::default();
        for id in outcome.failures() {
            response.add_failure(id);
        }
        response
    }
}

impl<J: Job> BatchRunner<J> {
    /// The queue (URL) of the runner's whose name ends the record's `eventSourceARN`
    /// (`arn:aws:sqs:us-east-1:123456789012:store-jobs-store-sync-low`); the job's own when the
    /// ARN is absent or names none of them (logged: a record from a queue the function was not
    /// configured with is settled on the job's own).
    fn queue_of_source(&self, arn: Option<&str>) -> &str {
        let Some(name) = arn.and_then(|arn| arn.rsplit(':').next()) else {
            return &self.config().queue;
        };
        match self.config().queues().find(|(_, url)| url.rsplit('/').next() == Some(name)) {
            Some((_, url)) => url,
            None => {
                tracing::warn!(
                    source = name,
                    "records from a queue this function has no URL for; settling them on the job's own"
                );
                &self.config().queue
            }
        }
    }
}

/// Converts a Lambda SQS record to the runner's message; absent fields become defaults.
pub fn from_sqs_message(m: SqsMessage) -> ReceivedMessage {
    let receive_count = m.attributes.get("ApproximateReceiveCount").and_then(|c| c.parse().ok()).unwrap_or(1);
    let sent_at = m
        .attributes
        .get("SentTimestamp")
        .and_then(|t| t.parse::<i64>().ok())
        .and_then(DateTime::from_timestamp_millis);
    let group_id = m.attributes.get("MessageGroupId").cloned();
    let aws_trace_header = m.attributes.get("AWSTraceHeader").cloned();
    let mut attributes = BTreeMap::new();
    let mut unreadable_attributes = Vec::new();
    for (name, value) in m.message_attributes {
        match (value.string_value, value.binary_value) {
            (Some(text), _) => {
                attributes.insert(name, text);
            }
            (None, Some(binary)) => match String::from_utf8(binary.0) {
                Ok(text) => {
                    attributes.insert(name, text);
                }
                Err(_) => unreadable_attributes.push(name),
            },
            (None, None) => {}
        }
    }
    ReceivedMessage {
        unreadable_attributes,
        message_id: m.message_id.unwrap_or_default(),
        receipt_handle: m.receipt_handle.unwrap_or_default(),
        body: m.body.unwrap_or_default(),
        attributes,
        receive_count,
        sent_at,
        group_id,
        aws_trace_header,
    }
}

/// The error a function's `main` returns.
pub use lambda_runtime::Error;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_records_x_ray_header_is_kept_for_its_trace() {
        let mut record = SqsMessage::default();
        record.attributes.insert(
            "AWSTraceHeader".into(),
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1".into(),
        );
        record.attributes.insert("ApproximateReceiveCount".into(), "2".into());
        let message = from_sqs_message(record);
        assert_eq!(message.receive_count, 2);
        let trace = message.aws_trace_header.as_deref().and_then(crate::trace::TraceContext::from_xray);
        assert_eq!(
            trace.map(|t| t.trace_id().to_owned()).as_deref(),
            Some("5759e988bd862e3fe1be46a994272793")
        );
        assert!(message.attributes.is_empty(), "a system attribute is not a message attribute");
    }

    #[cfg(all(feature = "otel", feature = "testing"))]
    mod export {
        use std::{
            sync::{Arc, Mutex},
            time::Instant,
        };

        use opentelemetry_sdk::{
            Resource,
            error::OTelSdkResult,
            trace::{SpanData, SpanExporter},
        };
        use tracing_subscriber::layer::SubscriberExt as _;

        use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
        use chrono::{DateTime, Utc};
        use lambda_runtime::LambdaEvent;

        use crate::{Job, JobContext, JobError, lambda::Handler, otel::SpanExport, testing::TestHarness};

        struct Noop;

        impl Job for Noop {
            type Args = serde_json::Value;
            const NAME: &'static str = "noop";

            async fn perform(&self, _args: serde_json::Value, _ctx: &mut JobContext) -> Result<(), JobError> {
                Ok(())
            }
        }

        /// Keeps what it is given: each span's name and `status`. Never answers when `hang`.
        #[derive(Debug, Clone, Default)]
        struct Collector {
            spans: Arc<Mutex<Vec<(String, String)>>>,
            hang: bool,
        }

        impl SpanExporter for Collector {
            async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
                if self.hang {
                    std::future::pending::<()>().await;
                }
                let status = |span: &SpanData| {
                    span.attributes
                        .iter()
                        .find(|kv| kv.key.as_str() == "status")
                        .map(|kv| kv.value.to_string())
                };
                let mut spans = self.spans.lock().unwrap();
                spans.extend(batch.iter().map(|s| (s.name.to_string(), status(s).unwrap_or_default())));
                Ok(())
            }
        }

        fn invocation(deadline: DateTime<Utc>) -> LambdaEvent<SqsEvent> {
            let mut record = SqsMessage::default();
            record.message_id = Some("m-1".into());
            record.body = Some("{}".into());
            let mut event = SqsEvent::default();
            event.records.push(record);
            let mut context = lambda_runtime::Context::default();
            context.deadline = u64::try_from(deadline.timestamp_millis()).unwrap();
            LambdaEvent::new(event, context)
        }

        #[tokio::test]
        async fn an_invocations_spans_are_exported_before_it_answers() {
            let harness = TestHarness::new();
            let collector = Collector::default();
            let export = SpanExport::with_exporter(collector.clone(), Resource::builder_empty().build());
            let _logging =
                tracing::subscriber::set_default(tracing_subscriber::registry().with(export.layer()));
            let handler = Handler { runner: harness.runner(Noop), export: Some(export) };

            let response = handler.answer(invocation(Utc::now() + chrono::Duration::minutes(10))).await;

            assert!(response.batch_item_failures.is_empty(), "{response:?}");
            assert_eq!(*collector.spans.lock().unwrap(), [("record".to_owned(), "succeeded".to_owned())]);
        }

        #[tokio::test]
        async fn a_collector_that_does_not_answer_cannot_keep_an_invocation_past_its_deadline() {
            let harness = TestHarness::new();
            let collector = Collector { hang: true, ..Collector::default() };
            let export = SpanExport::with_exporter(collector, Resource::builder_empty().build());
            let _logging =
                tracing::subscriber::set_default(tracing_subscriber::registry().with(export.layer()));
            let handler = Handler { runner: harness.runner(Noop), export: Some(export) };

            let started = Instant::now();
            // The runner reads the harness's clock, so the record runs; the flush has what is
            // left of the real deadline.
            let deadline = Utc::now() + chrono::Duration::milliseconds(1500);
            let response = handler.answer(invocation(deadline)).await;

            assert!(response.batch_item_failures.is_empty(), "{response:?}");
            assert!(
                Utc::now() < deadline,
                "answered {:?} after the start, past the deadline",
                started.elapsed()
            );
        }
    }

    #[tokio::test]
    async fn the_amazon_trust_store_holds_the_five_roots_and_builds_a_client() {
        let pem = String::from_utf8_lossy(AMAZON_TRUST_SERVICES_PEM);
        assert_eq!(pem.matches("-----BEGIN CERTIFICATE-----").count(), 5);
        assert_eq!(pem.matches("-----END CERTIFICATE-----").count(), 5);

        let config = aws_sdk_sqs::Config::builder()
            .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
            .region(aws_types::region::Region::new("us-east-1"))
            .http_client(aws_https_client())
            .build();
        // Creating the client builds its connector, which parses the roots (the SDK panics on
        // a certificate it cannot parse).
        let _client = aws_sdk_sqs::Client::from_conf(config);
    }
}
