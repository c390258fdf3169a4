//! The `customer_sync` job (queue `default`): pulls a store's customers from the POS (Square's
//! Customers API) with their completed orders (Orders search) summed up, and upserts the
//! profiles: name, email, phone (E.164 or left out), order count, total spent, preferences.
//! The customer cursor is a checkpointed step, as in `store_sync`.
//!
//! Arguments: `{"store_id": "st_42"}`. Settings: `SHOP_STORES_TABLE`, `SHOP_CUSTOMERS_TABLE`,
//! `SHOP_SECRET_PREFIX` (the secret's `square_token`), `SQUARE_BASE_URL` (default production).

use std::{sync::Arc, time::Duration};

use jobkit::{ErrorKind, Job, JobContext, JobError, RetryPolicy, lambda::setting};
use serde::{Deserialize, Serialize};
use shop::{
    StoreId, StoreRepository,
    aws::{DynamoCustomers, DynamoStores, SecretsManagerCredentials},
    services::CustomerSync,
    square::{SquareClient, SquareConfig},
};

const CUSTOMERS_STEP: &str = "customers";

/// `{"store_id": "st_42"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerSyncArgs {
    /// The store whose POS customers to sync.
    pub store_id: StoreId,
}

/// The job, on its ports.
#[derive(Debug, Clone)]
pub struct CustomerSyncJob {
    stores: Arc<dyn StoreRepository>,
    sync: CustomerSync,
}

impl CustomerSyncJob {
    /// The job on a store repository and a customer sync service.
    pub fn new(stores: Arc<dyn StoreRepository>, sync: CustomerSync) -> Self {
        Self { stores, sync }
    }

    /// The job on AWS: stores and customers on DynamoDB, tokens in Secrets Manager.
    ///
    /// # Errors
    /// A missing setting, or an HTTP client that cannot be built.
    pub async fn from_aws(sdk: aws_config::SdkConfig) -> Result<Self, jobkit::lambda::Error> {
        let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
        let stores = Arc::new(DynamoStores::new(dynamo.clone(), setting("SHOP_STORES_TABLE")?));
        let customers = Arc::new(DynamoCustomers::new(dynamo, setting("SHOP_CUSTOMERS_TABLE")?));
        let secrets = aws_sdk_secretsmanager::Client::new(&sdk);
        let credentials = Arc::new(SecretsManagerCredentials::new(secrets, setting("SHOP_SECRET_PREFIX")?));
        let mut config = SquareConfig::default();
        if let Ok(base) = std::env::var("SQUARE_BASE_URL") {
            config.base_url = base;
        }
        Ok(Self::new(stores, CustomerSync::new(SquareClient::new(config)?, customers, credentials)))
    }
}

impl Job for CustomerSyncJob {
    type Args = CustomerSyncArgs;
    const NAME: &'static str = "customer_sync";
    const QUEUE: &'static str = "default";

    async fn perform(&self, args: CustomerSyncArgs, ctx: &mut JobContext) -> Result<(), JobError> {
        let Some(store) = self.stores.get(&args.store_id).await? else {
            return Err(JobError::permanent(
                ErrorKind::NOT_FOUND,
                format!("unknown store {}", args.store_id),
            ));
        };
        if !ctx.step_done(CUSTOMERS_STEP) {
            let mut cursor: Option<String> = ctx.cursor(CUSTOMERS_STEP);
            let mut synced = 0usize;
            loop {
                let page = self.sync.sync_page(&store, cursor.as_deref()).await?;
                synced += page.upserted;
                let Some(next) = page.next_cursor else { break };
                ctx.checkpoint(CUSTOMERS_STEP, &next).await?;
                cursor = Some(next);
            }
            ctx.complete_step(CUSTOMERS_STEP).await?;
            tracing::info!(store = %store.id, customers = synced, "customers synced");
        }
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
}
