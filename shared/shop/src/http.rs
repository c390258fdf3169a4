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

/// The `Retry-After` header in seconds, when the server sent one.
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
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
