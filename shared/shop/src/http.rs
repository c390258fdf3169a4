//! What the HTTP clients of outside systems (Shopify, Square) share.
//!
//! Invariant: redirects are never followed. The clients send a store's token in a header of
//! their own (`X-Shopify-Access-Token`), which reqwest does not strip when a redirect leaves the
//! host, so a redirect is answered with a permanent error instead.

use std::{sync::Arc, time::Duration};

use jobkit::{IntegrationError, IntegrationErrorKind};

/// A client with a request timeout that follows no redirect, trusting the Mozilla roots compiled
/// in (`webpki-roots`).
///
/// Not the platform verifier reqwest defaults to: on Linux it reads and parses the system's
/// whole certificate directory when the client is built, milliseconds on every cold start.
/// The compiled-in roots are already parsed; a rebuild picks up Mozilla's changes.
pub(crate) fn client(source: &str, timeout: Duration) -> Result<reqwest::Client, IntegrationError> {
    let unexpected = |what: &str, e: &dyn std::fmt::Display| {
        IntegrationError::new(source, IntegrationErrorKind::Unexpected, format!("{what}: {e}"))
    };
    let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    let tls =
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| unexpected("configuring TLS", &e))?
            .with_root_certificates(roots)
            .with_no_client_auth();
    reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .tls_backend_preconfigured(tls)
        .build()
        .map_err(|e| unexpected("building the HTTP client", &e))
}

/// The longest `Retry-After` a client sleeps in process before trying again.
///
/// A minute is what a throttle or a restart asks for; a server that asks for more (or for a
/// value no `Duration` holds) must not park the job, holding its Lambda invocation and its
/// record, until the job's timeout. Past it the client stops trying and returns its retryable
/// error, so the job's retry policy backs off through the queue instead, with nothing running.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// What an answer's `Retry-After` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RetryAfter {
    /// None was sent, or not a number of seconds (NaN, a negative, an HTTP date): the client
    /// waits its own default.
    Unspecified,
    /// Wait this long, at most [`MAX_RETRY_AFTER`], then try again.
    Wait(Duration),
    /// Longer than [`MAX_RETRY_AFTER`] (infinity included): no more tries in process.
    TooLong,
}

impl RetryAfter {
    /// The wait before the next try, `default` when unspecified; `None` when the job's retry
    /// policy should wait instead.
    pub(crate) fn wait_or(self, default: Duration) -> Option<Duration> {
        match self {
            Self::Unspecified => Some(default),
            Self::Wait(wait) => Some(wait),
            Self::TooLong => None,
        }
    }
}

/// The `Retry-After` header, read as seconds and judged against [`MAX_RETRY_AFTER`].
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> RetryAfter {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map_or(RetryAfter::Unspecified, |v| retry_after_seconds(v.trim()))
}

fn retry_after_seconds(text: &str) -> RetryAfter {
    // Fractions are read too (servers send `0.5`); `f64` also reads `inf`, `NaN` and `1e20`,
    // which are judged here rather than handed to `Duration::from_secs_f64`, which panics.
    let Ok(seconds) = text.parse::<f64>() else { return RetryAfter::Unspecified };
    if seconds.is_nan() || seconds < 0.0 {
        return RetryAfter::Unspecified;
    }
    match Duration::try_from_secs_f64(seconds) {
        Ok(wait) if wait <= MAX_RETRY_AFTER => RetryAfter::Wait(wait),
        _ => RetryAfter::TooLong,
    }
}

/// A 3xx answer as a permanent error naming the status and where it pointed (scheme, host and
/// port only: a path or query may carry anything); `None` for any other answer.
///
/// Permanent, because the same request gets the same redirect: an operator has to look (a shop
/// that moved, a base URL that is wrong, or someone steering the token elsewhere).
pub(crate) fn redirect_error(source: &str, response: &reqwest::Response) -> Option<IntegrationError> {
    let status = response.status();
    if !status.is_redirection() {
        return None;
    }
    let target = response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        // A relative Location stays on the host that answered.
        .and_then(|location| response.url().join(location).ok())
        .and_then(|url| {
            let host = url.host_str()?;
            Some(match url.port() {
                Some(port) => format!("{}://{host}:{port}", url.scheme()),
                None => format!("{}://{host}", url.scheme()),
            })
        })
        .unwrap_or_else(|| "no readable Location".to_owned());
    let message = format!("HTTP {}: redirected to {target}, not followed", status.as_u16());
    Some(
        IntegrationError::new(source, IntegrationErrorKind::Unexpected, message)
            .with_detail("status", status.as_u16()),
    )
}

#[cfg(test)]
mod tests {
    use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};

    use super::*;

    fn read(value: &str) -> RetryAfter {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_str(value).expect("a header value"));
        retry_after(&headers)
    }

    #[test]
    fn seconds_up_to_the_cap_are_waited() {
        assert_eq!(read("0"), RetryAfter::Wait(Duration::ZERO));
        assert_eq!(read(" 3 "), RetryAfter::Wait(Duration::from_secs(3)));
        assert_eq!(read("0.5"), RetryAfter::Wait(Duration::from_millis(500)));
        assert_eq!(read("60"), RetryAfter::Wait(MAX_RETRY_AFTER));
    }

    #[test]
    fn past_the_cap_is_too_long_and_never_panics() {
        for huge in ["60.001", "61", "99999999999", "18446744073709551616", "1e20", "1e308", "inf", "+inf"] {
            assert_eq!(read(huge), RetryAfter::TooLong, "{huge}");
        }
    }

    #[test]
    fn what_is_not_a_number_of_seconds_is_unspecified() {
        for odd in ["NaN", "-1", "-inf", "-1e20", "soon", "", "Wed, 21 Oct 2015 07:28:00 GMT"] {
            assert_eq!(read(odd), RetryAfter::Unspecified, "{odd}");
        }
        assert_eq!(retry_after(&HeaderMap::new()), RetryAfter::Unspecified, "no header");
    }

    #[test]
    fn too_long_leaves_the_wait_to_the_job() {
        let default = Duration::from_secs(2);
        assert_eq!(RetryAfter::Unspecified.wait_or(default), Some(default));
        assert_eq!(RetryAfter::Wait(Duration::from_secs(5)).wait_or(default), Some(Duration::from_secs(5)));
        assert_eq!(RetryAfter::TooLong.wait_or(default), None);
    }
}
