//! Telemetry: `tracing` JSON logs (one span per record, set up by the runner) and CloudWatch
//! Embedded Metric Format lines: succeeded, retried, failed, discarded, set aside, duration and
//! queue latency per job, one line per batch (per 100 records of a larger one). With the `otel`
//! feature the spans can be exported too ([`crate::otel`]).
//!
//! Invariants: counts are aggregated per batch, so their cost per record is a few additions;
//! durations, queue latencies and settle times go out as every record's value (EMF takes an
//! array of up to 100 values per metric), so CloudWatch's percentiles are per record, not per
//! batch maximum.

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

    /// Writes the EMF lines of a batch of `job`: one, or one per [`EMF_MAX_VALUES`] records.
    pub(crate) fn emit(&self, job: &str, counts: &BatchCounts, timestamp_ms: i64) {
        let lines = emf_lines(&self.namespace, job, counts, timestamp_ms);
        let mut writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        for line in lines {
            // Metrics must never fail a batch: a broken pipe loses a line, not a job.
            let _ = writeln!(writer, "{line}");
        }
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
    /// Records (carts, products, ...) the jobs set aside ([`crate::JobContext::set_aside`]):
    /// records inside the jobs' work, not messages of the batch.
    pub set_aside: u64,
    /// Total execution time, milliseconds.
    pub duration_ms_sum: f64,
    /// Longest execution, milliseconds.
    pub duration_ms_max: f64,
    /// Longest time from enqueue to start, milliseconds.
    pub queue_latency_ms_max: f64,
    /// Longest time a record took to settle after its execution (DLQ copy, run record,
    /// retry delay, email), milliseconds: what the runner's deadline margin must cover.
    pub settle_ms_max: f64,
    /// Each executed record's duration, milliseconds, in the order they finished.
    pub durations_ms: Vec<f64>,
    /// Each started record's time from enqueue to start, milliseconds.
    pub queue_latencies_ms: Vec<f64>,
    /// Each settled record's settle time, milliseconds.
    pub settles_ms: Vec<f64>,
}

/// The most values one EMF metric may carry in one line (CloudWatch's embedded metric format
/// specification: a target member's array "MUST NOT contain more than 100 members").
pub const EMF_MAX_VALUES: usize = 100;

/// The batch's EMF lines: the counts and the first [`EMF_MAX_VALUES`] records' values in the
/// first; the values of a larger batch's further records, 100 at a time, in lines of their own.
fn emf_lines(namespace: &str, job: &str, c: &BatchCounts, timestamp_ms: i64) -> Vec<String> {
    let chunks = |values: &[f64]| values.chunks(EMF_MAX_VALUES).map(<[f64]>::to_vec).collect::<Vec<_>>();
    let (durations, latencies, settles) =
        (chunks(&c.durations_ms), chunks(&c.queue_latencies_ms), chunks(&c.settles_ms));
    let lines = durations.len().max(latencies.len()).max(settles.len()).max(1);
    (0..lines)
        .map(|i| {
            let values = Values {
                duration: durations.get(i).map_or(&[], Vec::as_slice),
                queue_latency: latencies.get(i).map_or(&[], Vec::as_slice),
                settle: settles.get(i).map_or(&[], Vec::as_slice),
            };
            emf_line(namespace, job, (i == 0).then_some(c), &values, timestamp_ms)
        })
        .collect()
}

/// One line's per-record values.
struct Values<'a> {
    duration: &'a [f64],
    queue_latency: &'a [f64],
    settle: &'a [f64],
}

/// One EMF line: the batch's counts when `counts` is given, and the values. A metric is
/// declared only with values to carry: the specification requires every declared metric's
/// member on the line, and an empty array would publish nothing.
fn emf_line(
    namespace: &str,
    job: &str,
    counts: Option<&BatchCounts>,
    values: &Values<'_>,
    timestamp_ms: i64,
) -> String {
    let mut metrics = Vec::new();
    let mut line = serde_json::Map::new();
    line.insert("job".into(), job.into());
    if let Some(c) = counts {
        for (name, count) in [
            ("succeeded", c.succeeded),
            ("retried", c.retried),
            ("failed", c.failed),
            ("discarded", c.discarded),
        ] {
            metrics.push(serde_json::json!({"Name": name, "Unit": "Count"}));
            line.insert(name.into(), count.into());
        }
        // Declared only when the batch set something aside: most batches of most jobs never
        // do, and their lines stay as they were. An alarm on it treats missing data as zero
        // (`TreatMissingData: notBreaching`).
        if c.set_aside > 0 {
            metrics.push(serde_json::json!({"Name": "set_aside", "Unit": "Count"}));
            line.insert("set_aside".into(), c.set_aside.into());
        }
        // Logged beside the metrics for whoever reads the line, not published as metrics.
        for (name, count) in [
            ("duplicates", c.duplicates),
            ("returned", c.returned),
            ("limited", c.limited),
            ("cancelled", c.cancelled),
        ] {
            line.insert(name.into(), count.into());
        }
        line.insert("duration_sum".into(), c.duration_ms_sum.into());
    }
    for (name, values) in
        [("duration", values.duration), ("queue_latency", values.queue_latency), ("settle", values.settle)]
    {
        if !values.is_empty() {
            metrics.push(serde_json::json!({"Name": name, "Unit": "Milliseconds"}));
            line.insert(name.into(), values.into());
        }
    }
    line.insert(
        "_aws".into(),
        serde_json::json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{"Namespace": namespace, "Dimensions": [["job"]], "Metrics": metrics}],
        }),
    );
    serde_json::Value::Object(line).to_string()
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
    use serde_json::json;

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

    fn metric_names(line: &serde_json::Value) -> Vec<String> {
        line["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap().to_owned())
            .collect()
    }

    fn parsed(lines: &[String]) -> Vec<serde_json::Value> {
        lines.iter().map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    #[test]
    fn emf_line_names_every_metric_with_the_job_dimension_and_every_records_values() {
        let counts = BatchCounts {
            succeeded: 3,
            retried: 1,
            durations_ms: vec![5.0, 7.5, 1.0, 40.0],
            queue_latencies_ms: vec![100.0, 90.0, 80.0, 70.0],
            settles_ms: vec![2.0],
            ..Default::default()
        };
        let lines = parsed(&emf_lines("Jobs", "cart", &counts, 1));
        assert_eq!(lines.len(), 1);
        let line = &lines[0];
        assert_eq!(
            (&line["job"], &line["succeeded"], &line["retried"]),
            (&json!("cart"), &json!(3), &json!(1))
        );
        assert_eq!(
            metric_names(line),
            ["succeeded", "retried", "failed", "discarded", "duration", "queue_latency", "settle"]
        );
        assert_eq!(line["duration"], json!([5.0, 7.5, 1.0, 40.0]), "each record's value, not the maximum");
        assert_eq!(line["queue_latency"], json!([100.0, 90.0, 80.0, 70.0]));
    }

    #[test]
    fn a_batch_without_executions_declares_no_timing_metric() {
        let counts = BatchCounts { duplicates: 2, ..Default::default() };
        let line = &parsed(&emf_lines("Jobs", "cart", &counts, 1))[0];
        assert_eq!(metric_names(line), ["succeeded", "retried", "failed", "discarded"]);
        assert!(line.get("duration").is_none(), "{line}");
    }

    #[test]
    fn records_set_aside_are_a_count_metric_of_the_batch_that_set_them_aside() {
        let counts =
            BatchCounts { succeeded: 1, set_aside: 2, durations_ms: vec![3.0], ..Default::default() };
        let line = &parsed(&emf_lines("Jobs", "cart", &counts, 1))[0];
        assert_eq!(
            metric_names(line),
            ["succeeded", "retried", "failed", "discarded", "set_aside", "duration"]
        );
        let declared = &line["_aws"]["CloudWatchMetrics"][0]["Metrics"][4];
        assert_eq!(declared, &json!({"Name": "set_aside", "Unit": "Count"}));
        assert_eq!(line["set_aside"], 2);
    }

    #[test]
    fn a_batch_over_100_records_carries_its_values_100_to_a_line_and_its_counts_once() {
        let counts = BatchCounts {
            succeeded: 250,
            durations_ms: (0..250).map(f64::from).collect(),
            queue_latencies_ms: (0..250).map(f64::from).collect(),
            ..Default::default()
        };
        let lines = parsed(&emf_lines("Jobs", "cart", &counts, 1));
        let sizes: Vec<usize> = lines.iter().map(|l| l["duration"].as_array().unwrap().len()).collect();
        assert_eq!(sizes, [100, 100, 50]);
        assert_eq!(lines[2]["duration"][49], json!(249.0), "nothing lost");
        assert_eq!(lines[0]["succeeded"], 250);
        for later in &lines[1..] {
            assert!(later.get("succeeded").is_none(), "counted once: {later}");
            assert_eq!(metric_names(later), ["duration", "queue_latency"]);
        }
    }
}
