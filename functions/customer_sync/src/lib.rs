//! The `customer_sync` job (default lane): pulls a store's customers from the POS (Square's
//! Customers API) with their completed orders (Orders search) summed up, and upserts the
//! profiles: name, email, phone (E.164 or left out), order count, total spent, preferences.
//! The customer cursor is a checkpointed step, as in `store_sync`.
//!
//! Each finished run is recorded in the history (a sync run, kept 30 days).
//!
//! Arguments: `{"store_id": "st_42"}`. Settings: `SHOP_STORES_TABLE`, `SHOP_CUSTOMERS_TABLE`,
//! `SHOP_HISTORY_TABLE`, `SHOP_SECRET_PREFIX` (the secret's `square_token`), `SQUARE_BASE_URL`
//! (default production).

use std::{sync::Arc, time::Duration};

use jobkit::{
    ConcurrencyLimit, Discarded, ErrorKind, Job, JobContext, JobError, RetryPolicy, lambda::setting,
};
use serde::{Deserialize, Serialize};
use shop::{
    History, HistoryEntry, StoreRepository,
    aws::{DynamoCustomers, DynamoHistory, DynamoStores, SecretsManagerCredentials},
    services::CustomerSync,
    square::{SquareClient, SquareConfig},
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

    /// The job on AWS: stores and customers on DynamoDB, tokens in Secrets Manager.
    ///
    /// # Errors
    /// A missing setting, or an HTTP client that cannot be built.
    pub async fn from_aws(sdk: jobkit::lambda::SdkConfig) -> Result<Self, jobkit::lambda::Error> {
        let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
        let stores = Arc::new(DynamoStores::new(dynamo.clone(), setting("SHOP_STORES_TABLE")?));
        let customers = Arc::new(DynamoCustomers::new(dynamo.clone(), setting("SHOP_CUSTOMERS_TABLE")?));
        let history = Arc::new(DynamoHistory::new(dynamo, setting("SHOP_HISTORY_TABLE")?));
        let secrets = aws_sdk_secretsmanager::Client::new(&sdk);
        let credentials = Arc::new(SecretsManagerCredentials::new(secrets, setting("SHOP_SECRET_PREFIX")?));
        let mut config = SquareConfig::default();
        if let Ok(base) = std::env::var("SQUARE_BASE_URL") {
            config.base_url = base;
        }
        let sync = CustomerSync::new(SquareClient::new(config)?, customers, credentials);
        Ok(Self::new(stores, sync, history))
    }
}

impl Job for CustomerSyncJob {
    type Args = CustomerSyncArgs;
    const NAME: &'static str = "customer_sync";

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

    /// Rate limits, timeouts and outages retry (8 attempts, polynomial waits); an unknown store,
    /// a store without a POS, a refused token or a rejected request go to the DLQ.
    fn retry_policy(&self) -> RetryPolicy {
        shop::policy::integration_policy(8)
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(300)
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
