//! The registry: every job of the system declared once ([`registry!`]'s table), built on one
//! set of embedded ports, with what its type does not say: schedule, example, deployment and the
//! resources it uses.
//!
//! Invariant: this table is the one list of jobs. jobctl's commands, `jobctl dev`, the README's
//! job table and `template.yaml` are derived from it (`jobctl template`); adding a job is its
//! crate, one entry here, and rendering the template again.

mod declaration;

pub use declaration::{
    Deployment, JobSpec, RECEIVE_MARGIN, STACK_ZONE_DEFAULT, STACK_ZONE_PARAMETER, Schedule, Setting, Table,
    TableUse, Uses, Zone,
};
pub use jobkit::job::{dlq_name, queue_name};

use std::sync::Arc;

use clean_active_carts::CleanActiveCarts;
use clean_database::CleanDatabase;
use create_shopify_webhook::{CreateShopifyWebhook, WebhookSettings};
use customer_sync::CustomerSyncJob;
use jobkit::{Job, ports::StateStore};
use share_product_text_message::ShareProductTextMessage;
use shop::{
    SmsSender,
    embedded::ShopDb,
    services::{CatalogSync, CustomerSync, ProductSharer, Retention, RetentionCleaner, WebhookRegistrar},
    shopify::{ShopifyClient, ShopifyConfig},
    square::{SquareClient, SquareConfig},
};
use store_sync::StoreSync;

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
    /// A job's schedule is not one jobctl reads.
    #[error("{job}'s schedule {rule}: {source}")]
    Schedule {
        /// The job.
        job: &'static str,
        /// The schedule's name.
        rule: &'static str,
        /// Why.
        source: crate::schedule::ScheduleError,
    },
}

/// Declares every job once: its type, how it is built on the embedded ports, and what its type
/// does not say (schedule, example, summary, deployment, what it uses of the stack). Everything
/// else in jobctl, `jobctl dev` and the template is derived from this table.
macro_rules! registry {
    ($($field:ident: $job:ty {
        build: |$ports:ident| $build:expr,
        summary: $summary:expr,
        example: $example:expr,
        schedule: $schedule:expr,
        deployment: $deployment:expr,
        uses: $uses:expr $(,)?
    })+) => {
        /// Every job, built on one set of ports.
        #[derive(Debug, Clone)]
        pub struct Jobs {
            $(
                #[doc = concat!("`", stringify!($field), "`.")]
                pub $field: $job,
            )+
        }

        impl Jobs {
            /// Every job on `ports`.
            ///
            /// # Errors
            /// An HTTP client that cannot be built.
            pub fn on(ports: &EmbeddedPorts) -> Result<Self, RegistryError> {
                Ok(Self { $( $field: { let $ports = ports; $build }, )+ })
            }

            /// What the registry knows of each job, in the order operators read them.
            pub fn specs(&self) -> Vec<JobSpec> {
                vec![$( spec_of(&self.$field, $summary, $example, $schedule, $deployment, $uses), )+]
            }

            /// Calls `each` with every job, by its type.
            pub fn each<E: EachJob>(&self, each: &mut E) {
                $( each.job(&self.$field); )+
            }
        }

        /// The names of the jobs, in the order operators read them.
        pub const JOB_NAMES: &[&str] = &[$( <$job as Job>::NAME, )+];

        /// Visits the job named `name`.
        ///
        /// # Errors
        /// [`UnknownJob`] naming the jobs there are.
        pub fn visit<V: JobVisitor>(name: &str, visitor: V) -> Result<V::Output, UnknownJob> {
            $( if name == <$job as Job>::NAME { return Ok(visitor.visit::<$job>()); } )+
            Err(UnknownJob(name.to_owned()))
        }
    };
}

const EMAILS_ONLY: Deployment =
    Deployment { memory_mb: 128, batch_size: 10, batching_window_s: 0, oldest_message_alarm_s: None };
/// Syncs page through APIs: more memory, and a short window that gathers a fan-out's messages.
const SYNC: Deployment =
    Deployment { memory_mb: 256, batch_size: 5, batching_window_s: 2, oldest_message_alarm_s: None };
/// Cleanups run one tick at a time.
const CLEANUP: Deployment =
    Deployment { memory_mb: 128, batch_size: 1, batching_window_s: 0, oldest_message_alarm_s: None };

registry! {
    store_sync: StoreSync {
        build: |ports| StoreSync::new(
            ports.db(),
            CatalogSync::new(ports.shopify(StoreSync::NAME)?, ports.db(), ports.db()),
            ports.db(),
        ),
        summary: "pulls a store's products, variants, prices and inventory from Shopify into the catalog",
        example: r#"{"store_id":"st_42"}"#,
        // In UTC: in a zone with daylight saving, the hour the clocks repeat would fire its
        // quarters once (EventBridge Scheduler's rule), leaving stores an hour unsynced.
        schedule: Some(Schedule {
            rule: "store-sync-fan-out",
            every: "every 15 minutes",
            zone: Zone::UTC,
            args: r#"{"all_stores": true}"#,
            what: "one store_sync per syncable store",
        }),
        deployment: SYNC,
        uses: Uses {
            tables: &[
                TableUse { table: Table::Stores, index: None, actions: &["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:Scan"], why: "read, sync state, the fan-out's list" },
                TableUse { table: Table::Products, index: None, actions: &["dynamodb:BatchWriteItem"], why: "upserts, 25 at a time" },
                TableUse { table: Table::History, index: None, actions: &["dynamodb:PutItem"], why: "one sync run per finished sync" },
            ],
            store_tokens: true,
            ..Uses::NOTHING
        },
    }
    customer_sync: CustomerSyncJob {
        build: |ports| CustomerSyncJob::new(
            ports.db(),
            CustomerSync::new(ports.square(CustomerSyncJob::NAME)?, ports.db(), ports.db()),
            ports.db(),
        ),
        summary: "pulls a store's customers and their order totals from the POS (Square)",
        example: r#"{"store_id":"st_42"}"#,
        schedule: None,
        deployment: SYNC,
        uses: Uses {
            tables: &[
                TableUse { table: Table::Stores, index: None, actions: &["dynamodb:GetItem"], why: "read" },
                TableUse { table: Table::Customers, index: None, actions: &["dynamodb:BatchWriteItem"], why: "upserts, 25 at a time" },
                TableUse { table: Table::History, index: None, actions: &["dynamodb:PutItem"], why: "one sync run per finished sync" },
            ],
            store_tokens: true,
            settings: &[Setting { env: "SQUARE_BASE_URL", parameter: "SquareBaseUrl" }],
            ..Uses::NOTHING
        },
    }
    clean_active_carts: CleanActiveCarts {
        build: |ports| CleanActiveCarts::new(ports.db(), ports.cart_idle_after),
        summary: "abandons idle carts, releasing their reserved stock once, and deletes expired ones",
        example: "{}",
        schedule: Some(Schedule {
            rule: "clean-active-carts-hourly",
            every: "every hour",
            zone: Zone::UTC,
            args: "{}",
            what: "abandons idle carts and deletes expired ones",
        }),
        deployment: CLEANUP,
        uses: Uses {
            tables: &[
                TableUse { table: Table::Carts, index: None, actions: &["dynamodb:Scan", "dynamodb:UpdateItem", "dynamodb:DeleteItem"], why: "expired scan, the abandon transaction's conditional update, deletes" },
                TableUse { table: Table::Carts, index: Some("by_status_activity"), actions: &["dynamodb:Query"], why: "idle active carts by last activity" },
                TableUse { table: Table::Inventory, index: None, actions: &["dynamodb:UpdateItem"], why: "stock given back in the same transaction" },
            ],
            settings: &[Setting { env: "CART_IDLE_AFTER_MINUTES", parameter: "CartIdleAfterMinutes" }],
            ..Uses::NOTHING
        },
    }
    clean_database: CleanDatabase {
        build: |ports| CleanDatabase::new(RetentionCleaner::new(ports.db(), ports.job_state.clone(), ports.retention.clone())),
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
        deployment: CLEANUP,
        uses: Uses {
            tables: &[
                TableUse { table: Table::History, index: None, actions: &["dynamodb:BatchWriteItem"], why: "deletes, 25 at a time" },
                TableUse { table: Table::History, index: Some("by_kind_time"), actions: &["dynamodb:Query"], why: "the oldest records of a kind" },
            ],
            settings: &[
                Setting { env: "RETENTION_TEMPORARY_DAYS", parameter: "RetentionTemporaryDays" },
                Setting { env: "RETENTION_SYNC_RUN_DAYS", parameter: "RetentionSyncRunDays" },
                Setting { env: "RETENTION_AUDIT_LOG_DAYS", parameter: "RetentionAuditLogDays" },
            ],
            ..Uses::NOTHING
        },
    }
    create_shopify_webhook: CreateShopifyWebhook {
        build: |ports| CreateShopifyWebhook::new(
            ports.db(),
            WebhookRegistrar::new(ports.shopify(CreateShopifyWebhook::NAME)?, ports.db()),
            ports.webhooks.clone(),
            ports.db(),
        ),
        summary: "registers a store's Shopify webhook subscriptions, creating only the missing ones",
        example: r#"{"store_id":"st_42"}"#,
        schedule: None,
        deployment: EMAILS_ONLY,
        uses: Uses {
            tables: &[
                TableUse { table: Table::Stores, index: None, actions: &["dynamodb:GetItem"], why: "read" },
                TableUse { table: Table::History, index: None, actions: &["dynamodb:PutItem"], why: "an audit entry per subscription created" },
            ],
            store_tokens: true,
            enqueues: &[StoreSync::NAME, CustomerSyncJob::NAME],
            settings: &[
                Setting { env: "SHOPIFY_WEBHOOK_TOPICS", parameter: "ShopifyWebhookTopics" },
                Setting { env: "SHOPIFY_WEBHOOK_URL", parameter: "ShopifyWebhookUrl" },
            ],
            ..Uses::NOTHING
        },
    }
    share_product_text_message: ShareProductTextMessage {
        build: |ports| ShareProductTextMessage::new(ports.db(), ProductSharer::new(ports.db(), ports.sms.clone()), ports.db()),
        summary: "texts a product (title, price, link) to a phone number, once per share request",
        example: r#"{"share_id":"sh_1","store_id":"st_42","product_id":"gid://shopify/Product/1","phone":"+14155550123"}"#,
        schedule: None,
        // Someone waits for the text: late after 15 minutes, as a store sync is.
        deployment: Deployment { oldest_message_alarm_s: Some(15 * 60), ..EMAILS_ONLY },
        uses: Uses {
            tables: &[
                TableUse { table: Table::Stores, index: None, actions: &["dynamodb:GetItem"], why: "read" },
                TableUse { table: Table::Products, index: None, actions: &["dynamodb:GetItem"], why: "the one shared" },
                TableUse { table: Table::History, index: None, actions: &["dynamodb:PutItem"], why: "an audit entry per text" },
            ],
            sms: true,
            ..Uses::NOTHING
        },
    }
}

impl EmbeddedPorts {
    fn db(&self) -> Arc<ShopDb> {
        Arc::new(self.shop.clone())
    }

    fn shopify(&self, job: &'static str) -> Result<ShopifyClient, RegistryError> {
        ShopifyClient::new(self.shopify.clone()).map_err(|source| RegistryError::Build { job, source })
    }

    fn square(&self, job: &'static str) -> Result<SquareClient, RegistryError> {
        SquareClient::new(self.square.clone()).map_err(|source| RegistryError::Build { job, source })
    }
}

/// Something to do with every job, by its type (`jobctl dev` builds a worker per job).
pub trait EachJob {
    /// Called with each job.
    fn job<J: Job + Clone>(&mut self, job: &J);
}

/// The recurring ticks: (job, schedule).
///
/// # Errors
/// If the registry cannot be built (see [`specs`]).
pub fn schedules() -> Result<Vec<(&'static str, Schedule)>, RegistryError> {
    Ok(specs()?.into_iter().filter_map(|s| s.schedule.map(|schedule| (s.name, schedule))).collect())
}

fn spec_of<J: Job>(
    job: &J,
    summary: &'static str,
    example: &'static str,
    schedule: Option<Schedule>,
    deployment: Deployment,
    uses: Uses,
) -> JobSpec {
    JobSpec {
        name: J::NAME,
        lane: J::LANE,
        other_lanes: J::OTHER_LANES,
        policy: job.retry_policy(),
        timeout: job.timeout(),
        schedule,
        example,
        summary,
        deployment,
        uses,
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
    let specs = Jobs::on(&ports)?.specs();
    // A schedule is read here, once, so that no command, template or test meets an unreadable one.
    for spec in &specs {
        if let Some(schedule) = &spec.schedule {
            let failed = |source| RegistryError::Schedule { job: spec.name, rule: schedule.rule, source };
            schedule.cron().map_err(failed)?;
            schedule.zone.resolve(chrono_tz::Tz::UTC).map_err(failed)?;
        }
    }
    Ok(specs)
}

/// The README's job table, rendered from the registry: job, lane, queue, an example of its
/// arguments, its schedule and its retry policy.
pub fn jobs_markdown(specs: &[JobSpec]) -> String {
    let mut lines = vec![
        "| job | lane | queue | arguments (paste into `aws sqs send-message --message-body`) | schedule | retry policy |".to_owned(),
        "|---|---|---|---|---|---|".to_owned(),
    ];
    for spec in specs {
        let schedule = spec.schedule.map_or_else(
            || "on demand".to_owned(),
            |s| {
                let cron = s.cron().map_or_else(|e| e.to_string(), |c| c.expression().to_owned());
                format!(
                    "{}, in {}: {} (schedule `{}`, `{cron}`), with `{}`",
                    s.every,
                    s.zone.describe(),
                    s.what,
                    s.rule,
                    s.args
                )
            },
        );
        let queues: Vec<String> = std::iter::once(spec.queue_name())
            .chain(spec.other_lanes.iter().map(|&lane| jobkit::job::lane_queue_name(spec.name, lane)))
            .map(|q| format!("`{q}`"))
            .collect();
        lines.push(format!(
            "| `{}` | {} | {} | `{}` | {schedule} | {} |",
            spec.name,
            spec.lanes_text(),
            queues.join(", "),
            spec.example,
            spec.policy.describe()
        ));
    }
    lines.join("\n")
}

/// Something to do with a job's type, chosen by its name at run time (`jobctl enqueue
/// store_sync ...` checks the arguments against `StoreSync`'s own type).
pub trait JobVisitor {
    /// What the visit returns.
    type Output;
    /// Called with the job's type.
    fn visit<J: Job>(self) -> Self::Output;
}

/// A job name that is not one of the registry's.
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
