//! `jobctl console`: the operator console, one small server-rendered web application over the
//! same backend and commands as the CLI (the embedded file or a deployed stack).
//!
//! Invariants:
//! - No logic of its own: every number, list and action comes from `crate::commands` (and the
//!   registry); this module routes, checks access and renders.
//! - Loopback unless told otherwise; every request carries the access token (a cookie set from
//!   the printed URL), every state-changing request is a POST with the CSRF token, and
//!   `--read-only` refuses every POST.
//! - No access token, email address or phone number reaches a page: what a message carries is
//!   shown through `jobkit::redact`, as logs are.
//! - Bad input gets a page that says what was wrong (400, 404), never a stack trace.

mod auth;
mod chart;
mod pages;
mod routes;

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
};

use crate::backend::Backend;

/// How the console is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// The address to listen on (loopback by default).
    pub bind: IpAddr,
    /// The port; 0 for a free one.
    pub port: u16,
    /// Show, never change: no buttons, every POST refused.
    pub read_only: bool,
}

/// The console could not serve.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConsoleError {
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The server stopped with an error.
    #[error("the console's server failed: {0}")]
    Serve(std::io::Error),
}

/// Serves the console on `backend` until Ctrl-C, after printing the URL to open on standard
/// output (one line, `http://ADDR:PORT/?token=...`).
///
/// # Errors
/// [`ConsoleError::Bind`] when the address cannot be bound; [`ConsoleError::Serve`].
pub async fn serve(backend: Backend, options: Options) -> Result<(), ConsoleError> {
    let addr = SocketAddr::new(options.bind, options.port);
    let listener =
        tokio::net::TcpListener::bind(addr).await.map_err(|source| ConsoleError::Bind { addr, source })?;
    let local = listener.local_addr().map_err(|source| ConsoleError::Bind { addr, source })?;
    let access = auth::Access::new(local.port());
    let mode = if options.read_only { " (read-only)" } else { "" };
    eprintln!("jobctl console on the {}{mode}; Ctrl-C stops", backend.describe());
    if !options.bind.is_loopback() {
        eprintln!(
            "jobctl console: listening on {} (not loopback): anyone who can reach it and has the URL's token can act",
            options.bind
        );
    }
    // A person opens this; a test reads it. The token is only ever printed here.
    println!("{}", access.url(local));
    let state = Arc::new(routes::State { backend, access, read_only: options.read_only });
    let app = routes::router(state);
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            // Without a Ctrl-C handler the server runs until the process is killed.
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        })
        .await
        .map_err(ConsoleError::Serve)
}
