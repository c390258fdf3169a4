//! The `clean_database` job (low lane, daily EventBridge tick at 03:00 UTC): deletes what has
//! been kept long enough. First job state whose expiry passed (idempotency keys, checkpoints;
//! on DynamoDB its TTL does this, so the step finds nothing), then each kind of history record
//! older than its retention: temporary records (1 day), sync runs (30 days), audit entries
//! (365 days). Deletes go 500 at a time with a checkpoint after each batch, so a large backlog
//! continues in a new invocation near the deadline instead of timing out.
//!
//! Arguments: `{}` (the tick adds `$schedule`, which makes a tick delivered twice run once).
//! Settings: `SHOP_HISTORY_TABLE`, `JOBKIT_STATE_TABLE`, and optionally
//! `RETENTION_TEMPORARY_DAYS`, `RETENTION_SYNC_RUN_DAYS`, `RETENTION_AUDIT_LOG_DAYS`.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use jobkit::{ErrorKind, Job, JobContext, JobError, Lane, RetryPolicy, Wait, lambda::setting};
use serde::{Deserialize, Serialize};
use shop::{
    History, RecordKind,
    aws::DynamoHistory,
    services::{Retention, RetentionCleaner},
};

/// Records deleted between checkpoints.
pub const BATCH: usize = 500;
/// The step that purges expired job state.
const JOB_STATE_STEP: &str = "job_state";

/// No arguments: `{}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CleanDatabaseArgs {}

/// Deleted so far per step, carried across continuations in the checkpoints.
type Totals = BTreeMap<String, u64>;

/// The job.
#[derive(Debug, Clone)]
pub struct CleanDatabase {
    cleaner: RetentionCleaner,
}

impl CleanDatabase {
    /// The job on a cleaner.
    pub fn new(cleaner: RetentionCleaner) -> Self {
        Self { cleaner }
    }

    /// The job on AWS: the history on DynamoDB (`SHOP_HISTORY_TABLE`), jobkit's state table
    /// (`JOBKIT_STATE_TABLE`), retention in days from `RETENTION_<KIND>_DAYS`.
    ///
    /// # Errors
    /// A missing table setting, or a retention that is not a positive whole number of days.
    pub async fn from_aws(sdk: jobkit::lambda::SdkConfig) -> Result<Self, jobkit::lambda::Error> {
        let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
        let history: Arc<dyn History> =
            Arc::new(DynamoHistory::new(dynamo.clone(), setting("SHOP_HISTORY_TABLE")?));
        let job_state = Arc::new(jobkit::aws::DynamoStore::new(dynamo, setting("JOBKIT_STATE_TABLE")?));
        let mut retention = Retention::default();
        for (kind, name) in [
            (RecordKind::Temporary, "RETENTION_TEMPORARY_DAYS"),
            (RecordKind::SyncRun, "RETENTION_SYNC_RUN_DAYS"),
            (RecordKind::AuditLog, "RETENTION_AUDIT_LOG_DAYS"),
        ] {
            let default_days = u32::try_from(kind.default_retention().num_days()).unwrap_or(u32::MAX);
            let days = jobkit::lambda::positive_setting(name, default_days)?;
            retention = retention.keep(kind, chrono::Duration::days(days.into()));
        }
        Ok(Self::new(RetentionCleaner::new(history, job_state, retention)))
    }

    /// Runs `purge` (one bounded batch) until a batch comes back short, checkpointing the totals
    /// after each full batch so a continuation picks up the count where this one stopped.
    async fn purge_step<F, Fut>(
        &self,
        step: &str,
        totals: &mut Totals,
        ctx: &mut JobContext,
        purge: F,
    ) -> Result<(), JobError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<usize, JobError>>,
    {
        if ctx.step_done(step) {
            return Ok(());
        }
        loop {
            let deleted = purge().await?;
            *totals.entry(step.to_owned()).or_default() += deleted as u64;
            if deleted < BATCH {
                break;
            }
            ctx.checkpoint(step, &*totals).await?;
        }
        ctx.complete_step(step).await
    }
}

impl Job for CleanDatabase {
    type Args = CleanDatabaseArgs;
    const NAME: &'static str = "clean_database";
    const LANE: Lane = Lane::Low;

    async fn perform(&self, _args: CleanDatabaseArgs, ctx: &mut JobContext) -> Result<(), JobError> {
        let now = ctx.now();
        // A continuation resumes inside one step; its checkpoint carries every step's count so far.
        let mut steps = std::iter::once(JOB_STATE_STEP).chain(RecordKind::ALL.iter().map(|k| k.as_str()));
        let mut totals: Totals = steps.find_map(|step| ctx.cursor(step)).unwrap_or_default();
        self.purge_step(JOB_STATE_STEP, &mut totals, ctx, || self.cleaner.purge_job_state(now, BATCH))
            .await?;
        for kind in RecordKind::ALL {
            self.purge_step(kind.as_str(), &mut totals, ctx, || self.cleaner.purge_history(kind, now, BATCH))
                .await?;
        }
        tracing::info!(deleted = ?totals, "database cleaned");
        Ok(())
    }

    /// Storage outages retry (5 attempts, polynomial waits); a corrupt record goes to the DLQ.
    fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy::new()
            .retry_on([ErrorKind::UNAVAILABLE, ErrorKind::THROTTLED, ErrorKind::TIMEOUT], Wait::Polynomial, 5)
            .discard_on([ErrorKind::CORRUPT_RECORD])
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(300)
    }
}
