//! The example function's built binary under the Runtime API stub, against moto: one SQS event
//! with a good record, a transient failure, a permanent failure, a panic and a body that is not
//! JSON. Proves the Lambda path end to end, not only the handler.

use std::collections::HashMap;

use system_tests::{
    function::{FunctionProcess, test_build_binary},
    moto,
    runtime_api::{Answer, RuntimeApi},
    sqs::{create_queue, now_ms, receive, sqs_event},
};

#[tokio::test]
async fn example_binary_answers_an_sqs_batch_with_partial_failures_and_dlq_copies() {
    let sdk = moto::sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
    let queue_url = create_queue(&sqs, &moto::unique("example")).await.expect("queue");
    let dlq_url = create_queue(&sqs, &moto::unique("example-dlq")).await.expect("dlq");
    let table = moto::unique("jobs-state");
    jobkit::aws::DynamoStore::create_table(&dynamo, &table).await.expect("table created");

    let bodies = [
        ("ok", r#"{"name":"Ada"}"#),
        ("transient", r#"{"name":"Bob","fail":"transient"}"#),
        ("permanent", r#"{"name":"Cy","fail":"permanent"}"#),
        ("panic", r#"{"name":"Di","fail":"panic"}"#),
        ("not_json", "this is not json"),
    ];
    let mut ids = HashMap::new();
    for (label, body) in bodies {
        let out = sqs.send_message().queue_url(&queue_url).message_body(body).send().await.expect("sent");
        ids.insert(out.message_id().expect("id").to_owned(), label);
    }
    let messages = receive(&sqs, &queue_url, bodies.len()).await.expect("received");
    assert_eq!(messages.len(), bodies.len(), "all messages received");
    let event = sqs_event(&messages, "arn:aws:sqs:us-east-1:123456789012:example");

    let api = RuntimeApi::start().await.expect("stub started");
    let mut env = moto::function_env();
    env.extend([
        ("JOBKIT_QUEUE_URL", queue_url.clone()),
        ("JOBKIT_DLQ_URL", dlq_url.clone()),
        ("JOBKIT_STATE_TABLE", table.clone()),
        ("RUST_LOG", "info".to_owned()),
    ]);
    let function =
        FunctionProcess::start(&test_build_binary("example_job").expect("binary"), &api.endpoint(), &env)
            .expect("function started");
    let deadline_ms = now_ms() + 60_000;
    let answer = tokio::time::timeout(std::time::Duration::from_secs(60), api.invoke(event, deadline_ms))
        .await
        .expect("the function answered within a minute")
        .expect("the function answered");
    let (stdout, stderr) = function.stop().await.expect("output");

    let Answer::Response(response) = answer else { panic!("error answer: {answer:?}\n{stderr}") };
    let mut failed: Vec<&str> = response["batchItemFailures"]
        .as_array()
        .expect("batchItemFailures")
        .iter()
        .map(|f| ids[f["itemIdentifier"].as_str().expect("id")])
        .collect();
    failed.sort_unstable();
    assert_eq!(failed, ["panic", "transient"], "only the retryable failures come back\n{stderr}");

    let dead = receive(&sqs, &dlq_url, 2).await.expect("received");
    let mut kinds: Vec<(String, String)> = dead
        .iter()
        .map(|m| {
            let attrs = m.message_attributes().expect("DLQ copies carry attributes");
            let get = |k: &str| attrs.get(k).and_then(|v| v.string_value()).unwrap_or_default().to_owned();
            assert_eq!(get("job"), "example");
            let strings = attrs.keys().map(|k| (k.clone(), get(k))).collect();
            let error = jobkit::dead_letter::DeadLetterError::read(&strings).expect("the error is recorded");
            assert_eq!(error.attempts, 1);
            assert!(ids.contains_key(&error.original_message_id), "original id kept");
            (error.kind, error.reason)
        })
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        [
            ("invalid_arguments".to_owned(), "discarded".to_owned()),
            ("not_found".to_owned(), "discarded".to_owned())
        ]
    );

    assert!(stdout.contains("\"_aws\""), "an EMF metrics line on stdout: {stdout}");
    assert!(stderr.contains("\"message_id\""), "JSON logs with the record span: {stderr}");
}
