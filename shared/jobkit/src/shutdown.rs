//! A worker's graceful stop, as Sidekiq's on TERM: once requested, records of a batch that have
//! not started are handed back to the queue at once, and a job with resumable steps stops at its
//! next checkpoint and continues in a new message (ActiveJob::Continuable's interruption). Other
//! jobs run to their end: stopping them halfway would leave their effect half applied.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

/// A stop request shared by a worker and its runners; clones see the same request.
#[derive(Debug, Clone, Default)]
pub struct Shutdown(Arc<AtomicBool>);

impl Shutdown {
    /// Not requested yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks every runner holding a clone to stop early.
    pub fn request(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// True once [`Self::request`] was called.
    pub fn requested(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}
