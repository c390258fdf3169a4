//! Waiting between requests, as a port: tokio's sleep in production, a recorder in tests.

use std::{future::Future, pin::Pin, time::Duration};

/// Waits before a request (throttling, backoff).
pub trait Pacer: Send + Sync + std::fmt::Debug {
    /// Waits `duration`.
    fn wait(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

/// Really waits.
#[derive(Debug, Default, Clone, Copy)]
pub struct TokioPacer;

impl Pacer for TokioPacer {
    fn wait(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(tokio::time::sleep(duration))
    }
}
