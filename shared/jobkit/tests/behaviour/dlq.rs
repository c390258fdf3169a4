use jobkit::{
    dead_letter::DeadLetterError, message::OutgoingMessage, ports::Queue, runner::RecordStatus,
    testing::TestHarness,
};

use crate::common::{Behaviour, ScriptArgs, ScriptedJob, attr};

#[tokio::test]
async fn discard_goes_to_the_dlq_with_the_error_in_attributes() {
    let t = TestHarness::new();
    let runner = t.runner(ScriptedJob::default());
    t.enqueuer().perform_later::<ScriptedJob>(&ScriptArgs::new("d", Behaviour::Permanent)).await.unwrap();

    let outcome = t.run_once(&runner).await;
    assert!(matches!(outcome[0].status, RecordStatus::DeadLettered(jobkit::runner::DlqReason::Discarded, _)));
    let dead = t.dead_letters::<ScriptedJob>();
    assert_eq!(dead.len(), 1);
    let m = &dead[0];
    let error = DeadLetterError::read(&m.attributes).expect("the error is recorded");
    assert_eq!(error.kind, "not_found");
    assert_eq!(error.message, "record 42 is gone");
    assert_eq!(error.attempts, 1);
    assert_eq!(error.reason, "discarded");
    assert_eq!(error.original_message_id, outcome[0].message_id);
    assert!(error.first_failed_at.is_some() && error.last_failed_at.is_some());
    assert_eq!(attr(m, "job"), "scripted");
    assert!(m.attributes.contains_key("continuation"), "a redrive re-enters the run: {:?}", m.attributes);
    assert_eq!(m.body, r#"{"behaviour":"permanent","id":"d"}"#, "the body is kept for a redrive");
    assert!(t.run_once(&runner).await.is_empty(), "the source message is let go");
}

#[tokio::test]
async fn bodies_that_do_not_parse_go_to_the_dlq_with_the_parse_error() {
    let t = TestHarness::new();
    let runner = t.runner(ScriptedJob::default());
    let cases = [
        ("not json", "not valid JSON"),
        (r#"{"id": 7}"#, "invalid type"),
        (r#"{"id":"x","colour":"red"}"#, "colour"),
        (r#"{"behaviour":"succeed"}"#, "missing field `id`"),
    ];
    for (body, _) in cases {
        let message = OutgoingMessage { body: body.to_owned(), ..Default::default() };
        t.queue().send("scripted", message).await.unwrap();
    }
    let outcomes = t.run_once(&runner).await;
    assert_eq!(outcomes.len(), cases.len());
    let dead = t.dead_letters::<ScriptedJob>();
    for (body, expected) in cases {
        let m = dead.iter().find(|m| m.body == body).unwrap_or_else(|| panic!("{body} not in the DLQ"));
        let error = DeadLetterError::read(&m.attributes).expect("the error is recorded");
        assert_eq!(error.kind, "invalid_arguments");
        assert!(error.message.contains(expected), "{body}: {}", error.message);
    }
}
