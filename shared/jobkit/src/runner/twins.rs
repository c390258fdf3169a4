//! Twins: two records of one batch with the same run. The one that comes second waits in the
//! invocation for the first to be done, then asks the store (and finds the run finished, or
//! still the first's), instead of coming back when the run's window in the store ends.
//!
//! Invariant: a record takes the in-process hold before it asks the store, so the order in
//! which the store answers two racing claims cannot hide the holder from its twin.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use super::BatchRunner;
use crate::job::Job;

/// Runs held by a runner, by store key, each with a channel that closes when its holder is done.
pub(crate) type HeldRuns = Arc<Mutex<HashMap<String, watch::Receiver<()>>>>;

/// A run held by this runner; dropping it (the record is done) wakes the twins waiting on it.
pub(crate) struct HeldRun {
    key: String,
    held: HeldRuns,
    _done: watch::Sender<()>,
}

impl Drop for HeldRun {
    fn drop(&mut self) {
        self.held.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.key);
    }
}

impl<J: Job> BatchRunner<J> {
    /// Notes that this runner holds the run at `key` until the returned guard is dropped, after
    /// waiting for any record of this runner (a twin in the same batch) that holds it now.
    /// `None` when the deadline passed while waiting: the claim then finds the run held.
    pub(super) async fn hold_after_twins(&self, key: &str, deadline: DateTime<Utc>) -> Option<HeldRun> {
        loop {
            let mut twin = {
                let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
                match held.get(key) {
                    Some(twin) => twin.clone(),
                    None => {
                        let (done, watching) = watch::channel(());
                        held.insert(key.to_owned(), watching);
                        return Some(HeldRun { key: key.to_owned(), held: self.held.clone(), _done: done });
                    }
                }
            };
            let left = (deadline - self.runtime.clock.now()).to_std().unwrap_or_default();
            // The channel closes when the twin's guard is dropped; nothing is ever sent on it.
            if tokio::time::timeout(left, twin.changed()).await.is_err() {
                return None;
            }
        }
    }
}
