//! jobkit's AWS adapters through the real `aws-sdk-*` clients against moto's server.

use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName;
use chrono::Utc;
use jobkit::{
    Email, Mailer, OutgoingMessage, PutOutcome, Queue, StateStore,
    aws::{DynamoStore, SesMailer, SqsQueue},
};
use system_tests::moto;

async fn queue_with(sqs: &aws_sdk_sqs::Client, name: &str, attrs: &[(QueueAttributeName, String)]) -> String {
    let mut request = sqs.create_queue().queue_name(name);
    for (k, v) in attrs {
        request = request.attributes(k.clone(), v);
    }
    request.send().await.expect("queue created").queue_url().expect("url").to_owned()
}

async fn receive_one(queue: &SqsQueue, url: &str) -> Vec<jobkit::ReceivedMessage> {
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

async fn moto_data() -> serde_json::Value {
    let url = format!("{}/moto-api/data.json", moto::endpoint());
    let body = tokio::task::spawn_blocking(move || system_tests::moto::http_get(&url))
        .await
        .expect("join")
        .expect("GET");
    serde_json::from_str(&body).expect("json")
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
    assert!(moto_data().await.to_string().contains(&subject), "moto recorded the email");

    let unverified = Email { from: "nobody@unverified.example".into(), ..email };
    assert!(mailer.send(&unverified).await.is_err(), "an unverified sender is refused");
}
