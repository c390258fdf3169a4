//! The fault campaign at CI size (see `tests/campaign/mod.rs`; `cargo bench -p jobkit --features testing --bench
//! fault_campaign` runs 10,000 jobs): on every path, every step applied exactly once or the job
//! in the DLQ with its reason; none lost, no step applied twice.

mod campaign;

#[tokio::test]
async fn on_every_path_under_injected_faults_no_step_is_lost_or_applied_twice() {
    let report = campaign::run_embedded(1_400, campaign::FAULTS, 7).await;
    println!("{}\n\n{}", report.table("embedded (SQLite)"), report.faults_line());
    assert_eq!(report.paths.len(), campaign::Path::ALL.len(), "every path walked");
    for (path, tally) in &report.paths {
        assert!(tally.is_clean(), "{path:?}: {tally:?}");
        assert!(tally.in_dlq_scripted > 0 || tally.jobs < 100, "{path:?}: scripted failures reached the DLQ");
    }
    assert!(report.other_lane.is_clean(), "the other lane: {:?}", report.other_lane);
    assert!(
        report.other_lane.jobs > 300,
        "a third of the jobs ran on the other lane: {:?}",
        report.other_lane
    );
    let total = report.total();
    assert!(total.deliveries > total.jobs + 300, "duplicates were delivered: {total:?}");
    assert!(
        report.port_faults > 100 && report.lost_send_answers > 10,
        "the faults were injected: {report:?}"
    );
    assert!(report.workers_stopped > 20, "workers were shut down mid-step: {report:?}");
}
