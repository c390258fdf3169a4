//! No-op jobs through the embedded backend end to end, as `jobctl dev` runs them: enqueued with
//! `perform_later_bulk` into a SQLite file (WAL), received ten at a time, run by the batch
//! runner, deleted. Prints jobs per second as one JSON line, for the side-by-side with Sidekiq
//! on Redis (`./scripts/bench-throughput` runs all three, with graphile-worker).
//!
//! Run: `cargo bench -p jobkit --features testing --bench embedded -- --jobs 10000 [--workers 1] [--batch 10]
//! [--idempotent]`.

mod support;

use std::{
    hint::black_box,
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use jobkit::{
    Enqueuer, Job, JobContext, JobError,
    clock::{SharedClock, SystemClock},
    embedded::{EmbeddedDb, EmbeddedQueue, EmbeddedStore, QueueConfig},
    enqueue::QueueRoutes,
    message::Metadata,
    runner::{BatchRunner, RunnerConfig, Runtime},
};
use serde::{Deserialize, Serialize};

const QUEUE: &str = "noop";

#[derive(Serialize, Deserialize)]
struct NoopArgs {
    n: u64,
}

/// A no-op job. Without `idempotent` it is Sidekiq's no-op (every delivery runs); with it, our
/// default: a key taken and completed in the state store per job, so a redelivery runs nothing.
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

/// One worker: polls as Lambda's event source mapping does until nothing is visible.
async fn work(runner: Arc<BatchRunner<Noop>>, batch: usize) -> anyhow::Result<u64> {
    let deadline = chrono::Utc::now() + chrono::Duration::minutes(15);
    let mut succeeded = 0;
    loop {
        let outcome = runner.poll(batch, Duration::ZERO, deadline).await?;
        if outcome.records.is_empty() {
            return Ok(succeeded);
        }
        succeeded += outcome.counts.succeeded;
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let jobs = support::option("--jobs", 10_000);
    let workers = support::option("--workers", 1).max(1);
    let batch = support::option("--batch", 10).clamp(1, 100);
    let idempotent = std::env::args().any(|a| a == "--idempotent");
    let file = std::env::temp_dir().join(format!("jobkit-embedded-bench-{}.sqlite3", std::process::id()));
    let result = run(&file, jobs, workers, batch, idempotent).await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(PathBuf::from(format!("{}{suffix}", file.display())));
    }
    let (enqueue, process) = result?;
    let total = enqueue + process;
    println!(
        "{}",
        serde_json::json!({
            "system": "jobkit embedded (SQLite file, WAL)",
            "jobs": jobs,
            "workers": workers,
            "batch": batch,
            "idempotent": idempotent,
            "runner_concurrency": RunnerConfig::new(QUEUE, "dlq").concurrency,
            "enqueue_seconds": enqueue.as_secs_f64(),
            "process_seconds": process.as_secs_f64(),
            "total_seconds": total.as_secs_f64(),
            "jobs_per_second": jobs as f64 / total.as_secs_f64(),
            "process_jobs_per_second": jobs as f64 / process.as_secs_f64(),
        })
    );
    Ok(())
}

async fn run(
    file: &std::path::Path,
    jobs: usize,
    workers: usize,
    batch: usize,
    idempotent: bool,
) -> anyhow::Result<(Duration, Duration)> {
    let clock: SharedClock = Arc::new(SystemClock);
    let db = EmbeddedDb::open(file)?;
    let queue = Arc::new(EmbeddedQueue::new(db.clone(), clock.clone()));
    queue.create_queue(QUEUE, QueueConfig::default())?;
    let store = Arc::new(EmbeddedStore::new(db));
    let routes = QueueRoutes::default().with(Noop::NAME, QUEUE);
    let enqueuer = Enqueuer::new(queue.clone(), store.clone(), clock.clone(), routes.clone());

    let started = Instant::now();
    let sent = enqueuer.perform_later_bulk::<Noop>((0..jobs as u64).map(|n| NoopArgs { n })).await?;
    let enqueue = started.elapsed();
    anyhow::ensure!(sent.iter().all(Result::is_ok), "every job was enqueued");

    let runtime = Runtime { queue: queue.clone(), store, clock, notifier: None, metrics: None, routes };
    let runner =
        Arc::new(BatchRunner::new(Noop { idempotent }, runtime, RunnerConfig::new(QUEUE, "noop_dlq")));
    let started = Instant::now();
    let handles: Vec<_> = (0..workers).map(|_| tokio::spawn(work(runner.clone(), batch))).collect();
    let mut succeeded = 0;
    for handle in handles {
        succeeded += handle.await??;
    }
    let process = started.elapsed();
    anyhow::ensure!(succeeded == jobs as u64, "{succeeded} of {jobs} succeeded");
    anyhow::ensure!(queue.stats(QUEUE)?.visible == 0, "the queue is empty");
    Ok((enqueue, process))
}
