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

use std::{collections::BTreeMap, time::Duration};

use jobkit::{ErrorKind, Job, JobContext, JobError, Lane, RetryPolicy, Wait};
use serde::{Deserialize, Serialize};
use shop::{
    BuildError, RecordKind, ShopPorts,
    declaration::{Declaration, Deployment, Schedule, Setting, ShopJob, Table, TableUse, Uses, Zone},
    services::{Retention, RetentionCleaner},
};

/// Records deleted between checkpoints.
pub const BATCH: usize = 500;
/// The step that purges expired job state.
const JOB_STATE_STEP: &str = "job_state";

/// No arguments: `{}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CleanDatabaseArgs {}

/// Deleted so far per step, the steps' cursor: each step starts from the previous one's, so the
/// totals carry across steps and continuations.
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

    /// Step `name`: runs `purge` (one bounded batch) until a batch comes back short, with a
    /// checkpoint after each full one. Its cursor is the totals, from the previous step's.
    async fn purge_step<F, Fut>(
        ctx: &mut JobContext,
        name: &str,
        totals: Totals,
        purge: F,
    ) -> Result<Totals, JobError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<usize, JobError>>,
    {
        ctx.step(name, totals, async |step| {
            loop {
                let deleted = purge().await?;
                *step.cursor_mut().entry(name.to_owned()).or_default() += deleted as u64;
                if deleted < BATCH {
                    return Ok(());
                }
                step.checkpoint().await?;
            }
        })
        .await
    }
}

impl ShopJob for CleanDatabase {
    const DECLARATION: Declaration = Declaration {
        summary: "deletes records past their retention (sync runs, audit entries, temporary records, job state)",
        example: "{}",
        // At night where the store platform's operators are: the deployment says where.
        schedule: Some(Schedule {
            rule: "clean-database-daily",
            every: "every day at 3am",
            zone: Zone::Stack,
            args: "{}",
            what: "deletes what is past its retention",
        }),
        deployment: Deployment::CLEANUP,
        uses: Uses {
            tables: &[
                TableUse {
                    table: Table::History,
                    index: None,
                    actions: &["dynamodb:BatchWriteItem"],
                    why: "deletes, 25 at a time",
                },
                TableUse {
                    table: Table::History,
                    index: Some("by_kind_time"),
                    actions: &["dynamodb:Query"],
                    why: "the oldest records of a kind",
                },
            ],
            settings: &[
                Setting { env: "RETENTION_TEMPORARY_DAYS", parameter: "RetentionTemporaryDays" },
                Setting { env: "RETENTION_SYNC_RUN_DAYS", parameter: "RetentionSyncRunDays" },
                Setting { env: "RETENTION_AUDIT_LOG_DAYS", parameter: "RetentionAuditLogDays" },
            ],
            ..Uses::NOTHING
        },
    };

    /// The history, jobkit's state store, and retention in days from `RETENTION_<KIND>_DAYS`.
    fn build(ports: &ShopPorts) -> Result<Self, BuildError> {
        let mut retention = Retention::default();
        for (kind, name) in [
            (RecordKind::Temporary, "RETENTION_TEMPORARY_DAYS"),
            (RecordKind::SyncRun, "RETENTION_SYNC_RUN_DAYS"),
            (RecordKind::AuditLog, "RETENTION_AUDIT_LOG_DAYS"),
        ] {
            let default_days = u32::try_from(kind.default_retention().num_days()).unwrap_or(u32::MAX);
            let days = ports.positive_setting(name, default_days)?;
            retention = retention.keep(kind, chrono::Duration::days(days.into()));
        }
        Ok(Self::new(RetentionCleaner::new(ports.history()?, ports.job_state()?, retention)))
    }
}

impl Job for CleanDatabase {
    type Args = CleanDatabaseArgs;
    const NAME: &'static str = "clean_database";
    const LANE: Lane = Lane::Low;

    /// Storage outages and throttles retry (5 attempts, polynomial waits); a corrupt record goes
    /// to the DLQ, and so does what the table refuses (a missing table or index, access denied:
    /// permanent, naming the table and the operation).
    fn retry_policy() -> RetryPolicy {
        RetryPolicy::new()
            .retry_on([ErrorKind::UNAVAILABLE, ErrorKind::THROTTLED, ErrorKind::TIMEOUT], Wait::Polynomial, 5)
            .discard_on([ErrorKind::CORRUPT_RECORD])
    }

    const TIMEOUT: Duration = Duration::from_secs(300);

    async fn perform(&self, _args: CleanDatabaseArgs, ctx: &mut JobContext) -> Result<(), JobError> {
        let now = ctx.now();
        let purge_job_state = || self.cleaner.purge_job_state(now, BATCH);
        let mut totals = Self::purge_step(ctx, JOB_STATE_STEP, Totals::new(), purge_job_state).await?;
        for kind in RecordKind::ALL {
            let purge_kind = || self.cleaner.purge_history(kind, now, BATCH);
            totals = Self::purge_step(ctx, kind.as_str(), totals, purge_kind).await?;
        }
        tracing::info!(deleted = ?totals, "database cleaned");
        Ok(())
    }
}
