//! The real `jobctl --aws` against the stack as deployed (`template.yaml` through the SAM
//! translator, created on moto's CloudFormation): enqueue lands on the stack's queue, `stats`
//! counts it, `dlq list` and `dlq show` read the reasons and the state table's last errors,
//! `dlq redrive --error` moves only those, bad arguments send nothing.

use std::process::{Command, Output, Stdio};

use aws_sdk_sqs::types::MessageAttributeValue;
use jobctl::registry;
use serde_json::Value;
use system_tests::{moto, stack::Stack};

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
async fn enqueue_stats_dlq_list_and_redrive_work_on_the_deployed_stack() {
    let deployed = Stack::deploy().await.unwrap();
    let sqs = deployed.sqs();
    let stack = deployed.name.as_str();
    let store_sync = deployed.deployment("store_sync").await.unwrap();
    let customer_sync = deployed.deployment("customer_sync").await.unwrap();

    let refused = jobctl(stack, &["enqueue", "store_sync", "--args", r#"{"store":"st_1"}"#]);
    assert_eq!(refused.status.code(), Some(2));
    let sent = json_of(stack, &["enqueue", "store_sync", "--arg", "store_id=st_1"]);
    assert_eq!(sent["queue"], store_sync.queue_url.as_str(), "the queue the function reads");
    let stats = json_of(stack, &["stats"]);
    let jobs: Vec<&str> = stats.as_array().unwrap().iter().map(|s| s["job"].as_str().unwrap()).collect();
    assert_eq!(jobs.len(), registry::JOB_NAMES.len(), "every job's queues found: {stats}");
    let queued = stats.as_array().unwrap().iter().find(|s| s["job"] == "store_sync").unwrap();
    assert_eq!(queued["queue"]["visible"], 1, "{queued}");
    let received = bodies(&sqs, &store_sync.queue_url).await;
    assert_eq!(received, vec![(r#"{"store_id":"st_1"}"#.to_owned(), None)], "only the valid one was sent");

    let dlq = customer_sync.dlq_url.clone();
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
    let listed = json_of(stack, &["dlq", "list", "customer_sync"]);
    let mut kinds: Vec<&str> =
        listed.as_array().unwrap().iter().map(|l| l["error_kind"].as_str().unwrap()).collect();
    kinds.sort_unstable();
    assert_eq!(kinds, ["not_found", "throttled", "throttled"]);
    let stats = json_of(stack, &["stats"]);
    let customer = stats.as_array().unwrap().iter().find(|s| s["job"] == "customer_sync").unwrap();
    assert_eq!(customer["dlq_depth"], 3, "listing leaves the messages in the DLQ: {customer}");

    let redriven = json_of(stack, &["dlq", "redrive", "customer_sync", "--error", "throttled"]);
    assert_eq!(redriven["redriven"], 2, "{redriven}");
    let mut back: Vec<String> = bodies(&sqs, &customer_sync.queue_url)
        .await
        .into_iter()
        .map(|(b, kind)| {
            assert_eq!(kind, None, "the DLQ's error attributes are not sent back");
            b
        })
        .collect();
    back.sort();
    assert_eq!(back, [r#"{"store_id":"st_1"}"#, r#"{"store_id":"st_3"}"#]);
    let left = json_of(stack, &["dlq", "list", "customer_sync"]);
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

/// customer_sync's `maxReceiveCount` on the hand-made queues.
const MAX_RECEIVES: u32 = 3;

/// customer_sync's queue (a redrive to its DLQ after [`MAX_RECEIVES`]) and DLQ, hand-made under
/// the name of a stack CloudFormation does not know.
async fn customer_sync_queues(sqs: &aws_sdk_sqs::Client, stack: &str) -> (String, String) {
    use aws_sdk_sqs::types::QueueAttributeName;
    let dlq = sqs.create_queue().queue_name(format!("{stack}-customer-sync-dlq")).send().await.unwrap();
    let dlq = dlq.queue_url.unwrap();
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&dlq)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()[&QueueAttributeName::QueueArn]
        .clone();
    let policy = serde_json::json!({"deadLetterTargetArn": arn, "maxReceiveCount": MAX_RECEIVES});
    let queue = sqs
        .create_queue()
        .queue_name(format!("{stack}-customer-sync"))
        .attributes(QueueAttributeName::RedrivePolicy, policy.to_string())
        .send()
        .await
        .unwrap();
    (queue.queue_url.unwrap(), dlq)
}

/// The `maxReceiveCount` of the queue's redrive policy.
async fn max_receive_count(sqs: &aws_sdk_sqs::Client, queue: &str) -> u32 {
    use aws_sdk_sqs::types::QueueAttributeName;
    let out = sqs
        .get_queue_attributes()
        .queue_url(queue)
        .attribute_names(QueueAttributeName::RedrivePolicy)
        .send()
        .await
        .unwrap();
    let policy: Value =
        serde_json::from_str(&out.attributes().unwrap()[&QueueAttributeName::RedrivePolicy]).unwrap();
    let count = &policy["maxReceiveCount"];
    // SQS answers the count as a number or as a string, depending on how it was set.
    count.as_u64().or_else(|| count.as_str()?.parse().ok()).and_then(|n| u32::try_from(n).ok()).unwrap()
}

/// Receives from `queue` with every attribute and no visibility, so the test itself hides nothing.
async fn receive_all(sqs: &aws_sdk_sqs::Client, queue: &str) -> Vec<aws_sdk_sqs::types::Message> {
    let out = sqs
        .receive_message()
        .queue_url(queue)
        .max_number_of_messages(10)
        .visibility_timeout(0)
        .message_attribute_names("All")
        .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
        .send()
        .await
        .unwrap();
    out.messages.unwrap_or_default()
}

fn attributes_of(message: &aws_sdk_sqs::types::Message) -> std::collections::BTreeMap<String, String> {
    message
        .message_attributes()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.string_value().unwrap_or_default().to_owned()))
        .collect()
}

fn text_of(stack: &str, args: &[&str]) -> String {
    let out = jobctl(stack, args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{args:?}: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

fn by_id(listed: &Value) -> serde_json::Map<String, Value> {
    listed.as_array().unwrap().iter().map(|l| (l["id"].as_str().unwrap().to_owned(), l.clone())).collect()
}

#[tokio::test]
async fn the_dlq_reads_each_account_and_a_redrive_leaves_the_error_behind_on_the_deployed_stack() {
    let deployed = Stack::deploy().await.unwrap();
    let sqs = deployed.sqs();
    let stack = deployed.name.as_str();
    // jobctl finds the state table through CloudFormation: it is named by it, not by the stack.
    let table = deployed.table("JOBKIT_STATE_TABLE").unwrap();
    let customer_sync = deployed.deployment("customer_sync").await.unwrap();
    let (queue, dlq) = (customer_sync.queue_url, customer_sync.dlq_url);
    let max_receives = max_receive_count(&sqs, &queue).await;

    let at =
        chrono::DateTime::parse_from_rfc3339("2026-12-01T10:00:00Z").unwrap().with_timezone(&chrono::Utc);
    let error = jobkit::dead_letter::DeadLetterError {
        kind: "throttled".into(),
        message: "square: 429 too many requests".into(),
        reason: "exhausted".into(),
        attempts: 8,
        first_failed_at: Some(at),
        last_failed_at: Some(at),
        original_message_id: "m-original".into(),
        dropped_attributes: Vec::new(),
    };
    let folded = [
        ("job", "customer_sync".to_owned()),
        ("job_id", "job-folded".to_owned()),
        ("error", error.to_attribute()),
        ("idempotency_key", "idem-st_1".to_owned()),
        ("continuation", r#"{"completed":["customers"],"current":null,"resumptions":1}"#.to_owned()),
        ("tenant", "acme".to_owned()),
    ];
    let older = [
        ("job", "customer_sync"),
        ("job_id", "job-older"),
        ("error_kind", "not_found"),
        ("error_message", "store st_2 not found"),
        ("attempts", "1"),
        ("last_failed_at", "2026-12-01T09:00:00+00:00"),
        ("dlq_reason", "discarded"),
        ("idempotency_key", "idem-st_2"),
    ];
    let mut send = sqs.send_message().queue_url(&dlq).message_body(r#"{"store_id":"st_1"}"#);
    for (name, value) in &folded {
        send = send.message_attributes(*name, attribute(value));
    }
    send.send().await.unwrap();
    let mut send = sqs.send_message().queue_url(&dlq).message_body(r#"{"store_id":"st_2"}"#);
    for (name, value) in older {
        send = send.message_attributes(name, attribute(value));
    }
    send.send().await.unwrap();

    // A crash loop: received max_receives times and never deleted; the next receive is SQS's
    // redrive to the DLQ.
    sqs.send_message()
        .queue_url(&queue)
        .message_body(r#"{"store_id":"st_3"}"#)
        .message_attributes("job", attribute("customer_sync"))
        .message_attributes("job_id", attribute("job-crash"))
        .send()
        .await
        .unwrap();
    for receive in 1..=max_receives {
        assert_eq!(receive_all(&sqs, &queue).await.len(), 1, "receive {receive}");
    }
    assert!(receive_all(&sqs, &queue).await.is_empty(), "moved to the DLQ");
    let last = jobkit::dead_letter::LastError {
        kind: "timeout".into(),
        message: "ran past its 300s timeout".into(),
        attempt: max_receives,
        at,
    };
    let store = jobkit::aws::DynamoStore::new(deployed.dynamo(), table);
    jobkit::dead_letter::save_last_error(&store, "customer_sync", "job-crash", &last, chrono::Utc::now())
        .await
        .unwrap();

    let moved = format!("moved by SQS after {max_receives} receives, no reason recorded");
    // Listing receives each message: twice, to see that it does not change what is shown.
    for _ in 0..2 {
        let listed = by_id(&json_of(stack, &["dlq", "list", "customer_sync"]));
        assert_eq!(listed.len(), 3, "{listed:?}");
        assert_eq!(
            (listed["job-folded"]["recorded_by"].as_str(), listed["job-folded"]["error_kind"].as_str()),
            (Some("runner"), Some("throttled"))
        );
        assert_eq!(listed["job-folded"]["attempts"], 8);
        assert_eq!(
            (listed["job-older"]["recorded_by"].as_str(), listed["job-older"]["error_kind"].as_str()),
            (Some("runner"), Some("not_found"))
        );
        assert_eq!(listed["job-older"]["error_message"], "store st_2 not found");
        let crash = &listed["job-crash"];
        assert_eq!(crash["recorded_by"], "sqs", "{crash}");
        assert_eq!(crash["error_message"], moved.as_str(), "{crash}");
        assert_eq!(crash["receives"], max_receives, "{crash}");
        assert_eq!(crash["last_error"]["kind"], "timeout", "{crash}");
    }
    // moto keeps the receive count when it moves a message, and every receive from the DLQ
    // (jobctl's two listings, this one) adds one: the count on the DLQ is not the move's.
    let raw = receive_all(&sqs, &dlq).await;
    let crash =
        raw.iter().find(|m| attributes_of(m).get("job_id").map(String::as_str) == Some("job-crash")).unwrap();
    let count = crash
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount))
        .unwrap();
    assert_eq!(count.parse::<u32>().unwrap(), max_receives + 3, "moto's count on the DLQ");

    let table = text_of(stack, &["dlq", "list", "customer_sync"]);
    assert!(table.contains(&moved) && table.contains("timeout"), "{table}");
    let filtered = by_id(&json_of(stack, &["dlq", "list", "customer_sync", "--error", "throttled"]));
    assert_eq!(filtered.keys().collect::<Vec<_>>(), ["job-folded"]);
    let filtered = by_id(&json_of(stack, &["dlq", "list", "customer_sync", "--error", "not_found"]));
    assert_eq!(filtered.keys().collect::<Vec<_>>(), ["job-older"]);
    let filtered = by_id(&json_of(stack, &["dlq", "list", "customer_sync", "--error", "unknown"]));
    assert_eq!(filtered.keys().collect::<Vec<_>>(), ["job-crash"]);

    let shown = text_of(stack, &["dlq", "show", "job-crash", "--job", "customer_sync"]);
    assert!(shown.contains(&moved) && shown.contains("ran past its 300s timeout"), "{shown}");
    let shown = json_of(stack, &["dlq", "show", "job-folded", "--job", "customer_sync"]);
    assert_eq!(
        (shown["recorded_by"].as_str(), shown["error"]["kind"].as_str()),
        (Some("runner"), Some("throttled"))
    );

    let redriven = json_of(stack, &["dlq", "redrive", "customer_sync", "--error", "throttled"]);
    assert_eq!(redriven["redriven"], 1, "{redriven}");
    let back = receive_all(&sqs, &queue).await;
    assert_eq!(back.len(), 1);
    let names: Vec<String> = attributes_of(&back[0]).into_keys().collect();
    assert_eq!(names, ["continuation", "idempotency_key", "job", "job_id", "tenant"], "{back:?}");
    assert_eq!(
        attributes_of(&back[0]),
        folded.iter().filter(|(k, _)| *k != "error").map(|(k, v)| ((*k).to_owned(), v.clone())).collect()
    );

    let redriven = json_of(stack, &["dlq", "redrive", "customer_sync", "--error", "not_found"]);
    assert_eq!(redriven["redriven"], 1, "{redriven}");
    let back = receive_all(&sqs, &queue).await;
    let older_copy = back
        .iter()
        .find(|m| attributes_of(m).get("job_id").map(String::as_str) == Some("job-older"))
        .unwrap();
    let names: Vec<String> = attributes_of(older_copy).into_keys().collect();
    assert_eq!(names, ["idempotency_key", "job", "job_id"], "{older_copy:?}");
}

#[tokio::test]
async fn a_dlq_is_still_listed_when_the_stacks_state_table_cannot_be_found() {
    let sqs = aws_sdk_sqs::Client::new(&moto::sdk_config().await);
    let stack = moto::unique("jobctl-no-table");
    let (_, dlq) = customer_sync_queues(&sqs, &stack).await;
    sqs.send_message()
        .queue_url(&dlq)
        .message_body(r#"{"store_id":"st_1"}"#)
        .message_attributes("job_id", attribute("job-crash"))
        .send()
        .await
        .unwrap();
    let out = jobctl(&stack, &["--json", "dlq", "list", "customer_sync"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("cannot find the state table") && stderr.contains(&stack), "{stderr}");
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed[0]["recorded_by"], "sqs", "{listed}");
    assert_eq!(listed[0]["receives"], MAX_RECEIVES, "{listed}");
    assert!(listed[0]["last_error"].is_null(), "{listed}");
}

/// `jobctl --aws cancel` writes the cancellation where the deployed function looks for it (the
/// stack's state table, found through CloudFormation): the function acknowledges the job
/// without running it, and a job enqueued beside it runs.
#[tokio::test]
async fn a_job_cancelled_with_jobctl_is_acknowledged_by_its_deployed_function_without_running() {
    let deployed = Stack::deploy().await.unwrap();
    let stack = deployed.name.as_str();
    let cancelled = json_of(stack, &["enqueue", "clean_database"]);
    let kept = json_of(stack, &["enqueue", "clean_database"]);
    let id = cancelled["job_id"].as_str().expect("a job id");
    let answer = json_of(stack, &["cancel", "clean_database", id]);
    assert_eq!(answer["cancelled"], true, "{answer}");
    assert_eq!(jobctl(stack, &["cancel", "no_such_job", id]).status.code(), Some(2));
    assert_eq!(jobctl(stack, &["cancel", "clean_database", " "]).status.code(), Some(2));

    let mut function = deployed.start("clean_database", &[]).await.expect("started");
    function.lambda.drain(std::time::Duration::from_secs(60)).await.expect("drained");
    let logs = function.lambda.logs();
    let cancelled_lines: Vec<&str> =
        logs.lines().filter(|l| l.contains("cancelled by an operator")).collect();
    assert_eq!(cancelled_lines.len(), 1, "{logs}");
    assert!(cancelled_lines[0].contains(id), "the line names the job: {}", cancelled_lines[0]);
    let kept_id = kept["job_id"].as_str().unwrap();
    assert!(!logs.lines().any(|l| l.contains(kept_id) && l.contains("cancelled")), "{logs}");
    assert!(system_tests::sqs::dead_letters(&deployed.sqs(), &function.dlq_url).await.unwrap().is_empty());
}

/// `jobctl --aws pause` disables the deployed function's event source mapping (messages wait in
/// the queue) and `resume` enables it again, found through the stack.
#[tokio::test]
async fn pause_and_resume_switch_the_deployed_functions_event_source_mapping() {
    let deployed = Stack::deploy().await.unwrap();
    let stack = deployed.name.as_str();
    let function = deployed.physical_id("ShareProductTextMessageFunction").unwrap().to_owned();
    let lambda = deployed.lambda();
    let state = || async {
        let listed = lambda.list_event_source_mappings().function_name(&function).send().await.unwrap();
        let states: Vec<String> =
            listed.event_source_mappings().iter().map(|m| m.state().unwrap_or_default().to_owned()).collect();
        states
    };
    assert_eq!(json_of(stack, &["resume", "share_product_text_message"])["paused"], false);
    assert_eq!(state().await, ["Enabled"]);
    assert_eq!(json_of(stack, &["pause", "share_product_text_message"])["paused"], true);
    assert_eq!(state().await, ["Disabled"]);
    assert_eq!(jobctl(stack, &["pause", "no_such_job"]).status.code(), Some(2));
}

/// `jobctl --aws batches` reads a batch's progress off the deployed stack's state table: two
/// store syncs enqueued as one batch, neither run yet.
#[tokio::test]
async fn batches_shows_a_batchs_progress_from_the_deployed_state_table() {
    let deployed = Stack::deploy().await.unwrap();
    let stack = deployed.name.as_str();
    let store_sync = deployed.deployment("store_sync").await.unwrap();
    let table = deployed.physical_id("JobStateTable").unwrap().to_owned();
    let sqs = std::sync::Arc::new(jobkit::aws::SqsQueue::new(deployed.sqs()));
    let store = std::sync::Arc::new(jobkit::aws::DynamoStore::new(deployed.dynamo(), table));
    let routes = jobkit::enqueue::QueueRoutes::default().with("store_sync", store_sync.queue_url.clone());
    let enqueuer = jobkit::Enqueuer::new(sqs, store, std::sync::Arc::new(jobkit::clock::SystemClock), routes);
    let batch = jobkit::batch::JobBatch::new("by-hand").description("two stores");
    let members = [store_sync::StoreSyncArgs::store("st_1"), store_sync::StoreSyncArgs::store("st_2")];
    let sent =
        enqueuer.perform_later_batch::<store_sync::StoreSync>(&batch, members, &Default::default()).await;
    assert!(sent.unwrap().iter().all(Result::is_ok));

    let listed = json_of(stack, &["batches", "store_sync"]);
    let batches = listed.as_array().unwrap();
    assert_eq!(batches.len(), 1, "{listed}");
    let (b, n) = (&batches[0], |field: &str| batches[0][field].as_u64().unwrap());
    assert_eq!((b["id"].as_str(), b["sealed"].as_bool()), (Some("by-hand"), Some(true)), "{b}");
    assert_eq!((n("total"), n("succeeded"), n("failed")), (2, 0, 0), "{b}");
    let table_text = String::from_utf8(jobctl(stack, &["batches"]).stdout).unwrap();
    assert!(table_text.contains("[----------] 0/2") && table_text.contains("running"), "{table_text}");
    assert_eq!(jobctl(stack, &["batches", "nope"]).status.code(), Some(2));
}
