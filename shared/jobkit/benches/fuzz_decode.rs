//! A mutation fuzzer for the message decoder (`jobkit::message::decode` and the arguments'
//! parse), in place of a `cargo fuzz` target (which needs a nightly toolchain). Seeds are the
//! poison corpus and good messages; each input is a seed mutated a few times (bytes flipped,
//! inserted, deleted, chunks duplicated or spliced from another seed, JSON tokens and
//! jobkit's keys inserted) with mutated attributes (some of them unreadable). Every input must
//! decode to arguments or to an `invalid_arguments` error: a panic, or any other error kind,
//! stops the run with the input printed. Every 1,000th input also goes through the batch runner
//! in a batch of ten.
//!
//! Run: `cargo bench -p jobkit --features testing --bench fuzz_decode -- --seconds 600 [--seed N]`.

#[path = "../tests/poison/order.rs"]
mod order;
mod support;

use std::{
    collections::BTreeMap,
    panic::AssertUnwindSafe,
    time::{Duration, Instant},
};

use jobkit::{
    ErrorKind,
    message::{ReceivedMessage, attr, decode},
    testing::TestHarness,
};
use order::{Order, OrderArgs};
use rand::{Rng, SeedableRng, rngs::StdRng, seq::IndexedRandom};
use serde::Deserialize;

#[derive(Deserialize)]
struct Case {
    body: String,
}

const TOKENS: [&str; 16] = [
    "{",
    "}",
    "[",
    "]",
    "\"",
    ":",
    ",",
    "\\u",
    "\\ud800",
    "null",
    "1e400",
    "-0",
    "\"$schedule\"",
    "\"aws.events\"",
    "\"detail-type\"",
    "\u{0}",
];

fn seeds() -> Vec<Vec<u8>> {
    let corpus: Vec<Case> =
        serde_json::from_str(include_str!("../tests/poison/corpus.json")).expect("the poison corpus is JSON");
    let mut seeds: Vec<Vec<u8>> = corpus.into_iter().map(|c| c.body.into_bytes()).collect();
    seeds.push(br#"{"order_id":"o1","quantity":3,"note":"hi"}"#.to_vec());
    seeds.push(
        br#"{"$schedule":{"rule":"r","time":"2026-01-01T00:00:00Z"},"order_id":"o","quantity":1}"#.to_vec(),
    );
    seeds.push(
        br#"{"source":"aws.events","detail-type":"Scheduled Event","time":"2026-01-01T00:00:00Z","resources":["arn:aws:events:us-east-1:1:rule/r"],"detail":{"order_id":"o","quantity":1}}"#
            .to_vec(),
    );
    seeds
}

fn mutate(rng: &mut StdRng, input: &mut Vec<u8>, seeds: &[Vec<u8>]) {
    for _ in 0..rng.random_range(1..=4) {
        let at = if input.is_empty() { 0 } else { rng.random_range(0..=input.len()) };
        match rng.random_range(0..6) {
            0 if !input.is_empty() => {
                let i = at.min(input.len() - 1);
                input[i] ^= 1 << rng.random_range(0..8);
            }
            1 => input.insert(at, rng.random()),
            2 if !input.is_empty() => {
                let end = (at + rng.random_range(1..8)).min(input.len());
                input.drain(at.min(end)..end);
            }
            3 if !input.is_empty() => {
                let start = rng.random_range(0..input.len());
                let end = (start + rng.random_range(1..32)).min(input.len());
                let chunk = input[start..end].to_vec();
                input.splice(at..at, chunk);
            }
            4 => {
                let other = seeds.choose(rng).cloned().unwrap_or_default();
                let start = if other.is_empty() { 0 } else { rng.random_range(0..other.len()) };
                input.splice(at..at, other[start..].iter().copied().take(64));
            }
            _ => {
                input.splice(at..at, TOKENS.choose(rng).copied().unwrap_or("{").bytes());
            }
        }
    }
}

fn attributes(rng: &mut StdRng) -> (BTreeMap<String, String>, Vec<String>) {
    let mut attributes = BTreeMap::new();
    let mut unreadable = Vec::new();
    let values =
        ["", "1", "7", "{oops", "{\"steps_done\":[],\"cursor\":null}", "2026-01-01T00:00:00Z", "tomorrow"];
    for name in attr::READ {
        match rng.random_range(0..10) {
            0 => {
                attributes.insert(name.to_owned(), (*values.choose(rng).unwrap_or(&"")).to_owned());
            }
            1 => unreadable.push(name.to_owned()),
            _ => {}
        }
    }
    (attributes, unreadable)
}

/// Decodes `message` and parses its arguments; `Err` describes a finding.
fn check(message: &ReceivedMessage) -> Result<(), String> {
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
        decode(message).and_then(|envelope| envelope.args.parse::<OrderArgs>().map(drop))
    }));
    match outcome {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) if *e.kind() == ErrorKind::INVALID_ARGUMENTS => Ok(()),
        Ok(Err(e)) => Err(format!("an error of kind {} instead of invalid_arguments: {e}", e.kind())),
        Err(_) => Err("a panic".to_owned()),
    }
}

fn main() {
    let seconds = support::option("--seconds", 60);
    let seed = support::option("--seed", 1);
    let mut rng = StdRng::seed_from_u64(seed);
    let seeds = seeds();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let started = Instant::now();
    let (mut executions, mut decoded, mut batches) = (0u64, 0u64, 0u64);
    let mut batch = Vec::new();
    while started.elapsed() < Duration::from_secs(seconds) {
        let mut body = seeds.choose(&mut rng).cloned().unwrap_or_default();
        mutate(&mut rng, &mut body, &seeds);
        let (attributes, unreadable_attributes) = attributes(&mut rng);
        let message = ReceivedMessage {
            message_id: format!("m-{executions}"),
            receipt_handle: format!("r-{executions}"),
            body: String::from_utf8_lossy(&body).into_owned(),
            attributes,
            receive_count: 1,
            unreadable_attributes,
            ..ReceivedMessage::default()
        };
        if let Err(finding) = check(&message) {
            eprintln!("FINDING after {executions} inputs (seed {seed}): {finding}\n{message:#?}");
            std::process::exit(1);
        }
        decoded += u64::from(decode(&message).is_ok());
        executions += 1;
        if executions % 1000 < 10 {
            batch.push(message);
        }
        if batch.len() == 10 {
            // A fresh harness each time: one for the whole run would keep every DLQ copy (some
            // of them 1 MiB bodies) and grow by gigabytes over ten minutes.
            let harness = TestHarness::new();
            let runner = harness.runner(Order::default());
            let deadline = chrono::Utc::now() + chrono::Duration::minutes(15);
            let outcome = runtime.block_on(runner.process(std::mem::take(&mut batch), deadline));
            assert_eq!(outcome.records.len(), 10, "every record has an outcome");
            batches += 1;
        }
    }
    println!(
        "{executions} inputs in {:.0}s ({:.0}/s), {decoded} decoded, {batches} batches through the runner, seed {seed}: no panic, every refusal invalid_arguments",
        started.elapsed().as_secs_f64(),
        executions as f64 / started.elapsed().as_secs_f64()
    );
}
