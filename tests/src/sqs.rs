//! SQS as Lambda's event source mapping sees it: queues on moto, messages received with their
//! receipt handles, and the SQS event a function is invoked with.

use std::collections::HashMap;

use anyhow::Context;
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName, QueueAttributeName};

/// Creates the queue `name` with a 60 s visibility timeout; returns its URL.
///
/// # Errors
/// If moto refuses.
pub async fn create_queue(sqs: &aws_sdk_sqs::Client, name: &str) -> anyhow::Result<String> {
    let out = sqs
        .create_queue()
        .queue_name(name)
        .attributes(QueueAttributeName::VisibilityTimeout, "60")
        .send()
        .await
        .with_context(|| format!("creating queue {name}"))?;
    out.queue_url().map(str::to_owned).context("queue without a URL")
}

/// Receives up to `n` messages with every attribute, polling (moto may return fewer per call)
/// up to 20 times.
///
/// # Errors
/// If a receive fails.
pub async fn receive(sqs: &aws_sdk_sqs::Client, url: &str, n: usize) -> anyhow::Result<Vec<Message>> {
    let mut got = Vec::new();
    for _ in 0..20 {
        if got.len() >= n {
            break;
        }
        let out = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(i32::try_from((n - got.len()).min(10)).unwrap_or(10))
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .wait_time_seconds(1)
            .send()
            .await
            .context("receiving")?;
        got.extend(out.messages.unwrap_or_default());
    }
    Ok(got)
}

/// The event Lambda's SQS event source mapping would send for these messages.
pub fn sqs_event(messages: &[Message], queue_arn: &str) -> serde_json::Value {
    let records: Vec<_> = messages
        .iter()
        .map(|m| {
            let attributes: HashMap<String, String> = m
                .attributes()
                .map(|a| a.iter().map(|(k, v)| (k.as_str().to_owned(), v.clone())).collect())
                .unwrap_or_default();
            serde_json::json!({
                "messageId": m.message_id(),
                "receiptHandle": m.receipt_handle(),
                "body": m.body(),
                "attributes": attributes,
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": "us-east-1",
            })
        })
        .collect();
    serde_json::json!({ "Records": records })
}

/// Milliseconds since the epoch, for invocation deadlines.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
