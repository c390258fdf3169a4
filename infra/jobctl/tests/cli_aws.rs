//! The real `jobctl --aws` against moto's SQS: enqueue lands on the stack's queue, `dlq list`
//! reads the reasons, `dlq redrive --error` moves only those, bad arguments send nothing.

use std::process::{Command, Output, Stdio};

use aws_sdk_sqs::types::MessageAttributeValue;
use jobctl::registry;
use serde_json::Value;
use system_tests::moto;

async fn create_stack_queues(sqs: &aws_sdk_sqs::Client, stack: &str) {
    for job in registry::JOB_NAMES {
        for name in [registry::queue_name(job), registry::dlq_name(job)] {
            sqs.create_queue().queue_name(format!("{stack}-{name}")).send().await.unwrap();
        }
    }
}

async fn url(sqs: &aws_sdk_sqs::Client, name: &str) -> String {
    sqs.get_queue_url().queue_name(name).send().await.unwrap().queue_url.unwrap()
}

fn jobctl(stack: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_jobctl"))
        .args(["--aws", "--stack", stack])
        .args(args)
        .env("AWS_ENDPOINT_URL", moto::endpoint())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env_remove("AWS_PROFILE")
        .stdin(Stdio::null())
        .output()
        .expect("jobctl runs")
}

fn json_of(stack: &str, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = jobctl(stack, &all);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{args:?}: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{args:?}: no JSON ({e}): {stdout}"))
}

async fn bodies(sqs: &aws_sdk_sqs::Client, queue: &str) -> Vec<(String, Option<String>)> {
    let out = sqs
        .receive_message()
        .queue_url(queue)
        .max_number_of_messages(10)
        .message_attribute_names("All")
        .send()
        .await
        .unwrap();
    out.messages()
        .iter()
        .map(|m| {
            let kind = m
                .message_attributes()
                .and_then(|a| a.get("error_kind"))
                .and_then(|v| v.string_value().map(str::to_owned));
            (m.body().unwrap_or_default().to_owned(), kind)
        })
        .collect()
}

fn attribute(value: &str) -> MessageAttributeValue {
    MessageAttributeValue::builder().data_type("String").string_value(value).build().unwrap()
}

#[tokio::test]
async fn enqueue_dlq_list_and_redrive_work_on_a_stacks_queues() {
    let sqs = aws_sdk_sqs::Client::new(&moto::sdk_config().await);
    let stack = moto::unique("jobctl");
    create_stack_queues(&sqs, &stack).await;

    let refused = jobctl(&stack, &["enqueue", "store_sync", "--args", r#"{"store":"st_1"}"#]);
    assert_eq!(refused.status.code(), Some(2));
    let sent = json_of(&stack, &["enqueue", "store_sync", "--arg", "store_id=st_1"]);
    let queue = url(&sqs, &format!("{stack}-store-sync")).await;
    assert_eq!(sent["queue"], queue.as_str());
    let received = bodies(&sqs, &queue).await;
    assert_eq!(received, vec![(r#"{"store_id":"st_1"}"#.to_owned(), None)], "only the valid one was sent");

    let dlq = url(&sqs, &format!("{stack}-customer-sync-dlq")).await;
    for (store, kind) in [("st_1", "throttled"), ("st_2", "not_found"), ("st_3", "throttled")] {
        sqs.send_message()
            .queue_url(&dlq)
            .message_body(format!(r#"{{"store_id":"{store}"}}"#))
            .message_attributes("job_id", attribute(&format!("job-{store}")))
            .message_attributes("error_kind", attribute(kind))
            .message_attributes("error_message", attribute(&format!("square said {kind}")))
            .message_attributes("attempts", attribute("10"))
            .send()
            .await
            .unwrap();
    }
    let listed = json_of(&stack, &["dlq", "list", "customer_sync"]);
    let mut kinds: Vec<&str> =
        listed.as_array().unwrap().iter().map(|l| l["error_kind"].as_str().unwrap()).collect();
    kinds.sort_unstable();
    assert_eq!(kinds, ["not_found", "throttled", "throttled"]);
    let stats = json_of(&stack, &["stats"]);
    let customer = stats.as_array().unwrap().iter().find(|s| s["job"] == "customer_sync").unwrap();
    assert_eq!(customer["dlq_depth"], 3, "listing leaves the messages in the DLQ: {customer}");

    let redriven = json_of(&stack, &["dlq", "redrive", "customer_sync", "--error", "throttled"]);
    assert_eq!(redriven["redriven"], 2, "{redriven}");
    let mut back: Vec<String> = bodies(&sqs, &url(&sqs, &format!("{stack}-customer-sync")).await)
        .await
        .into_iter()
        .map(|(b, kind)| {
            assert_eq!(kind, None, "the DLQ's error attributes are not sent back");
            b
        })
        .collect();
    back.sort();
    assert_eq!(back, [r#"{"store_id":"st_1"}"#, r#"{"store_id":"st_3"}"#]);
    let left = json_of(&stack, &["dlq", "list", "customer_sync"]);
    assert_eq!(left.as_array().unwrap().len(), 1, "{left}");
    assert_eq!(left[0]["error_kind"], "not_found");
}

#[test]
fn a_stack_that_is_not_there_is_named_in_the_error() {
    let out = jobctl("no-such-stack", &["stats"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no-such-stack-store-sync") && stderr.contains("--stack"), "{stderr}");
}
