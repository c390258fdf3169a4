//! What the HTTP clients of outside systems (Shopify, Square) share.

use std::time::Duration;

use jobkit::{IntegrationError, IntegrationErrorKind};

/// A client with a request timeout.
pub(crate) fn client(source: &str, timeout: Duration) -> Result<reqwest::Client, IntegrationError> {
    reqwest::Client::builder().timeout(timeout).build().map_err(|e| {
        IntegrationError::new(
            source,
            IntegrationErrorKind::Unexpected,
            format!("building the HTTP client: {e}"),
        )
    })
}

/// The `Retry-After` header in seconds, when the server sent one.
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
}
