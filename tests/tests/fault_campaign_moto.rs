//! The fault campaign (`shared/jobkit/tests/campaign/mod.rs`) on SQS and DynamoDB through the
//! real SDK clients against moto, in real time: SQS's own redrive policy, visibility timeouts
//! and long polls, DynamoDB's conditional writes for the idempotency keys. The CI size runs
//! 200 jobs; `cargo test -p system-tests --test fault_campaign_moto -- --ignored` runs 10,000
//! (in 20 waves of 500 on fresh queues).

#[path = "../../shared/jobkit/tests/campaign/mod.rs"]
mod campaign;

use std::{sync::Arc, time::Duration};

use jobkit::{
    aws::{DynamoStore, SqsQueue},
    clock::SystemClock,
};
use system_tests::{
    moto,
    sqs::{create_queue_redriving_to, create_queue_with_dlq},
};

async fn backend() -> campaign::Backend {
    let sdk = moto::sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    // A short visibility, so that a failed delete comes back within the run.
    let name = moto::unique("campaign");
    let (queue, dlq) =
        create_queue_with_dlq(&sqs, &name, Duration::from_secs(2), campaign::max_receive_count())
            .await
            .unwrap();
    let lane_queue = create_queue_redriving_to(
        &sqs,
        &format!("{name}-low"),
        &dlq,
        Duration::from_secs(2),
        campaign::max_receive_count(),
    )
    .await
    .unwrap();
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
    let table = moto::unique("campaign-state");
    DynamoStore::create_table(&dynamo, &table).await.unwrap();
    let sqs = Arc::new(SqsQueue::new(sqs));
    campaign::Backend {
        queue: sqs.clone(),
        store: Arc::new(DynamoStore::new(dynamo, table)),
        queue_id: queue,
        lane_queue_id: lane_queue,
        dlq_id: dlq,
        clock: Arc::new(SystemClock),
        drive: campaign::Drive::Sqs(sqs),
    }
}

fn assert_nothing_lost_or_doubled(report: &campaign::Report) {
    for (path, tally) in &report.paths {
        assert!(tally.is_clean(), "{path:?}: {tally:?}");
    }
    assert!(report.other_lane.is_clean(), "the other lane: {:?}", report.other_lane);
    assert!(report.other_lane.jobs > 0, "some jobs ran on the other lane");
}

#[tokio::test]
async fn on_sqs_and_dynamodb_no_step_is_lost_or_applied_twice_on_any_path() {
    let report = campaign::run(backend().await, 210, campaign::FAULTS, 11).await;
    println!(
        "{}\n\n{}\n{}",
        report.table("moto (SQS + DynamoDB)"),
        report.faults_line(),
        report.settle_line()
    );
    assert_eq!(report.paths.len(), campaign::Path::ALL.len(), "every path walked");
    assert_nothing_lost_or_doubled(&report);
    assert!(report.port_faults > 5, "the faults were injected: {report:?}");
}

/// Jobs per wave of the full campaign: moto's SQS scans its whole queue on every receive, so a
/// queue of 10,000 messages would take hours; waves on fresh queues keep it to minutes.
const WAVE: u64 = 500;

#[tokio::test]
#[ignore = "10,000 jobs in real time against moto, in waves of 500: about 90 minutes on 2 cores"]
async fn the_full_campaign_on_sqs_and_dynamodb() {
    let mut total = campaign::Report::default();
    for wave in 0..10_000 / WAVE {
        let numbers = wave * WAVE..(wave + 1) * WAVE;
        let report = campaign::run_numbers(backend().await, numbers, campaign::FAULTS, wave + 1).await;
        println!("wave {}: {:?} {}", wave + 1, report.total(), report.faults_line());
        assert_nothing_lost_or_doubled(&report);
        total.add(&report);
    }
    println!(
        "{}\n\n{}\n{}",
        total.table("moto (SQS + DynamoDB), 20 waves"),
        total.faults_line(),
        total.settle_line()
    );
    assert_nothing_lost_or_doubled(&total);
}
