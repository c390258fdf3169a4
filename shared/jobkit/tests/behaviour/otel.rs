//! OpenTelemetry export (feature `otel`): each record's span, and the spans a job opens inside
//! it, sent over OTLP/HTTP to a collector in the trace the enqueuer and the logs name, the
//! child's span beneath the span that enqueued it.

use std::{
    collections::BTreeMap,
    io::Write,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode, header::CONTENT_TYPE},
    routing::post,
};
use jobkit::{
    ErrorKind, Job, JobContext, JobError,
    message::{OutgoingMessage, attr},
    otel::SpanExport,
    ports::Queue,
    telemetry::SpanFieldsJson,
    testing::TestHarness,
};
use opentelemetry_proto::tonic::{
    collector::trace::v1::ExportTraceServiceRequest,
    common::v1::any_value::Value,
    trace::v1::{Span, status::StatusCode as SpanStatus},
};
use prost::Message as _;
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt as _;

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Order {
    order: String,
}

/// Reserves stock under a span of its own, then enqueues the receipt.
struct PlaceOrder;

impl Job for PlaceOrder {
    type Args = Order;
    const NAME: &'static str = "place_order";

    async fn perform(&self, args: Order, ctx: &mut JobContext) -> Result<(), JobError> {
        async {}.instrument(tracing::info_span!("reserve_stock")).await;
        ctx.enqueuer()
            .perform_later::<SendReceipt>(&args)
            .await
            .map_err(|e| JobError::retryable(ErrorKind::UNAVAILABLE, e.to_string()))?;
        Ok(())
    }
}

struct SendReceipt;

impl Job for SendReceipt {
    type Args = Order;
    const NAME: &'static str = "send_receipt";

    async fn perform(&self, _args: Order, _ctx: &mut JobContext) -> Result<(), JobError> {
        Ok(())
    }
}

struct RefuseOrder;

impl Job for RefuseOrder {
    type Args = Order;
    const NAME: &'static str = "refuse_order";

    async fn perform(&self, args: Order, _ctx: &mut JobContext) -> Result<(), JobError> {
        Err(JobError::permanent(ErrorKind::NOT_FOUND, format!("no order {}", args.order)))
    }
}

/// A stub OTLP/HTTP collector on loopback: the export requests it was sent, decoded.
struct Collector {
    traces_url: String,
    requests: Arc<Mutex<Vec<ExportTraceServiceRequest>>>,
}

impl Collector {
    async fn start() -> Self {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let app = Router::new().route("/v1/traces", post(receive)).with_state(requests.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let traces_url = format!("http://{}/v1/traces", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { traces_url, requests }
    }

    /// Every span received, each with its resource's `service.name`.
    fn spans(&self) -> Vec<(String, Span)> {
        let requests = self.requests.lock().unwrap();
        let mut spans = Vec::new();
        for resource_spans in requests.iter().flat_map(|r| &r.resource_spans) {
            let resource =
                resource_spans.resource.as_ref().map(|r| r.attributes.as_slice()).unwrap_or_default();
            let service = value_of(resource, "service.name").unwrap_or_default();
            for span in resource_spans.scope_spans.iter().flat_map(|s| &s.spans) {
                spans.push((service.clone(), span.clone()));
            }
        }
        spans
    }
}

/// OTLP/HTTP's traces endpoint: a protobuf `ExportTraceServiceRequest` in, an empty
/// `ExportTraceServiceResponse` out.
async fn receive(
    State(requests): State<Arc<Mutex<Vec<ExportTraceServiceRequest>>>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, [(axum::http::HeaderName, &'static str); 1], Vec<u8>) {
    let protobuf = [(CONTENT_TYPE, "application/x-protobuf")];
    if headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) != Some("application/x-protobuf") {
        return (StatusCode::UNSUPPORTED_MEDIA_TYPE, protobuf, Vec::new());
    }
    match ExportTraceServiceRequest::decode(body) {
        Ok(request) => {
            requests.lock().unwrap().push(request);
            (StatusCode::OK, protobuf, Vec::new())
        }
        Err(_) => (StatusCode::BAD_REQUEST, protobuf, Vec::new()),
    }
}

fn value_of(attributes: &[opentelemetry_proto::tonic::common::v1::KeyValue], key: &str) -> Option<String> {
    let value = attributes.iter().find(|kv| kv.key == key)?.value.as_ref()?.value.as_ref()?;
    Some(match value {
        Value::StringValue(s) => s.clone(),
        Value::IntValue(i) => i.to_string(),
        other => format!("{other:?}"),
    })
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    value_of(&span.attributes, key)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The span named `name` whose `job` is `job` (a record's), or with no `job` (a job's own).
fn find<'a>(spans: &'a [(String, Span)], name: &str, job: Option<&str>) -> &'a Span {
    let found = spans.iter().find(|(_, s)| s.name == name && attribute(s, "job").as_deref() == job);
    &found.unwrap_or_else(|| panic!("no span {name} of {job:?} in {spans:#?}")).1
}

/// Log lines, as the Lambda's JSON logs write them.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Lines {
    fn parsed(&self) -> Vec<serde_json::Value> {
        let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
        text.lines().map(|line| serde_json::from_str(line).unwrap()).collect()
    }
}

#[tokio::test]
async fn a_records_span_is_exported_beneath_its_producers_and_the_job_it_enqueues_beneath_it() {
    let collector = Collector::start().await;
    let export = SpanExport::otlp(&collector.traces_url, "shop-jobs").unwrap();
    let _subscriber = tracing::subscriber::set_default(tracing_subscriber::registry().with(export.layer()));
    let t = TestHarness::new();
    let (orders, receipts) = (t.runner(PlaceOrder), t.runner(SendReceipt));
    let producer = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let attributes = BTreeMap::from([
        (attr::TRACEPARENT.to_owned(), producer.to_owned()),
        (attr::JOB_ID.to_owned(), "order-7".to_owned()),
    ]);
    let message = OutgoingMessage { body: r#"{"order":"o-7"}"#.into(), attributes, ..Default::default() };
    t.queue().send(&TestHarness::queue_name::<PlaceOrder>(), message).await.unwrap();
    assert_eq!(t.drain(&orders).await.succeeded(), 1);
    assert_eq!(t.drain(&receipts).await.succeeded(), 1);
    assert!(collector.spans().is_empty(), "nothing is sent before the flush");

    assert_eq!(export.flush(Duration::from_secs(30)).await.unwrap(), 3);

    let spans = collector.spans();
    assert_eq!(spans.len(), 3, "{spans:#?}");
    assert!(spans.iter().all(|(service, _)| service == "shop-jobs"), "{spans:#?}");
    assert!(
        spans.iter().all(|(_, s)| hex(&s.trace_id) == "4bf92f3577b34da6a3ce929d0e0e4736"),
        "one trace, the producer's: {spans:#?}"
    );
    let order = find(&spans, "record", Some("place_order"));
    assert_eq!(hex(&order.parent_span_id), "00f067aa0ba902b7", "beneath the producer's span");
    assert_eq!(attribute(order, "job_id").as_deref(), Some("order-7"));
    assert_eq!(attribute(order, "attempt").as_deref(), Some("1"));
    assert_eq!(attribute(order, "status").as_deref(), Some("succeeded"));
    assert_eq!(attribute(order, "trace_id").as_deref(), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
    let stock = find(&spans, "reserve_stock", None);
    assert_eq!(stock.parent_span_id, order.span_id, "the job's own span is beneath its record's");
    let receipt = find(&spans, "record", Some("send_receipt"));
    assert_eq!(receipt.parent_span_id, order.span_id, "the enqueued job beneath the span that enqueued it");
    assert_eq!(attribute(receipt, "status").as_deref(), Some("succeeded"));
    assert_ne!(attribute(receipt, "job_id"), attribute(order, "job_id"));
}

#[tokio::test]
async fn a_record_that_starts_a_trace_logs_the_trace_id_it_is_exported_in() {
    let collector = Collector::start().await;
    let export = SpanExport::otlp(&collector.traces_url, "shop-jobs").unwrap();
    let lines = Lines::default();
    let writer = lines.clone();
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(move || writer.clone())
        .json()
        .with_current_span(true)
        .with_span_list(false)
        .flatten_event(true)
        .fmt_fields(SpanFieldsJson);
    let _subscriber =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(export.layer()).with(logs));
    let t = TestHarness::new();
    let (orders, receipts) = (t.runner(PlaceOrder), t.runner(SendReceipt));
    // Enqueued outside any job: no traceparent, so the record starts the trace.
    t.enqueuer().perform_later::<PlaceOrder>(&Order { order: "o-8".into() }).await.unwrap();
    t.drain(&orders).await;
    t.drain(&receipts).await;
    export.flush(Duration::from_secs(30)).await.unwrap();

    let spans = collector.spans();
    let order = find(&spans, "record", Some("place_order"));
    assert!(order.parent_span_id.is_empty(), "a root: {order:#?}");
    let trace_id = hex(&order.trace_id);
    let receipt = find(&spans, "record", Some("send_receipt"));
    assert_eq!(hex(&receipt.trace_id), trace_id, "the enqueued job joins the trace");
    assert_eq!(receipt.parent_span_id, order.span_id);
    let handled: Vec<serde_json::Value> = lines
        .parsed()
        .into_iter()
        .filter(|line| line["message"] == "record handled" && line["span"]["job"] == "place_order")
        .collect();
    assert_eq!(handled.len(), 1, "{:?}", lines.parsed());
    assert_eq!(handled[0]["span"]["trace_id"], trace_id.as_str(), "the logs name the exported trace");
}

#[tokio::test]
async fn a_record_sent_to_the_dlq_is_exported_as_an_error_with_its_kind() {
    let collector = Collector::start().await;
    let export = SpanExport::otlp(&collector.traces_url, "shop-jobs").unwrap();
    let _subscriber = tracing::subscriber::set_default(tracing_subscriber::registry().with(export.layer()));
    let t = TestHarness::new();
    let refusals = t.runner(RefuseOrder);
    t.enqueuer().perform_later::<RefuseOrder>(&Order { order: "o-9".into() }).await.unwrap();
    assert_eq!(t.drain(&refusals).await.dead_lettered(), 1);
    export.flush(Duration::from_secs(30)).await.unwrap();

    let spans = collector.spans();
    let refused = find(&spans, "record", Some("refuse_order"));
    assert_eq!(attribute(refused, "status").as_deref(), Some("dead_lettered"));
    assert_eq!(attribute(refused, "error.type").as_deref(), Some("not_found"));
    let status = refused.status.as_ref().expect("a status");
    assert_eq!(status.code, SpanStatus::Error as i32, "{status:?}");
}
