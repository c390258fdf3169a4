//! Where jobctl's commands act: the embedded file that `jobctl dev` runs on (the default), or a
//! deployed stack's queues on AWS (`--aws`). Both speak jobkit's [`Queue`] port; this adds what
//! only operators need: finding a job's queues, counting, listing and purging them.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use chrono::Utc;
use jobkit::{
    PortError, Queue, ReceivedMessage, SharedClock, StateStore, SystemClock,
    aws::SqsQueue,
    embedded::{EmbeddedDb, EmbeddedQueue, EmbeddedStore, QueueConfig},
};

use crate::registry::{self, RegistryError};

/// The embedded backend's folder when none is given.
pub const DEFAULT_DIR: &str = ".jobs";
/// The stack `--aws` looks for when none is given (`samconfig.toml`'s).
pub const DEFAULT_STACK: &str = "store-jobs";

/// Which backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The SQLite file `jobs.sqlite3` in this folder.
    Embedded(PathBuf),
    /// The queues of this CloudFormation stack, with the SDK's configuration from the
    /// environment (`AWS_PROFILE`, `AWS_REGION`, `AWS_ENDPOINT_URL` for moto or LocalStack).
    Aws {
        /// The stack's name, the prefix of its queues' names.
        stack: String,
    },
}

/// A backend could not be opened or failed.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The embedded file could not be opened.
    #[error("cannot open the embedded backend at {path}: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        source: PortError,
    },
    /// A job's queue does not exist on AWS.
    #[error(
        "queue {name} not found: is the stack {stack:?} deployed in this region (AWS_REGION), or is it named otherwise (--stack)? ({source})"
    )]
    QueueNotFound {
        /// The queue's name.
        name: String,
        /// The stack.
        stack: String,
        /// The SDK's answer.
        source: PortError,
    },
    /// The queue service failed.
    #[error(transparent)]
    Port(#[from] PortError),
    /// The registry could not be read.
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

/// A queue's counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    /// Ready to receive.
    pub visible: u64,
    /// Received and not yet deleted or visible again.
    pub in_flight: u64,
    /// Sent with a delay that has not passed.
    pub delayed: u64,
    /// Age of the oldest message in seconds; `None` on AWS (a CloudWatch metric there).
    pub oldest_age_seconds: Option<u64>,
}

impl Counts {
    /// Messages the queue holds in any state.
    pub fn total(&self) -> u64 {
        self.visible + self.in_flight + self.delayed
    }
}

enum Kind {
    Embedded { queue: Arc<EmbeddedQueue>, file: PathBuf },
    Aws { sqs: Arc<SqsQueue>, stack: String },
}

/// An opened backend.
pub struct Backend {
    queue: Arc<dyn Queue>,
    store: Arc<dyn StateStore>,
    kind: Kind,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend").field("where", &self.describe()).finish_non_exhaustive()
    }
}

/// How long each receive of a listing waits for messages: short polls sample only some of
/// SQS's servers and can come back empty while messages remain.
const LIST_WAIT: Duration = Duration::from_secs(1);

impl Backend {
    /// Opens `target`; the embedded file and its queues are created on first use.
    ///
    /// # Errors
    /// A file that cannot be opened, or the registry failing to build.
    pub async fn open(target: &Target) -> Result<Self, BackendError> {
        match target {
            Target::Embedded(dir) => Self::open_embedded(dir, Arc::new(SystemClock)),
            Target::Aws { stack } => {
                let config = jobkit::aws::sdk_config().await;
                let sqs = Arc::new(SqsQueue::new(aws_sdk_sqs::Client::new(&config)));
                // Uniqueness windows are claimed by the code that enqueues, never from the CLI,
                // so the AWS enqueuer never reads this store.
                let unused_store = EmbeddedDb::in_memory().map_err(BackendError::Port)?;
                Ok(Self {
                    queue: sqs.clone(),
                    store: Arc::new(EmbeddedStore::new(unused_store)),
                    kind: Kind::Aws { sqs, stack: stack.clone() },
                })
            }
        }
    }

    /// The embedded backend in `dir`, its queues timed by `clock` (the demo's jumps over
    /// backoffs; the system clock otherwise).
    ///
    /// # Errors
    /// A file that cannot be opened, or the registry failing to build.
    pub fn open_embedded(dir: &Path, clock: SharedClock) -> Result<Self, BackendError> {
        let file = dir.join("jobs.sqlite3");
        let open_error = |source| BackendError::Open { path: file.clone(), source };
        std::fs::create_dir_all(dir).map_err(|e| open_error(PortError::Unavailable(e.to_string())))?;
        let db = EmbeddedDb::open(&file).map_err(open_error)?;
        let queue = Arc::new(EmbeddedQueue::new(db.clone(), clock));
        for spec in registry::specs()? {
            queue.create_queue(&registry::dlq_name(spec.name), QueueConfig::default())?;
            // As the template: visibility 6x the timeout, the DLQ a margin past the attempts.
            let config = QueueConfig {
                visibility_timeout: spec.timeout * 6,
                max_receive_count: Some(spec.policy.max_attempts() + registry::RECEIVE_MARGIN),
                dead_letter_queue: Some(registry::dlq_name(spec.name)),
                fifo: false,
            };
            queue.create_queue(&registry::queue_name(spec.name), config)?;
        }
        Ok(Self {
            queue: queue.clone(),
            store: Arc::new(EmbeddedStore::new(db)),
            kind: Kind::Embedded { queue, file },
        })
    }

    /// Where the commands act, for messages.
    pub fn describe(&self) -> String {
        match &self.kind {
            Kind::Embedded { file, .. } => format!("embedded backend {}", file.display()),
            Kind::Aws { stack, .. } => format!("AWS stack {stack}"),
        }
    }

    /// The queue port.
    pub fn queue(&self) -> Arc<dyn Queue> {
        self.queue.clone()
    }

    /// The state store enqueuers are given.
    pub fn store(&self) -> Arc<dyn StateStore> {
        self.store.clone()
    }

    /// The embedded queue, when this is the embedded backend.
    pub fn embedded(&self) -> Option<&Arc<EmbeddedQueue>> {
        match &self.kind {
            Kind::Embedded { queue, .. } => Some(queue),
            Kind::Aws { .. } => None,
        }
    }

    /// The queue id (embedded name or SQS URL) of `job`'s queue.
    ///
    /// # Errors
    /// [`BackendError::QueueNotFound`] on AWS.
    pub async fn queue_id(&self, job: &str) -> Result<String, BackendError> {
        self.resolve(registry::queue_name(job)).await
    }

    /// The queue id of `job`'s DLQ.
    ///
    /// # Errors
    /// [`BackendError::QueueNotFound`] on AWS.
    pub async fn dlq_id(&self, job: &str) -> Result<String, BackendError> {
        self.resolve(registry::dlq_name(job)).await
    }

    async fn resolve(&self, name: String) -> Result<String, BackendError> {
        match &self.kind {
            Kind::Embedded { .. } => Ok(name),
            Kind::Aws { sqs, stack } => {
                let name = format!("{stack}-{name}");
                sqs.queue_url(&name).await.map_err(|source| BackendError::QueueNotFound {
                    name,
                    stack: stack.clone(),
                    source,
                })
            }
        }
    }

    /// The counts of the queue `id`.
    ///
    /// # Errors
    /// A port error.
    pub async fn counts(&self, id: &str) -> Result<Counts, BackendError> {
        match &self.kind {
            Kind::Embedded { queue, .. } => {
                let stats = queue.stats(id)?;
                let age = stats.oldest_sent_at.map(|t| (Utc::now() - t).num_seconds().max(0).unsigned_abs());
                Ok(Counts {
                    visible: stats.visible,
                    in_flight: stats.in_flight,
                    delayed: stats.delayed,
                    oldest_age_seconds: age,
                })
            }
            Kind::Aws { sqs, .. } => {
                let counts = sqs.approximate_counts(id).await?;
                Ok(Counts {
                    visible: counts.visible,
                    in_flight: counts.in_flight,
                    delayed: counts.delayed,
                    oldest_age_seconds: None,
                })
            }
        }
    }

    /// Up to `limit` messages of the queue `id`, oldest first, left where they are. On AWS they
    /// are received and made visible again at once (their receive count grows by one, which a
    /// DLQ does not act on).
    ///
    /// # Errors
    /// A port error.
    pub async fn list(&self, id: &str, limit: usize) -> Result<Vec<ReceivedMessage>, BackendError> {
        match &self.kind {
            Kind::Embedded { queue, .. } => Ok(queue.peek(id, limit)?),
            Kind::Aws { sqs, .. } => {
                let mut listed: Vec<ReceivedMessage> = Vec::new();
                while listed.len() < limit {
                    let batch = sqs.receive(id, (limit - listed.len()).min(10), LIST_WAIT).await?;
                    let fresh: Vec<ReceivedMessage> = batch
                        .into_iter()
                        .filter(|m| !listed.iter().any(|seen| seen.message_id == m.message_id))
                        .collect();
                    if fresh.is_empty() {
                        break;
                    }
                    listed.extend(fresh);
                }
                for message in &listed {
                    sqs.change_visibility(id, &message.receipt_handle, Duration::ZERO).await?;
                }
                listed.sort_by_key(|m| m.sent_at);
                Ok(listed)
            }
        }
    }

    /// Deletes every message of the queue `id`.
    ///
    /// # Errors
    /// A port error.
    pub async fn purge(&self, id: &str) -> Result<(), BackendError> {
        match &self.kind {
            Kind::Embedded { queue, .. } => {
                queue.purge(id)?;
                Ok(())
            }
            Kind::Aws { sqs, .. } => Ok(sqs.purge(id).await?),
        }
    }
}
