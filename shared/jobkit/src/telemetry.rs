//! Telemetry: `tracing` JSON logs (one span per record, set up by the runner) and CloudWatch
//! Embedded Metric Format lines: succeeded, retried, failed, discarded, duration and queue
//! latency per job, one line per batch.
//!
//! Invariant: metrics are aggregated per batch, so their cost per record is a few additions.

use std::{
    io::Write,
    sync::{Arc, Mutex},
};

use tracing_subscriber::{EnvFilter, fmt::MakeWriter};

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
    /// Total execution time, milliseconds.
    pub duration_ms_sum: f64,
    /// Longest execution, milliseconds.
    pub duration_ms_max: f64,
    /// Longest time from enqueue to start, milliseconds.
    pub queue_latency_ms_max: f64,
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
                    {"Name": "queue_latency", "Unit": "Milliseconds"}
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
        "duration": c.duration_ms_max,
        "duration_sum": c.duration_ms_sum,
        "queue_latency": c.queue_latency_ms_max,
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
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer);
    let result = if json {
        builder.json().with_current_span(true).with_span_list(false).flatten_event(true).try_init()
    } else {
        builder.with_target(false).try_init()
    };
    // Already installed (tests, a second runner in one process): keep the first one.
    let _ = result;
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(names, ["succeeded", "retried", "failed", "discarded", "duration", "queue_latency"]);
    }
}
