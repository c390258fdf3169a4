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
    message::attr,
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
    pub message: String,
    /// Why it is in the DLQ: `discarded` or `exhausted`.
    pub reason: String,
    /// Executions that started.
    pub attempts: u32,
    /// The first failure.
    pub first_failed_at: Option<DateTime<Utc>>,
    /// The last failure.
    pub last_failed_at: Option<DateTime<Utc>>,
    /// The SQS id of the message that failed.
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
