//! The fault campaign at CI size (see `tests/campaign/mod.rs`; `cargo bench -p jobkit --bench
//! fault_campaign` runs 10,000 jobs): every job's effect applied exactly once or the job in
//! the DLQ with its reason; none lost, none applied twice.

mod campaign;

#[tokio::test]
async fn under_injected_faults_nothing_is_lost_and_nothing_is_applied_twice() {
    let report = campaign::run_embedded(1_000, campaign::FAULTS, 7).await;
    println!("{}\n{}", campaign::HEADER, report.row("embedded (SQLite)"));
    assert_eq!(report.lost, 0, "{report:?}");
    assert_eq!(report.doubled, 0, "{report:?}");
    assert_eq!(report.applied_and_dead, 0, "{report:?}");
    assert_eq!(report.in_dlq_without_reason, 0, "{report:?}");
    assert_eq!(
        report.in_dlq_with_reason, report.in_dlq_scripted,
        "only the scripted failures are in the DLQ: {report:?}"
    );
    assert_eq!(report.exactly_once + report.in_dlq_with_reason, report.jobs, "{report:?}");
    assert!(report.duplicates_sent > 50 && report.port_faults > 50, "the faults were injected: {report:?}");
}
