//! The retry policy: ActiveJob's `retry_on` / `discard_on` with their waits, on SQS.
//!
//! Invariants: a wait never exceeds SQS's 12-hour visibility limit; attempts count executions
//! that started (attempt 1 is the first run); rules are tried in the order they were declared,
//! and the default applies only when no rule names the error's kind.

use std::{sync::Arc, time::Duration};

use crate::error::{ErrorKind, JobError};

/// The longest wait SQS can express (`ChangeMessageVisibility` caps at 12 hours).
pub const MAX_WAIT: Duration = Duration::from_secs(12 * 60 * 60);

/// How long to wait before the next attempt.
#[derive(Clone)]
pub enum Wait {
    /// The same wait every time (ActiveJob's `wait: 30.seconds`).
    Fixed(Duration),
    /// ActiveJob's `:polynomially_longer`: executions^4 + 2 s, plus 0-15 % jitter.
    Polynomial,
    /// Any function of the attempt that just failed (1-based).
    Custom(Arc<dyn Fn(u32) -> Duration + Send + Sync>),
}

impl std::fmt::Debug for Wait {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Fixed(d) => write!(f, "Fixed({d:?})"),
            Self::Polynomial => f.write_str("Polynomial"),
            Self::Custom(_) => f.write_str("Custom(..)"),
        }
    }
}

/// ActiveJob's jitter for `:polynomially_longer`: up to 15 % of the base delay.
const POLYNOMIAL_JITTER: f64 = 0.15;

impl Wait {
    /// The wait after `attempt` failed; `jitter` in `0.0..=1.0` picks within the jitter range.
    pub fn delay(&self, attempt: u32, jitter: f64) -> Duration {
        let wait = match self {
            Self::Fixed(d) => *d,
            Self::Polynomial => {
                let base = f64::from(attempt).powi(4);
                let secs = base + 2.0 + base * POLYNOMIAL_JITTER * jitter.clamp(0.0, 1.0);
                Duration::from_secs_f64(secs.min(MAX_WAIT.as_secs_f64()))
            }
            Self::Custom(f) => f(attempt),
        };
        wait.min(MAX_WAIT)
    }

    /// The wait in words (`polynomial waits`, `30 s apart`).
    pub fn describe(&self) -> String {
        match self {
            Self::Fixed(d) => format!("{} s apart", d.as_secs()),
            Self::Polynomial => "polynomial waits".to_owned(),
            Self::Custom(_) => "waits of its own".to_owned(),
        }
    }

    /// The shortest and longest wait after `attempt` failed.
    pub fn range(&self, attempt: u32) -> (Duration, Duration) {
        (self.delay(attempt, 0.0), self.delay(attempt, 1.0))
    }
}

/// What to do with errors of some kinds.
#[derive(Debug, Clone)]
enum Rule {
    Retry { kinds: Vec<ErrorKind>, wait: Wait, attempts: u32 },
    Discard { kinds: Vec<ErrorKind> },
}

/// The policy's verdict on one failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Run again after this wait.
    Retry(Duration),
    /// Out of attempts: to the DLQ.
    Exhausted,
    /// Not worth retrying: to the DLQ.
    Discard,
}

/// Which errors retry, with what wait and how many attempts, and which are discarded.
///
/// ```
/// use std::time::Duration;
/// use jobkit::{ErrorKind, RetryPolicy, Wait};
///
/// let policy = RetryPolicy::new()
///     .retry_on([ErrorKind::THROTTLED], Wait::Polynomial, 10)
///     .retry_on([ErrorKind::TIMEOUT], Wait::Fixed(Duration::from_secs(30)), 3)
///     .discard_on([ErrorKind::NOT_FOUND]);
/// assert_eq!(policy.max_attempts(), 10);
/// ```
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    rules: Vec<Rule>,
    default_wait: Wait,
    default_attempts: u32,
}

impl RetryPolicy {
    /// The default: retryable errors get 5 attempts with polynomial waits (ActiveJob's
    /// `retry_on` defaults, with `:polynomially_longer`); permanent errors are discarded.
    pub const DEFAULT: RetryPolicy =
        RetryPolicy { rules: Vec::new(), default_wait: Wait::Polynomial, default_attempts: 5 };

    /// The default policy, to add rules to.
    pub fn new() -> Self {
        Self::DEFAULT
    }

    /// Retries errors of these kinds up to `attempts` executions in all, waiting `wait` between.
    /// Applies whatever the error's disposition says.
    pub fn retry_on(mut self, kinds: impl IntoIterator<Item = ErrorKind>, wait: Wait, attempts: u32) -> Self {
        let kinds = kinds.into_iter().collect();
        self.rules.push(Rule::Retry { kinds, wait, attempts: attempts.max(1) });
        self
    }

    /// Sends errors of these kinds straight to the DLQ.
    pub fn discard_on(mut self, kinds: impl IntoIterator<Item = ErrorKind>) -> Self {
        self.rules.push(Rule::Discard { kinds: kinds.into_iter().collect() });
        self
    }

    /// For retryable errors no rule names: the wait and attempts. Defaults to polynomial, 5.
    pub fn default_retry(mut self, wait: Wait, attempts: u32) -> Self {
        self.default_wait = wait;
        self.default_attempts = attempts.max(1);
        self
    }

    /// The most executions any error of this policy can get; the queue's `maxReceiveCount`
    /// must stay above it.
    pub fn max_attempts(&self) -> u32 {
        self.rules
            .iter()
            .filter_map(|r| match r {
                Rule::Retry { attempts, .. } => Some(*attempts),
                Rule::Discard { .. } => None,
            })
            .chain([self.default_attempts])
            .max()
            .unwrap_or(1)
    }

    /// What to do after execution number `attempt` (1-based) failed with `error`.
    pub fn decide(&self, error: &JobError, attempt: u32) -> Decision {
        self.decide_with_jitter(error, attempt, rand::random::<f64>())
    }

    /// [`RetryPolicy::decide`] with the jitter chosen by the caller (tests, timelines).
    pub fn decide_with_jitter(&self, error: &JobError, attempt: u32, jitter: f64) -> Decision {
        let (wait, attempts) = match self.rule_for(error.kind()) {
            Some(Rule::Discard { .. }) => return Decision::Discard,
            Some(Rule::Retry { wait, attempts, .. }) => (wait, *attempts),
            None if !error.is_retryable() => return Decision::Discard,
            None => (&self.default_wait, self.default_attempts),
        };
        if attempt >= attempts { Decision::Exhausted } else { Decision::Retry(wait.delay(attempt, jitter)) }
    }

    fn rule_for(&self, kind: &ErrorKind) -> Option<&Rule> {
        self.rules.iter().find(|rule| match rule {
            Rule::Retry { kinds, .. } | Rule::Discard { kinds } => kinds.contains(kind),
        })
    }

    /// The backoff timeline for errors of `kind` (as retryable errors): one entry per attempt.
    pub fn timeline(&self, kind: &ErrorKind) -> Timeline {
        let (wait, attempts) = match self.rule_for(kind) {
            Some(Rule::Discard { .. }) => {
                return Timeline { kind: kind.clone(), discarded: true, steps: vec![] };
            }
            Some(Rule::Retry { wait, attempts, .. }) => (wait.clone(), *attempts),
            None => (self.default_wait.clone(), self.default_attempts),
        };
        let mut earliest = Duration::ZERO;
        let mut latest = Duration::ZERO;
        let steps = (1..=attempts)
            .map(|attempt| {
                let step =
                    TimelineStep { attempt, starts_after: (earliest, latest), wait_after_failure: None };
                if attempt < attempts {
                    let (lo, hi) = wait.range(attempt);
                    earliest += lo;
                    latest += hi;
                    TimelineStep { wait_after_failure: Some((lo, hi)), ..step }
                } else {
                    step
                }
            })
            .collect();
        Timeline { kind: kind.clone(), discarded: false, steps }
    }

    /// The policy in a line, as the docs' job table shows it: `throttled, timeout: 10 attempts,
    /// polynomial waits; not_found: DLQ; other retryable errors: 5 attempts, polynomial waits`.
    pub fn describe(&self) -> String {
        let kinds = |kinds: &[ErrorKind]| kinds.iter().map(ErrorKind::as_str).collect::<Vec<_>>().join(", ");
        let mut parts: Vec<String> = self
            .rules
            .iter()
            .map(|rule| match rule {
                Rule::Retry { kinds: k, wait, attempts } => {
                    format!("{}: {attempts} attempts, {}", kinds(k), wait.describe())
                }
                Rule::Discard { kinds: k } => format!("{}: DLQ", kinds(k)),
            })
            .collect();
        parts.push(format!(
            "other retryable errors: {} attempts, {}",
            self.default_attempts,
            self.default_wait.describe()
        ));
        parts.join("; ")
    }

    /// Every error kind the policy names, in declaration order.
    pub fn named_kinds(&self) -> Vec<ErrorKind> {
        self.rules
            .iter()
            .flat_map(|r| match r {
                Rule::Retry { kinds, .. } | Rule::Discard { kinds } => kinds.clone(),
            })
            .collect()
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// The attempts an error kind gets under a policy, and when each can start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeline {
    /// The kind this timeline is for.
    pub kind: ErrorKind,
    /// True when the kind is discarded at once.
    pub discarded: bool,
    /// One entry per attempt.
    pub steps: Vec<TimelineStep>,
}

/// One attempt of a [`Timeline`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineStep {
    /// 1-based execution number.
    pub attempt: u32,
    /// Earliest and latest start, counted from the first attempt's start (ignoring run time).
    pub starts_after: (Duration, Duration),
    /// The wait if this attempt fails; `None` on the last attempt (then: the DLQ).
    pub wait_after_failure: Option<(Duration, Duration)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retryable(kind: ErrorKind) -> JobError {
        JobError::retryable(kind, "x")
    }

    #[test]
    fn polynomial_wait_is_activejobs_formula_with_jitter_bounds() {
        assert_eq!(Wait::Polynomial.delay(1, 0.0), Duration::from_secs(3));
        assert_eq!(Wait::Polynomial.delay(3, 0.0), Duration::from_secs(83));
        // 3^4 = 81, 15 % of it is 12.15 s of jitter at most.
        assert_eq!(Wait::Polynomial.delay(3, 1.0), Duration::from_secs_f64(81.0 + 2.0 + 12.15));
        assert_eq!(Wait::Polynomial.delay(1000, 0.0), MAX_WAIT);
    }

    #[test]
    fn rules_pick_wait_and_attempts_by_kind() {
        let policy = RetryPolicy::new()
            .retry_on([ErrorKind::TIMEOUT], Wait::Fixed(Duration::from_secs(30)), 3)
            .discard_on([ErrorKind::NOT_FOUND]);
        let timeout = retryable(ErrorKind::TIMEOUT);
        assert_eq!(policy.decide(&timeout, 1), Decision::Retry(Duration::from_secs(30)));
        assert_eq!(policy.decide(&timeout, 2), Decision::Retry(Duration::from_secs(30)));
        assert_eq!(policy.decide(&timeout, 3), Decision::Exhausted);
        assert_eq!(policy.decide(&retryable(ErrorKind::NOT_FOUND), 1), Decision::Discard);
    }

    #[test]
    fn default_retries_retryable_and_discards_permanent() {
        let policy = RetryPolicy::default();
        let decision = policy.decide_with_jitter(&retryable(ErrorKind::UNKNOWN), 2, 0.0);
        assert_eq!(decision, Decision::Retry(Duration::from_secs(18)));
        assert_eq!(policy.decide(&retryable(ErrorKind::UNKNOWN), 5), Decision::Exhausted);
        let permanent = JobError::permanent(ErrorKind::UNKNOWN, "bad");
        assert_eq!(policy.decide(&permanent, 1), Decision::Discard);
    }

    #[test]
    fn custom_wait_is_a_function_of_the_attempt() {
        let policy = RetryPolicy::new().retry_on(
            [ErrorKind::THROTTLED],
            Wait::Custom(Arc::new(|n| Duration::from_secs(u64::from(n) * 7))),
            4,
        );
        let d = policy.decide(&retryable(ErrorKind::THROTTLED), 3);
        assert_eq!(d, Decision::Retry(Duration::from_secs(21)));
    }

    #[test]
    fn timeline_lists_every_attempt_with_cumulative_bounds() {
        let policy =
            RetryPolicy::new().retry_on([ErrorKind::TIMEOUT], Wait::Fixed(Duration::from_secs(10)), 3);
        let t = policy.timeline(&ErrorKind::TIMEOUT);
        assert_eq!(t.steps.len(), 3);
        assert_eq!(t.steps[2].starts_after, (Duration::from_secs(20), Duration::from_secs(20)));
        assert_eq!(t.steps[2].wait_after_failure, None);
        assert!(policy.timeline(&ErrorKind::TIMEOUT).steps[0].wait_after_failure.is_some());
    }
}
