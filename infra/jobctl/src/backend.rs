//! Where jobctl's commands act: the embedded file that `jobctl dev` runs on (the default), or a
//! deployed stack's queues on AWS (`--aws`). Both speak jobkit's [`Queue`] port; this adds what
//! only operators need: finding a job's queues, counting, listing and purging them.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use aws_sdk_sqs::types::QueueAttributeName;
use chrono::{DateTime, Utc};
use jobkit::{
    PortError,
    aws::{DynamoStore, SqsQueue},
    batch::BatchStatus,
    clock::{SharedClock, SystemClock},
    embedded::{EmbeddedDb, EmbeddedQueue, EmbeddedStore, QueueConfig},
    message::ReceivedMessage,
    ports::{Queue, StateStore},
};

use crate::registry::{self, JobSpec, RegistryError};

/// The most state keys a batch listing reads (a batch is four: its record and three counters):
/// 14 days of a 15-minute fan-out is 1,344 batches.
const MAX_BATCH_KEYS: usize = 10_000;

/// The embedded backend's folder when none is given.
pub const DEFAULT_DIR: &str = ".jobs";
/// The stack `--aws` looks for when none is given (`samconfig.toml`'s).
pub const DEFAULT_STACK: &str = "store-jobs";
/// The template's logical id of jobkit's state table (the functions' `JOBKIT_STATE_TABLE`).
/// Unlike the queues it has no name of the stack's making: CloudFormation names it
/// (`<stack>-JobStateTable-<suffix>`), so jobctl asks the stack. Naming it in the template
/// instead would replace the table, and with it every idempotency record, on the next deploy.
pub const STATE_TABLE_LOGICAL_ID: &str = "JobStateTable";

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
    /// The stack's state table could not be found through CloudFormation.
    #[error(
        "cannot find the state table of stack {stack:?} (CloudFormation's resource {STATE_TABLE_LOGICAL_ID}): {message}"
    )]
    StateTableNotFound {
        /// The stack.
        stack: String,
        /// CloudFormation's answer.
        message: String,
    },
    /// A job's function (or its event source mapping) is not in the stack.
    #[error("cannot find {job}'s function in stack {stack:?}: {message}")]
    FunctionNotFound {
        /// The job.
        job: String,
        /// The stack.
        stack: String,
        /// CloudFormation's or Lambda's answer.
        message: String,
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

    /// These counts and `other`'s together (a job's queues across its lanes): the oldest is
    /// the older of the two.
    #[must_use]
    pub fn plus(&self, other: &Self) -> Self {
        Self {
            visible: self.visible + other.visible,
            in_flight: self.in_flight + other.in_flight,
            delayed: self.delayed + other.delayed,
            oldest_age_seconds: self.oldest_age_seconds.max(other.oldest_age_seconds),
        }
    }
}

enum Kind {
    Embedded { queue: Arc<EmbeddedQueue>, file: PathBuf, store: EmbeddedStore },
    Aws { sqs: Arc<SqsQueue>, clients: AwsClients, stack: String },
}

/// The clients only operators need on AWS (creating one makes no request).
struct AwsClients {
    sqs: aws_sdk_sqs::Client,
    cloudformation: aws_sdk_cloudformation::Client,
    dynamodb: aws_sdk_dynamodb::Client,
    lambda: aws_sdk_lambda::Client,
    /// The stack's resources (logical id -> physical id), listed once per backend: `stats`
    /// asks for every job's function.
    resources: tokio::sync::OnceCell<std::collections::HashMap<String, String>>,
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
                let clients = AwsClients {
                    sqs: aws_sdk_sqs::Client::new(&config),
                    cloudformation: aws_sdk_cloudformation::Client::new(&config),
                    dynamodb: aws_sdk_dynamodb::Client::new(&config),
                    lambda: aws_sdk_lambda::Client::new(&config),
                    resources: tokio::sync::OnceCell::new(),
                };
                let sqs = Arc::new(SqsQueue::new(clients.sqs.clone()));
                // Uniqueness windows are claimed by the code that enqueues, never from the CLI,
                // so the AWS enqueuer never reads this store.
                let unused_store = EmbeddedDb::in_memory().map_err(BackendError::Port)?;
                Ok(Self {
                    queue: sqs.clone(),
                    store: Arc::new(EmbeddedStore::new(unused_store)),
                    kind: Kind::Aws { sqs, clients, stack: stack.clone() },
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
            queue.create_queue(&registry::queue_name(spec.name), embedded_queue_config(&spec))?;
            for &lane in spec.other_lanes {
                let lane_queue = jobkit::job::lane_queue_name(spec.name, lane);
                queue.create_queue(&lane_queue, embedded_queue_config(&spec))?;
            }
        }
        let store = EmbeddedStore::new(db);
        Ok(Self {
            queue: queue.clone(),
            store: Arc::new(store.clone()),
            kind: Kind::Embedded { queue, file, store },
        })
    }

    /// The receives after which `job`'s queue moves a message to its DLQ (`maxReceiveCount` of
    /// its redrive policy); `None` when it has none.
    ///
    /// A message SQS moved had this many receives (unless the policy changed since). The DLQ's
    /// own receive count does not say so for long: SQS (and moto) carry the count over, and
    /// every receive from the DLQ, a listing's included, adds one.
    ///
    /// # Errors
    /// [`BackendError::QueueNotFound`] on AWS; a port error.
    pub async fn max_receive_count(&self, job: &str) -> Result<Option<u32>, BackendError> {
        match &self.kind {
            Kind::Embedded { .. } => Ok(embedded_queue_config(&registry::spec(job)?).max_receive_count),
            Kind::Aws { clients, .. } => {
                let url = self.queue_id(job).await?;
                let out = clients
                    .sqs
                    .get_queue_attributes()
                    .queue_url(&url)
                    .attribute_names(QueueAttributeName::RedrivePolicy)
                    .send()
                    .await
                    .map_err(|e| {
                        PortError::Unavailable(format!(
                            "GetQueueAttributes: {}",
                            aws_sdk_sqs::error::DisplayErrorContext(e)
                        ))
                    })?;
                let policy = out.attributes().and_then(|a| a.get(&QueueAttributeName::RedrivePolicy));
                Ok(policy.and_then(|p| redrive_max_receive_count(p)))
            }
        }
    }

    /// The state store the jobs' runners write (the last error per job id among others): the
    /// embedded file, or on AWS the stack's state table, named by CloudFormation.
    ///
    /// # Errors
    /// [`BackendError::StateTableNotFound`] when CloudFormation does not name it.
    pub async fn job_state(&self) -> Result<Arc<dyn StateStore>, BackendError> {
        match &self.kind {
            Kind::Embedded { .. } => Ok(self.store.clone()),
            Kind::Aws { clients, stack, .. } => Ok(Arc::new(Self::state_table(clients, stack).await?)),
        }
    }

    /// The batches of each of `jobs`' members, newest first, at most `limit` a job.
    ///
    /// # Errors
    /// The state store failing (on AWS: one scan of the state table, which needs `dynamodb:Scan`).
    pub async fn batches(&self, jobs: &[&str], limit: usize) -> Result<Vec<BatchStatus>, BackendError> {
        let now = Utc::now();
        let prefixes: Vec<String> = jobs.iter().map(|job| jobkit::batch::keys_prefix(job)).collect();
        let (keys, store): (Vec<String>, Arc<dyn StateStore>) = match &self.kind {
            Kind::Embedded { store, .. } => {
                let mut keys = Vec::new();
                for prefix in &prefixes {
                    keys.extend(store.keys_with_prefix(prefix, now, MAX_BATCH_KEYS)?);
                }
                (keys, self.store.clone())
            }
            Kind::Aws { clients, stack, .. } => {
                let table = Self::state_table(clients, stack).await?;
                (table.keys_with_prefixes(&prefixes, now, MAX_BATCH_KEYS).await?, Arc::new(table))
            }
        };
        let mut batches = Vec::new();
        for &job in jobs {
            // Newest first by each record's opening (one read), then the counts of those shown.
            let mut opened = Vec::new();
            for id in keys.iter().filter_map(|key| jobkit::batch::batch_id_of_key(job, key)) {
                if let Some(at) = jobkit::batch::opened_at(store.as_ref(), job, id, now).await? {
                    opened.push((at, id));
                }
            }
            opened.sort_by_key(|(at, _)| std::cmp::Reverse(*at));
            for (_, id) in opened.into_iter().take(limit) {
                batches.extend(jobkit::batch::status(store.as_ref(), job, id, now).await?);
            }
        }
        batches.sort_by_key(|b| std::cmp::Reverse(b.created_at));
        Ok(batches)
    }

    /// The stack's state table (CloudFormation names it).
    async fn state_table(clients: &AwsClients, stack: &str) -> Result<DynamoStore, BackendError> {
        let not_found =
            |message: String| BackendError::StateTableNotFound { stack: stack.to_owned(), message };
        let out = clients
            .cloudformation
            .describe_stack_resource()
            .stack_name(stack)
            .logical_resource_id(STATE_TABLE_LOGICAL_ID)
            .send()
            .await
            .map_err(|e| not_found(aws_sdk_cloudformation::error::DisplayErrorContext(e).to_string()))?;
        let table = out
            .stack_resource_detail()
            .and_then(|d| d.physical_resource_id())
            .ok_or_else(|| not_found("the resource has no physical id yet".to_owned()))?;
        Ok(DynamoStore::new(clients.dynamodb.clone(), table))
    }

    /// Pauses (`true`) or resumes `job`'s processing; messages wait in its queue meanwhile. On
    /// AWS: the event source mappings of the job's function, disabled or enabled (Sidekiq
    /// Enterprise's queue pause); embedded: a mark `jobctl dev` reads before each batch.
    ///
    /// # Errors
    /// The function or its mapping not found on AWS; a port error.
    pub async fn set_paused(&self, job: &str, paused: bool) -> Result<(), BackendError> {
        let Kind::Aws { clients, .. } = &self.kind else {
            let key = paused_key(job);
            if paused {
                self.store.put(&key, "paused", DateTime::<Utc>::MAX_UTC).await?;
            } else {
                self.store.delete(&key).await?;
            }
            return Ok(());
        };
        for uuid in self.mappings(job).await?.into_iter().map(|(uuid, _)| uuid) {
            let update = clients.lambda.update_event_source_mapping().uuid(&uuid).enabled(!paused);
            update.send().await.map_err(|e| lambda_error("UpdateEventSourceMapping", e))?;
        }
        Ok(())
    }

    /// Whether `job`'s processing is paused (on AWS: every mapping of its function disabled).
    ///
    /// # Errors
    /// As [`Backend::set_paused`].
    pub async fn is_paused(&self, job: &str) -> Result<bool, BackendError> {
        match &self.kind {
            Kind::Embedded { .. } => Ok(self.store.get(&paused_key(job), Utc::now()).await?.is_some()),
            Kind::Aws { .. } => {
                let mappings = self.mappings(job).await?;
                Ok(!mappings.is_empty() && mappings.iter().all(|(_, state)| state.starts_with("Disabl")))
            }
        }
    }

    /// The event source mappings (uuid, state) of `job`'s function on the stack.
    async fn mappings(&self, job: &str) -> Result<Vec<(String, String)>, BackendError> {
        let Kind::Aws { clients, stack, .. } = &self.kind else { return Ok(Vec::new()) };
        let logical = format!("{}Function", crate::template::logical_id(job));
        let not_found = |message: String| BackendError::FunctionNotFound {
            job: job.to_owned(),
            stack: stack.clone(),
            message,
        };
        // ListStackResources: moto answers DescribeStackResource(s) for a function with a 500.
        let resources = clients
            .resources
            .get_or_try_init(|| async {
                let mut found = std::collections::HashMap::new();
                let mut pages =
                    clients.cloudformation.list_stack_resources().stack_name(stack).into_paginator().send();
                while let Some(page) = pages.next().await {
                    let page =
                        page.map_err(|e| aws_sdk_cloudformation::error::DisplayErrorContext(e).to_string())?;
                    for r in page.stack_resource_summaries() {
                        if let (Some(logical), Some(physical)) =
                            (r.logical_resource_id(), r.physical_resource_id())
                        {
                            found.insert(logical.to_owned(), physical.to_owned());
                        }
                    }
                }
                Ok::<_, String>(found)
            })
            .await
            .map_err(&not_found)?;
        let function = resources.get(&logical).cloned();
        let function = function.ok_or_else(|| not_found(format!("no {logical} with a physical id")))?;
        let listed = clients
            .lambda
            .list_event_source_mappings()
            .function_name(&function)
            .send()
            .await
            .map_err(|e| lambda_error("ListEventSourceMappings", e))?;
        let mappings: Vec<(String, String)> = listed
            .event_source_mappings()
            .iter()
            .filter_map(|m| Some((m.uuid()?.to_owned(), m.state().unwrap_or_default().to_owned())))
            .collect();
        if mappings.is_empty() {
            return Err(not_found(format!("{function} has no event source mapping")));
        }
        Ok(mappings)
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

    /// Where a job of `spec` is sent: its queue and each of its other lanes'.
    ///
    /// # Errors
    /// [`BackendError::QueueNotFound`] on AWS.
    pub async fn routes(
        &self,
        spec: &registry::JobSpec,
    ) -> Result<jobkit::enqueue::QueueRoutes, BackendError> {
        let mut routes =
            jobkit::enqueue::QueueRoutes::default().with(spec.name, self.queue_id(spec.name).await?);
        for &lane in spec.other_lanes {
            routes = routes.with_lane(spec.name, lane, self.lane_queue_id(spec.name, lane).await?);
        }
        Ok(routes)
    }

    /// The queue id of `job`'s other lane `lane` (`store-sync-low`).
    ///
    /// # Errors
    /// [`BackendError::QueueNotFound`] on AWS.
    pub async fn lane_queue_id(&self, job: &str, lane: jobkit::Lane) -> Result<String, BackendError> {
        self.resolve(jobkit::job::lane_queue_name(job, lane)).await
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
            Kind::Aws { sqs, stack, .. } => {
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
                let mut seen = std::collections::HashSet::new();
                while listed.len() < limit {
                    let batch = sqs.receive(id, (limit - listed.len()).min(10), LIST_WAIT).await?;
                    let fresh: Vec<ReceivedMessage> =
                        batch.into_iter().filter(|m| seen.insert(m.message_id.clone())).collect();
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

/// A job's queue on the embedded backend, as the template has it: visibility 6x the timeout,
/// the DLQ a margin past the attempts.
fn embedded_queue_config(spec: &JobSpec) -> QueueConfig {
    QueueConfig {
        visibility_timeout: spec.timeout * 6,
        max_receive_count: Some(spec.policy.max_attempts() + registry::RECEIVE_MARGIN),
        dead_letter_queue: Some(registry::dlq_name(spec.name)),
        fifo: false,
    }
}

/// `maxReceiveCount` of an SQS redrive policy (JSON; SQS writes the number as a number or, when
/// it was set so, as a string).
fn redrive_max_receive_count(policy: &str) -> Option<u32> {
    let policy: serde_json::Value = serde_json::from_str(policy).ok()?;
    match &policy["maxReceiveCount"] {
        serde_json::Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        serde_json::Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// The embedded backend's mark that `job` is paused, in the jobs' state store.
fn paused_key(job: &str) -> String {
    format!("{job}:paused")
}

fn lambda_error<E: std::error::Error + Send + Sync + 'static>(
    call: &str,
    e: aws_sdk_lambda::error::SdkError<E>,
) -> PortError {
    PortError::Unavailable(format!("{call}: {}", aws_sdk_lambda::error::DisplayErrorContext(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redrive_policy_gives_its_max_receive_count_as_a_number_or_a_string() {
        let arn = "arn:aws:sqs:us-east-1:1:store-jobs-store-sync-dlq";
        let policy = |count: &str| format!(r#"{{"deadLetterTargetArn":"{arn}","maxReceiveCount":{count}}}"#);
        assert_eq!(redrive_max_receive_count(&policy("15")), Some(15));
        assert_eq!(redrive_max_receive_count(&policy(r#""15""#)), Some(15));
        assert_eq!(redrive_max_receive_count(r#"{"deadLetterTargetArn":"x"}"#), None);
        assert_eq!(redrive_max_receive_count("not json"), None);
    }
}
