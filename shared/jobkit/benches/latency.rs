//! Enqueue-to-start latency on the embedded backend: an idle worker long-polling its queue (as
//! `BatchRunner::poll` with a wait does, the embedded queue waking it on a send in the same
//! process), `perform_later` of one no-op job, and the time until `perform` starts. First one
//! job at a time (each after the previous started), then bursts. Prints p50 / p99 / max as one
//! JSON line.
//!
//! Run: `cargo bench -p jobkit --features testing --bench latency -- [--jobs 1000] [--burst 100]`.

mod support;

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use jobkit::{
    Enqueuer, Job, JobContext, JobError,
    clock::{SharedClock, SystemClock},
    embedded::{EmbeddedDb, EmbeddedQueue, EmbeddedStore, QueueConfig},
    enqueue::QueueRoutes,
    runner::{BatchRunner, RunnerConfig, Runtime},
};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

const QUEUE: &str = "probe";

#[derive(Serialize, Deserialize)]
struct ProbeArgs {
    n: u64,
}

/// Reports when its `perform` starts.
struct Probe {
    started: mpsc::UnboundedSender<(u64, Instant)>,
}

impl Job for Probe {
    type Args = ProbeArgs;
    const NAME: &'static str = "probe";

    async fn perform(&self, args: ProbeArgs, _ctx: &mut JobContext) -> Result<(), JobError> {
        let _ = self.started.send((args.n, Instant::now()));
        Ok(())
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1000.0
}

fn summary(mut latencies: Vec<Duration>) -> serde_json::Value {
    latencies.sort();
    serde_json::json!({
        "jobs": latencies.len(),
        "p50_ms": percentile(&latencies, 0.50),
        "p99_ms": percentile(&latencies, 0.99),
        "max_ms": percentile(&latencies, 1.0),
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let jobs = support::option("--jobs", 1000_u64);
    let burst = support::option("--burst", 100_u64).max(1);
    let file = std::env::temp_dir().join(format!("jobkit-latency-bench-{}.sqlite3", std::process::id()));
    let result = run(&file, jobs, burst).await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(PathBuf::from(format!("{}{suffix}", file.display())));
    }
    let (one_at_a_time, bursts) = result?;
    println!(
        "{}",
        serde_json::json!({
            "system": "jobkit embedded (SQLite file, WAL), one worker long-polling",
            "one_at_a_time": summary(one_at_a_time),
            "bursts": {"size": burst, "latency": summary(bursts)},
        })
    );
    Ok(())
}

async fn run(
    file: &std::path::Path,
    jobs: u64,
    burst: u64,
) -> anyhow::Result<(Vec<Duration>, Vec<Duration>)> {
    let clock: SharedClock = Arc::new(SystemClock);
    let db = EmbeddedDb::open(file)?;
    let queue = Arc::new(EmbeddedQueue::new(db.clone(), clock.clone()));
    queue.create_queue(QUEUE, QueueConfig::default())?;
    let store = Arc::new(EmbeddedStore::new(db));
    let routes = QueueRoutes::default().with(Probe::NAME, QUEUE);
    let enqueuer = Enqueuer::new(queue.clone(), store.clone(), clock.clone(), routes.clone());
    let (started_tx, mut started) = mpsc::unbounded_channel();
    let runtime = Runtime { queue, store, clock, notifier: None, metrics: None, routes };
    let runner =
        Arc::new(BatchRunner::new(Probe { started: started_tx }, runtime, RunnerConfig::new(QUEUE, "dlq")));
    let worker = {
        let runner = runner.clone();
        tokio::spawn(async move {
            loop {
                let deadline = chrono::Utc::now() + chrono::Duration::minutes(15);
                if let Err(e) = runner.poll(10, Duration::from_secs(20), deadline).await {
                    eprintln!("poll failed: {e}");
                }
            }
        })
    };
    let enqueued: Arc<Mutex<HashMap<u64, Instant>>> = Arc::default();
    let mut one_at_a_time = Vec::new();
    for n in 0..jobs {
        // The worker is idle, waiting in its long poll.
        tokio::time::sleep(Duration::from_millis(2)).await;
        let at = Instant::now();
        enqueuer.perform_later::<Probe>(&ProbeArgs { n }).await?;
        let (m, start) = started.recv().await.ok_or_else(|| anyhow::anyhow!("the worker stopped"))?;
        anyhow::ensure!(m == n, "job {m} started, {n} expected");
        one_at_a_time.push(start - at);
    }
    let mut bursts = Vec::new();
    for round in 0..(jobs / burst).max(1) {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let first = jobs + round * burst;
        for n in first..first + burst {
            enqueued.lock().unwrap().insert(n, Instant::now());
            enqueuer.perform_later::<Probe>(&ProbeArgs { n }).await?;
        }
        for _ in 0..burst {
            let (n, start) = started.recv().await.ok_or_else(|| anyhow::anyhow!("the worker stopped"))?;
            let at = enqueued.lock().unwrap().remove(&n).ok_or_else(|| anyhow::anyhow!("job {n} unknown"))?;
            bursts.push(start - at);
        }
    }
    worker.abort();
    Ok((one_at_a_time, bursts))
}
