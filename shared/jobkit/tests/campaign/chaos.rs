//! Faults on the ports: queue and store calls that fail at random, half before doing their
//! work and half after it (the answer lost, as a call that times out after the service acted).

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use jobkit::testing::{QueueWrapper, StoreWrapper};
use jobkit::{
    PortError, PortResult,
    message::OutgoingMessage,
    ports::{PutOutcome, Queue, StateStore, StoredRecord},
};
use rand::{Rng, SeedableRng, rngs::StdRng};

/// Fails calls at random, half before doing the work and half after (the answer lost).
#[derive(Debug)]
pub struct Chaos {
    rate: f64,
    rng: Mutex<StdRng>,
    injected: Mutex<u64>,
    /// Sends that were made but whose answer was lost (a hop, continuation or DLQ copy that
    /// went out twice when the record came back).
    lost_send_answers: Mutex<u64>,
}

enum Strike {
    Before,
    After,
    None,
}

impl Chaos {
    pub fn new(rate: f64, seed: u64) -> Self {
        Self {
            rate,
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            injected: Mutex::new(0),
            lost_send_answers: Mutex::new(0),
        }
    }

    fn strike(&self) -> Strike {
        let mut rng = self.rng.lock().unwrap();
        if rng.random::<f64>() >= self.rate {
            return Strike::None;
        }
        *self.injected.lock().unwrap() += 1;
        if rng.random::<bool>() { Strike::Before } else { Strike::After }
    }

    fn error(&self, call: &str) -> PortError {
        PortError::Throttled(format!("chaos: {call} throttled"))
    }

    /// Calls that failed on purpose so far.
    pub fn injected(&self) -> u64 {
        *self.injected.lock().unwrap()
    }

    /// Sends made whose answer was lost on purpose so far.
    pub fn lost_send_answers(&self) -> u64 {
        *self.lost_send_answers.lock().unwrap()
    }

    async fn call<T>(
        &self,
        name: &str,
        work: impl std::future::Future<Output = PortResult<T>>,
    ) -> PortResult<T> {
        match self.strike() {
            Strike::Before => Err(self.error(name)),
            Strike::After => {
                work.await?;
                if name == "send" {
                    *self.lost_send_answers.lock().unwrap() += 1;
                }
                Err(self.error(name))
            }
            Strike::None => work.await,
        }
    }
}

/// A queue that fails at random.
#[derive(Debug)]
pub struct ChaosQueue {
    pub inner: Arc<dyn Queue>,
    pub chaos: Arc<Chaos>,
}

#[async_trait]
impl QueueWrapper for ChaosQueue {
    fn inner(&self) -> &dyn Queue {
        self.inner.as_ref()
    }

    async fn send(&self, queue: &str, message: OutgoingMessage) -> PortResult<String> {
        self.chaos.call("send", self.inner.send(queue, message)).await
    }

    async fn send_batch(
        &self,
        queue: &str,
        messages: Vec<OutgoingMessage>,
    ) -> PortResult<Vec<PortResult<String>>> {
        self.chaos.call("send_batch", self.inner.send_batch(queue, messages)).await
    }

    async fn delete(&self, queue: &str, receipt_handle: &str) -> PortResult {
        self.chaos.call("delete", self.inner.delete(queue, receipt_handle)).await
    }

    async fn change_visibility(&self, queue: &str, receipt_handle: &str, timeout: Duration) -> PortResult {
        self.chaos
            .call("change_visibility", self.inner.change_visibility(queue, receipt_handle, timeout))
            .await
    }
}

/// A state store that fails at random.
#[derive(Debug)]
pub struct ChaosStore {
    pub inner: Arc<dyn StateStore>,
    pub chaos: Arc<Chaos>,
}

#[async_trait]
impl StoreWrapper for ChaosStore {
    fn inner(&self) -> &dyn StateStore {
        self.inner.as_ref()
    }

    async fn get(&self, key: &str, now: DateTime<Utc>) -> PortResult<Option<StoredRecord>> {
        self.chaos.call("get", self.inner.get(key, now)).await
    }

    async fn put_if_vacant(
        &self,
        key: &str,
        value: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> PortResult<PutOutcome> {
        self.chaos.call("put_if_vacant", self.inner.put_if_vacant(key, value, expires_at, now)).await
    }

    async fn put(&self, key: &str, value: &str, expires_at: DateTime<Utc>) -> PortResult {
        self.chaos.call("put", self.inner.put(key, value, expires_at)).await
    }

    async fn replace(
        &self,
        key: &str,
        expected: &str,
        value: &str,
        expires_at: DateTime<Utc>,
    ) -> PortResult<bool> {
        self.chaos.call("replace", self.inner.replace(key, expected, value, expires_at)).await
    }

    async fn delete(&self, key: &str) -> PortResult {
        self.chaos.call("delete", self.inner.delete(key)).await
    }

    async fn increment(&self, key: &str, expires_at: DateTime<Utc>, now: DateTime<Utc>) -> PortResult<i64> {
        self.chaos.call("increment", self.inner.increment(key, expires_at, now)).await
    }
}
