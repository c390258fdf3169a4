//! Ports that pass every call to another one, but for the calls a test changes: a store whose
//! claim answers late, a queue whose send loses its answer, a DLQ that never answers. A test
//! implements [`StoreWrapper`] or [`QueueWrapper`] with the one method it changes and gets the
//! port for free.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::{
    error::PortResult,
    message::{OutgoingMessage, ReceivedMessage},
    ports::{PutOutcome, Queue, StateStore, StoredRecord},
};

/// A state store forwarding to [`StoreWrapper::inner`] every call it does not override.
///
/// ```
/// # use jobkit::{PortResult, testing::StoreWrapper, ports::StateStore};
/// #[derive(Debug)]
/// struct NoDeletes(std::sync::Arc<dyn StateStore>);
///
/// #[async_trait::async_trait]
/// impl StoreWrapper for NoDeletes {
///     fn inner(&self) -> &dyn StateStore { self.0.as_ref() }
///     async fn delete(&self, _key: &str) -> PortResult { Ok(()) }
/// }
/// ```
#[async_trait]
pub trait StoreWrapper: Send + Sync + std::fmt::Debug {
    /// The store the calls go to.
    fn inner(&self) -> &dyn StateStore;

    /// See [`StateStore::get`].
    async fn get(&self, key: &str, now: DateTime<Utc>) -> PortResult<Option<StoredRecord>> {
        self.inner().get(key, now).await
    }

    /// See [`StateStore::put_if_vacant`].
    async fn put_if_vacant(
        &self,
        key: &str,
        value: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> PortResult<PutOutcome> {
        self.inner().put_if_vacant(key, value, expires_at, now).await
    }

    /// See [`StateStore::put`].
    async fn put(&self, key: &str, value: &str, expires_at: DateTime<Utc>) -> PortResult {
        self.inner().put(key, value, expires_at).await
    }

    /// See [`StateStore::replace`].
    async fn replace(
        &self,
        key: &str,
        expected: &str,
        value: &str,
        expires_at: DateTime<Utc>,
    ) -> PortResult<bool> {
        self.inner().replace(key, expected, value, expires_at).await
    }

    /// See [`StateStore::delete`].
    async fn delete(&self, key: &str) -> PortResult {
        self.inner().delete(key).await
    }

    /// See [`StateStore::increment`].
    async fn increment(&self, key: &str, expires_at: DateTime<Utc>, now: DateTime<Utc>) -> PortResult<i64> {
        self.inner().increment(key, expires_at, now).await
    }

    /// See [`StateStore::increment_once`].
    async fn increment_once(
        &self,
        marker: &str,
        value: &str,
        counter: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> PortResult<bool> {
        self.inner().increment_once(marker, value, counter, expires_at, now).await
    }

    /// See [`StateStore::count`].
    async fn count(&self, key: &str, now: DateTime<Utc>) -> PortResult<i64> {
        self.inner().count(key, now).await
    }

    /// See [`StateStore::purge_expired`].
    async fn purge_expired(&self, now: DateTime<Utc>, limit: usize) -> PortResult<usize> {
        self.inner().purge_expired(now, limit).await
    }
}

#[async_trait]
impl<W: StoreWrapper> StateStore for W {
    async fn get(&self, key: &str, now: DateTime<Utc>) -> PortResult<Option<StoredRecord>> {
        StoreWrapper::get(self, key, now).await
    }

    async fn put_if_vacant(
        &self,
        key: &str,
        value: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> PortResult<PutOutcome> {
        StoreWrapper::put_if_vacant(self, key, value, expires_at, now).await
    }

    async fn put(&self, key: &str, value: &str, expires_at: DateTime<Utc>) -> PortResult {
        StoreWrapper::put(self, key, value, expires_at).await
    }

    async fn replace(
        &self,
        key: &str,
        expected: &str,
        value: &str,
        expires_at: DateTime<Utc>,
    ) -> PortResult<bool> {
        StoreWrapper::replace(self, key, expected, value, expires_at).await
    }

    async fn delete(&self, key: &str) -> PortResult {
        StoreWrapper::delete(self, key).await
    }

    async fn increment(&self, key: &str, expires_at: DateTime<Utc>, now: DateTime<Utc>) -> PortResult<i64> {
        StoreWrapper::increment(self, key, expires_at, now).await
    }

    async fn increment_once(
        &self,
        marker: &str,
        value: &str,
        counter: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> PortResult<bool> {
        StoreWrapper::increment_once(self, marker, value, counter, expires_at, now).await
    }

    async fn count(&self, key: &str, now: DateTime<Utc>) -> PortResult<i64> {
        StoreWrapper::count(self, key, now).await
    }

    async fn purge_expired(&self, now: DateTime<Utc>, limit: usize) -> PortResult<usize> {
        StoreWrapper::purge_expired(self, now, limit).await
    }
}

/// A queue forwarding to [`QueueWrapper::inner`] every call it does not override.
#[async_trait]
pub trait QueueWrapper: Send + Sync + std::fmt::Debug {
    /// The queue the calls go to.
    fn inner(&self) -> &dyn Queue;

    /// See [`Queue::send`].
    async fn send(&self, queue: &str, message: OutgoingMessage) -> PortResult<String> {
        self.inner().send(queue, message).await
    }

    /// See [`Queue::send_batch`].
    async fn send_batch(
        &self,
        queue: &str,
        messages: Vec<OutgoingMessage>,
    ) -> PortResult<Vec<PortResult<String>>> {
        self.inner().send_batch(queue, messages).await
    }

    /// See [`Queue::receive`].
    async fn receive(&self, queue: &str, max: usize, wait: Duration) -> PortResult<Vec<ReceivedMessage>> {
        self.inner().receive(queue, max, wait).await
    }

    /// See [`Queue::delete`].
    async fn delete(&self, queue: &str, receipt_handle: &str) -> PortResult {
        self.inner().delete(queue, receipt_handle).await
    }

    /// See [`Queue::delete_batch`].
    async fn delete_batch(&self, queue: &str, receipt_handles: &[String]) -> PortResult {
        self.inner().delete_batch(queue, receipt_handles).await
    }

    /// See [`Queue::change_visibility`].
    async fn change_visibility(&self, queue: &str, receipt_handle: &str, timeout: Duration) -> PortResult {
        self.inner().change_visibility(queue, receipt_handle, timeout).await
    }
}

#[async_trait]
impl<W: QueueWrapper> Queue for W {
    async fn send(&self, queue: &str, message: OutgoingMessage) -> PortResult<String> {
        QueueWrapper::send(self, queue, message).await
    }

    async fn send_batch(
        &self,
        queue: &str,
        messages: Vec<OutgoingMessage>,
    ) -> PortResult<Vec<PortResult<String>>> {
        QueueWrapper::send_batch(self, queue, messages).await
    }

    async fn receive(&self, queue: &str, max: usize, wait: Duration) -> PortResult<Vec<ReceivedMessage>> {
        QueueWrapper::receive(self, queue, max, wait).await
    }

    async fn delete(&self, queue: &str, receipt_handle: &str) -> PortResult {
        QueueWrapper::delete(self, queue, receipt_handle).await
    }

    async fn delete_batch(&self, queue: &str, receipt_handles: &[String]) -> PortResult {
        QueueWrapper::delete_batch(self, queue, receipt_handles).await
    }

    async fn change_visibility(&self, queue: &str, receipt_handle: &str, timeout: Duration) -> PortResult {
        QueueWrapper::change_visibility(self, queue, receipt_handle, timeout).await
    }
}
