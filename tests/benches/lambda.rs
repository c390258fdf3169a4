//! Lambda benchmark: for every function's release `bootstrap` (built by `cargo lambda build
//! --release`, as `sam build` does) beside a bare lambda_runtime hello-world built with the same
//! profile: the bootstrap's size and its zip's, the cold start (exec -> first
//! `GET /runtime/invocation/next` on a local Runtime API stub), the time to answer one SQS event
//! of 10 records against moto, and the peak RSS after that batch.
//!
//! Run with `./scripts/bench-lambda` (it builds the bootstraps and starts moto); prints a
//! Markdown table for `BENCHMARKS.md`.

use std::{
    io::Write,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use system_tests::{
    function::FunctionProcess,
    moto,
    runtime_api::{Answer, RuntimeApi},
    sqs::{create_queue, now_ms, receive, sqs_event},
    tables::StackTables,
};

/// Fresh processes per function; medians are reported.
const RUNS: usize = 7;

/// The invocation deadline given to every function: Lambda's 15 minute maximum, so no job's
/// own timeout (store_sync's is 9 minutes) makes the runner return records unstarted.
const LAMBDA_MAX_TIMEOUT_MS: u64 = 15 * 60 * 1000;

/// A function and the 10 bodies of its batch.
struct Subject {
    name: &'static str,
    /// What the batch does, for the table.
    batch: &'static str,
    body: fn(usize) -> String,
}

fn unknown_store(n: usize) -> String {
    format!(r#"{{"store_id":"st_missing_{n}"}}"#)
}

const SUBJECTS: [Subject; 7] = [
    Subject { name: "hello_lambda", batch: "answers", body: |_| "{}".to_owned() },
    Subject {
        name: "store_sync",
        batch: "fan-out over no stores (a Scan each)",
        body: |_| r#"{"all_stores":true}"#.to_owned(),
    },
    Subject { name: "customer_sync", batch: "unknown stores: 10 discards to the DLQ", body: unknown_store },
    Subject {
        name: "clean_active_carts",
        batch: "nothing idle (a Query and a Scan each)",
        body: |_| "{}".to_owned(),
    },
    Subject { name: "clean_database", batch: "nothing expired (3 Queries each)", body: |_| "{}".to_owned() },
    Subject {
        name: "create_shopify_webhook",
        batch: "unknown stores: 10 discards to the DLQ",
        body: unknown_store,
    },
    Subject {
        name: "share_product_text_message",
        batch: "unknown stores: 10 discards to the DLQ",
        body: |n| {
            format!(
                r#"{{"share_id":"sh_{n}","store_id":"st_missing","product_id":"p1","phone":"+14155550123"}}"#
            )
        },
    },
];

struct Measured {
    size: u64,
    zip: u64,
    cold: Duration,
    batch: Duration,
    rss_kib: u64,
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

fn bootstrap(name: &str) -> anyhow::Result<PathBuf> {
    let path = target_dir().join("lambda").join(name).join("bootstrap");
    if !path.exists() {
        bail!("{} is missing: run ./scripts/bench-lambda (cargo lambda build --release)", path.display());
    }
    Ok(path)
}

/// The size of `bootstrap` deflated at level 9, as in the zip Lambda receives.
fn zipped_size(path: &Path) -> anyhow::Result<u64> {
    let bytes = std::fs::read(path)?;
    let mut encoder = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(&bytes)?;
    Ok(encoder.finish()?.len() as u64)
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

async fn measure(subject: &Subject, tables: &StackTables) -> anyhow::Result<Measured> {
    let path = bootstrap(subject.name)?;
    let sdk = moto::sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let queue = create_queue(&sqs, &moto::unique(subject.name)).await?;
    let dlq = create_queue(&sqs, &moto::unique(&format!("{}-dlq", subject.name))).await?;
    let mut env = moto::function_env();
    env.extend([
        ("JOBKIT_QUEUE_URL", queue.clone()),
        ("JOBKIT_DLQ_URL", dlq),
        ("SHOP_SECRET_PREFIX", "shop/stores".to_owned()),
        ("SHOPIFY_WEBHOOK_TOPICS", "APP_UNINSTALLED".to_owned()),
        ("SHOPIFY_WEBHOOK_URL", "https://hooks.example.com/shopify".to_owned()),
        ("RUST_LOG", "info".to_owned()),
    ]);
    env.extend(tables.env.iter().cloned());

    let (mut colds, mut batches, mut rss) = (Vec::new(), Vec::new(), 0);
    for _ in 0..RUNS {
        for n in 0..10 {
            sqs.send_message().queue_url(&queue).message_body((subject.body)(n)).send().await?;
        }
        let messages = receive(&sqs, &queue, 10).await?;
        if messages.len() != 10 {
            bail!("{}: received {} of 10 messages", subject.name, messages.len());
        }
        let event = sqs_event(&messages, "arn:aws:sqs:us-east-1:123456789012:bench");

        let api = RuntimeApi::start().await?;
        let started = Instant::now();
        let function = FunctionProcess::start(&path, &api.endpoint(), &env)?;
        api.wait_for_first_next().await;
        let ready = api.first_next_at().context("no first next")?;
        let invoked = Instant::now();
        let answer = api.invoke(event, now_ms() + LAMBDA_MAX_TIMEOUT_MS).await?;
        let answered = invoked.elapsed();
        rss = rss.max(function.peak_rss_kib().unwrap_or(0));
        let (_, stderr) = function.stop().await?;
        match answer {
            Answer::Response(response)
                if response["batchItemFailures"].as_array().is_none_or(|f| f.is_empty()) => {}
            other => bail!("{}: the batch did not fully succeed: {other:?}\n{stderr}", subject.name),
        }
        colds.push(ready - started);
        batches.push(answered);
        for m in &messages {
            // Lambda deletes what succeeded; do the same so the next run starts empty.
            sqs.delete_message()
                .queue_url(&queue)
                .set_receipt_handle(m.receipt_handle.clone())
                .send()
                .await?;
        }
    }
    Ok(Measured {
        size: std::fs::metadata(&path)?.len(),
        zip: zipped_size(&path)?,
        cold: median(colds),
        batch: median(batches),
        rss_kib: rss,
    })
}

fn mib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / (1024.0 * 1024.0))
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let sdk = moto::sdk_config().await;
    let tables = StackTables::create(&aws_sdk_dynamodb::Client::new(&sdk)).await?;
    let mut rows = Vec::new();
    for subject in &SUBJECTS {
        eprintln!("measuring {} ({RUNS} cold starts)...", subject.name);
        rows.push((subject, measure(subject, &tables).await?));
    }
    let hello = &rows[0].1;
    println!(
        "| function | bootstrap MiB | zip MiB | cold start ms (x hello) | 10-record batch ms (x hello) | peak RSS MiB | the batch |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (subject, m) in &rows {
        println!(
            "| `{}` | {} | {} | {} ({:.2}x) | {} ({:.2}x) | {:.1} | {} |",
            subject.name,
            mib(m.size),
            mib(m.zip),
            ms(m.cold),
            m.cold.as_secs_f64() / hello.cold.as_secs_f64(),
            ms(m.batch),
            m.batch.as_secs_f64() / hello.batch.as_secs_f64(),
            m.rss_kib as f64 / 1024.0,
            subject.batch,
        );
    }
    Ok(())
}
