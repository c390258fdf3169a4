//! [`Queue`] on Amazon SQS. Queue ids are queue URLs.

use std::{collections::HashMap, time::Duration};

use async_trait::async_trait;
use aws_sdk_sqs::{
    Client,
    types::{
        MessageAttributeValue, MessageSystemAttributeName, QueueAttributeName, SendMessageBatchRequestEntry,
    },
};
use chrono::DateTime;

use super::errors::{build_error, port_error};
use crate::{
    error::{PortError, PortResult},
    message::{OutgoingMessage, ReceivedMessage},
    ports::Queue,
};

/// SQS's batch limit for `SendMessageBatch` and `ReceiveMessage`.
const BATCH: usize = 10;
/// SQS's longest long poll.
const MAX_WAIT_SECONDS: u64 = 20;

/// Approximate counts of a queue (`GetQueueAttributes`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SqsCounts {
    /// `ApproximateNumberOfMessages`.
    pub visible: u64,
    /// `ApproximateNumberOfMessagesNotVisible`.
    pub in_flight: u64,
    /// `ApproximateNumberOfMessagesDelayed`.
    pub delayed: u64,
}

/// [`Queue`] on SQS through the real SDK client.
#[derive(Debug, Clone)]
pub struct SqsQueue {
    client: Client,
}

fn attribute_values(message: &OutgoingMessage) -> PortResult<HashMap<String, MessageAttributeValue>> {
    message
        .attributes
        .iter()
        .map(|(name, value)| {
            let value = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
                .map_err(|e| build_error("message attribute", e))?;
            Ok((name.clone(), value))
        })
        .collect()
}

fn delay(seconds: u32) -> i32 {
    i32::try_from(seconds).unwrap_or(i32::MAX)
}

impl SqsQueue {
    /// A queue port on `client`.
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    /// The URL of the queue named `name`.
    ///
    /// # Errors
    /// `NotFound` when there is no such queue.
    pub async fn queue_url(&self, name: &str) -> PortResult<String> {
        let out = self
            .client
            .get_queue_url()
            .queue_name(name)
            .send()
            .await
            .map_err(|e| port_error("GetQueueUrl", e))?;
        out.queue_url()
            .map(str::to_owned)
            .ok_or_else(|| PortError::NotFound(format!("queue {name} has no URL")))
    }

    /// Approximate counts of the queue at `url`.
    ///
    /// # Errors
    /// A port error from `GetQueueAttributes`.
    pub async fn approximate_counts(&self, url: &str) -> PortResult<SqsCounts> {
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
            .send()
            .await
            .map_err(|e| port_error("GetQueueAttributes", e))?;
        let get = |name: QueueAttributeName| {
            out.attributes().and_then(|a| a.get(&name)).and_then(|v| v.parse().ok()).unwrap_or(0)
        };
        Ok(SqsCounts {
            visible: get(QueueAttributeName::ApproximateNumberOfMessages),
            in_flight: get(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
            delayed: get(QueueAttributeName::ApproximateNumberOfMessagesDelayed),
        })
    }

    /// Deletes every message of the queue at `url` (`PurgeQueue`; SQS allows one a minute).
    ///
    /// # Errors
    /// A port error from `PurgeQueue`.
    pub async fn purge(&self, url: &str) -> PortResult {
        self.client.purge_queue().queue_url(url).send().await.map_err(|e| port_error("PurgeQueue", e))?;
        Ok(())
    }

    async fn send_chunk(
        &self,
        queue: &str,
        chunk: &[OutgoingMessage],
    ) -> PortResult<Vec<PortResult<String>>> {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(i, m)| {
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(&m.body)
                    .set_message_attributes(Some(attribute_values(m)?))
                    .delay_seconds(delay(m.delay_seconds))
                    .set_message_group_id(m.group_id.clone())
                    .set_message_deduplication_id(m.dedup_id.clone())
                    .build()
                    .map_err(|e| build_error("SendMessageBatch entry", e))
            })
            .collect::<PortResult<Vec<_>>>()?;
        let out = self
            .client
            .send_message_batch()
            .queue_url(queue)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| port_error("SendMessageBatch", e))?;
        let mut results: Vec<PortResult<String>> = (0..chunk.len())
            .map(|_| Err(PortError::Unavailable("not answered by SendMessageBatch".into())))
            .collect();
        for ok in out.successful() {
            if let Some(slot) = ok.id().parse::<usize>().ok().and_then(|i| results.get_mut(i)) {
                *slot = Ok(ok.message_id().to_owned());
            }
        }
        for failed in out.failed() {
            if let Some(slot) = failed.id().parse::<usize>().ok().and_then(|i| results.get_mut(i)) {
                let text = format!("{}: {}", failed.code(), failed.message().unwrap_or_default());
                *slot = Err(if failed.sender_fault() {
                    PortError::Invalid(text)
                } else {
                    PortError::Unavailable(text)
                });
            }
        }
        Ok(results)
    }
}

fn received(m: &aws_sdk_sqs::types::Message) -> ReceivedMessage {
    let system = |name: MessageSystemAttributeName| m.attributes().and_then(|a| a.get(&name)).cloned();
    let mut attributes = std::collections::BTreeMap::new();
    let mut unreadable_attributes = Vec::new();
    for (name, value) in m.message_attributes().into_iter().flatten() {
        let text = value
            .string_value()
            .map(str::to_owned)
            .or_else(|| value.binary_value().and_then(|b| String::from_utf8(b.as_ref().to_vec()).ok()));
        match text {
            Some(text) => {
                attributes.insert(name.clone(), text);
            }
            None if value.binary_value().is_some() => unreadable_attributes.push(name.clone()),
            None => {}
        }
    }
    ReceivedMessage {
        unreadable_attributes,
        message_id: m.message_id().unwrap_or_default().to_owned(),
        receipt_handle: m.receipt_handle().unwrap_or_default().to_owned(),
        body: m.body().unwrap_or_default().to_owned(),
        attributes,
        receive_count: system(MessageSystemAttributeName::ApproximateReceiveCount)
            .and_then(|c| c.parse().ok())
            .unwrap_or(1),
        sent_at: system(MessageSystemAttributeName::SentTimestamp)
            .and_then(|t| t.parse::<i64>().ok())
            .and_then(DateTime::from_timestamp_millis),
        group_id: system(MessageSystemAttributeName::MessageGroupId),
        aws_trace_header: system(MessageSystemAttributeName::AwsTraceHeader),
    }
}

#[async_trait]
impl Queue for SqsQueue {
    async fn send(&self, queue: &str, message: OutgoingMessage) -> PortResult<String> {
        let out = self
            .client
            .send_message()
            .queue_url(queue)
            .message_body(&message.body)
            .set_message_attributes(Some(attribute_values(&message)?))
            .delay_seconds(delay(message.delay_seconds))
            .set_message_group_id(message.group_id)
            .set_message_deduplication_id(message.dedup_id)
            .send()
            .await
            .map_err(|e| port_error("SendMessage", e))?;
        Ok(out.message_id().unwrap_or_default().to_owned())
    }

    async fn send_batch(
        &self,
        queue: &str,
        messages: Vec<OutgoingMessage>,
    ) -> PortResult<Vec<PortResult<String>>> {
        let mut results = Vec::with_capacity(messages.len());
        for chunk in messages.chunks(BATCH) {
            results.extend(self.send_chunk(queue, chunk).await?);
        }
        Ok(results)
    }

    async fn receive(&self, queue: &str, max: usize, wait: Duration) -> PortResult<Vec<ReceivedMessage>> {
        let out = self
            .client
            .receive_message()
            .queue_url(queue)
            .max_number_of_messages(i32::try_from(max.clamp(1, BATCH)).unwrap_or(10))
            .wait_time_seconds(i32::try_from(wait.as_secs().min(MAX_WAIT_SECONDS)).unwrap_or(0))
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .map_err(|e| port_error("ReceiveMessage", e))?;
        Ok(out.messages().iter().map(received).collect())
    }

    async fn delete(&self, queue: &str, receipt_handle: &str) -> PortResult {
        self.client
            .delete_message()
            .queue_url(queue)
            .receipt_handle(receipt_handle)
            .send()
            .await
            .map_err(|e| port_error("DeleteMessage", e))?;
        Ok(())
    }

    async fn change_visibility(&self, queue: &str, receipt_handle: &str, timeout: Duration) -> PortResult {
        // Rounded up: a retry must never come back before its wait.
        let secs = timeout.as_secs() + u64::from(timeout.subsec_nanos() > 0);
        let seconds = i32::try_from(secs).unwrap_or(i32::MAX);
        self.client
            .change_message_visibility()
            .queue_url(queue)
            .receipt_handle(receipt_handle)
            .visibility_timeout(seconds)
            .send()
            .await
            .map_err(|e| port_error("ChangeMessageVisibility", e))?;
        Ok(())
    }
}
