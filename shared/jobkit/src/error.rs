//! What a failure means: the job error the policy classifies, and the integration error of
//! outside systems with its kind, severity and recoverability.
//!
//! Invariant: every failure a job returns carries an [`ErrorKind`] (what happened) and a
//! [`Disposition`] (whether retrying can help), so the retry policy never guesses from text.

use std::{borrow::Cow, collections::BTreeMap, fmt};

/// A short, stable name for a class of failure (`"timeout"`, `"throttled"`, `"not_found"`).
///
/// Retry rules match on it, DLQ messages carry it, and operators filter redrives by it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ErrorKind(Cow<'static, str>);

impl ErrorKind {
    /// The arguments did not decode (not JSON, wrong types, unknown or missing fields).
    pub const INVALID_ARGUMENTS: ErrorKind = ErrorKind::new_static("invalid_arguments");
    /// The job ran longer than its timeout or the Lambda deadline allowed.
    pub const TIMEOUT: ErrorKind = ErrorKind::new_static("timeout");
    /// The job panicked.
    pub const PANIC: ErrorKind = ErrorKind::new_static("panic");
    /// An idempotency key was reused with other arguments.
    pub const IDEMPOTENCY_KEY_REUSED: ErrorKind = ErrorKind::new_static("idempotency_key_reused");
    /// An outside system asked us to slow down.
    pub const THROTTLED: ErrorKind = ErrorKind::new_static("throttled");
    /// An outside system was unreachable or answered with a server error.
    pub const UNAVAILABLE: ErrorKind = ErrorKind::new_static("unavailable");
    /// Credentials were refused.
    pub const UNAUTHORIZED: ErrorKind = ErrorKind::new_static("unauthorized");
    /// What the job works on does not exist.
    pub const NOT_FOUND: ErrorKind = ErrorKind::new_static("not_found");
    /// An outside system (or one of jobkit's ports) refused the request as invalid (400/422,
    /// GraphQL user errors, a limit of SQS or DynamoDB).
    pub const INVALID_INPUT: ErrorKind = ErrorKind::new_static("invalid_input");
    /// A stored record could not be read (a row without a required field, bad JSON).
    pub const CORRUPT_RECORD: ErrorKind = ErrorKind::new_static("corrupt_record");
    /// Someone else changed it first (409).
    pub const CONFLICT: ErrorKind = ErrorKind::new_static("conflict");
    /// An outside system's answer could not be understood (or was a redirect, never followed).
    pub const UNEXPECTED_RESPONSE: ErrorKind = ErrorKind::new_static("unexpected_response");
    /// The message names another job (its `job` attribute) than the one whose queue it came
    /// from: a misrouted enqueue.
    pub const WRONG_QUEUE: ErrorKind = ErrorKind::new_static("wrong_queue");
    /// Anything not classified further.
    pub const UNKNOWN: ErrorKind = ErrorKind::new_static("unknown");

    /// A kind known at compile time.
    pub const fn new_static(name: &'static str) -> Self {
        Self(Cow::Borrowed(name))
    }

    /// A kind named at run time (for example read back from a DLQ attribute).
    pub fn new(name: impl Into<String>) -> Self {
        Self(Cow::Owned(name.into()))
    }

    /// The kind's name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether retrying can help, as the code that failed knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// A later try may succeed (throttling, timeouts, 5xx).
    Retryable,
    /// No try will succeed (bad input, unknown record, revoked token): discard to the DLQ.
    Permanent,
}

/// The error a job's `perform` returns.
///
/// Build it with [`JobError::retryable`] / [`JobError::permanent`], from an
/// [`IntegrationError`], or with the [`ResultExt`] helpers at the call that failed.
#[derive(Debug, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct JobError {
    kind: ErrorKind,
    message: String,
    disposition: Disposition,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl JobError {
    /// A failure a later attempt may get past.
    pub fn retryable(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self::new(kind, message, Disposition::Retryable)
    }

    /// A failure no attempt will get past.
    pub fn permanent(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self::new(kind, message, Disposition::Permanent)
    }

    /// A failure with an explicit disposition.
    pub fn new(kind: ErrorKind, message: impl Into<String>, disposition: Disposition) -> Self {
        Self { kind, message: message.into(), disposition, source: None }
    }

    /// Keeps the underlying error for logs.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// What happened.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// The human-readable message (not yet redacted).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether retrying can help.
    pub fn disposition(&self) -> Disposition {
        self.disposition
    }

    /// True when a later attempt may succeed.
    pub fn is_retryable(&self) -> bool {
        self.disposition == Disposition::Retryable
    }
}

/// Says at the call site what a failure means: `client.get(..).await.retryable(ErrorKind::UNAVAILABLE)?`.
pub trait ResultExt<T> {
    /// Maps the error to a retryable [`JobError`] of `kind`.
    ///
    /// # Errors
    /// Returns the mapped error when `self` is an error.
    fn retryable(self, kind: ErrorKind) -> Result<T, JobError>;
    /// Maps the error to a permanent [`JobError`] of `kind`.
    ///
    /// # Errors
    /// Returns the mapped error when `self` is an error.
    fn permanent(self, kind: ErrorKind) -> Result<T, JobError>;
}

impl<T, E: std::error::Error + Send + Sync + 'static> ResultExt<T> for Result<T, E> {
    fn retryable(self, kind: ErrorKind) -> Result<T, JobError> {
        self.map_err(|e| JobError::retryable(kind, e.to_string()).with_source(e))
    }

    fn permanent(self, kind: ErrorKind) -> Result<T, JobError> {
        self.map_err(|e| JobError::permanent(kind, e.to_string()).with_source(e))
    }
}

/// How bad an integration failure is, for alerting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Expected now and then (a throttle).
    Low,
    /// Worth a look if it repeats.
    Medium,
    /// Needs an operator (revoked credentials).
    High,
    /// Data at risk.
    Critical,
}

/// The classes of failure an outside system (Shopify, the POS, SNS, AWS) produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum IntegrationErrorKind {
    /// 429 or a cost-based throttle.
    RateLimited,
    /// No answer in time.
    Timeout,
    /// Connection refused, 5xx.
    Unavailable,
    /// 401/403: the token is invalid or revoked.
    Unauthorized,
    /// 404: the thing is gone.
    NotFound,
    /// 400/422: the request itself is wrong.
    InvalidInput,
    /// 409: someone else changed it first.
    Conflict,
    /// The answer could not be understood.
    Unexpected,
}

impl IntegrationErrorKind {
    /// Whether this class of failure can pass by itself.
    pub fn recoverable(self) -> bool {
        matches!(self, Self::RateLimited | Self::Timeout | Self::Unavailable | Self::Conflict)
    }

    /// The default severity of this class.
    pub fn severity(self) -> Severity {
        match self {
            Self::RateLimited | Self::Conflict => Severity::Low,
            Self::Timeout | Self::Unavailable | Self::NotFound => Severity::Medium,
            Self::InvalidInput | Self::Unexpected => Severity::Medium,
            Self::Unauthorized => Severity::High,
        }
    }

    /// The job error kind this class maps to.
    pub fn error_kind(self) -> ErrorKind {
        match self {
            Self::RateLimited => ErrorKind::THROTTLED,
            Self::Timeout => ErrorKind::TIMEOUT,
            Self::Unavailable => ErrorKind::UNAVAILABLE,
            Self::Unauthorized => ErrorKind::UNAUTHORIZED,
            Self::NotFound => ErrorKind::NOT_FOUND,
            Self::InvalidInput => ErrorKind::INVALID_INPUT,
            Self::Conflict => ErrorKind::CONFLICT,
            Self::Unexpected => ErrorKind::UNEXPECTED_RESPONSE,
        }
    }
}

/// A failure of an outside system, classified: kind, severity, recoverable, source, details.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{source_system} {kind:?}: {message}")]
pub struct IntegrationError {
    /// What class of failure.
    pub kind: IntegrationErrorKind,
    /// How bad it is.
    pub severity: Severity,
    /// Whether it can pass by itself (drives the retry disposition).
    pub recoverable: bool,
    /// Which system failed (`"shopify"`, `"square"`, `"sns"`).
    pub source_system: String,
    /// What it said.
    pub message: String,
    /// Extra facts (status code, request id, retry-after).
    pub details: BTreeMap<String, String>,
}

impl IntegrationError {
    /// A failure of `source_system` with the kind's default severity and recoverability.
    pub fn new(
        source_system: impl Into<String>,
        kind: IntegrationErrorKind,
        message: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            severity: kind.severity(),
            recoverable: kind.recoverable(),
            source_system: source_system.into(),
            message: message.into(),
            details: BTreeMap::new(),
        }
    }

    /// Adds a detail.
    pub fn with_detail(mut self, key: impl Into<String>, value: impl ToString) -> Self {
        self.details.insert(key.into(), value.to_string());
        self
    }
}

impl From<IntegrationError> for JobError {
    fn from(e: IntegrationError) -> Self {
        let disposition = if e.recoverable { Disposition::Retryable } else { Disposition::Permanent };
        JobError::new(e.kind.error_kind(), e.to_string(), disposition).with_source(e)
    }
}

/// A failure of one of jobkit's ports (queue, store, mailer), whatever the adapter.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PortError {
    /// The service asked us to slow down; try again later.
    #[error("throttled: {0}")]
    Throttled(String),
    /// The service could not be reached or failed; try again later.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The queue, table or identity does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The request was refused as invalid.
    #[error("invalid request: {0}")]
    Invalid(String),
}

impl PortError {
    /// True when a later call may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Throttled(_) | Self::Unavailable(_))
    }
}

impl From<PortError> for JobError {
    fn from(e: PortError) -> Self {
        let kind = match &e {
            PortError::Throttled(_) => ErrorKind::THROTTLED,
            PortError::Unavailable(_) => ErrorKind::UNAVAILABLE,
            PortError::NotFound(_) => ErrorKind::NOT_FOUND,
            PortError::Invalid(_) => ErrorKind::INVALID_INPUT,
        };
        let disposition = if e.is_transient() { Disposition::Retryable } else { Disposition::Permanent };
        JobError::new(kind, e.to_string(), disposition).with_source(e)
    }
}

/// The result of a port call.
pub type PortResult<T = ()> = Result<T, PortError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integration_errors_map_to_dispositions() {
        let throttled: JobError =
            IntegrationError::new("shopify", IntegrationErrorKind::RateLimited, "429").into();
        assert!(throttled.is_retryable());
        assert_eq!(throttled.kind(), &ErrorKind::THROTTLED);

        let revoked: JobError =
            IntegrationError::new("shopify", IntegrationErrorKind::Unauthorized, "401").into();
        assert!(!revoked.is_retryable());
        assert_eq!(revoked.kind(), &ErrorKind::UNAUTHORIZED);
    }

    #[test]
    fn result_ext_names_the_meaning_at_the_call() {
        let r: Result<(), std::io::Error> = Err(std::io::Error::other("boom"));
        let e = r.permanent(ErrorKind::NOT_FOUND).unwrap_err();
        assert_eq!(e.disposition(), Disposition::Permanent);
        assert_eq!(e.message(), "boom");
    }
}
