//! What the HTTP clients of outside systems (Shopify, Square) share.

use std::{sync::Arc, time::Duration};

use jobkit::{IntegrationError, IntegrationErrorKind};

/// A client with a request timeout, trusting the Mozilla roots compiled in (`webpki-roots`).
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
