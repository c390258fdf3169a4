//! Input that used to cycle as an outage on every delivery, or to be trusted from any sender,
//! goes to the DLQ on its first delivery with its reason.

use std::collections::BTreeMap;

use jobkit::{
    ErrorKind,
    dead_letter::DeadLetterError,
    message::{OutgoingMessage, attr},
    ports::Queue,
    runner::{DlqReason, RecordStatus},
    testing::TestHarness,
};

use crate::common::ScriptedJob;

/// SQS's limit on a message: body and attributes (name, type and value of each).
const MAX_MESSAGE_BYTES: usize = 1_048_576;

fn size(message: &jobkit::message::ReceivedMessage) -> usize {
    message.body.len()
        + message.attributes.iter().map(|(k, v)| k.len() + "String".len() + v.len()).sum::<usize>()
}

fn discarded_as_invalid(status: &RecordStatus) -> bool {
    *status == RecordStatus::DeadLettered(DlqReason::Discarded, ErrorKind::INVALID_ARGUMENTS)
}

#[tokio::test]
async fn a_tick_for_a_time_ahead_is_refused_so_no_one_claims_the_next_hours_key_early() {
    let t = TestHarness::new();
    let job = ScriptedJob::default();
    let runner = t.runner(job.clone());
    let ahead = (t.runtime().clock.now() + chrono::Duration::hours(1)).to_rfc3339();
    let body = format!(r#"{{"id":"early","$schedule":{{"rule":"clean-database-daily","time":"{ahead}"}}}}"#);
    t.queue().send("scripted", OutgoingMessage { body, ..Default::default() }).await.unwrap();
    let now = t.runtime().clock.now().to_rfc3339();
    let body = format!(r#"{{"id":"on-time","$schedule":{{"rule":"clean-database-daily","time":"{now}"}}}}"#);
    t.queue().send("scripted", OutgoingMessage { body, ..Default::default() }).await.unwrap();

    t.drain(&runner).await;
    assert_eq!(job.executions.count("early"), 0, "before, it ran and took the next hour's key");
    assert_eq!(job.executions.count("on-time"), 1);
    let error = DeadLetterError::read(&t.dead_letters::<ScriptedJob>()[0].attributes).unwrap();
    assert_eq!(error.kind, "invalid_arguments");
    assert!(error.message.contains("ahead"), "{}", error.message);
}

#[tokio::test]
async fn a_message_whose_attributes_leave_no_room_for_a_re_send_is_refused_at_once() {
    let t = TestHarness::new();
    let job = ScriptedJob::default();
    let runner = t.runner(job.clone());
    // Nine of the producer's own: a continuation or hop adds job, job_id and continuation.
    let attributes: BTreeMap<String, String> =
        (0..9).map(|i| (format!("custom_{i}"), "x".to_owned())).collect();
    let message = OutgoingMessage { body: r#"{"id":"crowded"}"#.into(), attributes, ..Default::default() };
    t.queue().send("scripted", message).await.unwrap();

    let outcomes = t.run_once(&runner).await;
    assert!(discarded_as_invalid(&outcomes[0].status), "{outcomes:?}");
    let dead = t.dead_letters::<ScriptedJob>();
    assert!(dead[0].attributes.len() <= 10, "{:?}", dead[0].attributes);
    let error = DeadLetterError::read(&dead[0].attributes).expect("the reason is recorded");
    assert!(error.message.contains("attributes"), "{}", error.message);
    assert!(
        !error.dropped_attributes.is_empty(),
        "the copy says which of the producer's attributes it dropped"
    );
}

#[tokio::test]
async fn the_dlq_copy_of_a_body_close_to_the_limit_still_fits_with_its_reason() {
    let t = TestHarness::new();
    let runner = t.runner(ScriptedJob::default());
    // About 240 bytes to spare: less than the nine error attributes took.
    let filler = "x".repeat(MAX_MESSAGE_BYTES - 300);
    let body = serde_json::json!({ "id": filler, "behaviour": "permanent" }).to_string();
    let attributes = BTreeMap::from([(attr::JOB_ID.to_owned(), "job-big".to_owned())]);
    t.queue()
        .send("scripted", OutgoingMessage { body: body.clone(), attributes, ..Default::default() })
        .await
        .unwrap();

    let outcomes = t.run_once(&runner).await;
    assert!(
        matches!(outcomes[0].status, RecordStatus::DeadLettered(DlqReason::Discarded, _)),
        "{outcomes:?}"
    );
    let dead = t.dead_letters::<ScriptedJob>();
    assert_eq!(dead[0].body, body, "the body is kept whole");
    // Before: nine error attributes pushed the copy past 1 MiB, which SQS refuses.
    assert!(size(&dead[0]) <= MAX_MESSAGE_BYTES, "{} bytes", size(&dead[0]));
    assert_eq!(DeadLetterError::read(&dead[0].attributes).map(|e| e.kind), Some("not_found".to_owned()));
}

#[tokio::test]
async fn a_job_id_longer_than_a_store_key_runs_once() {
    let t = TestHarness::new();
    let job = ScriptedJob::default();
    let runner = t.runner(job.clone());
    let long_id = "j".repeat(3000);
    for _ in 0..2 {
        let attributes = BTreeMap::from([(attr::JOB_ID.to_owned(), long_id.clone())]);
        let message = OutgoingMessage { body: r#"{"id":"long"}"#.into(), attributes, ..Default::default() };
        t.queue().send("scripted", message).await.unwrap();
    }
    let report = t.drain(&runner).await;
    assert_eq!(job.executions.count("long"), 1);
    assert_eq!(
        report.succeeded() + report.count(|s| *s == RecordStatus::Duplicate),
        2,
        "{:?}",
        report.records
    );
}

#[tokio::test]
async fn a_message_for_another_job_is_refused_as_misrouted() {
    let t = TestHarness::new();
    let job = ScriptedJob::default();
    let runner = t.runner(job.clone());
    let attributes = BTreeMap::from([(attr::JOB.to_owned(), "customer_sync".to_owned())]);
    let message = OutgoingMessage { body: r#"{"id":"elsewhere"}"#.into(), attributes, ..Default::default() };
    t.queue().send(&TestHarness::queue_name::<ScriptedJob>(), message).await.unwrap();

    let outcomes = t.run_once(&runner).await;
    assert_eq!(outcomes[0].status, RecordStatus::DeadLettered(DlqReason::Discarded, ErrorKind::WRONG_QUEUE));
    assert_eq!(job.executions.count("elsewhere"), 0, "another job's arguments never reach this one");
    let error = DeadLetterError::read(&t.dead_letters::<ScriptedJob>()[0].attributes).unwrap();
    assert!(error.message.contains("customer_sync"), "{}", error.message);
}

#[tokio::test]
async fn a_job_enqueued_by_another_of_the_same_lane_goes_to_its_own_queue() {
    // Both on the default lane: routing by lane sent the second into the first's queue.
    let t = TestHarness::new();
    let _first = t.runner(ScriptedJob::default());
    let second = t.runner(Other);
    t.enqueuer().perform_later::<Other>(&serde_json::json!({})).await.unwrap();
    assert!(t.queue().peek(&TestHarness::queue_name::<ScriptedJob>(), 10).unwrap().is_empty());
    assert_eq!(t.drain(&second).await.succeeded(), 1);
}

/// A second job on the default lane.
struct Other;

impl jobkit::Job for Other {
    type Args = serde_json::Value;
    const NAME: &'static str = "other";

    async fn perform(
        &self,
        _args: serde_json::Value,
        _ctx: &mut jobkit::JobContext,
    ) -> Result<(), jobkit::JobError> {
        Ok(())
    }
}
