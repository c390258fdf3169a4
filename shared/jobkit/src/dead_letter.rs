//! What a DLQ copy says about why it is there, and the last error the runner saw per job id.
//!
//! The runner folds its account of a failure into one JSON attribute, `error`
//! ([`DeadLetterError`]), so that a copy keeps room among SQS's 10 attributes for the
//! original's `idempotency_key` and `continuation` (a redrive needs both). A message SQS moved
//! by `maxReceiveCount` (a crash loop, a timeout) carries no `error`; for those, the last error
//! the runner recorded for the job id ([`last_error`]) is what an operator can still learn.
//!
//! Invariant: reading never fails on what another version wrote: copies made before the
//! `error` attribute (one attribute per field) read the same.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{
    error::PortResult,
    keys::{kind, state_key},
    limits::{MAX_MESSAGE_ATTRIBUTES, MAX_MESSAGE_BYTES, message_size},
    message::{ContinuationRef, OutgoingMessage, ReceivedMessage, attr},
    ports::StateStore,
};

/// How long the last error of a job id is kept: as long as a DLQ keeps its messages (14 days).
const LAST_ERROR_TTL: chrono::Duration = chrono::Duration::days(14);

/// The runner's account of a failure, on a DLQ copy as the JSON attribute `error`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetterError {
    /// The error kind (`throttled`, `invalid_arguments`, ...).
    pub kind: String,
    /// The error's message, redacted and cut to fit.
    #[serde(default)]
    pub message: String,
    /// Why it is in the DLQ: `discarded` or `exhausted`.
    pub reason: String,
    /// Executions that started.
    pub attempts: u32,
    /// The first failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_failed_at: Option<DateTime<Utc>>,
    /// The last failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failed_at: Option<DateTime<Utc>>,
    /// The SQS id of the message that failed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub original_message_id: String,
    /// The original's attributes that did not fit on the copy (SQS takes 10).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dropped_attributes: Vec<String>,
}

impl DeadLetterError {
    /// The error a DLQ copy's attributes record: the `error` attribute, or the one-attribute-
    /// per-field form of older copies; `None` when the copy records none (SQS moved it).
    pub fn read(attributes: &BTreeMap<String, String>) -> Option<Self> {
        if let Some(raw) = attributes.get(attr::ERROR) {
            return Some(serde_json::from_str(raw).unwrap_or_else(|e| Self {
                kind: "unknown".to_owned(),
                message: format!("the error attribute could not be read ({e}): {raw}"),
                reason: String::new(),
                attempts: 0,
                first_failed_at: None,
                last_failed_at: None,
                original_message_id: String::new(),
                dropped_attributes: Vec::new(),
            }));
        }
        let kind = attributes.get(attr::ERROR_KIND)?;
        let time = |name: &str| {
            attributes
                .get(name)
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Utc))
        };
        let text = |name: &str| attributes.get(name).cloned().unwrap_or_default();
        Some(Self {
            kind: kind.clone(),
            message: text(attr::ERROR_MESSAGE),
            reason: text(attr::DLQ_REASON),
            attempts: attributes.get(attr::ATTEMPTS).and_then(|a| a.parse().ok()).unwrap_or(0),
            first_failed_at: time(attr::FIRST_FAILED_AT),
            last_failed_at: time(attr::LAST_FAILED_AT),
            original_message_id: text(attr::ORIGINAL_MESSAGE_ID),
            dropped_attributes: Vec::new(),
        })
    }

    fn is_minimal(&self) -> bool {
        self.first_failed_at.is_none()
            && self.last_failed_at.is_none()
            && self.original_message_id.is_empty()
            && self.dropped_attributes.is_empty()
    }

    /// The value of the `error` attribute.
    pub fn to_attribute(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The last error the runner saw for a job id: kept for messages that reach the DLQ without
/// the runner's account (SQS moved them after a crash loop or timeouts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastError {
    /// The error kind.
    pub kind: String,
    /// The error's message, redacted.
    pub message: String,
    /// The attempt that failed.
    pub attempt: u32,
    /// When.
    pub at: DateTime<Utc>,
}

/// The last error recorded for `job`'s job id `job_id`, if one is still kept.
///
/// # Errors
/// A store failure.
pub async fn last_error(
    store: &dyn StateStore,
    job: &str,
    job_id: &str,
    now: DateTime<Utc>,
) -> PortResult<Option<LastError>> {
    let record = store.get(&state_key(job, kind::LAST_ERROR, job_id), now).await?;
    Ok(record.and_then(|r| serde_json::from_str(&r.value).ok()))
}

/// Records `error` as the last error of `job`'s job id `job_id`, kept 14 days (as long as a DLQ
/// keeps its messages), where [`last_error`] reads it. Public so that tools and tests can seed
/// the record a runner leaves.
///
/// # Errors
/// A store failure.
pub async fn save_last_error(
    store: &dyn StateStore,
    job: &str,
    job_id: &str,
    error: &LastError,
    now: DateTime<Utc>,
) -> PortResult {
    let value = serde_json::to_string(error).unwrap_or_default();
    store.put(&state_key(job, kind::LAST_ERROR, job_id), &value, now + LAST_ERROR_TTL).await
}

/// Attributes of a message that say why an earlier copy failed: never carried on.
const ACCOUNTS: [&str; 8] = [
    attr::ERROR,
    attr::ERROR_KIND,
    attr::ERROR_MESSAGE,
    attr::ATTEMPTS,
    attr::FIRST_FAILED_AT,
    attr::LAST_FAILED_AT,
    attr::ORIGINAL_MESSAGE_ID,
    attr::DLQ_REASON,
];

/// The original's attributes a redrive needs most, after the job, its id and its run.
const KEPT_FIRST: [&str; 4] =
    [attr::IDEMPOTENCY_KEY, attr::SCHEMA_VERSION, attr::ENQUEUED_AT, attr::TRACEPARENT];

/// The DLQ copy of `message`: its body whole; `job`, `job_id`, the run reference (so that a
/// redrive re-enters the run, from its checkpoint) and the account of the failure in `error`;
/// then as many of the original's attributes as fit. It always fits SQS's 10 attributes and
/// 1 MiB: the error message is cut first, then the original's least needed attributes go, then
/// the account keeps only kind, reason and attempts, and last it goes too (the job id's last
/// error stays in the store).
pub(crate) fn copy_for_dlq(
    message: &ReceivedMessage,
    job: &str,
    job_id: &str,
    run: Option<&str>,
    mut account: DeadLetterError,
) -> OutgoingMessage {
    let mut head: Vec<(String, String)> = vec![(attr::JOB.to_owned(), job.to_owned())];
    head.push((attr::JOB_ID.to_owned(), job_id.to_owned()));
    if let Some(run) = run {
        head.push((attr::CONTINUATION.to_owned(), ContinuationRef { run: run.to_owned() }.to_attribute()));
    }
    let carried = |name: &str| {
        !ACCOUNTS.contains(&name)
            && ![attr::JOB, attr::JOB_ID, attr::CONTINUATION, attr::NOT_BEFORE].contains(&name)
    };
    // The original's, most needed first: the idempotency key and the contract's own, then the
    // producer's in name order.
    let mut tail: Vec<(String, String)> = KEPT_FIRST
        .iter()
        .filter_map(|name| message.attributes.get(*name).map(|v| ((*name).to_owned(), v.clone())))
        .collect();
    tail.extend(
        message
            .attributes
            .iter()
            .filter(|(name, _)| carried(name) && !KEPT_FIRST.contains(&name.as_str()))
            .map(|(name, value)| (name.clone(), value.clone())),
    );
    let room = MAX_MESSAGE_ATTRIBUTES.saturating_sub(head.len() + 1);
    if tail.len() > room {
        account.dropped_attributes.extend(tail.drain(room..).map(|(name, _)| name));
    }
    let mut with_account = true;
    loop {
        let mut attributes: std::collections::BTreeMap<String, String> =
            head.iter().chain(tail.iter()).cloned().collect();
        if with_account {
            attributes.insert(attr::ERROR.to_owned(), account.to_attribute());
        }
        attributes.retain(|_, v| !v.is_empty());
        let size = message_size(&message.body, &attributes);
        // The body alone over SQS's limit cannot happen (SQS delivered it): send it as it is.
        let nothing_left = !with_account && head.is_empty() && tail.is_empty();
        if size <= MAX_MESSAGE_BYTES || nothing_left {
            return OutgoingMessage {
                body: message.body.clone(),
                attributes,
                delay_seconds: 0,
                group_id: message.group_id.clone(),
                // FIFO DLQs need a deduplication id; the original id makes a repeated hand-off a no-op.
                dedup_id: message.group_id.as_ref().map(|_| message.message_id.clone()),
            };
        }
        let excess = size - MAX_MESSAGE_BYTES;
        if with_account && !account.message.is_empty() {
            let keep = account.message.len().saturating_sub(excess + 3);
            account.message = cut(&account.message, keep);
        } else if let Some((name, _)) = tail.pop() {
            account.dropped_attributes.push(name);
        } else if with_account && !account.is_minimal() {
            account.first_failed_at = None;
            account.last_failed_at = None;
            account.original_message_id.clear();
            account.dropped_attributes.clear();
        } else if with_account {
            with_account = false;
        } else {
            head.pop();
        }
    }
}

/// `text` cut to at most `bytes` bytes at a character boundary, marked as cut.
fn cut(text: &str, bytes: usize) -> String {
    if bytes == 0 {
        return String::new();
    }
    let mut end = bytes.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_attribute_and_the_older_form_read_the_same() {
        let at = DateTime::parse_from_rfc3339("2026-12-01T10:00:00Z").unwrap().with_timezone(&Utc);
        let error = DeadLetterError {
            kind: "throttled".into(),
            message: "429".into(),
            reason: "exhausted".into(),
            attempts: 3,
            first_failed_at: Some(at),
            last_failed_at: Some(at),
            original_message_id: "m-1".into(),
            dropped_attributes: Vec::new(),
        };
        let folded = BTreeMap::from([(attr::ERROR.to_owned(), error.to_attribute())]);
        assert_eq!(DeadLetterError::read(&folded), Some(error.clone()));
        let older = BTreeMap::from([
            (attr::ERROR_KIND.to_owned(), "throttled".to_owned()),
            (attr::ERROR_MESSAGE.to_owned(), "429".to_owned()),
            (attr::DLQ_REASON.to_owned(), "exhausted".to_owned()),
            (attr::ATTEMPTS.to_owned(), "3".to_owned()),
            (attr::FIRST_FAILED_AT.to_owned(), at.to_rfc3339()),
            (attr::LAST_FAILED_AT.to_owned(), at.to_rfc3339()),
            (attr::ORIGINAL_MESSAGE_ID.to_owned(), "m-1".to_owned()),
        ]);
        assert_eq!(DeadLetterError::read(&older), Some(error));
        assert_eq!(DeadLetterError::read(&BTreeMap::new()), None, "moved by SQS: no account");
    }
}
