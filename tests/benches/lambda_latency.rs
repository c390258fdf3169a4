//! Enqueue-to-start on the Lambda path: from `SendMessage` to the invocation whose event carries
//! the message (the runner starts `perform` within that invocation's first millisecond: its
//! own work is about 2 us a record, `cargo bench -p jobkit --bench runner`), with and without
//! the template's batching window, for jobs sent one at a time and in bursts. Also counts the
//! invocations, which the window exists to save.
//!
//! jobkit's no-op example job runs on a queue of its own on moto under the metered Lambda
//! (`system_tests::cost`), which gathers each batch as the event source mapping does (up to the
//! batch size, for up to the window) with one poller and one environment. On AWS at least five
//! pollers share a queue and environments scale out, which spreads a burst; this measures what
//! the window adds, not Lambda's scaling. moto wakes a long poll when a message arrives (a
//! condition variable), as SQS does.
//!
//! Run with `./scripts/bench-lambda-latency` (it builds the workspace and starts moto); prints
//! the Markdown table BENCHMARKS.md holds.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use anyhow::Context;
use serde_json::json;
use system_tests::{
    cost::{Meter, MeteredLambda, noop_function},
    function::test_build_binary,
};

/// How jobs arrive: `bursts` bursts of `burst` jobs, `gap` apart.
struct Arrivals {
    name: &'static str,
    bursts: usize,
    burst: usize,
    gap: Duration,
}

const ARRIVALS: [Arrivals; 3] = [
    Arrivals { name: "one at a time, 1 a second", bursts: 30, burst: 1, gap: Duration::from_secs(1) },
    Arrivals { name: "one at a time, 10 a second", bursts: 200, burst: 1, gap: Duration::from_millis(100) },
    Arrivals { name: "bursts of 50, 2 s apart", bursts: 8, burst: 50, gap: Duration::from_secs(2) },
];

/// An event source mapping's gathering, as the template sets it.
struct Gathering {
    name: &'static str,
    batch_size: usize,
    window: Duration,
}

const GATHERINGS: [Gathering; 3] = [
    Gathering {
        name: "batch 10, no window (the template's other queues)",
        batch_size: 10,
        window: Duration::ZERO,
    },
    Gathering { name: "batch 5, no window", batch_size: 5, window: Duration::ZERO },
    Gathering {
        name: "batch 5, 2 s window (store_sync's lanes)",
        batch_size: 5,
        window: Duration::from_secs(2),
    },
];

/// Long enough for every run's jobs.
const RUN_LIMIT: Duration = Duration::from_secs(120);

struct Measured {
    latencies_ms: Vec<f64>,
    invocations: usize,
}

async fn measure(meter: &Meter, gathering: &Gathering, arrivals: &Arrivals) -> anyhow::Result<Measured> {
    let (env, mapping) = noop_function(meter, 128, gathering.batch_size, gathering.window).await?;
    let sqs = aws_sdk_sqs::Client::new(&meter.sdk_config().await);
    let env: Vec<(String, String)> = env.into_iter().collect();
    let mut lambda = MeteredLambda::new(sqs.clone(), mapping.clone(), test_build_binary("example_job")?, env);
    // A warm environment first: the cold start is measured elsewhere (scripts/bench-lambda).
    sqs.send_message().queue_url(&mapping.queue_url).message_body(r#"{"name":"warm"}"#).send().await?;
    lambda.run_until_deleted(1, RUN_LIMIT).await?;
    let warm = lambda.invocations.len();

    let jobs = arrivals.bursts * arrivals.burst;
    let send = async {
        let mut sent = HashMap::with_capacity(jobs);
        for b in 0..arrivals.bursts {
            if b > 0 {
                // The arrival pattern itself, not a wait for something to happen.
                tokio::time::sleep(arrivals.gap).await;
            }
            for n in 0..arrivals.burst {
                let body = json!({"name": format!("job{b}-{n}")}).to_string();
                let at = Instant::now();
                let out = sqs.send_message().queue_url(&mapping.queue_url).message_body(body).send().await?;
                sent.insert(out.message_id.context("SendMessage answered no id")?, at);
            }
        }
        anyhow::Ok(sent)
    };
    let (sent, ran) = tokio::join!(send, lambda.run_until_deleted(1 + jobs, RUN_LIMIT));
    let (sent, ()) = (sent?, ran?);
    lambda.stop().await?;

    let mut latencies_ms = Vec::with_capacity(jobs);
    for invocation in &lambda.invocations[warm..] {
        for id in &invocation.message_ids {
            let at = sent.get(id).with_context(|| format!("message {id} was not sent by this run"))?;
            latencies_ms.push(invocation.invoked_at.saturating_duration_since(*at).as_secs_f64() * 1000.0);
        }
    }
    anyhow::ensure!(latencies_ms.len() == jobs, "{} of {jobs} jobs started", latencies_ms.len());
    latencies_ms.sort_by(f64::total_cmp);
    Ok(Measured { latencies_ms, invocations: lambda.invocations.len() - warm })
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let meter = Meter::new();
    println!("| mapping | jobs arrive | jobs | p50 ms | p99 ms | max ms | invocations | per 1,000 jobs |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    for gathering in &GATHERINGS {
        for arrivals in &ARRIVALS {
            let measured = measure(&meter, gathering, arrivals).await?;
            let jobs = measured.latencies_ms.len();
            let l = &measured.latencies_ms;
            println!(
                "| {} | {} | {jobs} | {:.1} | {:.1} | {:.1} | {} | {:.0} |",
                gathering.name,
                arrivals.name,
                percentile(l, 50.0),
                percentile(l, 99.0),
                l[jobs - 1],
                measured.invocations,
                measured.invocations as f64 * 1000.0 / jobs as f64,
            );
        }
    }
    Ok(())
}
