//! What a job of the store declares beyond its type, where the job is written: what it does,
//! an example of its arguments, its schedule, how it is deployed (memory, batch) and what it
//! uses of the stack (tables and the actions it takes on them, the platforms' store tokens, SMS, the jobs it
//! enqueues, its settings). jobctl's registry reads each job's [`Declaration`]; the template is
//! rendered from it, so a function's role is granted exactly what its job declares.
//!
//! Plain data, `const` by design: declaring a job builds nothing and reads no setting.

use jobkit::Job;

use crate::shop_ports::{BuildError, ShopPorts};

/// A job of the store: a [`Job`] that declares itself and is built from [`ShopPorts`], the
/// same way on AWS (`ShopPorts::aws`) as on the embedded backend (`ShopPorts::embedded`).
/// Adding a job is its crate (this trait implemented) and one line of jobctl's registry.
pub trait ShopJob: Job + Clone + Sized {
    /// What the job declares beyond its type.
    const DECLARATION: Declaration;

    /// The job on `ports`: each repository, client and setting it needs, asked for by name.
    ///
    /// # Errors
    /// A setting that is missing or unreadable, or a client that cannot be built.
    fn build(ports: &ShopPorts) -> Result<Self, BuildError>;
}

/// Everything a job declares beyond its type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Declaration {
    /// What it does, in a line (the function's description, the docs' job table).
    pub summary: &'static str,
    /// Arguments an operator can paste (`{"store_id":"st_42"}`).
    pub example: &'static str,
    /// Its recurring tick, if any.
    pub schedule: Option<Schedule>,
    /// How its function is deployed.
    pub deployment: Deployment,
    /// What it uses of the stack.
    pub uses: Uses,
}

/// A recurring tick: an EventBridge Scheduler schedule on AWS, a timer of `jobctl dev` locally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// The schedule's name (the template prefixes it with the stack's name); ticks carry it as
    /// `$schedule.rule`, the key jobkit reads.
    pub rule: &'static str,
    /// When it fires, as people write it ("every day at 3am", "on the 1st of every month at
    /// 6am", as `jobctl cron` reads them) or as EventBridge's `cron(...)`, read in [`Self::zone`].
    pub every: &'static str,
    /// The time zone its times are in.
    pub zone: Zone,
    /// The arguments the tick carries besides `$schedule`, as a JSON object.
    pub args: &'static str,
    /// What the tick does, for people (the schedule's description).
    pub what: &'static str,
}

/// The time zone a schedule's times are read in. A local time fires at its local hour across
/// daylight saving changes; a time the clocks skip does not fire, one they repeat fires once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zone {
    /// A fixed IANA zone (`"Europe/Berlin"`, `"UTC"`).
    Named(&'static str),
    /// The stack's `ScheduleTimeZone` parameter: one deployment's local time (default
    /// [`STACK_ZONE_DEFAULT`]; `jobctl schedules` and `jobctl dev` take `--schedule-time-zone`).
    Stack,
}

/// The template parameter a [`Zone::Stack`] schedule's zone comes from.
pub const STACK_ZONE_PARAMETER: &str = "ScheduleTimeZone";

/// That parameter's default (`infra/template/shared.yaml` holds it; the template test checks
/// they agree): UTC, so a stack deployed without it fires when it did before zones existed.
pub const STACK_ZONE_DEFAULT: &str = "UTC";

impl Zone {
    /// UTC.
    pub const UTC: Zone = Zone::Named("UTC");

    /// How people read it: `Europe/Berlin`, or `the stack's ScheduleTimeZone`.
    pub fn describe(self) -> String {
        match self {
            Zone::Named(name) => name.to_owned(),
            Zone::Stack => format!("the stack's {STACK_ZONE_PARAMETER} (default {STACK_ZONE_DEFAULT})"),
        }
    }
}

/// A table of the stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Table {
    /// Stores: plan, sync state, tokens' owner.
    Stores,
    /// Products and variants.
    Products,
    /// POS customers.
    Customers,
    /// Carts (indexes `by_status_activity`, `by_status_expiry`).
    Carts,
    /// Stock per variant.
    Inventory,
    /// Sync runs, audit entries, temporary records (index `by_kind_time`).
    History,
}

impl Table {
    /// Every table, in the template's order.
    pub const ALL: [Table; 6] =
        [Table::Stores, Table::Products, Table::Customers, Table::Carts, Table::Inventory, Table::History];

    /// The table's logical id in the template (`StoresTable`).
    pub fn logical_id(self) -> &'static str {
        match self {
            Table::Stores => "StoresTable",
            Table::Products => "ProductsTable",
            Table::Customers => "CustomersTable",
            Table::Carts => "CartsTable",
            Table::Inventory => "InventoryTable",
            Table::History => "HistoryTable",
        }
    }

    /// The setting that gives a function the table's name (`SHOP_STORES_TABLE`).
    pub fn setting(self) -> &'static str {
        match self {
            Table::Stores => "SHOP_STORES_TABLE",
            Table::Products => "SHOP_PRODUCTS_TABLE",
            Table::Customers => "SHOP_CUSTOMERS_TABLE",
            Table::Carts => "SHOP_CARTS_TABLE",
            Table::Inventory => "SHOP_INVENTORY_TABLE",
            Table::History => "SHOP_HISTORY_TABLE",
        }
    }

    /// The IAM statement id of actions on it (`Stores`).
    pub fn sid(self) -> &'static str {
        self.logical_id().trim_end_matches("Table")
    }
}

/// A job's use of one table: the actions it takes, on the table or one of its indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableUse {
    /// The table.
    pub table: Table,
    /// An index of it (`by_status_activity`), or the table itself.
    pub index: Option<&'static str>,
    /// The DynamoDB actions (`dynamodb:GetItem`, ...).
    pub actions: &'static [&'static str],
    /// Why, for the template's readers.
    pub why: &'static str,
}

/// An outside platform a store holds an API token for. Each token is a secret of its own,
/// `<SecretPrefix>/<store id>/<platform>`, so a job's role can read the platforms it calls and no
/// other (see `docs/decisions.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Platform {
    /// Shopify's Admin API (`store_sync`, `create_shopify_webhook`).
    Shopify,
    /// Square, the POS (`customer_sync`).
    Square,
}

impl Platform {
    /// Every platform.
    pub const ALL: [Platform; 2] = [Platform::Shopify, Platform::Square];

    /// The last segment of its secrets' names (`shopify`): `<prefix>/<store id>/shopify`.
    pub fn secret_suffix(self) -> &'static str {
        match self {
            Platform::Shopify => "shopify",
            Platform::Square => "square",
        }
    }

    /// How people name it (`Shopify`); also the IAM statement id's stem (`ShopifyTokens`).
    pub fn name(self) -> &'static str {
        match self {
            Platform::Shopify => "Shopify",
            Platform::Square => "Square",
        }
    }
}

/// A setting a function gets from a stack parameter (`CART_IDLE_AFTER_MINUTES` from
/// `CartIdleAfterMinutes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    /// The environment variable.
    pub env: &'static str,
    /// The template parameter it comes from.
    pub parameter: &'static str,
}

/// What a job uses of the stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Uses {
    /// Its tables and what it does with them.
    pub tables: &'static [TableUse],
    /// The platforms whose store tokens it reads from Secrets Manager, each its own secret
    /// (`<SecretPrefix>/<store id>/shopify`): its role may read those platforms' secrets only.
    pub tokens: &'static [Platform],
    /// It texts phone numbers through SNS.
    pub sms: bool,
    /// The jobs it enqueues (besides continuing itself): it gets each one's queue URL as
    /// `JOBKIT_QUEUE_URL_<JOB>` and may send to those queues only.
    pub enqueues: &'static [&'static str],
    /// Its own settings.
    pub settings: &'static [Setting],
}

impl Uses {
    /// Nothing beyond jobkit's own (its queue, DLQ, state records and error emails).
    pub const NOTHING: Uses = Uses { tables: &[], tokens: &[], sms: false, enqueues: &[], settings: &[] };
}

/// How a job's function is deployed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deployment {
    /// The function's memory, in MB.
    pub memory_mb: u32,
    /// Records per invocation (the event source mapping's `BatchSize`).
    pub batch_size: u32,
    /// How long the mapping gathers a batch (`MaximumBatchingWindowInSeconds`).
    pub batching_window_s: u32,
    /// The age of the queue's oldest message past which an alarm says the job is falling
    /// behind, in seconds. Defaults (`None`) to its lane's: 15 minutes high, 30 default, 2 hours
    /// low (jobctl's `JobSpec::oldest_message_alarm_s`).
    pub oldest_message_alarm_s: Option<u32>,
}

impl Deployment {
    /// A job that mostly waits on one call: the smallest function, SQS's batch of 10.
    pub const LIGHT: Deployment =
        Deployment { memory_mb: 128, batch_size: 10, batching_window_s: 0, oldest_message_alarm_s: None };
    /// Syncs page through APIs: more memory, and a short window that gathers a fan-out's messages.
    pub const SYNC: Deployment =
        Deployment { memory_mb: 256, batch_size: 5, batching_window_s: 2, oldest_message_alarm_s: None };
    /// Cleanups run one tick at a time.
    pub const CLEANUP: Deployment =
        Deployment { memory_mb: 128, batch_size: 1, batching_window_s: 0, oldest_message_alarm_s: None };
}
