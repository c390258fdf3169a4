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
                "messageAttributes": message_attributes(m),
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": "us-east-1",
            })
        })
        .collect();
    serde_json::json!({ "Records": records })
}

/// Message attributes in the event's shape. Binary values are left out: Lambda base64-encodes
/// them, and no job here reads one (the poison corpus covers them at the runner).
fn message_attributes(m: &Message) -> serde_json::Value {
    let attributes: serde_json::Map<String, serde_json::Value> = m
        .message_attributes()
        .map(|attrs| {
            attrs
                .iter()
                .filter_map(|(name, value)| {
                    let text = value.string_value()?;
                    let entry = serde_json::json!({
                        "stringValue": text,
                        "stringListValues": [],
                        "binaryListValues": [],
                        "dataType": value.data_type(),
                    });
                    Some((name.clone(), entry))
                })
                .collect()
        })
        .unwrap_or_default();
    serde_json::Value::Object(attributes)
}

/// Creates the queue `name` and its DLQ (`name-dlq`) as the template does: SQS moves a message
/// to the DLQ after `max_receive_count` receives; `visibility` is the queue's visibility
/// timeout. Returns (queue URL, DLQ URL).
///
/// # Errors
/// If moto refuses.
pub async fn create_queue_with_dlq(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    visibility: std::time::Duration,
    max_receive_count: u32,
) -> anyhow::Result<(String, String)> {
    let dlq = create_queue(sqs, &format!("{name}-dlq")).await?;
    let queue = create_queue_redriving_to(sqs, name, &dlq, visibility, max_receive_count).await?;
    Ok((queue, dlq))
}

/// Creates queue `name` whose messages move to the queue at `dlq` after `max_receive_count`
/// receives (another lane of a job, sharing its DLQ); returns its URL.
///
/// # Errors
/// If SQS refuses.
pub async fn create_queue_redriving_to(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    dlq: &str,
    visibility: std::time::Duration,
    max_receive_count: u32,
) -> anyhow::Result<String> {
    let dlq_arn = queue_arn(sqs, dlq).await?;
    let redrive = serde_json::json!({ "deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count });
    let out = sqs
        .create_queue()
        .queue_name(name)
        .attributes(QueueAttributeName::VisibilityTimeout, visibility.as_secs().to_string())
        .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string())
        .send()
        .await
        .with_context(|| format!("creating queue {name}"))?;
    out.queue_url().map(str::to_owned).context("queue without a URL")
}

/// Milliseconds since the epoch, for invocation deadlines.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// One attribute of the queue at `url`, named `what` in errors.
async fn queue_attribute(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    name: QueueAttributeName,
    what: &str,
) -> anyhow::Result<String> {
    let out = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(name.clone())
        .send()
        .await
        .with_context(|| format!("reading the queue's {what}"))?;
    out.attributes().and_then(|a| a.get(&name)).cloned().with_context(|| format!("a queue without {what}"))
}

/// The ARN of the queue at `url`.
///
/// # Errors
/// If SQS fails or answers without one.
pub async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> anyhow::Result<String> {
    queue_attribute(sqs, url, QueueAttributeName::QueueArn, "ARN").await
}

/// The queue's default visibility timeout.
///
/// # Errors
/// If SQS fails or answers without it.
pub async fn queue_visibility(sqs: &aws_sdk_sqs::Client, url: &str) -> anyhow::Result<std::time::Duration> {
    let seconds =
        queue_attribute(sqs, url, QueueAttributeName::VisibilityTimeout, "visibility timeout").await?;
    Ok(std::time::Duration::from_secs(seconds.parse().context("a visibility timeout that is not a number")?))
}

/// Messages the queue holds: visible, in flight and delayed (jobkit's own count).
///
/// # Errors
/// If SQS fails.
pub async fn queue_depth(sqs: &aws_sdk_sqs::Client, url: &str) -> anyhow::Result<u64> {
    let counts = jobkit::aws::SqsQueue::new(sqs.clone()).approximate_counts(url).await?;
    Ok(counts.visible + counts.in_flight + counts.delayed)
}

/// A message in a DLQ: its body and its string attributes.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    /// The body (the job's arguments).
    pub body: String,
    /// String message attributes (`job`, `job_id`, `error`, the original's...).
    pub attributes: HashMap<String, String>,
}

impl DeadLetter {
    /// The attribute `name`, or "" when absent.
    pub fn attr(&self, name: &str) -> &str {
        self.attributes.get(name).map_or("", String::as_str)
    }

    /// The runner's account of the failure (the `error` attribute).
    ///
    /// # Panics
    /// When the message carries none (SQS moved it).
    pub fn error(&self) -> jobkit::dead_letter::DeadLetterError {
        let attributes = self.attributes.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        jobkit::dead_letter::DeadLetterError::read(&attributes)
            .unwrap_or_else(|| panic!("no error recorded: {self:?}"))
    }
}

/// Everything the DLQ at `url` holds (received, so invisible for the queue's visibility timeout).
///
/// # Errors
/// If SQS fails.
pub async fn dead_letters(sqs: &aws_sdk_sqs::Client, url: &str) -> anyhow::Result<Vec<DeadLetter>> {
    let depth = usize::try_from(queue_depth(sqs, url).await?).unwrap_or(usize::MAX);
    let messages = receive(sqs, url, depth).await?;
    Ok(messages
        .into_iter()
        .map(|m| DeadLetter {
            attributes: m
                .message_attributes()
                .map(|a| {
                    a.iter().filter_map(|(k, v)| Some((k.clone(), v.string_value()?.to_owned()))).collect()
                })
                .unwrap_or_default(),
            body: m.body.unwrap_or_default(),
        })
        .collect())
}

/// Deletes every message of `messages` whose id is not in `failures` from the queue at `url`, ten
/// a call, as Lambda's event source mapping does after a batch; returns how many.
///
/// # Errors
/// If SQS refuses a call or any delete.
pub async fn delete_all_but(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    messages: &[Message],
    failures: &[&str],
) -> anyhow::Result<usize> {
    let done: Vec<&Message> =
        messages.iter().filter(|m| !failures.iter().any(|f| Some(*f) == m.message_id())).collect();
    for chunk in done.chunks(10) {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(i, m)| {
                aws_sdk_sqs::types::DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .set_receipt_handle(m.receipt_handle.clone())
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()?;
        let out = sqs
            .delete_message_batch()
            .queue_url(url)
            .set_entries(Some(entries))
            .send()
            .await
            .context("deleting what succeeded")?;
        if !out.failed().is_empty() {
            anyhow::bail!("deletes failed: {:?}", out.failed());
        }
    }
    Ok(done.len())
}

/// One batch as Lambda's event source mapping gathers it from the queue at `url`: waits up to
/// `wait` for the first records, then, with a batching `window`, keeps receiving until
/// `batch_size` are in or the window has passed. Long polls take whole seconds, so the last one
/// may end up to a second past the window.
///
/// # Errors
/// If SQS refuses.
pub async fn receive_batch(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    batch_size: usize,
    window: std::time::Duration,
    wait: std::time::Duration,
) -> anyhow::Result<Vec<Message>> {
    let mut messages = receive_up_to(sqs, url, batch_size, wait).await?;
    let window_ends = std::time::Instant::now() + window;
    while !messages.is_empty() && messages.len() < batch_size {
        let left = window_ends.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            break;
        }
        messages.extend(receive_up_to(sqs, url, batch_size - messages.len(), left).await?);
    }
    Ok(messages)
}

/// One `ReceiveMessage` of up to `up_to` (at most 10) with every attribute, long-polling `wait`
/// rounded up to whole seconds (at most 20).
async fn receive_up_to(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    up_to: usize,
    wait: std::time::Duration,
) -> anyhow::Result<Vec<Message>> {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let out = sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(i32::try_from(up_to.min(10)).unwrap_or(10))
        .message_attribute_names("All")
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .wait_time_seconds(i32::try_from(seconds.min(20)).unwrap_or(20))
        .send()
        .await
        .context("receiving")?;
    Ok(out.messages.unwrap_or_default())
}
