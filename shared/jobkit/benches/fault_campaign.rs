//! The fault campaign at full size: 10,000 jobs over every path under the fault rates
//! (20 % transient, 5 % permanent, 1 % panics, 1 % overruns, 10 % duplicate deliveries, 2 % of
//! queue and store calls failing), once per seed. Prints the Markdown tables RELIABILITY.md holds.
//!
//! Run: `cargo bench -p jobkit --features testing --bench fault_campaign -- [--jobs 10000] [--seeds 3]`.

#[path = "../tests/campaign/mod.rs"]
mod campaign;
mod support;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let jobs = support::option("--jobs", 10_000);
    let seeds = support::option("--seeds", 3);
    let mut total = campaign::Report::default();
    for seed in 1..=seeds {
        let started = std::time::Instant::now();
        let report = campaign::run_embedded(jobs, campaign::FAULTS, seed).await;
        println!("seed {seed}:\n\n{}\n\n{}\n", report.table("embedded (SQLite)"), report.faults_line());
        eprintln!("seed {seed}: {:.1}s", started.elapsed().as_secs_f64());
        total.add(&report);
    }
    println!("all seeds:\n\n{}\n\n{}", total.table(&format!("embedded, {seeds} seeds")), total.faults_line());
    if !total.paths.values().all(|tally| tally.is_clean()) || !total.other_lane.is_clean() {
        eprintln!("FAILED: a step was lost or applied twice");
        std::process::exit(1);
    }
}
