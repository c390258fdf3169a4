//! How jobs that call outside systems treat their failures, in one place.

use jobkit::{ErrorKind, RetryPolicy, Wait};

/// A number that opted out of texts.
pub const OPTED_OUT: ErrorKind = ErrorKind::new_static("opted_out");

/// Throttling, timeouts and outages retry `attempts` times with polynomial waits; what is gone,
/// credentials that were refused and requests the other side rejects go to the DLQ.
pub fn integration_policy(attempts: u32) -> RetryPolicy {
    RetryPolicy::new()
        .retry_on(
            [ErrorKind::THROTTLED, ErrorKind::TIMEOUT, ErrorKind::UNAVAILABLE],
            Wait::Polynomial,
            attempts,
        )
        .discard_on([ErrorKind::NOT_FOUND, ErrorKind::UNAUTHORIZED, ErrorKind::INVALID_INPUT])
}
