//! Every job of the system, built on one set of embedded ports, with what operators need to know
//! about each: priority, retry policy, timeout, schedule and an example of its arguments.
//!
//! Invariant: the schedules here are the schedules of `template.yaml` (rule, cron expression,
//! arguments); `tests/template.rs` fails when they drift apart.

use std::{sync::Arc, time::Duration};

use clean_active_carts::CleanActiveCarts;
use clean_database::CleanDatabase;
use create_shopify_webhook::{CreateShopifyWebhook, WebhookSettings};
use customer_sync::CustomerSyncJob;
use jobkit::{Job, RetryPolicy, StateStore};
use share_product_text_message::ShareProductTextMessage;
use shop::{
    SmsSender,
    embedded::ShopDb,
    services::{CatalogSync, CustomerSync, ProductSharer, Retention, RetentionCleaner, WebhookRegistrar},
    shopify::{ShopifyClient, ShopifyConfig},
    square::{SquareClient, SquareConfig},
};
use store_sync::StoreSync;

/// A recurring tick: an EventBridge rule on AWS, a cron entry of `jobctl dev` locally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// The rule's name (the template prefixes it with the stack's name).
    pub rule: &'static str,
    /// EventBridge's cron expression, in UTC: `cron(minutes hours day-of-month month day-of-week year)`.
    pub cron: &'static str,
    /// The arguments the tick carries besides `$schedule`, as a JSON object.
    pub args: &'static str,
}

/// What the registry knows of one job.
#[derive(Debug, Clone)]
pub struct JobSpec {
    /// The job's name (`store_sync`).
    pub name: &'static str,
    /// Its queue's priority class (`stores_sync`, `default`, `low`).
    pub priority: &'static str,
    /// Its retry policy.
    pub policy: RetryPolicy,
    /// How long one execution may run.
    pub timeout: Duration,
    /// Its recurring tick, if any.
    pub schedule: Option<Schedule>,
    /// Arguments an operator can paste (`{"store_id":"st_42"}`).
    pub example: &'static str,
}

/// The outside world the jobs run against locally.
#[derive(Debug, Clone)]
pub struct EmbeddedPorts {
    /// The shop's data (stores, catalog, customers, carts, history, tokens).
    pub shop: ShopDb,
    /// jobkit's state store (what `clean_database` purges).
    pub job_state: Arc<dyn StateStore>,
    /// Where texts go.
    pub sms: Arc<dyn SmsSender>,
    /// Shopify (the local sandbox, or the real one).
    pub shopify: ShopifyConfig,
    /// The POS.
    pub square: SquareConfig,
    /// The webhook subscriptions every store gets.
    pub webhooks: WebhookSettings,
    /// Carts idle this long are abandoned.
    pub cart_idle_after: chrono::Duration,
    /// How long each kind of history record is kept.
    pub retention: Retention,
}

/// The registry could not build a job.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// An HTTP client could not be built.
    #[error("cannot build the {job} job: {source}")]
    Build {
        /// Which job.
        job: &'static str,
        /// Why.
        source: jobkit::IntegrationError,
    },
    /// The throwaway ports [`specs`] builds on could not be made.
    #[error("cannot open an in-memory database: {0}")]
    Storage(String),
    /// No job has that name.
    #[error(transparent)]
    Unknown(#[from] UnknownJob),
}

/// The six jobs, built on one set of ports.
#[derive(Debug, Clone)]
pub struct Jobs {
    /// `store_sync`.
    pub store_sync: StoreSync,
    /// `customer_sync`.
    pub customer_sync: CustomerSyncJob,
    /// `clean_active_carts`.
    pub clean_active_carts: CleanActiveCarts,
    /// `clean_database`.
    pub clean_database: CleanDatabase,
    /// `create_shopify_webhook`.
    pub create_shopify_webhook: CreateShopifyWebhook,
    /// `share_product_text_message`.
    pub share_product_text_message: ShareProductTextMessage,
}

impl Jobs {
    /// Every job on `ports`.
    ///
    /// # Errors
    /// An HTTP client that cannot be built.
    pub fn on(ports: &EmbeddedPorts) -> Result<Self, RegistryError> {
        let db = Arc::new(ports.shop.clone());
        let shopify = |job| {
            ShopifyClient::new(ports.shopify.clone()).map_err(|source| RegistryError::Build { job, source })
        };
        let square = SquareClient::new(ports.square.clone())
            .map_err(|source| RegistryError::Build { job: CustomerSyncJob::NAME, source })?;
        Ok(Self {
            store_sync: StoreSync::new(
                db.clone(),
                CatalogSync::new(shopify(StoreSync::NAME)?, db.clone(), db.clone()),
                db.clone(),
            ),
            customer_sync: CustomerSyncJob::new(
                db.clone(),
                CustomerSync::new(square, db.clone(), db.clone()),
                db.clone(),
            ),
            clean_active_carts: CleanActiveCarts::new(db.clone(), ports.cart_idle_after),
            clean_database: CleanDatabase::new(RetentionCleaner::new(
                db.clone(),
                ports.job_state.clone(),
                ports.retention.clone(),
            )),
            create_shopify_webhook: CreateShopifyWebhook::new(
                db.clone(),
                WebhookRegistrar::new(shopify(CreateShopifyWebhook::NAME)?, db.clone()),
                ports.webhooks.clone(),
                db.clone(),
            ),
            share_product_text_message: ShareProductTextMessage::new(
                db.clone(),
                ProductSharer::new(db.clone(), ports.sms.clone()),
                db,
            ),
        })
    }

    /// What the registry knows of each job, in the order operators read them.
    pub fn specs(&self) -> Vec<JobSpec> {
        vec![
            spec_of(&self.store_sync, schedule_of(StoreSync::NAME), r#"{"store_id":"st_42"}"#),
            spec_of(&self.customer_sync, None, r#"{"store_id":"st_42"}"#),
            spec_of(&self.clean_active_carts, schedule_of(CleanActiveCarts::NAME), "{}"),
            spec_of(&self.clean_database, schedule_of(CleanDatabase::NAME), "{}"),
            spec_of(&self.create_shopify_webhook, None, r#"{"store_id":"st_42"}"#),
            spec_of(
                &self.share_product_text_message,
                None,
                r#"{"share_id":"sh_1","store_id":"st_42","product_id":"gid://shopify/Product/1","phone":"+14155550123"}"#,
            ),
        ]
    }
}

/// The recurring ticks: (job, schedule).
pub const SCHEDULES: [(&str, Schedule); 3] = [
    (
        "store_sync",
        Schedule {
            rule: "store-sync-fan-out",
            cron: "cron(0/15 * * * ? *)",
            args: r#"{"all_stores": true}"#,
        },
    ),
    (
        "clean_active_carts",
        Schedule { rule: "clean-active-carts-hourly", cron: "cron(0 * * * ? *)", args: "{}" },
    ),
    ("clean_database", Schedule { rule: "clean-database-daily", cron: "cron(0 3 * * ? *)", args: "{}" }),
];

fn schedule_of(job: &str) -> Option<Schedule> {
    SCHEDULES.iter().find(|(name, _)| *name == job).map(|(_, schedule)| *schedule)
}

fn spec_of<J: Job>(job: &J, schedule: Option<Schedule>, example: &'static str) -> JobSpec {
    JobSpec {
        name: J::NAME,
        priority: J::QUEUE,
        policy: job.retry_policy(),
        timeout: job.timeout(),
        schedule,
        example,
    }
}

/// Every job's spec, read off jobs built on throwaway in-memory ports with default settings.
///
/// # Errors
/// If SQLite cannot open an in-memory database.
pub fn specs() -> Result<Vec<JobSpec>, RegistryError> {
    let storage = |e: &dyn std::fmt::Display| RegistryError::Storage(e.to_string());
    let shop = ShopDb::in_memory().map_err(|e| storage(&e))?;
    let job_state = jobkit::embedded::EmbeddedDb::in_memory().map_err(|e| storage(&e))?;
    let ports = EmbeddedPorts {
        shop,
        job_state: Arc::new(jobkit::embedded::EmbeddedStore::new(job_state)),
        sms: Arc::new(shop::sms_outbox::SmsOutbox::new(std::env::temp_dir().join("jobctl-specs-outbox"))),
        shopify: ShopifyConfig::default(),
        square: SquareConfig::default(),
        webhooks: WebhookSettings { topics: Vec::new(), uri: String::new() },
        cart_idle_after: chrono::Duration::hours(2),
        retention: Retention::default(),
    };
    Ok(Jobs::on(&ports)?.specs())
}

/// The most concurrent invocations a job's queue may drive (`ScalingConfig.MaximumConcurrency`,
/// at least 2): store syncs are the platform's high priority, cleanups may wait.
pub fn max_concurrency(priority: &str) -> u32 {
    match priority {
        "stores_sync" => 20,
        "low" => 2,
        _ => 5,
    }
}

/// Receives a job's queue allows beyond its policy's attempts before SQS moves a message to the
/// DLQ (`maxReceiveCount`): records handed back unstarted near a deadline also count.
pub const RECEIVE_MARGIN: u32 = 5;

/// The names of the six jobs, in the order operators read them.
pub const JOB_NAMES: [&str; 6] = [
    StoreSync::NAME,
    CustomerSyncJob::NAME,
    CleanActiveCarts::NAME,
    CleanDatabase::NAME,
    CreateShopifyWebhook::NAME,
    ShareProductTextMessage::NAME,
];

/// The name of a job's own queue, `store-sync` for `store_sync`; the template prefixes it with
/// the stack's name (`store-jobs-store-sync`).
pub fn queue_name(job: &str) -> String {
    job.replace('_', "-")
}

/// The name of a job's DLQ, `store-sync-dlq`.
pub fn dlq_name(job: &str) -> String {
    format!("{}-dlq", queue_name(job))
}

/// Something to do with a job's type, chosen by its name at run time (`jobctl enqueue
/// store_sync ...` checks the arguments against `StoreSync`'s own type).
pub trait JobVisitor {
    /// What the visit returns.
    type Output;
    /// Called with the job's type.
    fn visit<J: Job>(self) -> Self::Output;
}

/// Visits the job named `name`.
///
/// # Errors
/// [`UnknownJob`] naming the jobs there are.
pub fn visit<V: JobVisitor>(name: &str, visitor: V) -> Result<V::Output, UnknownJob> {
    Ok(if name == StoreSync::NAME {
        visitor.visit::<StoreSync>()
    } else if name == CustomerSyncJob::NAME {
        visitor.visit::<CustomerSyncJob>()
    } else if name == CleanActiveCarts::NAME {
        visitor.visit::<CleanActiveCarts>()
    } else if name == CleanDatabase::NAME {
        visitor.visit::<CleanDatabase>()
    } else if name == CreateShopifyWebhook::NAME {
        visitor.visit::<CreateShopifyWebhook>()
    } else if name == ShareProductTextMessage::NAME {
        visitor.visit::<ShareProductTextMessage>()
    } else {
        return Err(UnknownJob(name.to_owned()));
    })
}

/// A job name that is not one of the six.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("no job is named {0:?}; the jobs are {names}", names = JOB_NAMES.join(", "))]
pub struct UnknownJob(pub String);

/// The registry's entry for `name`.
///
/// # Errors
/// [`UnknownJob`], or the registry failing to build (see [`specs`]).
pub fn spec(name: &str) -> Result<JobSpec, RegistryError> {
    let found = specs()?.into_iter().find(|s| s.name == name);
    Ok(found.ok_or_else(|| UnknownJob(name.to_owned()))?)
}
