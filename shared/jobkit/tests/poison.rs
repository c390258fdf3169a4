//! Poison inputs: every message of `tests/poison/corpus.json`, and a few generated ones (a 1 MiB
//! body, nesting past any parser's depth, an attribute that is not UTF-8), sent in Lambda's SQS
//! event shape next to good messages. Each bad one lands in the DLQ with a reason that names
//! its problem; every good one runs once; nothing panics and nothing is left for a retry.

#[path = "poison/order.rs"]
mod order;

use std::collections::BTreeMap;

use aws_lambda_events::event::sqs::SqsEvent;
use jobkit::{
    dead_letter::{DeadLetterError, last_error},
    message::attr,
    testing::TestHarness,
};
use order::Order;
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Debug, Deserialize)]
struct Case {
    name: String,
    body: String,
    #[serde(default)]
    attributes: BTreeMap<String, String>,
    /// Base64 binary attribute values.
    #[serde(default)]
    binary_attributes: BTreeMap<String, String>,
    expect: String,
}

fn corpus() -> Vec<Case> {
    let text = include_str!("poison/corpus.json");
    let mut cases: Vec<Case> = serde_json::from_str(text).expect("the corpus is JSON");
    let generated = |name: &str, body: String, expect: &str| Case {
        name: name.to_owned(),
        body,
        attributes: BTreeMap::new(),
        binary_attributes: BTreeMap::new(),
        expect: expect.to_owned(),
    };
    cases.push(generated("1 MiB body that is not JSON", "x".repeat(1 << 20), "body is not valid JSON"));
    cases.push(generated("1 MiB of nesting", "[".repeat(1 << 20), "recursion limit exceeded"));
    cases.push(generated(
        "nesting inside the arguments",
        format!("{{\"order_id\": {}", "[".repeat(100_000)),
        // Refused at the first bracket, before any depth is reached.
        "invalid type: sequence, expected a string",
    ));
    cases.push(Case {
        binary_attributes: BTreeMap::from([(attr::JOB_ID.to_owned(), "//4=".to_owned())]),
        ..generated(
            "job_id attribute that is not UTF-8",
            good_body("ignored"),
            "attribute job_id is not UTF-8 text",
        )
    });
    cases
}

fn good_body(order: &str) -> String {
    json!({"order_id": order, "quantity": 2}).to_string()
}

/// One record of Lambda's SQS event.
fn record(
    id: &str,
    body: &str,
    attributes: &BTreeMap<String, String>,
    binary: &BTreeMap<String, String>,
) -> Value {
    let mut message_attributes = serde_json::Map::new();
    for (name, value) in attributes {
        message_attributes.insert(name.clone(), json!({"stringValue": value, "dataType": "String"}));
    }
    for (name, value) in binary {
        message_attributes.insert(name.clone(), json!({"binaryValue": value, "dataType": "Binary"}));
    }
    json!({
        "messageId": id, "receiptHandle": format!("rh-{id}"), "body": body,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1767225600000"},
        "messageAttributes": message_attributes,
        "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:orders",
    })
}

#[tokio::test]
async fn each_poison_message_lands_in_the_dlq_with_its_reason_and_every_good_one_runs_once() {
    let cases = corpus();
    assert!(cases.len() >= 30, "a corpus of at least 30 bad messages, got {}", cases.len());
    let t = TestHarness::new();
    let job = Order::default();
    let runner = t.runner(job.clone());

    let mut records = Vec::new();
    let mut goods = Vec::new();
    for (n, case) in cases.iter().enumerate() {
        records.push(record(&format!("bad-{n}"), &case.body, &case.attributes, &case.binary_attributes));
        let good = format!("good-{n}");
        // A producer's own binary attribute, not UTF-8, is none of jobkit's business.
        let theirs = BTreeMap::from([("producer_blob".to_owned(), "//4=".to_owned())]);
        records.push(record(&good, &good_body(&good), &BTreeMap::new(), &theirs));
        goods.push(good);
    }
    let event: SqsEvent = serde_json::from_value(json!({"Records": records})).expect("Lambda's event shape");
    let deadline = chrono::Utc::now() + chrono::Duration::minutes(15);
    let response = runner.handle_sqs_event(event, deadline).await;
    assert!(
        response.batch_item_failures.is_empty(),
        "nothing is left for a retry: {:?}",
        response.batch_item_failures
    );

    let runs = job.runs.lock().unwrap().clone();
    for good in &goods {
        assert_eq!(runs.get(good), Some(&1), "{good} ran once");
    }
    assert_eq!(runs.len(), goods.len(), "no bad message ran: {runs:?}");

    let mut dead: BTreeMap<String, DeadLetterError> = BTreeMap::new();
    let letters = t.dead_letters::<Order>();
    assert_eq!(letters.len(), cases.len(), "every bad message is in the DLQ, nothing else");
    for letter in letters {
        let original = match DeadLetterError::read(&letter.attributes) {
            Some(error) => (error.original_message_id.clone(), error),
            // A body at SQS's limit leaves its copy no room for the reason: the runner kept it
            // as the job id's last error.
            None => {
                let n = cases.iter().position(|c| c.body == letter.body).expect("a copy of a bad message");
                let job_id = format!("bad-{n}");
                let last = last_error(t.store().as_ref(), "order", &job_id, t.runtime().clock.now())
                    .await
                    .expect("the store answers")
                    .unwrap_or_else(|| panic!("{}: no reason kept", cases[n].name));
                let error = DeadLetterError {
                    kind: last.kind,
                    message: last.message,
                    reason: "discarded".into(),
                    attempts: last.attempt,
                    first_failed_at: None,
                    last_failed_at: None,
                    original_message_id: job_id.clone(),
                    dropped_attributes: Vec::new(),
                };
                (job_id, error)
            }
        };
        dead.insert(original.0, original.1);
    }
    for (n, case) in cases.iter().enumerate() {
        let error = dead.get(&format!("bad-{n}")).unwrap_or_else(|| panic!("{}: not in the DLQ", case.name));
        assert_eq!(error.kind, "invalid_arguments", "{}", case.name);
        assert_eq!(error.reason, "discarded", "{}", case.name);
        let message = &error.message;
        assert!(message.contains(&case.expect), "{}: {message:?} does not say {:?}", case.name, case.expect);
    }
}
