//! What a job declares beyond its type: its schedule, an example of its arguments, how it is
//! deployed (memory, batch), and the resources it uses: the tables and the actions it takes on
//! them, store tokens, SMS, the jobs it enqueues, its settings. The template is rendered from
//! this, so a role's permissions are exactly what its job declares.

use std::time::Duration;

use jobkit::{Lane, RetryPolicy};

/// A recurring tick: an EventBridge rule on AWS, a cron entry of `jobctl dev` locally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// The rule's name (the template prefixes it with the stack's name).
    pub rule: &'static str,
    /// EventBridge's cron expression, in UTC: `cron(minutes hours day-of-month month day-of-week year)`.
    pub cron: &'static str,
    /// The arguments the tick carries besides `$schedule`, as a JSON object.
    pub args: &'static str,
    /// What the tick does, for people (the rule's description).
    pub what: &'static str,
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
    /// Carts (index `by_status_activity`).
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
    /// It reads stores' API tokens from Secrets Manager (`<SecretPrefix>/<store id>`).
    pub store_tokens: bool,
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
    pub const NOTHING: Uses =
        Uses { tables: &[], store_tokens: false, sms: false, enqueues: &[], settings: &[] };
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
    /// low (see [`JobSpec::oldest_message_alarm_s`]).
    pub oldest_message_alarm_s: Option<u32>,
}

/// Everything the system knows of one job: its type's identity and policy, and its declaration.
#[derive(Debug, Clone)]
pub struct JobSpec {
    /// The job's name (`store_sync`), which names its queue, DLQ, function and crate.
    pub name: &'static str,
    /// Its lane (priority).
    pub lane: Lane,
    /// Its retry policy.
    pub policy: RetryPolicy,
    /// How long one execution may run.
    pub timeout: Duration,
    /// Its recurring tick, if any.
    pub schedule: Option<Schedule>,
    /// Arguments an operator can paste (`{"store_id":"st_42"}`).
    pub example: &'static str,
    /// What it does, in a line (the function's description, the docs' job table).
    pub summary: &'static str,
    /// How its function is deployed.
    pub deployment: Deployment,
    /// What it uses of the stack.
    pub uses: Uses,
}

/// Receives a job's queue allows beyond its policy's attempts before SQS moves a message to the
/// DLQ (`maxReceiveCount`): records handed back unstarted near a deadline also count.
pub const RECEIVE_MARGIN: u32 = 5;

impl JobSpec {
    /// The function's timeout: twice the job's, so a batch's later records can still start
    /// (one starts only if its whole timeout fits before the deadline), at most 15 minutes.
    pub fn function_timeout(&self) -> Duration {
        (self.timeout * 2).min(Duration::from_secs(900))
    }

    /// The queue's visibility timeout: six times the function's (AWS's advice for SQS event
    /// sources), at most SQS's 12 hours.
    pub fn visibility_timeout(&self) -> Duration {
        (self.function_timeout() * 6).min(Duration::from_secs(12 * 3600))
    }

    /// The queue's `maxReceiveCount`: the policy's attempts and [`RECEIVE_MARGIN`].
    pub fn max_receive_count(&self) -> u32 {
        self.policy.max_attempts() + RECEIVE_MARGIN
    }

    /// The age of the queue's oldest message, in seconds, past which its alarm fires: the
    /// deployment's, else the lane's (work users wait for is late sooner than a cleanup).
    pub fn oldest_message_alarm_s(&self) -> u32 {
        self.deployment.oldest_message_alarm_s.unwrap_or(match self.lane {
            Lane::High => 15 * 60,
            Lane::Default => 30 * 60,
            Lane::Low => 2 * 3600,
        })
    }

    /// The function's queue, DLQ and name on a stack (`store-jobs-store-sync`).
    pub fn queue_name(&self) -> String {
        jobkit::job::queue_name(self.name)
    }
}
