//! The runner's cost per record on a 10,000-record batch of a no-op job, with JSON logging (to a
//! sink) and EMF metrics on, beside a baseline that only decodes the bodies.
//!
//! Run: `cargo bench -p jobkit --features testing --bench runner` (prints a Markdown table for BENCHMARKS.md).

use std::{
    hint::black_box,
    sync::Arc,
    time::{Duration, Instant},
};

use jobkit::{
    Job, JobContext, JobError,
    clock::SystemClock,
    embedded::{EmbeddedDb, EmbeddedQueue, EmbeddedStore},
    enqueue::QueueRoutes,
    message::{Metadata, ReceivedMessage},
    runner::{RunnerConfig, Runtime},
    telemetry::{MetricsSink, init_logging_to},
};
use serde::{Deserialize, Serialize};

const RECORDS: usize = 10_000;
const ROUNDS: usize = 7;

#[derive(Serialize, Deserialize)]
struct NoopArgs {
    store_id: String,
    page: u32,
}

struct Noop {
    idempotent: bool,
}

impl Job for Noop {
    type Args = NoopArgs;
    const NAME: &'static str = "noop";

    async fn perform(&self, args: NoopArgs, _ctx: &mut JobContext) -> Result<(), JobError> {
        black_box(args);
        Ok(())
    }

    fn idempotency_key(&self, _args: &NoopArgs, meta: &Metadata) -> Option<String> {
        self.idempotent.then(|| jobkit::job::default_idempotency_key(meta))
    }
}

fn batch(round: usize) -> Vec<ReceivedMessage> {
    (0..RECORDS)
        .map(|i| ReceivedMessage {
            message_id: format!("m-{round}-{i}"),
            receipt_handle: format!("r-{round}-{i}"),
            body: format!(r#"{{"store_id":"st_{i}","page":{}}}"#, i % 50),
            receive_count: 1,
            ..Default::default()
        })
        .collect()
}

fn runtime() -> Runtime {
    let clock: jobkit::clock::SharedClock = Arc::new(SystemClock);
    let db = EmbeddedDb::in_memory().expect("sqlite");
    Runtime {
        queue: Arc::new(EmbeddedQueue::new(db.clone(), clock.clone())),
        store: Arc::new(EmbeddedStore::new(db)),
        clock,
        notifier: None,
        metrics: Some(MetricsSink::to_writer("Bench", Box::new(std::io::sink()))),
        routes: QueueRoutes::default(),
    }
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

async fn time_runner(idempotent: bool) -> Duration {
    let runner = jobkit::runner::BatchRunner::new(
        Noop { idempotent },
        runtime(),
        RunnerConfig::new("noop", "noop_dlq"),
    );
    let deadline = chrono::Utc::now() + chrono::Duration::minutes(15);
    let mut samples = Vec::new();
    for round in 0..ROUNDS {
        let messages = batch(round);
        let started = Instant::now();
        let outcome = runner.process(messages, deadline).await;
        samples.push(started.elapsed());
        assert_eq!(outcome.counts.succeeded, RECORDS as u64, "every record succeeded");
    }
    median(samples)
}

fn time_decode_only() -> Duration {
    let mut samples = Vec::new();
    for round in 0..ROUNDS {
        let messages = batch(round);
        let started = Instant::now();
        for m in &messages {
            let args: NoopArgs = serde_json::from_str(&m.body).expect("decodes");
            black_box(args);
        }
        samples.push(started.elapsed());
    }
    median(samples)
}

fn per_record(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6 / RECORDS as f64
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio");
    let baseline = time_decode_only();
    // For comparison only: the same runner before any log subscriber is installed.
    let unlogged = rt.block_on(time_runner(false));
    // JSON logs on, written to a sink: the formatting cost is measured, not the terminal's.
    init_logging_to(true, std::io::sink);
    let plain = rt.block_on(time_runner(false));
    let idempotent = rt.block_on(time_runner(true));
    let base = per_record(baseline);
    println!("| case | batch of {RECORDS} (median of {ROUNDS}) | per record | beyond decoding |");
    println!("|---|---|---|---|");
    println!("| decode bodies only (baseline) | {baseline:.2?} | {base:.2} us | - |");
    let cases = [
        ("runner, no idempotency, no log subscriber (for comparison)", unlogged),
        ("runner, no idempotency, JSON logs + EMF metrics", plain),
        ("runner, idempotency on SQLite :memory:, JSON logs + EMF metrics", idempotent),
    ];
    for (name, d) in cases {
        let us = per_record(d);
        println!("| {name} | {d:.2?} | {us:.2} us | {:.2} us |", us - base);
    }
}
