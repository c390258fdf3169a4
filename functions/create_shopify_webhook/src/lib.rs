//! The `create_shopify_webhook` job (default lane): registers a store's webhook subscriptions
//! in Shopify when the store installs the app. It lists what exists and creates only what is
//! missing, so running it twice creates nothing the second time.
//!
//! A run that created subscriptions is audited in the history (`SHOP_HISTORY_TABLE`, kept a
//! year) by one entry naming every topic it created (one write, however many topics). On
//! an installation (`"install": true`), once the webhooks are registered (so no change is missed
//! from then on), it chains the store's first `store_sync` (its catalog) and `customer_sync` (its
//! POS customers), each once: a chained job's id is derived from this one's, so a retry's second
//! enqueue is a duplicate.
//!
//! Arguments: `{"store_id": "st_42"}`, `{"store_id": "st_42", "install": true}`. Settings:
//! `SHOPIFY_WEBHOOK_TOPICS` (comma-separated, `ORDERS_CREATE,PRODUCTS_UPDATE`),
//! `SHOPIFY_WEBHOOK_URL` (where Shopify delivers), and the chained jobs' queues
//! (`JOBKIT_QUEUE_URL_STORE_SYNC`, `JOBKIT_QUEUE_URL_CUSTOMER_SYNC`, which the template sets).

use std::{sync::Arc, time::Duration};

use jobkit::{EnqueueOptions, ErrorKind, Job, JobContext, JobError, JobId, RetryPolicy};
use serde::{Deserialize, Serialize};
use shop::{
    BuildError, History, HistoryEntry, ShopPorts, StoreId, StoreRepository,
    declaration::{Declaration, Deployment, Platform, Setting, ShopJob, Table, TableUse, Uses},
    jobs::{CUSTOMER_SYNC, CustomerSyncArgs, STORE_SYNC, StoreSyncArgs},
    services::WebhookRegistrar,
};

/// `{"store_id": "st_42"}`, or with `"install": true` on the store's installation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateShopifyWebhookArgs {
    /// The store that installed the app.
    pub store_id: StoreId,
    /// The store has just installed the app: once its webhooks are registered (so no change
    /// is missed from then on), its catalog (`store_sync`) and POS customers (`customer_sync`)
    /// are imported.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub install: bool,
}

/// Which subscriptions every store gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSettings {
    /// Shopify topics (`ORDERS_CREATE`).
    pub topics: Vec<String>,
    /// The delivery address.
    pub uri: String,
}

impl WebhookSettings {
    /// From `SHOPIFY_WEBHOOK_TOPICS` (comma-separated) and `SHOPIFY_WEBHOOK_URL`.
    ///
    /// # Errors
    /// When either is missing.
    pub fn from_ports(ports: &ShopPorts) -> Result<Self, BuildError> {
        let topics = ports
            .required_setting("SHOPIFY_WEBHOOK_TOPICS")?
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect();
        Ok(Self { topics, uri: ports.required_setting("SHOPIFY_WEBHOOK_URL")? })
    }
}

/// The job, on its ports.
#[derive(Debug, Clone)]
pub struct CreateShopifyWebhook {
    stores: Arc<dyn StoreRepository>,
    registrar: WebhookRegistrar,
    settings: WebhookSettings,
    history: Arc<dyn History>,
}

impl CreateShopifyWebhook {
    /// The job on a store repository, a registrar and its settings.
    pub fn new(
        stores: Arc<dyn StoreRepository>,
        registrar: WebhookRegistrar,
        settings: WebhookSettings,
        history: Arc<dyn History>,
    ) -> Self {
        Self { stores, registrar, settings, history }
    }
}

impl ShopJob for CreateShopifyWebhook {
    const DECLARATION: Declaration = Declaration {
        summary: "registers a store's Shopify webhook subscriptions, creating only the missing ones",
        example: r#"{"store_id":"st_42"}"#,
        schedule: None,
        deployment: Deployment::LIGHT,
        uses: Uses {
            tables: &[
                TableUse { table: Table::Stores, index: None, actions: &["dynamodb:GetItem"], why: "read" },
                TableUse {
                    table: Table::History,
                    index: None,
                    actions: &["dynamodb:PutItem"],
                    why: "one audit entry per run that created subscriptions",
                },
            ],
            tokens: &[Platform::Shopify],
            enqueues: &[STORE_SYNC.name(), CUSTOMER_SYNC.name()],
            settings: &[
                Setting { env: "SHOPIFY_WEBHOOK_TOPICS", parameter: "ShopifyWebhookTopics" },
                Setting { env: "SHOPIFY_WEBHOOK_URL", parameter: "ShopifyWebhookUrl" },
            ],
            ..Uses::NOTHING
        },
    };

    /// Stores and the history, tokens from the store's secret, Shopify, and the subscriptions
    /// every store gets ([`WebhookSettings`]).
    fn build(ports: &ShopPorts) -> Result<Self, BuildError> {
        let registrar = WebhookRegistrar::new(ports.shopify()?, ports.credentials()?);
        Ok(Self::new(ports.stores()?, registrar, WebhookSettings::from_ports(ports)?, ports.history()?))
    }
}

impl Job for CreateShopifyWebhook {
    type Args = CreateShopifyWebhookArgs;
    const NAME: &'static str = "create_shopify_webhook";

    /// Throttling, timeouts and outages retry (8 attempts, polynomial waits); an unknown store, a
    /// refused token or a subscription Shopify rejects go to the DLQ.
    fn retry_policy() -> RetryPolicy {
        shop::policy::integration_policy(8)
    }

    const TIMEOUT: Duration = Duration::from_secs(60);

    async fn perform(&self, args: CreateShopifyWebhookArgs, ctx: &mut JobContext) -> Result<(), JobError> {
        let Some(store) = self.stores.get(&args.store_id).await? else {
            return Err(JobError::permanent(
                ErrorKind::NOT_FOUND,
                format!("unknown store {}", args.store_id),
            ));
        };
        let done = self.registrar.ensure(&store, &self.settings.topics, &self.settings.uri).await?;
        if !done.created.is_empty() {
            let mut topics = done.created.clone();
            topics.sort();
            let detail = serde_json::json!({ "topics": topics, "uri": self.settings.uri });
            // By store and topics: a retry that creates the same ones writes the same entry.
            let id = format!("{}:{}", store.id, topics.join(","));
            let entry = HistoryEntry::audit("webhooks_created", &id, &store.id, ctx.now(), detail);
            shop::history::record_done(self.history.as_ref(), &entry).await;
        }
        tracing::info!(store = %store.id, created = ?done.created, existing = ?done.existing, "webhooks registered");
        if args.install {
            // One chained job of each per run: its id follows from this job's, so the enqueue
            // of a retry (or of an answer lost) is the same job, which runs once.
            let chained = |job: &str| EnqueueOptions {
                job_id: Some(JobId::from(format!("{}:{job}", ctx.meta().job_id))),
                ..EnqueueOptions::default()
            };
            let failed = |job: &str, e: jobkit::EnqueueError| {
                JobError::retryable(ErrorKind::UNAVAILABLE, format!("enqueueing the {job}: {e}"))
            };
            let catalog = StoreSyncArgs::store(store.id.clone());
            let options = chained(STORE_SYNC.name());
            ctx.enqueuer()
                .perform_later_to(&STORE_SYNC, &catalog, options)
                .await
                .map_err(|e| failed("store sync", e))?;
            let customers = CustomerSyncArgs { store_id: store.id.clone() };
            let options = chained(CUSTOMER_SYNC.name());
            ctx.enqueuer()
                .perform_later_to(&CUSTOMER_SYNC, &customers, options)
                .await
                .map_err(|e| failed("customer sync", e))?;
        }
        Ok(())
    }
}
