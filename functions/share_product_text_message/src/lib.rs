//! The `share_product_text_message` job (default lane): texts a product (title, price, link)
//! to a phone number through SNS. The share id is the idempotency key, so the text goes out once
//! per share request however often the message is delivered. Each text sent is audited in the
//! history (masked number, kept a year).
//!
//! Arguments: `{"share_id": "sh_1", "store_id": "st_42", "product_id": "gid://shopify/Product/1",
//! "phone": "+14155550123"}`; the phone must be E.164 (refused to the DLQ otherwise).

use std::{sync::Arc, time::Duration};

use jobkit::{ErrorKind, Job, JobContext, JobError, RetryPolicy, message::Metadata};
use serde::{Deserialize, Serialize};
use shop::{
    BuildError, History, HistoryEntry, PhoneNumber, ProductId, ShareId, ShopPorts, StoreId, StoreRepository,
    declaration::{Declaration, Deployment, ShopJob, Table, TableUse, Uses},
    services::ProductSharer,
};

/// One share request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareArgs {
    /// The share request's id: the text goes out once per id.
    pub share_id: ShareId,
    /// The store selling the product.
    pub store_id: StoreId,
    /// The product.
    pub product_id: ProductId,
    /// Where to text it (E.164).
    pub phone: PhoneNumber,
}

/// The job, on its ports.
#[derive(Debug, Clone)]
pub struct ShareProductTextMessage {
    stores: Arc<dyn StoreRepository>,
    sharer: ProductSharer,
    history: Arc<dyn History>,
}

impl ShareProductTextMessage {
    /// The job on a store repository and a product sharer.
    pub fn new(stores: Arc<dyn StoreRepository>, sharer: ProductSharer, history: Arc<dyn History>) -> Self {
        Self { stores, sharer, history }
    }
}

impl ShopJob for ShareProductTextMessage {
    const DECLARATION: Declaration = Declaration {
        summary: "texts a product (title, price, link) to a phone number, once per share request",
        example: r#"{"share_id":"sh_1","store_id":"st_42","product_id":"gid://shopify/Product/1","phone":"+14155550123"}"#,
        schedule: None,
        // Someone waits for the text: late after 15 minutes, as a store sync is.
        deployment: Deployment { oldest_message_alarm_s: Some(15 * 60), ..Deployment::LIGHT },
        uses: Uses {
            tables: &[
                TableUse { table: Table::Stores, index: None, actions: &["dynamodb:GetItem"], why: "read" },
                TableUse {
                    table: Table::Products,
                    index: None,
                    actions: &["dynamodb:GetItem"],
                    why: "the one shared",
                },
                TableUse {
                    table: Table::History,
                    index: None,
                    actions: &["dynamodb:PutItem"],
                    why: "an audit entry per text",
                },
            ],
            sms: true,
            ..Uses::NOTHING
        },
    };

    /// Stores and products, each text audited in the history, texts through SNS (files locally).
    fn build(ports: &ShopPorts) -> Result<Self, BuildError> {
        Ok(Self::new(ports.stores()?, ProductSharer::new(ports.catalog()?, ports.sms()), ports.history()?))
    }
}

impl Job for ShareProductTextMessage {
    type Args = ShareArgs;
    const NAME: &'static str = "share_product_text_message";

    /// Throttling and outages retry (5 attempts, polynomial waits); a gone product or store, an
    /// opted-out number or a text SNS rejects go to the DLQ.
    fn retry_policy() -> RetryPolicy {
        shop::policy::integration_policy(5).discard_on([shop::policy::OPTED_OUT])
    }

    const TIMEOUT: Duration = Duration::from_secs(30);

    async fn perform(&self, args: ShareArgs, ctx: &mut JobContext) -> Result<(), JobError> {
        let Some(store) = self.stores.get(&args.store_id).await? else {
            return Err(JobError::permanent(
                ErrorKind::NOT_FOUND,
                format!("unknown store {}", args.store_id),
            ));
        };
        let message_id = self.sharer.share(&store, &args.product_id, &args.phone).await?;
        // The phone number's Display is masked.
        tracing::info!(share = %args.share_id, phone = %args.phone, message_id, "product shared");
        let detail = serde_json::json!({
            "product_id": args.product_id,
            "phone": args.phone.masked(),
            "message_id": message_id,
        });
        let entry =
            HistoryEntry::audit("product_shared", args.share_id.as_str(), &store.id, ctx.now(), detail);
        shop::history::record_done(self.history.as_ref(), &entry).await;
        Ok(())
    }

    /// One text per share id, whatever the message's id or number of deliveries.
    fn idempotency_key(&self, args: &ShareArgs, _meta: &Metadata) -> Option<String> {
        Some(format!("share:{}", args.share_id))
    }
}
