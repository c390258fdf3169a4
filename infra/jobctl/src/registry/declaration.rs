//! What a job declares beyond its type: its schedule, an example of its arguments, how it is
//! deployed (memory, batch), and the resources it uses: the tables and the actions it takes on
//! them, store tokens, SMS, the jobs it enqueues, its settings. The template is rendered from
//! this, so a role's permissions are exactly what its job declares.

use std::time::Duration;

use chrono_tz::Tz;
use jobkit::{Lane, RetryPolicy};

use crate::schedule::{self, CronSchedule, ScheduleError};

/// A recurring tick: an EventBridge Scheduler schedule on AWS, a timer of `jobctl dev` locally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// The schedule's name (the template prefixes it with the stack's name); ticks carry it as
    /// `$schedule.rule`, the key jobkit reads.
    pub rule: &'static str,
    /// When it fires, as people write it ("every day at 3am", "on the 1st of every month at
    /// 6am", see [`crate::schedule::parse`]) or as EventBridge's `cron(...)`, read in [`Self::zone`].
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

    /// The zone, [`Zone::Stack`] read as `stack` (the deployment's `ScheduleTimeZone`).
    ///
    /// # Errors
    /// A named zone that is not an IANA name.
    pub fn resolve(self, stack: Tz) -> Result<Tz, ScheduleError> {
        match self {
            Zone::Named(name) => schedule::zone(name),
            Zone::Stack => Ok(stack),
        }
    }

    /// How people read it: `Europe/Berlin`, or `the stack's ScheduleTimeZone`.
    pub fn describe(self) -> String {
        match self {
            Zone::Named(name) => name.to_owned(),
            Zone::Stack => format!("the stack's {STACK_ZONE_PARAMETER} (default {STACK_ZONE_DEFAULT})"),
        }
    }
}

impl Schedule {
    /// Its cron expression, read from [`Self::every`].
    ///
    /// # Errors
    /// [`ScheduleError`] for text jobctl does not read, or a zone in the text other than
    /// [`Self::zone`] (a schedule's zone is declared once).
    pub fn cron(&self) -> Result<CronSchedule, ScheduleError> {
        let parsed = schedule::parse(self.every)?;
        if let Some(written) = parsed.zone {
            let declared = match self.zone {
                Zone::Named(name) => schedule::zone(name).ok(),
                Zone::Stack => None,
            };
            if declared != Some(written) {
                return Err(ScheduleError::Invalid {
                    expression: self.every.to_owned(),
                    problem: format!(
                        "it names the zone {written}, but the schedule is declared in {}",
                        self.zone.describe()
                    ),
                });
            }
        }
        Ok(parsed.cron)
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
    /// Its lane (priority), whose queue is the job's.
    pub lane: Lane,
    /// Its other lanes, each a queue of its own feeding the same function (`store-sync-low`).
    pub other_lanes: &'static [Lane],
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
        self.oldest_message_alarm_s_on(self.lane)
    }

    /// The age past which the oldest message of the job's queue on `lane` raises its alarm:
    /// the deployment's own for the job's lane, the lane's default on its other lanes (a low
    /// lane's runs may wait longer than the job's own).
    pub fn oldest_message_alarm_s_on(&self, lane: Lane) -> u32 {
        let declared = self.deployment.oldest_message_alarm_s.filter(|_| lane == self.lane);
        declared.unwrap_or(match lane {
            Lane::High => 15 * 60,
            Lane::Default => 30 * 60,
            Lane::Low => 2 * 3600,
        })
    }

    /// The function's queue, DLQ and name on a stack (`store-jobs-store-sync`).
    pub fn queue_name(&self) -> String {
        jobkit::job::queue_name(self.name)
    }

    /// Every lane of the job, its own first.
    pub fn lanes(&self) -> impl Iterator<Item = Lane> + '_ {
        std::iter::once(self.lane).chain(self.other_lanes.iter().copied())
    }

    /// The lanes as the docs and `jobctl jobs` write them: `high` or `high, low`.
    pub fn lanes_text(&self) -> String {
        self.lanes().map(Lane::as_str).collect::<Vec<_>>().join(", ")
    }
}
