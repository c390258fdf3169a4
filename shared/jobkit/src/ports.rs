//! The ports: every outside system jobkit talks to is one of these traits, with an AWS adapter
//! (`aws` module) and an embedded SQLite adapter (`embedded` module).
//!
//! Invariants: queues are named by an opaque id (a queue URL on SQS, a name on SQLite);
//! store records carry their own expiry and a record whose expiry has passed counts as absent
//! (TTL deletion is late, so expiry is always checked in code).

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::{
    error::PortResult,
    message::{OutgoingMessage, ReceivedMessage},
};

/// A message queue with SQS's semantics.
#[async_trait]
pub trait Queue: Send + Sync + std::fmt::Debug {
    /// Sends one message; returns the queue's message id.
    async fn send(&self, queue: &str, message: OutgoingMessage) -> PortResult<String>;

    /// Sends many messages (chunked to the service's batch limit by the adapter); returns one
    /// result per message, in order, so a partial failure loses nothing silently.
    async fn send_batch(
        &self,
        queue: &str,
        messages: Vec<OutgoingMessage>,
    ) -> PortResult<Vec<PortResult<String>>>;

    /// Receives up to `max` visible messages, waiting up to `wait` for the first.
    async fn receive(&self, queue: &str, max: usize, wait: Duration) -> PortResult<Vec<ReceivedMessage>>;

    /// Deletes a received message.
    async fn delete(&self, queue: &str, receipt_handle: &str) -> PortResult;

    /// Deletes received messages, as Lambda's event source mapping does after a batch. One
    /// call each unless the adapter can do better.
    async fn delete_batch(&self, queue: &str, receipt_handles: &[String]) -> PortResult {
        for handle in receipt_handles {
            self.delete(queue, handle).await?;
        }
        Ok(())
    }

    /// Makes a received message invisible for `timeout` from now (0 = visible again now).
    async fn change_visibility(&self, queue: &str, receipt_handle: &str, timeout: Duration) -> PortResult;
}

/// A record of the state store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    /// The value (JSON written by jobkit).
    pub value: String,
    /// When it stops counting.
    pub expires_at: DateTime<Utc>,
}

/// The answer of [`StateStore::put_if_vacant`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutOutcome {
    /// The key was free (absent or expired) and is now ours.
    Written,
    /// A live record holds the key.
    Taken(StoredRecord),
}

/// A key-value store with conditional writes and per-record expiry (DynamoDB, SQLite).
///
/// jobkit builds runs (idempotency, attempts, step checkpoints), unique jobs and
/// notification rate limits on these few operations.
#[async_trait]
pub trait StateStore: Send + Sync + std::fmt::Debug {
    /// The live record at `key` (an expired record reads as `None`).
    async fn get(&self, key: &str, now: DateTime<Utc>) -> PortResult<Option<StoredRecord>>;

    /// Writes `value` at `key` unless a live record is there (one whose `expires_at > now`).
    async fn put_if_vacant(
        &self,
        key: &str,
        value: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> PortResult<PutOutcome>;

    /// Writes `value` at `key` whatever is there.
    async fn put(&self, key: &str, value: &str, expires_at: DateTime<Utc>) -> PortResult;

    /// Writes `value` at `key` if the record there holds exactly `expected` (whatever its
    /// expiry); returns whether it wrote. Atomic: the compare-and-swap runs hold their
    /// records with.
    async fn replace(
        &self,
        key: &str,
        expected: &str,
        value: &str,
        expires_at: DateTime<Utc>,
    ) -> PortResult<bool>;

    /// Removes `key` (absent is fine).
    async fn delete(&self, key: &str) -> PortResult;

    /// Adds one to the counter at `key` (a live record's count, else from zero), sets its
    /// expiry, and returns the new count. Atomic.
    async fn increment(&self, key: &str, expires_at: DateTime<Utc>, now: DateTime<Utc>) -> PortResult<i64>;

    /// In one atomic write: takes `marker` (writing `value` there, until `expires_at`) unless a
    /// live record holds it, and then adds one to the counter at `counter` (its expiry set to
    /// `expires_at` too). Returns whether it counted: `false` when the marker was already
    /// taken, and nothing changed. Counting something once per id, however often it is told
    /// (batch members finishing under duplicate deliveries), rests on this.
    async fn increment_once(
        &self,
        marker: &str,
        value: &str,
        counter: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> PortResult<bool>;

    /// The count of the counter at `key` (0 when absent or expired).
    async fn count(&self, key: &str, now: DateTime<Utc>) -> PortResult<i64>;

    /// Deletes up to `limit` records whose expiry passed at `now`; returns how many (fewer than
    /// `limit` means none are left). Stores that expire records themselves (DynamoDB's TTL)
    /// delete nothing here and return 0: reads already treat expired records as absent.
    async fn purge_expired(&self, now: DateTime<Utc>, limit: usize) -> PortResult<usize>;
}

/// An email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    /// The sender (an SES identity).
    pub from: String,
    /// The recipients.
    pub to: Vec<String>,
    /// The subject.
    pub subject: String,
    /// The plain-text body.
    pub text: String,
}

/// Sends email (SES v2, or files in an outbox).
#[async_trait]
pub trait Mailer: Send + Sync + std::fmt::Debug {
    /// Sends one email.
    async fn send(&self, email: &Email) -> PortResult;
}
