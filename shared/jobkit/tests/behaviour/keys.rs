//! Every state record a job's runs touch starts with the job's name, which is what lets IAM
//! confine a function to its own records (`dynamodb:LeadingKeys` on `<job>:*`).

use std::{
    collections::BTreeSet,
    sync::{Arc, Mutex},
};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use jobkit::{
    ErrorKind, Job, JobContext, JobError, PortResult,
    embedded::EmbeddedStore,
    ports::{PutOutcome, StateStore, StoredRecord},
    runner::{BatchRunner, Runtime},
    testing::{StoreWrapper, TestHarness},
};

/// The embedded store, noting every key asked for.
#[derive(Debug)]
struct KeyRecorder {
    inner: Arc<EmbeddedStore>,
    keys: Mutex<BTreeSet<String>>,
}

impl KeyRecorder {
    fn note(&self, key: &str) {
        self.keys.lock().unwrap().insert(key.to_owned());
    }
}

#[async_trait]
impl StoreWrapper for KeyRecorder {
    fn inner(&self) -> &dyn StateStore {
        self.inner.as_ref()
    }

    async fn get(&self, key: &str, now: DateTime<Utc>) -> PortResult<Option<StoredRecord>> {
        self.note(key);
        self.inner.get(key, now).await
    }

    async fn put_if_vacant(
        &self,
        key: &str,
        value: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> PortResult<PutOutcome> {
        self.note(key);
        self.inner.put_if_vacant(key, value, expires_at, now).await
    }

    async fn put(&self, key: &str, value: &str, expires_at: DateTime<Utc>) -> PortResult {
        self.note(key);
        self.inner.put(key, value, expires_at).await
    }

    async fn replace(
        &self,
        key: &str,
        expected: &str,
        value: &str,
        expires_at: DateTime<Utc>,
    ) -> PortResult<bool> {
        self.note(key);
        self.inner.replace(key, expected, value, expires_at).await
    }

    async fn delete(&self, key: &str) -> PortResult {
        self.note(key);
        self.inner.delete(key).await
    }

    async fn increment(&self, key: &str, expires_at: DateTime<Utc>, now: DateTime<Utc>) -> PortResult<i64> {
        self.note(key);
        self.inner.increment(key, expires_at, now).await
    }
}

/// Checkpoints a step and fails on its first run, finishes the step on the next; `{"fail": true}`
/// fails for good (the DLQ and an error email).
#[derive(Clone)]
struct Paged;

impl Job for Paged {
    type Args = serde_json::Value;
    const NAME: &'static str = "paged";

    async fn perform(&self, args: serde_json::Value, ctx: &mut JobContext) -> Result<(), JobError> {
        if args["fail"] == true {
            return Err(JobError::permanent(ErrorKind::INVALID_ARGUMENTS, "refused"));
        }
        ctx.step("pages", 0_u32, async |step| {
            if *step.cursor() == 0 {
                step.advance(1).await?;
                return Err(JobError::retryable(ErrorKind::UNAVAILABLE, "down"));
            }
            Ok(())
        })
        .await
        .map(drop)
    }
}

#[tokio::test]
async fn every_key_of_a_jobs_runs_starts_with_the_jobs_name() {
    let t = TestHarness::new();
    let recorder = Arc::new(KeyRecorder { inner: t.store().clone(), keys: Mutex::default() });
    let runtime = Runtime { store: recorder.clone(), ..t.runtime().clone() };
    let config = t.runner(Paged).config().clone();
    let runner = BatchRunner::new(Paged, runtime, config);
    t.enqueuer().perform_later::<Paged>(&serde_json::json!({})).await.unwrap();
    t.enqueuer().perform_later::<Paged>(&serde_json::json!({"fail": true})).await.unwrap();

    let report = t.drain(&runner).await;
    assert_eq!((report.succeeded(), report.dead_lettered()), (1, 1));
    let keys = recorder.keys.lock().unwrap().clone();
    let foreign: Vec<&String> = keys.iter().filter(|k| !k.starts_with("paged:")).collect();
    assert!(foreign.is_empty(), "keys IAM would refuse to the function: {foreign:?}");
    let kinds: BTreeSet<&str> = keys.iter().filter_map(|k| k.split(':').nth(1)).collect();
    // The run (its checkpoint and failures inside), the job id's last error, the email's limit.
    for kind in ["idem", "error", "notify"] {
        assert!(kinds.contains(kind), "the run touched no {kind} record: {keys:?}");
    }
}
