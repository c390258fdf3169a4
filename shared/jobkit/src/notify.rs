//! Error notification: an email when a job goes to the DLQ and on the first occurrence of a new
//! error fingerprint, at most once per fingerprint and window (a conditional write), with
//! secrets and personal data redacted; and an email when a job sets a record aside, once per
//! (job, record id) by the same conditional write ([`crate::set_aside`]).

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};

use crate::{
    enqueue::payload_hash,
    error::{JobError, PortResult},
    keys::{kind, state_key},
    ports::{Email, Mailer, PutOutcome, StateStore},
    redact::redact,
    set_aside::{MAX_SET_ASIDE_EMAILS, SET_ASIDE_REPORTED_FOR},
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

/// The facts a set-aside email tells.
#[derive(Debug)]
pub(crate) struct SetAsideReport<'a> {
    pub job: &'a str,
    pub job_id: &'a str,
    pub message_id: &'a str,
    pub attempt: u32,
    pub record_id: &'a str,
    /// Already redacted.
    pub reason: &'a str,
}

/// What became of a set-aside record's email.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SetAsideNotice {
    /// Emailed now.
    Sent,
    /// Emailed before (by this run or an earlier one): not again.
    AlreadyReported,
    /// Over the job's [`MAX_SET_ASIDE_EMAILS`] in this window: the email saying so went instead.
    FloodReported,
    /// Over the limit, and the email saying so already went: only logged and counted.
    Suppressed,
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

    /// Emails that `report`'s record was set aside, unless it was emailed within
    /// [`SET_ASIDE_REPORTED_FOR`], and at most [`MAX_SET_ASIDE_EMAILS`] records of a job per
    /// window.
    pub(crate) async fn notify_set_aside(
        &self,
        store: &dyn StateStore,
        report: &SetAsideReport<'_>,
        now: DateTime<Utc>,
    ) -> PortResult<SetAsideNotice> {
        let key = state_key(report.job, kind::NOTIFY, &set_aside_fingerprint(report.job, report.record_id));
        let until =
            now + chrono::Duration::from_std(SET_ASIDE_REPORTED_FOR).unwrap_or(chrono::Duration::days(30));
        if let PutOutcome::Taken(_) = store.put_if_vacant(&key, "{}", until, now).await? {
            return Ok(SetAsideNotice::AlreadyReported);
        }
        let sent = self.send_set_aside(store, report, now, until).await;
        if sent.is_err() {
            // Not reported after all: free the record's key, so that setting it aside again
            // (the next run, when the job cannot mark it) can report it.
            if let Err(undo) = store.delete(&key).await {
                tracing::warn!(error = %undo, "could not free the set-aside email's key");
            }
        }
        sent
    }

    /// Sends a new set-aside record's email, or the one saying there are too many.
    async fn send_set_aside(
        &self,
        store: &dyn StateStore,
        report: &SetAsideReport<'_>,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> PortResult<SetAsideNotice> {
        // Counted in fixed windows (the window's number in the key), not a sliding one: a
        // counter whose expiry moved with every increment would never reset under a steady flood.
        let window = i64::try_from(self.config.window.as_secs()).unwrap_or(3600).max(1);
        let slot = now.timestamp().div_euclid(window);
        let counter = state_key(report.job, kind::NOTIFY, &format!("set-aside-emails:{slot}"));
        let slot_ends = DateTime::from_timestamp((slot + 1) * window, 0).unwrap_or(until);
        let (email, notice) = match store.increment(&counter, slot_ends, now).await? {
            n if n <= MAX_SET_ASIDE_EMAILS => (self.set_aside_email(report, now), SetAsideNotice::Sent),
            n if n == MAX_SET_ASIDE_EMAILS + 1 => {
                (self.flood_email(report, now), SetAsideNotice::FloodReported)
            }
            _ => return Ok(SetAsideNotice::Suppressed),
        };
        self.mailer.send(&email).await?;
        Ok(notice)
    }

    fn set_aside_email(&self, r: &SetAsideReport<'_>, now: DateTime<Utc>) -> Email {
        let subject = format!("[jobs] {} set a record aside: {}", r.job, r.record_id);
        let days = SET_ASIDE_REPORTED_FOR.as_secs() / 86_400;
        let text = format!(
            "Job:        {}\nJob id:     {}\nMessage id: {}\nAttempt:    {}\nRecord:     {}\nReason:     {}\nAt:         {}\n\n\
             The job could not process this record, set it aside and went on with the others: the\n\
             run is not failed for it. It is counted in the job's set_aside metric, and this email\n\
             is sent once: the same record set aside again within {days} days is not emailed again.\n",
            r.job,
            r.job_id,
            r.message_id,
            r.attempt,
            r.record_id,
            r.reason,
            now.to_rfc3339(),
        );
        Email { from: self.config.from.clone(), to: self.config.to.clone(), subject, text }
    }

    fn flood_email(&self, r: &SetAsideReport<'_>, now: DateTime<Utc>) -> Email {
        let subject = format!("[jobs] {} set more than {MAX_SET_ASIDE_EMAILS} records aside", r.job);
        let minutes = self.config.window.as_secs() / 60;
        let text = format!(
            "Job:        {}\nJob id:     {}\nMessage id: {}\nAt:         {}\n\n\
             The job set more than {MAX_SET_ASIDE_EMAILS} records aside in one {minutes}-minute window. The first\n\
             {MAX_SET_ASIDE_EMAILS} were emailed one by one; the others are not, then or later: each is logged at\n\
             warn (\"record set aside\", with its record_id) and counted in the job's set_aside\n\
             metric. So many at once is more likely a fault of the code or of the data store than\n\
             of the records.\n\n\
             The first record over the limit: {}\nReason: {}\n",
            r.job,
            r.job_id,
            r.message_id,
            now.to_rfc3339(),
            r.record_id,
            r.reason,
        );
        Email { from: self.config.from.clone(), to: self.config.to.clone(), subject, text }
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

/// One fingerprint per (job, record id): a record is reported once whatever the reason.
fn set_aside_fingerprint(job: &str, record_id: &str) -> String {
    format!("set-aside:{}", payload_hash(&format!("{job}\nset_aside\n{record_id}")))
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
