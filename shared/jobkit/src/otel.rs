//! OpenTelemetry export (cargo feature `otel`): the runner's span per record, and the spans a
//! job opens inside it, exported over OTLP/HTTP. A record's span is the child of the span its
//! message names (`traceparent`, else X-Ray's `AWSTraceHeader`), and what it enqueues carries a
//! `traceparent` naming the span it was enqueued under, so the exported trace is the one the
//! logs' `trace_id` names, from the enqueuer to the job.
//!
//! Spans are kept in memory as they end and exported by [`SpanExport::flush`], which the Lambda
//! glue calls at the end of each invocation, before answering and within the time left before
//! the deadline, as lambda_runtime's `OpenTelemetryLayer` flushes its tracer provider after each
//! invocation. Not the SDK's batch processor: its thread is frozen with the process between
//! invocations, and flushing it blocks a runtime thread on a blocking HTTP client that brings a
//! runtime of its own. Not the simple processor: it blocks on an export as each span ends.
//!
//! Invariants: exporting never fails or holds up a record; spans that cannot be exported in
//! time are dropped (and logged), and at most [`MAX_PENDING`] wait for a flush. jobkit does not
//! sample: every `traceparent` it writes is sampled, and every record's span is exported.

use std::{
    fmt,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use futures::future::BoxFuture;
use opentelemetry::{
    Context,
    context::FutureExt as _,
    trace::{
        SpanContext, SpanId, Status, TraceContextExt as _, TraceFlags, TraceId, TraceState,
        TracerProvider as _,
    },
};
use opentelemetry_otlp::{Protocol, WithExportConfig as _};
use opentelemetry_sdk::{
    Resource,
    error::{OTelSdkError, OTelSdkResult},
    trace::{SdkTracer, SdkTracerProvider, SpanData, SpanExporter, SpanProcessor},
};
use tracing_opentelemetry::{OpenTelemetryLayer, OpenTelemetrySpanExt as _};
use tracing_subscriber::registry::LookupSpan;

use crate::{runner::RecordStatus, trace::TraceContext};

/// Spans kept for the next flush at most (a few MiB); past this, new ones are dropped and
/// counted, so a process whose spans are never flushed cannot run out of memory.
pub const MAX_PENDING: usize = 8192;

/// Spans per OTLP request: the SDK's batch processor's default, well within collectors' limits.
const SPANS_PER_REQUEST: usize = 512;

/// The variables that turn export on: OTLP's base endpoint, or its traces endpoint.
const ENDPOINT_VARS: [&str; 2] = ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"];

/// Set once a layer exporting spans exists: until then the runner keeps the path it takes
/// without this feature (a record's `trace_id` written when its span is created), so a
/// process that exports nothing pays nothing for it.
static LAYER_MADE: AtomicBool = AtomicBool::new(false);

/// Setting up or flushing the export failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OtelError {
    /// The OTLP exporter could not be built from its settings (an endpoint that is no URL).
    #[error("building the OTLP exporter: {0}")]
    Build(#[from] opentelemetry_otlp::ExporterBuildError),
    /// The collector refused the spans or could not be reached.
    #[error("exporting spans ({exported} of {spans} exported): {source}")]
    Export {
        /// Spans exported before the failure.
        exported: usize,
        /// Spans flushed.
        spans: usize,
        /// The exporter's error.
        source: OTelSdkError,
    },
    /// The time left ran out.
    #[error("{exported} of {spans} spans exported within {within:?}; the rest were dropped")]
    TimedOut {
        /// Spans exported in time.
        exported: usize,
        /// Spans flushed.
        spans: usize,
        /// The time the flush had.
        within: Duration,
    },
}

/// Where spans go: a tracer provider whose spans wait in memory until [`SpanExport::flush`]
/// hands them to its exporter. Cloning shares it. `jobkit::lambda` sets it up from the
/// environment and flushes it after every invocation; elsewhere:
///
/// ```no_run
/// # async fn example() -> Result<(), jobkit::otel::OtelError> {
/// use std::time::Duration;
///
/// if let Some(export) = jobkit::otel::SpanExport::from_env("store_sync")? {
///     jobkit::telemetry::init_logging_exporting(true, &export);
///     // ... run records ...
///     export.flush(Duration::from_secs(2)).await?;
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct SpanExport {
    provider: SdkTracerProvider,
    pending: Arc<Pending>,
    exporter: Arc<dyn ExportSpans>,
}

impl fmt::Debug for SpanExport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpanExport").field("exporter", &self.exporter).finish_non_exhaustive()
    }
}

impl SpanExport {
    /// Export over OTLP/HTTP (protobuf) as the standard variables say, when
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` (`http://localhost:4318`, to which `/v1/traces` is added)
    /// or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (the whole URL) is set; `None` otherwise.
    /// `OTEL_SERVICE_NAME` names the service, else `default_service_name` (the job's name);
    /// `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_EXPORTER_OTLP_HEADERS` and `OTEL_EXPORTER_OTLP_TIMEOUT`
    /// (each request's, default 10 s) are read too.
    ///
    /// # Errors
    /// [`OtelError::Build`] when the exporter cannot be built from the variables.
    pub fn from_env(default_service_name: &str) -> Result<Option<Self>, OtelError> {
        let var = |name: &str| std::env::var(name).ok();
        if !export_configured(var) {
            return Ok(None);
        }
        // The exporter reads the endpoint, headers and timeout from the environment itself.
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .build()?;
        let resource = resource(var, default_service_name);
        Ok(Some(Self::with_exporter(exporter, resource)))
    }

    /// Export over OTLP/HTTP (protobuf) to `traces_url` (`http://127.0.0.1:4318/v1/traces`), as
    /// service `service_name`.
    ///
    /// # Errors
    /// [`OtelError::Build`] when `traces_url` is no URL.
    pub fn otlp(traces_url: &str, service_name: &str) -> Result<Self, OtelError> {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(traces_url)
            .build()?;
        let resource = Resource::builder().with_service_name(service_name.to_owned()).build();
        Ok(Self::with_exporter(exporter, resource))
    }

    /// Export through any span exporter (another protocol, a test's), for spans of `resource`.
    pub fn with_exporter<E: SpanExporter + 'static>(mut exporter: E, resource: Resource) -> Self {
        // The provider would hand its resource to a processor; ours gives it to the exporter,
        // which sends it with every request.
        exporter.set_resource(&resource);
        let pending = Arc::new(Pending::default());
        let provider = SdkTracerProvider::builder()
            .with_span_processor(KeepForFlush(pending.clone()))
            .with_resource(resource)
            .build();
        Self { provider, pending, exporter: Arc::new(exporter) }
    }

    /// The `tracing` layer that turns spans into OpenTelemetry spans of this export: add it to
    /// the subscriber ([`crate::telemetry::init_logging_exporting`] does).
    pub fn layer<S>(&self) -> OpenTelemetryLayer<S, SdkTracer>
    where
        S: tracing::Subscriber + for<'span> LookupSpan<'span>,
    {
        LAYER_MADE.store(true, Ordering::Relaxed);
        tracing_opentelemetry::layer().with_tracer(self.provider.tracer("jobkit"))
    }

    /// Exports the spans that ended since the last flush, giving up after `within` (what is
    /// left of the invocation): the spans not exported by then are dropped. Returns how many
    /// were exported.
    ///
    /// # Errors
    /// [`OtelError::Export`] when the collector refused them or could not be reached,
    /// [`OtelError::TimedOut`] when `within` ran out.
    pub async fn flush(&self, within: Duration) -> Result<usize, OtelError> {
        let dropped = self.pending.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            tracing::warn!(
                dropped,
                kept = MAX_PENDING,
                "spans dropped: more ended than are kept between flushes"
            );
        }
        let spans = std::mem::take(&mut *self.pending.lock());
        let count = spans.len();
        if count == 0 {
            return Ok(0);
        }
        let mut exported = 0;
        let export = async {
            let mut spans = spans.into_iter();
            loop {
                let request: Vec<SpanData> = spans.by_ref().take(SPANS_PER_REQUEST).collect();
                let size = request.len();
                if size == 0 {
                    return Ok::<(), OTelSdkError>(());
                }
                self.exporter.export(request).await?;
                exported += size;
            }
        };
        // What the export itself does (an HTTP client's spans) must not become spans to export.
        let quiet = Context::current().with_telemetry_suppressed();
        let outcome = tokio::time::timeout(within, export.with_context(quiet)).await;
        match outcome {
            Ok(Ok(())) => Ok(count),
            Ok(Err(source)) => Err(OtelError::Export { exported, spans: count, source }),
            Err(_) => Err(OtelError::TimedOut { exported, spans: count, within }),
        }
    }
}

/// Export is on when either OTLP endpoint variable is set to something.
fn export_configured(var: impl Fn(&str) -> Option<String>) -> bool {
    ENDPOINT_VARS.iter().any(|name| var(name).is_some_and(|value| !value.trim().is_empty()))
}

/// The service's resource: the SDK's detectors (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`),
/// with `default_service_name` when `OTEL_SERVICE_NAME` is unset (the SDK would say
/// `unknown_service`).
fn resource(var: impl Fn(&str) -> Option<String>, default_service_name: &str) -> Resource {
    let builder = Resource::builder();
    match var("OTEL_SERVICE_NAME").filter(|name| !name.trim().is_empty()) {
        Some(_) => builder.build(),
        None => builder.with_service_name(default_service_name.to_owned()).build(),
    }
}

/// Whether the runner should look for an exported span before naming a record's trace.
pub(crate) fn layer_made() -> bool {
    LAYER_MADE.load(Ordering::Relaxed)
}

/// Puts the record's `span` in the trace `incoming` names, as a child of the producer's span,
/// and returns the trace the span is exported in: `incoming`'s, or the new one its tracer
/// started. `None` when no OpenTelemetry layer records the span (not installed, or the span
/// filtered out).
pub(crate) fn join_trace(span: &tracing::Span, incoming: Option<&TraceContext>) -> Option<TraceContext> {
    if let Some(parent) = incoming.and_then(remote_parent) {
        // The parent is set before anything starts the span: afterwards it could not be.
        span.set_parent(parent).ok()?;
    }
    let context = span.context();
    let exported = context.span().span_context().clone();
    exported.is_valid().then(|| {
        TraceContext::from_ids(
            &format!("{:032x}", exported.trace_id()),
            &format!("{:016x}", exported.span_id()),
        )
    })
}

/// The `traceparent` of a job enqueued now, when an OpenTelemetry layer records the current
/// span: a child of that span (the record's, or one the job opened inside it), so the child
/// record's span hangs under it.
pub(crate) fn current_span_header() -> Option<String> {
    let context = tracing::Span::current().context();
    let current = context.span().span_context().clone();
    current.is_valid().then(|| format!("00-{:032x}-{:016x}-01", current.trace_id(), current.span_id()))
}

/// Adds the record's outcome to its span: `status` (as the logs name it), and an error status
/// with `error.type` when it failed.
pub(crate) fn record_outcome(span: &tracing::Span, status: &RecordStatus) {
    span.set_attribute("status", status.name());
    match status {
        RecordStatus::DeadLettered(_, kind) => {
            span.set_attribute("error.type", kind.to_string());
            span.set_status(Status::error(format!("in the DLQ: {kind}")));
        }
        RecordStatus::Retrying(_) => span.set_status(Status::error("failed: retrying")),
        RecordStatus::Unhandled(why) => span.set_status(Status::error(why.clone())),
        _ => {}
    }
}

/// The remote span a message names, as a parent context.
fn remote_parent(trace: &TraceContext) -> Option<Context> {
    let trace_id = TraceId::from_hex(trace.trace_id()).ok()?;
    let span_id = SpanId::from_hex(trace.parent_id()).ok()?;
    let parent = SpanContext::new(trace_id, span_id, TraceFlags::SAMPLED, true, TraceState::default());
    Some(Context::new().with_remote_span_context(parent))
}

/// Ended spans waiting for a flush, and how many were dropped since the last one.
#[derive(Debug, Default)]
struct Pending {
    spans: Mutex<Vec<SpanData>>,
    dropped: AtomicUsize,
}

impl Pending {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<SpanData>> {
        // A panic while pushing a span leaves a usable list.
        self.spans.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The span processor: keeps each sampled span as it ends, for [`SpanExport::flush`].
#[derive(Debug)]
struct KeepForFlush(Arc<Pending>);

impl SpanProcessor for KeepForFlush {
    fn on_start(&self, _span: &mut opentelemetry_sdk::trace::Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        if !span.span_context.is_sampled() {
            return;
        }
        let mut spans = self.0.lock();
        if spans.len() < MAX_PENDING {
            spans.push(span);
        } else {
            self.0.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Nothing to do here: exporting is asynchronous, and [`SpanExport::flush`] does it on
    /// the invocation's own task, within its time.
    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}

/// A span exporter behind a pointer (the SDK's trait returns `impl Future`).
trait ExportSpans: Send + Sync + fmt::Debug {
    fn export(&self, spans: Vec<SpanData>) -> BoxFuture<'_, OTelSdkResult>;
}

impl<E: SpanExporter> ExportSpans for E {
    fn export(&self, spans: Vec<SpanData>) -> BoxFuture<'_, OTelSdkResult> {
        Box::pin(SpanExporter::export(self, spans))
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;

    use opentelemetry::KeyValue;
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;

    /// Records the size of every request it is given; never answers when `hang`.
    #[derive(Debug, Clone, Default)]
    struct Requests {
        sizes: Arc<Mutex<Vec<usize>>>,
        hang: bool,
    }

    impl SpanExporter for Requests {
        fn export(&self, batch: Vec<SpanData>) -> impl Future<Output = OTelSdkResult> + Send {
            self.sizes.lock().unwrap().push(batch.len());
            let hang = self.hang;
            async move {
                if hang {
                    std::future::pending::<()>().await;
                }
                Ok(())
            }
        }
    }

    fn end_spans(export: &SpanExport, count: usize) {
        let subscriber = tracing_subscriber::registry().with(export.layer());
        tracing::subscriber::with_default(subscriber, || {
            for _ in 0..count {
                tracing::info_span!("work").in_scope(|| {});
            }
        });
    }

    #[test]
    fn export_is_on_only_when_an_otlp_endpoint_is_set() {
        let vars = |set: &'static [(&'static str, &'static str)]| {
            move |name: &str| set.iter().find(|(n, _)| *n == name).map(|(_, v)| (*v).to_owned())
        };
        assert!(!export_configured(vars(&[])));
        assert!(!export_configured(vars(&[("OTEL_EXPORTER_OTLP_ENDPOINT", " ")])), "blank is unset");
        assert!(!export_configured(vars(&[("OTEL_SERVICE_NAME", "shop")])));
        assert!(export_configured(vars(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4318")])));
        assert!(export_configured(vars(&[(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "http://localhost:4318/v1/traces"
        )])));
    }

    #[test]
    fn the_service_is_the_jobs_unless_otel_service_name_names_one() {
        let name = |resource: &Resource| resource.get(&"service.name".into()).map(|v| v.to_string());
        let unset = resource(|_| None, "store_sync");
        assert_eq!(name(&unset).as_deref(), Some("store_sync"));
        // Set, the SDK's own detector reads it from the environment: the job's name is not imposed.
        let set = resource(|n| (n == "OTEL_SERVICE_NAME").then(|| "shop".to_owned()), "store_sync");
        assert_ne!(name(&set).as_deref(), Some("store_sync"));
    }

    #[tokio::test]
    async fn a_flush_exports_the_spans_ended_since_the_last_in_requests_of_512() {
        let requests = Requests::default();
        let export = SpanExport::with_exporter(
            requests.clone(),
            Resource::builder_empty().with_attributes([KeyValue::new("service.name", "t")]).build(),
        );
        end_spans(&export, 600);
        assert!(requests.sizes.lock().unwrap().is_empty(), "nothing is exported before the flush");
        assert_eq!(export.flush(Duration::from_secs(5)).await.unwrap(), 600);
        assert_eq!(*requests.sizes.lock().unwrap(), [512, 88]);
        assert_eq!(export.flush(Duration::from_secs(5)).await.unwrap(), 0, "each span once");
        assert_eq!(requests.sizes.lock().unwrap().len(), 2, "no empty request");
    }

    #[tokio::test]
    async fn spans_past_the_limit_are_dropped_rather_than_kept_without_bound() {
        let requests = Requests::default();
        let export = SpanExport::with_exporter(requests.clone(), Resource::builder_empty().build());
        end_spans(&export, MAX_PENDING + 10);
        assert_eq!(export.flush(Duration::from_secs(5)).await.unwrap(), MAX_PENDING);
    }

    #[tokio::test]
    async fn a_flush_gives_up_when_its_time_runs_out_and_drops_what_it_held() {
        let requests = Requests { hang: true, ..Requests::default() };
        let export = SpanExport::with_exporter(requests.clone(), Resource::builder_empty().build());
        end_spans(&export, 3);
        let started = std::time::Instant::now();
        let error = export.flush(Duration::from_millis(50)).await.unwrap_err();
        assert!(matches!(error, OtelError::TimedOut { exported: 0, spans: 3, .. }), "{error}");
        assert!(started.elapsed() < Duration::from_secs(5), "bounded by its time: {:?}", started.elapsed());
        assert_eq!(export.flush(Duration::from_millis(50)).await.unwrap(), 0, "not kept for the next one");
    }
}
