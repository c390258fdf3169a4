//! Error notification: an email when a job goes to the DLQ and on the first occurrence of a new
//! error fingerprint, at most once per fingerprint and window (a conditional write), with
//! secrets and personal data redacted.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};

use crate::{
    enqueue::payload_hash,
    error::{JobError, PortResult},
    keys::{kind, state_key},
    ports::{Email, Mailer, PutOutcome, StateStore},
    redact::redact,
};

/// Who gets error emails, and how often.
#[derive(Debug, Clone)]
pub struct NotifyConfig {
    /// The SES identity that sends.
    pub from: String,
    /// The operators.
    pub to: Vec<String>,
    /// At most one email per fingerprint in this window. Defaults to one hour.
    pub window: Duration,
}

impl NotifyConfig {
    /// From `JOBKIT_ALERT_FROM` and `JOBKIT_ALERT_TO` (comma-separated); `None` when unset.
    pub fn from_env() -> Option<Self> {
        let from = std::env::var("JOBKIT_ALERT_FROM").ok().filter(|v| !v.is_empty())?;
        let to: Vec<String> = std::env::var("JOBKIT_ALERT_TO")
            .ok()?
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        (!to.is_empty()).then_some(Self { from, to, window: Duration::from_secs(3600) })
    }
}

/// What happened to the failed record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FailureEvent {
    Retrying,
    DeadLettered,
}

/// The facts an error email tells.
#[derive(Debug)]
pub(crate) struct FailureReport<'a> {
    pub job: &'a str,
    pub job_id: &'a str,
    pub message_id: &'a str,
    pub attempt: u32,
    pub error: &'a JobError,
    pub event: FailureEvent,
    pub args: &'a str,
}

/// Sends rate-limited error emails.
#[derive(Debug, Clone)]
pub struct Notifier {
    mailer: Arc<dyn Mailer>,
    config: NotifyConfig,
}

impl Notifier {
    /// A notifier sending through `mailer`.
    pub fn new(mailer: Arc<dyn Mailer>, config: NotifyConfig) -> Self {
        Self { mailer, config }
    }

    /// Sends the email for `report` unless this fingerprint was mailed inside the window.
    /// Returns whether it sent.
    pub(crate) async fn notify(
        &self,
        store: &dyn StateStore,
        report: &FailureReport<'_>,
        now: DateTime<Utc>,
    ) -> PortResult<bool> {
        let key = state_key(report.job, kind::NOTIFY, &fingerprint(report));
        let until =
            now + chrono::Duration::from_std(self.config.window).unwrap_or(chrono::Duration::hours(1));
        if let PutOutcome::Taken(_) = store.put_if_vacant(&key, "{}", until, now).await? {
            return Ok(false);
        }
        self.mailer.send(&self.email(report, now)).await?;
        Ok(true)
    }

    fn email(&self, r: &FailureReport<'_>, now: DateTime<Utc>) -> Email {
        let what = match r.event {
            FailureEvent::Retrying => "failed (new error, retrying)",
            FailureEvent::DeadLettered => "moved to its DLQ",
        };
        let subject = format!("[jobs] {} {what}: {}", r.job, r.error.kind());
        let text = format!(
            "Job:        {}\nJob id:     {}\nMessage id: {}\nAttempt:    {}\nError:      {}\nMessage:    {}\nAt:         {}\n\nArguments:\n{}\n",
            r.job,
            r.job_id,
            r.message_id,
            r.attempt,
            r.error.kind(),
            redact(r.error.message()),
            now.to_rfc3339(),
            redact(r.args),
        );
        Email { from: self.config.from.clone(), to: self.config.to.clone(), subject, text }
    }
}

/// Same job, same kind, same message once digits are blanked (ids and counts vary), same event.
fn fingerprint(r: &FailureReport<'_>) -> String {
    let shape: String = r.error.message().chars().map(|c| if c.is_ascii_digit() { '#' } else { c }).collect();
    let event = match r.event {
        FailureEvent::Retrying => "retry",
        FailureEvent::DeadLettered => "dlq",
    };
    payload_hash(&format!("{}\n{}\n{}\n{event}", r.job, r.error.kind(), shape))
}
