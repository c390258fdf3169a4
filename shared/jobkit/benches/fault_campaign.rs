//! The fault campaign at full size: 10,000 jobs under the fault rates (20 % transient,
//! 5 % permanent, 1 % panics, 1 % overruns, 10 % duplicate deliveries, 2 % of queue and store
//! calls failing), once per seed. Prints the Markdown table RELIABILITY.md holds.
//!
//! Run: `cargo bench -p jobkit --bench fault_campaign -- [--jobs 10000] [--seeds 3]`.

#[path = "../tests/campaign/mod.rs"]
mod campaign;
mod support;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let jobs = support::option("--jobs", 10_000);
    let seeds = support::option("--seeds", 3);
    println!("{}", campaign::HEADER);
    let mut failed = false;
    for seed in 1..=seeds {
        let started = std::time::Instant::now();
        let report = campaign::run_embedded(jobs, campaign::FAULTS, seed).await;
        println!("{}", report.row(&format!("embedded (SQLite), seed {seed}")));
        eprintln!(
            "seed {seed}: {:.1}s, {} batches, {report:?}",
            started.elapsed().as_secs_f64(),
            report.batches
        );
        failed |= report.lost > 0
            || report.doubled > 0
            || report.applied_and_dead > 0
            || report.in_dlq_without_reason > 0;
    }
    if failed {
        eprintln!("FAILED: a job was lost or its effect applied twice");
        std::process::exit(1);
    }
}
