//! Telemetry: `tracing` JSON logs (one span per record, set up by the runner) and CloudWatch
//! Embedded Metric Format lines: succeeded, retried, failed, discarded, duration and queue
//! latency per job, one line per batch. With the `otel` feature the spans can be exported
//! too ([`crate::otel`]).
//!
//! Invariant: metrics are aggregated per batch, so their cost per record is a few additions.

use std::{
    io::Write,
    sync::{Arc, Mutex},
};

use tracing::field::{Field, Visit};
use tracing_subscriber::{
    field::RecordFields,
    filter::Targets,
    fmt::{FormatFields, FormattedFields, MakeWriter, format::Writer},
    layer::SubscriberExt,
    util::SubscriberInitExt,
};

/// Where EMF lines go: stdout on Lambda (CloudWatch reads them from the log stream).
#[derive(Clone)]
pub struct MetricsSink {
    writer: Arc<Mutex<Box<dyn Write + Send>>>,
    namespace: Arc<str>,
}

impl std::fmt::Debug for MetricsSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsSink").field("namespace", &self.namespace).finish_non_exhaustive()
    }
}

impl MetricsSink {
    /// EMF lines on stdout in namespace `namespace`.
    pub fn stdout(namespace: &str) -> Self {
        Self::to_writer(namespace, Box::new(std::io::stdout()))
    }

    /// EMF lines into any writer (tests, benchmarks).
    pub fn to_writer(namespace: &str, writer: Box<dyn Write + Send>) -> Self {
        Self { writer: Arc::new(Mutex::new(writer)), namespace: namespace.into() }
    }

    /// Writes one EMF line for a batch of `job`.
    pub(crate) fn emit(&self, job: &str, counts: &BatchCounts, timestamp_ms: i64) {
        let line = emf_line(&self.namespace, job, counts, timestamp_ms);
        let mut writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        // Metrics must never fail a batch: a broken pipe loses a line, not a job.
        let _ = writeln!(writer, "{line}");
    }
}

/// What a batch did, per outcome, with durations and queue latencies.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BatchCounts {
    /// Records that ran and succeeded.
    pub succeeded: u64,
    /// Records that failed and will be retried.
    pub retried: u64,
    /// Records exhausted into the DLQ.
    pub failed: u64,
    /// Records discarded into the DLQ.
    pub discarded: u64,
    /// Duplicates acknowledged without running.
    pub duplicates: u64,
    /// Records handed back unstarted (deadline, in progress elsewhere).
    pub returned: u64,
    /// Records over their job's concurrency limit, re-sent to come back later.
    pub limited: u64,
    /// Records of jobs an operator cancelled, acknowledged without running.
    pub cancelled: u64,
    /// Total execution time, milliseconds.
    pub duration_ms_sum: f64,
    /// Longest execution, milliseconds.
    pub duration_ms_max: f64,
    /// Longest time from enqueue to start, milliseconds.
    pub queue_latency_ms_max: f64,
    /// Longest time a record took to settle after its execution (DLQ copy, run record,
    /// retry delay, email), milliseconds: what the runner's deadline margin must cover.
    pub settle_ms_max: f64,
}

fn emf_line(namespace: &str, job: &str, c: &BatchCounts, timestamp_ms: i64) -> String {
    serde_json::json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [["job"]],
                "Metrics": [
                    {"Name": "succeeded", "Unit": "Count"},
                    {"Name": "retried", "Unit": "Count"},
                    {"Name": "failed", "Unit": "Count"},
                    {"Name": "discarded", "Unit": "Count"},
                    {"Name": "duration", "Unit": "Milliseconds"},
                    {"Name": "queue_latency", "Unit": "Milliseconds"},
                    {"Name": "settle", "Unit": "Milliseconds"}
                ]
            }]
        },
        "job": job,
        "succeeded": c.succeeded,
        "retried": c.retried,
        "failed": c.failed,
        "discarded": c.discarded,
        "duplicates": c.duplicates,
        "returned": c.returned,
        "limited": c.limited,
        "cancelled": c.cancelled,
        "duration": c.duration_ms_max,
        "duration_sum": c.duration_ms_sum,
        "queue_latency": c.queue_latency_ms_max,
        "settle": c.settle_ms_max,
    })
    .to_string()
}

/// Installs the global `tracing` subscriber: JSON lines (Lambda, `--json`) or readable text,
/// filtered by `RUST_LOG` (default `info`). Safe to call twice: the second call does nothing.
pub fn init_logging(json: bool) {
    init_logging_to(json, std::io::stderr);
}

/// [`init_logging`] into any writer (benchmarks write into a sink).
pub fn init_logging_to<W>(json: bool, writer: W)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    install(
        json,
        writer,
        #[cfg(feature = "otel")]
        None,
    );
}

/// [`init_logging`], the spans (each record's, and those jobs open) also exported through
/// `export`; spans the filter leaves out are neither logged nor exported.
#[cfg(feature = "otel")]
pub fn init_logging_exporting(json: bool, export: &crate::otel::SpanExport) {
    install(json, std::io::stderr, Some(export.layer()));
}

/// The layer exporting spans, on the registry under the log lines' layer.
#[cfg(feature = "otel")]
type ExportLayer = tracing_opentelemetry::OpenTelemetryLayer<
    tracing_subscriber::Registry,
    opentelemetry_sdk::trace::SdkTracer,
>;

fn install<W>(json: bool, writer: W, #[cfg(feature = "otel")] export: Option<ExportLayer>)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    // `Targets` (`info`, `warn,jobkit=debug`) rather than `EnvFilter`: the same syntax for
    // levels per target without a regex engine in every function's bootstrap.
    let raw = std::env::var("RUST_LOG").ok();
    let parsed = raw.as_deref().map(str::parse::<Targets>);
    let filter = match &parsed {
        Some(Ok(targets)) => targets.clone(),
        _ => Targets::new().with_default(tracing::Level::INFO),
    };
    // Layers on one registry (the exporting layer, when given, first: its type names the
    // registry it sits on), filtered with `Targets` alone, as a whole.
    let registry = tracing_subscriber::registry();
    #[cfg(feature = "otel")]
    let registry = registry.with(export);
    let layer = tracing_subscriber::fmt::layer().with_writer(writer);
    let result = if json {
        let lines = layer
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .flatten_event(true)
            .fmt_fields(SpanFieldsJson);
        registry.with(lines).with(filter).try_init()
    } else {
        registry.with(layer.with_target(false)).with(filter).try_init()
    };
    // Already installed (tests, a second runner in one process): keep the first one.
    if result.is_ok()
        && let Some(Err(e)) = parsed
    {
        tracing::warn!(rust_log = raw.unwrap_or_default(), error = %e, "RUST_LOG not understood: logging at info");
    }
}

/// Formats span fields straight into a JSON object, as the JSON event format expects them.
///
/// tracing-subscriber's own `JsonFields` collects each span's fields into a map before writing
/// them; with a span per record that was a third of the runner's cost per record.
#[derive(Debug, Clone, Copy, Default)]
pub struct SpanFieldsJson;

impl<'writer> FormatFields<'writer> for SpanFieldsJson {
    fn format_fields<R: RecordFields>(&self, mut writer: Writer<'writer>, fields: R) -> std::fmt::Result {
        let mut visitor = JsonObject::default();
        fields.record(&mut visitor);
        writer.write_str(&visitor.finish())
    }

    fn add_fields(
        &self,
        current: &'writer mut FormattedFields<Self>,
        fields: &tracing::span::Record<'_>,
    ) -> std::fmt::Result {
        let mut visitor = JsonObject::default();
        fields.record(&mut visitor);
        let added = visitor.finish();
        // Merge `{"a":1}` and `{"b":2}` into `{"a":1,"b":2}`; a later value of a field wins when read.
        match current.fields.strip_suffix('}') {
            Some(head) if head.len() > 1 && added.len() > 2 => {
                let merged = format!("{head},{}", &added[1..]);
                current.fields = merged;
            }
            Some(_) if added.len() > 2 => current.fields = added,
            _ => {}
        }
        Ok(())
    }
}

/// Builds one JSON object from visited fields.
#[derive(Default)]
struct JsonObject {
    out: String,
}

impl JsonObject {
    fn key(&mut self, field: &Field) {
        self.out.push(if self.out.is_empty() { '{' } else { ',' });
        push_json_string(&mut self.out, field.name());
        self.out.push(':');
    }

    fn finish(mut self) -> String {
        if self.out.is_empty() {
            return "{}".to_owned();
        }
        self.out.push('}');
        self.out
    }
}

impl Visit for JsonObject {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.key(field);
        push_json_string(&mut self.out, value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.key(field);
        self.out.push_str(&value.to_string());
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.key(field);
        self.out.push_str(&value.to_string());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.key(field);
        self.out.push_str(if value { "true" } else { "false" });
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.key(field);
        if value.is_finite() {
            self.out.push_str(&value.to_string());
        } else {
            self.out.push_str("null");
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.key(field);
        push_json_string(&mut self.out, &format!("{value:?}"));
    }
}

fn push_json_string(out: &mut String, value: &str) {
    use std::fmt::Write as _;
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn span_fields_are_valid_json_whatever_their_values() {
        let mut out = String::new();
        push_json_string(&mut out, "a\"b\\c\nd\u{1}");
        let parsed: String = serde_json::from_str(&out).unwrap();
        assert_eq!(parsed, "a\"b\\c\nd\u{1}");
    }

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn json_log_lines_carry_the_record_spans_fields() {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .flatten_event(true)
            .fmt_fields(SpanFieldsJson)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("record", job = "cart", message_id = "m-\"1", attempt = 2u32);
            let _entered = span.enter();
            span.record("attempt", 3u32);
            tracing::info!(status = "ok", "record handled");
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let line: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(line["span"]["job"], "cart");
        assert_eq!(line["span"]["message_id"], "m-\"1");
        assert_eq!(line["span"]["attempt"], 3, "a recorded field replaces the first value: {text}");
        assert_eq!(line["status"], "ok");
    }

    #[test]
    fn emf_line_names_every_metric_with_the_job_dimension() {
        let counts = BatchCounts { succeeded: 3, retried: 1, ..Default::default() };
        let line: serde_json::Value = serde_json::from_str(&emf_line("Jobs", "cart", &counts, 1)).unwrap();
        assert_eq!(line["job"], "cart");
        assert_eq!(line["succeeded"], 3);
        assert_eq!(line["retried"], 1);
        let names: Vec<_> = line["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            names,
            ["succeeded", "retried", "failed", "discarded", "duration", "queue_latency", "settle"]
        );
    }
}
