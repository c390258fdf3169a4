//! The state store's keys: every key a job's runs write starts with the job's name, so that an
//! IAM policy can confine a function to its own job's records (`dynamodb:LeadingKeys` on
//! `<job>:*`), and no key outgrows DynamoDB's 2,048-byte partition key.
//!
//! Invariant: a key is `<job>:<kind>:<id>`; an id that would make the key longer than
//! [`MAX_INLINE_KEY_BYTES`] is replaced by its SHA-256, so a producer's over-long job id or
//! idempotency key still names one record, and never fails the store call.

use sha2::{Digest, Sha256};

/// DynamoDB's limit on a partition key, in bytes (the embedded store enforces it too).
pub const MAX_KEY_BYTES: usize = 2048;

/// Keys longer than this carry a hash of their id instead (leaves room below the limit).
pub(crate) const MAX_INLINE_KEY_BYTES: usize = 1024;

/// The kinds of record a job keeps, each a key prefix after the job's name.
pub(crate) mod kind {
    /// A run that owns an idempotency key, from its first start to its outcome.
    pub(crate) const IDEMPOTENT_RUN: &str = "idem";
    /// The progress of a run without an idempotency key, by its run token.
    pub(crate) const RUN: &str = "run";
    /// The last error the runner saw for a job id.
    pub(crate) const LAST_ERROR: &str = "error";
    /// An operator's cancellation of a job id.
    pub(crate) const CANCEL: &str = "cancel";
    /// A slot of a per-key concurrency limit.
    pub(crate) const LIMIT: &str = "limit";
    /// A `unique_for` lock.
    pub(crate) const UNIQUE: &str = "unique";
    /// An error email's rate limit, per fingerprint.
    pub(crate) const NOTIFY: &str = "notify";
    /// A batch and its counters (`<id>`, `<id>:registered`, `<id>:succeeded`, `<id>:failed`).
    pub(crate) const BATCH: &str = "batch";
    /// A batch's member, registered before it was sent (`<batch id>:<job id>`).
    pub(crate) const BATCH_MEMBER: &str = "batchm";
    /// A batch's member that finished, with its outcome (`<batch id>:<job id>`).
    pub(crate) const BATCH_DONE: &str = "batchd";
}

/// The state store key of `job`'s record of `kind` for `id`, hashed when it would be too long.
pub(crate) fn state_key(job: &str, kind: &str, id: &str) -> String {
    let key = format!("{job}:{kind}:{id}");
    if key.len() <= MAX_INLINE_KEY_BYTES {
        return key;
    }
    format!("{job}:{kind}:sha256:{}", hex(&Sha256::digest(id.as_bytes())))
}

/// The prefix every key of `job` starts with (for IAM's `dynamodb:LeadingKeys`).
pub fn job_key_prefix(job: &str) -> String {
    format!("{job}:")
}

/// Lower-case hexadecimal of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    bytes.iter().flat_map(|b| [HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]]).map(char::from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_start_with_the_job_and_long_ids_are_hashed_below_the_limit() {
        assert_eq!(state_key("store_sync", kind::IDEMPOTENT_RUN, "job:42"), "store_sync:idem:job:42");
        let long = "x".repeat(5000);
        let key = state_key("store_sync", kind::IDEMPOTENT_RUN, &long);
        assert!(key.starts_with(&job_key_prefix("store_sync")), "{key}");
        assert!(key.len() < MAX_KEY_BYTES, "{}", key.len());
        assert_eq!(key, state_key("store_sync", kind::IDEMPOTENT_RUN, &long), "stable");
        assert_ne!(key, state_key("store_sync", kind::IDEMPOTENT_RUN, &"y".repeat(5000)));
        // A multi-byte id is measured in bytes, as DynamoDB does.
        let wide = "é".repeat(600);
        assert!(state_key("j", kind::RUN, &wide).len() <= MAX_INLINE_KEY_BYTES);
    }
}
