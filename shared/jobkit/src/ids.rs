//! Newtype ids.

use std::fmt;

/// A job's id: stable across retries, continuations and delay hops of one enqueue (a hop and a
/// continuation carry it, so two copies of one re-send are one job), and the default
/// idempotency key: two messages with one job id are one run, whichever arrives first.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct JobId(String);

impl JobId {
    /// A new id: a UUIDv7, its leading timestamp then random bits (and, within a millisecond, a
    /// counter that keeps them in order). Ids made one after another sort one after another,
    /// so the runs they key land side by side in the embedded store's B-tree (a batch's writes
    /// touch a page or two, not one page each: 1.5x the embedded throughput, BENCHMARKS.md).
    /// DynamoDB hashes keys to partitions, so it sees no difference.
    pub fn random() -> Self {
        Self(uuid::Uuid::now_v7().to_string())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for JobId {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

impl From<String> for JobId {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
