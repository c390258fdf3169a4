//! The `customer_sync` job (default lane): pulls a store's customers from the POS (Square's
//! Customers API) with their completed orders (Orders search) summed up, and upserts the
//! profiles: name, email, phone (E.164 or left out), order count, total spent, preferences.
//! The customer cursor is a checkpointed step, as in `store_sync`. A customer that cannot be
//! read (no id, a field of the wrong type) is set aside (`JobContext::set_aside`: logged,
//! counted, emailed once) and not written; an order that cannot be read (an amount that is not
//! an integer...) is set aside by its id and left out of its customer's totals. The run goes on.
//!
//! Each finished run is recorded in the history (a sync run, kept 30 days).
//!
//! Arguments: `{"store_id": "st_42"}`. Settings: `SHOP_STORES_TABLE`, `SHOP_CUSTOMERS_TABLE`,
//! `SHOP_HISTORY_TABLE`, `SHOP_SECRET_PREFIX` (the store's `<prefix>/<store id>/square` secret),
//! `SQUARE_BASE_URL` (default production; `https` unless `SHOP_SANDBOX=true`).

use std::{sync::Arc, time::Duration};

use jobkit::{ConcurrencyLimit, Discarded, ErrorKind, Job, JobContext, JobError, RetryPolicy};
use serde::{Deserialize, Serialize};
use shop::{
    BuildError, History, HistoryEntry, ShopPorts, StoreRepository,
    declaration::{Declaration, Deployment, Platform, Setting, ShopJob, Table, TableUse, Uses},
    services::CustomerSync,
};

const CUSTOMERS_STEP: &str = "customers";

/// Where the sync stands, the customers step's cursor, checkpointed between pages.
#[derive(Debug, Serialize, Deserialize)]
struct Progress {
    /// The next page's cursor (`None` before the first page and after the last).
    cursor: Option<String>,
    /// Profiles upserted so far, across continuations.
    customers: u64,
    /// When the run's first execution started.
    started_at: chrono::DateTime<chrono::Utc>,
}

/// `{"store_id": "st_42"}`: the type other jobs enqueue this one with (`shop::jobs`).
pub use shop::jobs::CustomerSyncArgs;

/// The job, on its ports.
#[derive(Debug, Clone)]
pub struct CustomerSyncJob {
    stores: Arc<dyn StoreRepository>,
    sync: CustomerSync,
    history: Arc<dyn History>,
}

impl CustomerSyncJob {
    /// The job on a store repository and a customer sync service.
    pub fn new(stores: Arc<dyn StoreRepository>, sync: CustomerSync, history: Arc<dyn History>) -> Self {
        Self { stores, sync, history }
    }
}

impl ShopJob for CustomerSyncJob {
    const DECLARATION: Declaration = Declaration {
        summary: "pulls a store's customers and their order totals from the POS (Square)",
        example: r#"{"store_id":"st_42"}"#,
        schedule: None,
        deployment: Deployment::SYNC,
        uses: Uses {
            tables: &[
                TableUse { table: Table::Stores, index: None, actions: &["dynamodb:GetItem"], why: "read" },
                TableUse {
                    table: Table::Customers,
                    index: None,
                    actions: &["dynamodb:BatchWriteItem"],
                    why: "upserts, 25 at a time",
                },
                TableUse {
                    table: Table::History,
                    index: None,
                    actions: &["dynamodb:PutItem"],
                    why: "one sync run per finished sync",
                },
            ],
            tokens: &[Platform::Square],
            settings: &[Setting { env: "SQUARE_BASE_URL", parameter: "SquareBaseUrl" }],
            ..Uses::NOTHING
        },
    };

    /// Stores and customers, tokens from the store's secret, Square (`SQUARE_BASE_URL`).
    fn build(ports: &ShopPorts) -> Result<Self, BuildError> {
        let sync = CustomerSync::new(ports.square()?, ports.customers()?, ports.credentials()?);
        Ok(Self::new(ports.stores()?, sync, ports.history()?))
    }
}

impl Job for CustomerSyncJob {
    type Args = CustomerSyncArgs;
    const NAME: &'static str = "customer_sync";

    /// Rate limits, timeouts and outages retry (8 attempts, polynomial waits); an unknown store,
    /// a store without a POS, a refused token or a rejected request go to the DLQ.
    fn retry_policy() -> RetryPolicy {
        shop::policy::integration_policy(8)
    }

    const TIMEOUT: Duration = Duration::from_secs(300);

    async fn perform(&self, args: CustomerSyncArgs, ctx: &mut JobContext) -> Result<(), JobError> {
        let Some(store) = self.stores.get(&args.store_id).await? else {
            return Err(JobError::permanent(
                ErrorKind::NOT_FOUND,
                format!("unknown store {}", args.store_id),
            ));
        };
        let start = Progress { cursor: None, customers: 0, started_at: ctx.now() };
        let progress = ctx
            .step(CUSTOMERS_STEP, start, async |step| {
                loop {
                    let page = self.sync.sync_page(&store, step.cursor().cursor.as_deref()).await?;
                    // A customer or an order that cannot be read is reported and gone past.
                    for record in &page.set_aside {
                        step.context().set_aside(&record.id, &record.reason).await;
                    }
                    let progress = step.cursor_mut();
                    progress.customers += page.upserted as u64;
                    progress.cursor = page.next_cursor;
                    if progress.cursor.is_none() {
                        return Ok(());
                    }
                    step.checkpoint().await?;
                }
            })
            .await?;
        let run = HistoryEntry::sync_run(
            Self::NAME,
            ctx.meta().job_id.as_str(),
            &store.id,
            progress.started_at,
            ctx.now(),
            serde_json::json!({ "customers": progress.customers }),
        );
        self.history.append(&run).await?;
        tracing::info!(store = %store.id, customers = progress.customers, "customers synced");
        Ok(())
    }

    /// A customer sync that landed in the DLQ is in the store's sync history with the reason.
    async fn after_discard(&self, args: &CustomerSyncArgs, discarded: &Discarded) -> Result<(), JobError> {
        let reason = format!("{}: {}", discarded.kind, discarded.message);
        let run = HistoryEntry::sync_failed(
            Self::NAME,
            discarded.job_id.as_str(),
            &args.store_id,
            discarded.at,
            &reason,
        );
        self.history.append(&run).await?;
        Ok(())
    }

    /// One customer sync of a store at a time: two would page through the POS side by side.
    fn concurrency_limit(&self, args: &CustomerSyncArgs) -> Option<ConcurrencyLimit> {
        Some(ConcurrencyLimit::one_per(args.store_id.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use jobkit::Job;

    use super::CustomerSyncJob;

    #[test]
    fn jobs_that_enqueue_this_one_find_it_by_its_name() {
        assert_eq!(shop::jobs::CUSTOMER_SYNC.name(), CustomerSyncJob::NAME);
    }
}
