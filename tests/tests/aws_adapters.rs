//! jobkit's AWS adapters through the real `aws-sdk-*` clients against moto's server.

use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName;
use chrono::Utc;
use jobkit::{
    PortError, PortResult,
    aws::{DynamoStore, SesMailer, SqsQueue},
    limits::{MAX_BATCH_BYTES, MAX_DELAY_SECONDS, MAX_KEY_BYTES, MAX_MESSAGE_BYTES, MAX_VISIBILITY},
    message::OutgoingMessage,
    ports::{Email, Mailer, PutOutcome, Queue, StateStore},
};
use system_tests::moto;

async fn queue_with(sqs: &aws_sdk_sqs::Client, name: &str, attrs: &[(QueueAttributeName, String)]) -> String {
    let mut request = sqs.create_queue().queue_name(name);
    for (k, v) in attrs {
        request = request.attributes(k.clone(), v);
    }
    request.send().await.expect("queue created").queue_url().expect("url").to_owned()
}

async fn receive_one(queue: &SqsQueue, url: &str) -> Vec<jobkit::message::ReceivedMessage> {
    queue.receive(url, 10, Duration::from_secs(1)).await.expect("receive")
}

#[tokio::test]
async fn sqs_sends_and_receives_with_attributes_and_receive_count() {
    let sdk = moto::sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let url =
        queue_with(&sqs, &moto::unique("q"), &[(QueueAttributeName::VisibilityTimeout, "30".into())]).await;
    let queue = SqsQueue::new(sqs);
    let mut message = OutgoingMessage { body: r#"{"store_id":"st_42"}"#.into(), ..Default::default() };
    message.attributes.insert("job_id".into(), "j-1".into());
    let id = queue.send(&url, message).await.expect("sent");

    let got = receive_one(&queue, &url).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].message_id, id);
    assert_eq!(got[0].body, r#"{"store_id":"st_42"}"#);
    assert_eq!(got[0].attributes["job_id"], "j-1");
    assert_eq!(got[0].receive_count, 1);
    assert!(got[0].sent_at.is_some_and(|t| (Utc::now() - t).num_seconds().abs() < 60));

    // Hidden while its visibility lasts; back at once with visibility 0, counted again.
    assert!(queue.receive(&url, 10, Duration::ZERO).await.expect("receive").is_empty());
    queue.change_visibility(&url, &got[0].receipt_handle, Duration::ZERO).await.expect("visible again");
    let again = receive_one(&queue, &url).await;
    assert_eq!(again[0].receive_count, 2);
    queue.delete(&url, &again[0].receipt_handle).await.expect("deleted");
    queue.change_visibility(&url, &again[0].receipt_handle, Duration::ZERO).await.ok();
    assert_eq!(queue.approximate_counts(&url).await.expect("counts").visible, 0);
}

#[tokio::test]
async fn sqs_batch_sends_every_message_in_chunks_of_ten() {
    let sdk = moto::sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let url = queue_with(&sqs, &moto::unique("batch"), &[]).await;
    let queue = SqsQueue::new(sqs);
    let messages: Vec<_> =
        (0..25).map(|i| OutgoingMessage { body: format!(r#"{{"n":{i}}}"#), ..Default::default() }).collect();
    let results = queue.send_batch(&url, messages).await.expect("batch");
    assert_eq!(results.len(), 25);
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(queue.approximate_counts(&url).await.expect("counts").visible, 25);
}

#[tokio::test]
async fn sqs_delay_hides_a_message_and_a_redrive_policy_moves_it_to_the_dlq() {
    let sdk = moto::sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let dlq_url = queue_with(&sqs, &moto::unique("dlq"), &[]).await;
    let dlq_arn = sqs
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("arn")
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .expect("arn");
    let redrive = format!(r#"{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":"1"}}"#);
    let url = queue_with(&sqs, &moto::unique("src"), &[(QueueAttributeName::RedrivePolicy, redrive)]).await;
    let queue = SqsQueue::new(sqs);

    queue
        .send(&url, OutgoingMessage { body: "{}".into(), delay_seconds: 60, ..Default::default() })
        .await
        .expect("sent");
    assert_eq!(queue.approximate_counts(&url).await.expect("counts").delayed, 1);

    queue
        .send(&url, OutgoingMessage { body: r#"{"poison":true}"#.into(), ..Default::default() })
        .await
        .expect("sent");
    let first = receive_one(&queue, &url).await;
    assert_eq!(first.len(), 1);
    queue.change_visibility(&url, &first[0].receipt_handle, Duration::ZERO).await.expect("visible");
    assert!(receive_one(&queue, &url).await.is_empty(), "past maxReceiveCount it is not delivered again");
    let dead = receive_one(&queue, &dlq_url).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].body, r#"{"poison":true}"#);
}

// SQS's limits, where moto enforces them: the SQS adapter reports the refusal as `Invalid`, as
// the embedded queue does for the same input (its tests beside the code). moto does not count
// attributes in a message's size, does not limit their number, and counts the 12 hours of a
// visibility from the send rather than the receive; those are tested on the embedded queue only.

fn invalid<T: std::fmt::Debug>(result: &PortResult<T>) -> bool {
    matches!(result, Err(PortError::Invalid(_)))
}

async fn plain_queue(prefix: &str) -> (SqsQueue, String) {
    let sdk = moto::sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let url = queue_with(&sqs, &moto::unique(prefix), &[]).await;
    (SqsQueue::new(sqs), url)
}

fn body_of(bytes: usize) -> OutgoingMessage {
    OutgoingMessage { body: "x".repeat(bytes), ..Default::default() }
}

#[tokio::test]
async fn sqs_takes_a_one_mib_message_and_refuses_a_byte_more_as_invalid() {
    let (queue, url) = plain_queue("size").await;
    queue.send(&url, body_of(MAX_MESSAGE_BYTES)).await.expect("1 MiB is taken");
    let over = queue.send(&url, body_of(MAX_MESSAGE_BYTES + 1)).await;
    assert!(invalid(&over), "{over:?}");
}

#[tokio::test]
async fn sqs_takes_a_900_second_delay_and_refuses_901_as_invalid_in_a_batch_for_that_entry_only() {
    let (queue, url) = plain_queue("delay").await;
    let delayed = |seconds| OutgoingMessage { delay_seconds: seconds, ..body_of(2) };
    queue.send(&url, delayed(MAX_DELAY_SECONDS)).await.expect("900 s is taken");
    let over = queue.send(&url, delayed(MAX_DELAY_SECONDS + 1)).await;
    assert!(invalid(&over), "{over:?}");

    let results = queue.send_batch(&url, vec![delayed(0), delayed(901), delayed(900)]).await.expect("batch");
    assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
    assert!(invalid(&results[1]), "{results:?}");
}

#[tokio::test]
async fn sqs_refuses_a_batch_request_over_one_mib_in_all_as_invalid() {
    let (queue, url) = plain_queue("batch-size").await;
    let tenth = MAX_BATCH_BYTES / 10;
    let request = |first: usize| -> Vec<OutgoingMessage> {
        (0..10).map(|i| body_of(if i == 0 { first } else { tenth })).collect()
    };
    let at = queue.send_batch(&url, request(MAX_BATCH_BYTES - 9 * tenth)).await.expect("1 MiB in all");
    assert!(at.iter().all(Result::is_ok), "{at:?}");
    let over = queue.send_batch(&url, request(MAX_BATCH_BYTES + 1 - 9 * tenth)).await;
    assert!(invalid(&over), "{over:?}");
}

#[tokio::test]
async fn sqs_refuses_a_visibility_ending_past_twelve_hours_as_invalid() {
    let (queue, url) = plain_queue("visibility").await;
    queue.send(&url, body_of(2)).await.expect("sent");
    let got = receive_one(&queue, &url).await;
    let receipt = &got[0].receipt_handle;
    let over = queue.change_visibility(&url, receipt, MAX_VISIBILITY + Duration::from_secs(1)).await;
    assert!(invalid(&over), "{over:?}");
    // Twelve hours from now ends after twelve hours from the receive, which is past.
    let from_now = queue.change_visibility(&url, receipt, MAX_VISIBILITY).await;
    assert!(invalid(&from_now), "{from_now:?}");
    queue
        .change_visibility(&url, receipt, MAX_VISIBILITY - Duration::from_secs(60))
        .await
        .expect("a minute under twelve hours is taken");
}

async fn store() -> DynamoStore {
    let sdk = moto::sdk_config().await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let table = moto::unique("state");
    DynamoStore::create_table(&client, &table).await.expect("table");
    DynamoStore::new(client, table)
}

#[tokio::test]
async fn dynamodb_put_if_vacant_takes_free_and_expired_keys_only() {
    let store = store().await;
    let now = Utc::now();
    let soon = now + chrono::Duration::seconds(30);
    assert_eq!(store.put_if_vacant("k", "a", soon, now).await.expect("put"), PutOutcome::Written);
    match store.put_if_vacant("k", "b", soon, now).await.expect("put") {
        PutOutcome::Taken(record) => {
            assert_eq!((record.value.as_str(), record.expires_at.timestamp()), ("a", soon.timestamp()))
        }
        PutOutcome::Written => panic!("a live key was taken over"),
    }
    let later = soon + chrono::Duration::seconds(1);
    assert_eq!(store.get("k", later).await.expect("get"), None, "expiry is checked in code");
    assert_eq!(
        store.put_if_vacant("k", "c", later + chrono::Duration::seconds(30), later).await.expect("put"),
        PutOutcome::Written
    );
    assert_eq!(store.get("k", later).await.expect("get").expect("record").value, "c");
    store.delete("k").await.expect("delete");
    assert_eq!(store.get("k", later).await.expect("get"), None);
}

#[tokio::test]
async fn dynamodb_replace_writes_only_over_the_value_it_expects() {
    let store = store().await;
    let now = Utc::now();
    let later = now + chrono::Duration::minutes(5);
    assert!(!store.replace("r", "a", "b", later).await.expect("replace"), "nothing there to replace");
    assert_eq!(store.get("r", now).await.expect("get"), None);
    store.put("r", "a", later).await.expect("put");
    assert!(!store.replace("r", "x", "b", later).await.expect("replace"), "another value is left alone");
    assert!(store.replace("r", "a", "b", later).await.expect("replace"));
    assert_eq!(store.get("r", now).await.expect("get").expect("record").value, "b");
    assert!(
        !store.replace("r", "a", "c", later).await.expect("replace"),
        "a second swap from the old value loses"
    );
}

#[tokio::test]
async fn dynamodb_increment_counts_and_restarts_after_expiry() {
    let store = store().await;
    let now = Utc::now();
    let until = now + chrono::Duration::seconds(60);
    assert_eq!(store.increment("c", until, now).await.expect("inc"), 1);
    assert_eq!(store.increment("c", until, now).await.expect("inc"), 2);
    assert_eq!(store.increment("c", until, now).await.expect("inc"), 3);
    let later = until + chrono::Duration::seconds(1);
    assert_eq!(store.increment("c", later + chrono::Duration::seconds(60), later).await.expect("inc"), 1);
}

// DynamoDB's limits, where moto enforces them: the DynamoDB adapter reports the refusal as
// `Invalid`, as the embedded store does. moto checks a key's size on PutItem only (not on
// GetItem, DeleteItem or UpdateItem), and puts its item limit at 405,000 bytes by its own count
// (numbers by their digits), below DynamoDB's 409,600.

#[tokio::test]
async fn dynamodb_takes_a_2048_byte_key_and_refuses_a_byte_more_as_invalid() {
    let store = store().await;
    let now = Utc::now();
    let until = now + chrono::Duration::seconds(60);
    let at = "k".repeat(MAX_KEY_BYTES);
    store.put(&at, "v", until).await.expect("2,048 bytes are taken");
    assert_eq!(store.get(&at, now).await.expect("get").map(|r| r.value).as_deref(), Some("v"));
    let over = "k".repeat(MAX_KEY_BYTES + 1);
    let put = store.put(&over, "v", until).await;
    assert!(invalid(&put), "{put:?}");
    let vacant = store.put_if_vacant(&over, "v", until, now).await;
    assert!(invalid(&vacant), "{vacant:?}");
    // A new counter is a PutItem, refused as well.
    let counter = store.increment(&over, until, now).await;
    assert!(invalid(&counter), "{counter:?}");
    // And a key has at least one byte, on reads too.
    let empty = store.put("", "v", until).await;
    assert!(invalid(&empty), "{empty:?}");
    let read = store.get("", now).await;
    assert!(invalid(&read), "{read:?}");
}

#[tokio::test]
async fn dynamodb_refuses_an_item_over_400_kb_as_invalid() {
    let store = store().await;
    let now = Utc::now();
    let until = now + chrono::Duration::seconds(60);
    store.put("k", &"v".repeat(400_000), until).await.expect("under 400 KB is taken");
    let over = store.put("k", &"v".repeat(410_000), until).await;
    assert!(invalid(&over), "{over:?}");
}

#[tokio::test]
async fn ses_sends_from_a_verified_identity_and_refuses_an_unverified_one() {
    let sdk = moto::sdk_config().await;
    let client = aws_sdk_sesv2::Client::new(&sdk);
    let sender = format!("{}@example.com", moto::unique("jobs"));
    client.create_email_identity().email_identity(&sender).send().await.expect("identity");
    let mailer = SesMailer::new(client);
    let subject = moto::unique("[jobs] cart failed");
    let email = Email {
        from: sender,
        to: vec!["ops@example.com".into()],
        subject: subject.clone(),
        text: "details".into(),
    };
    mailer.send(&email).await.expect("sent");
    let outbox = moto::Outbox::read().await.expect("moto's outbox");
    assert_eq!(outbox.emails_naming(&subject).len(), 1, "moto recorded the email");

    let unverified = Email { from: "nobody@unverified.example".into(), ..email };
    assert!(mailer.send(&unverified).await.is_err(), "an unverified sender is refused");
}

/// moto's server counts what AWS would bill for each call (`scripts/lib/moto_server.py`), per
/// access key, which `scripts/bench-cost` prices: one call of each kind here, and the units
/// DynamoDB bills for each (a failed condition still pays its write; transactions pay double;
/// an eventually consistent read half).
#[tokio::test]
async fn moto_counts_each_call_as_aws_bills_it() {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, Put,
        ScalarAttributeType, TransactWriteItem,
    };
    use system_tests::cost::Meter;

    let meter = Meter::new();
    let sdk = meter.sdk_config().await;
    let (sqs, dynamo) = (aws_sdk_sqs::Client::new(&sdk), aws_sdk_dynamodb::Client::new(&sdk));
    let queue = moto::unique("counted");
    let url = sqs.create_queue().queue_name(&queue).send().await.unwrap().queue_url.unwrap();
    let table = moto::unique("counted");
    dynamo
        .create_table()
        .table_name(&table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(KeySchemaElement::builder().attribute_name("pk").key_type(KeyType::Hash).build().unwrap())
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    meter.reset().await.unwrap();

    sqs.send_message().queue_url(&url).message_body("{}").send().await.unwrap();
    let received = sqs.receive_message().queue_url(&url).send().await.unwrap().messages.unwrap_or_default();
    assert_eq!(received.len(), 1);
    let nothing = sqs.receive_message().queue_url(&url).send().await.unwrap();
    assert!(nothing.messages.unwrap_or_default().is_empty());
    sqs.delete_message()
        .queue_url(&url)
        .receipt_handle(received[0].receipt_handle().unwrap())
        .send()
        .await
        .unwrap();
    // 1,500 bytes of value: two write units, one read unit.
    let item = |pk: &str| {
        [
            ("pk".to_owned(), AttributeValue::S(pk.to_owned())),
            ("v".to_owned(), AttributeValue::S("x".repeat(1500))),
        ]
        .into_iter()
        .collect::<std::collections::HashMap<_, _>>()
    };
    dynamo.put_item().table_name(&table).set_item(Some(item("a"))).send().await.unwrap();
    let refused = dynamo
        .put_item()
        .table_name(&table)
        .set_item(Some(item("a")))
        .condition_expression("attribute_not_exists(pk)")
        .send()
        .await;
    assert!(refused.is_err(), "the item exists");
    let key = |pk: &str| AttributeValue::S(pk.to_owned());
    dynamo.get_item().table_name(&table).key("pk", key("a")).consistent_read(true).send().await.unwrap();
    dynamo.get_item().table_name(&table).key("pk", key("a")).send().await.unwrap();
    let put = Put::builder().table_name(&table).item("pk", key("b")).build().unwrap();
    dynamo
        .transact_write_items()
        .transact_items(TransactWriteItem::builder().put(put).build())
        .send()
        .await
        .unwrap();
    meter.fail_dynamodb(1, "").await.unwrap();
    assert!(
        dynamo.get_item().table_name(&table).key("pk", key("a")).send().await.is_err(),
        "the armed fault"
    );
    dynamo.get_item().table_name(&table).key("pk", key("a")).send().await.expect("a fault fails once");

    let calls = meter.calls().await.unwrap();
    let call = |service: &str, action: &str| {
        calls
            .iter()
            .find(|c| c.service == service && c.action == action)
            .unwrap_or_else(|| panic!("{service} {action} not counted: {calls:?}"))
    };
    assert_eq!(call("sqs", "SendMessage").requests, 1.0);
    assert_eq!(call("sqs", "SendMessage").resource, queue);
    let receives = call("sqs", "ReceiveMessage");
    assert_eq!((receives.requests, receives.entries, receives.empty), (2.0, 1.0, 1.0));
    assert_eq!(call("sqs", "DeleteMessage").requests, 1.0);
    let puts = call("dynamodb", "PutItem");
    assert_eq!(
        (puts.requests, puts.wcu, puts.conditional_failures),
        (2.0, 4.0, 1.0),
        "a failed condition pays"
    );
    let gets = call("dynamodb", "GetItem");
    assert_eq!((gets.requests, gets.rcu, gets.faults), (4.0, 2.0, 1.0), "consistent 1 + eventual 0.5 twice");
    assert_eq!(call("dynamodb", "TransactWriteItems").wcu, 2.0, "a transaction pays double");
    assert!(calls.iter().all(|c| c.action != "CreateQueue"), "nothing before the reset: {calls:?}");
}
