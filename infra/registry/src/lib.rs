//! The registry: every job of the system named once ([`registry!`]'s list). Each job declares
//! itself in its crate ([`ShopJob::DECLARATION`]: summary, example, schedule, deployment, what
//! it uses of the stack) and is built from one ports value ([`ShopPorts`]), so a line here is
//! all the registry needs of it.
//!
//! Invariant: this list is the one list of jobs. jobctl's commands, `jobctl dev`, the README's
//! job table and `template.yaml` ([`template`]) are derived from it (`jobctl template`); adding
//! a job is its crate, one line here (and the crate as this crate's dependency), and rendering
//! the template again.
//!
//! A crate of its own, apart from jobctl, so that what reads the registry (the template's
//! tests, the system tests' schedules) needs neither jobctl's console nor its embedded runtime.
#![warn(missing_docs)]

mod declaration;
pub mod schedule;
pub mod template;

pub use declaration::{
    Declaration, Deployment, JobSpec, RECEIVE_MARGIN, STACK_ZONE_DEFAULT, STACK_ZONE_PARAMETER, Schedule,
    ScheduleExt, Setting, ShopJob, Table, TableUse, Uses, Zone, ZoneExt,
};
pub use jobkit::job::{dlq_name, queue_name};

use std::collections::BTreeMap;

use clean_active_carts::CleanActiveCarts;
use clean_database::CleanDatabase;
use create_shopify_webhook::CreateShopifyWebhook;
use customer_sync::CustomerSyncJob;
use jobkit::Job;
use share_product_text_message::ShareProductTextMessage;
use shop::ShopPorts;
use store_sync::StoreSync;

/// The registry could not build a job.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// A job could not be built from its ports (a setting, an HTTP client).
    #[error("cannot build the {job} job: {source}")]
    Build {
        /// Which job.
        job: &'static str,
        /// Why.
        source: shop::BuildError,
    },
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

/// Names every job once, each a [`ShopJob`]; everything else in jobctl, `jobctl dev` and the
/// template is derived from this list and the jobs' own declarations.
macro_rules! registry {
    ($($field:ident: $job:ty),+ $(,)?) => {
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
            /// A job that cannot be built (a setting, an HTTP client).
            pub fn on(ports: &ShopPorts) -> Result<Self, RegistryError> {
                Ok(Self { $( $field: build::<$job>(ports)?, )+ })
            }

            /// What the registry knows of each job, in the order operators read them.
            pub fn specs(&self) -> Vec<JobSpec> {
                declared_specs()
            }

            /// Calls `each` with every job, by its type.
            pub fn each<E: EachJob>(&self, each: &mut E) {
                $( each.job(&self.$field); )+
            }
        }

        /// Each job's spec, in the order operators read them.
        fn declared_specs() -> Vec<JobSpec> {
            vec![$( spec_of::<$job>(), )+]
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

registry! {
    store_sync: StoreSync,
    customer_sync: CustomerSyncJob,
    clean_active_carts: CleanActiveCarts,
    clean_database: CleanDatabase,
    create_shopify_webhook: CreateShopifyWebhook,
    share_product_text_message: ShareProductTextMessage,
}

fn build<J: ShopJob>(ports: &ShopPorts) -> Result<J, RegistryError> {
    J::build(ports).map_err(|source| RegistryError::Build { job: J::NAME, source })
}

/// The settings the embedded backend gives the jobs where a deployment's stack parameters
/// would: what is not here takes the job's default.
pub fn embedded_settings() -> BTreeMap<&'static str, String> {
    BTreeMap::from([
        ("SHOPIFY_WEBHOOK_TOPICS", "APP_UNINSTALLED,PRODUCTS_UPDATE".to_owned()),
        ("SHOPIFY_WEBHOOK_URL", "http://127.0.0.1/webhooks/shopify".to_owned()),
    ])
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

fn spec_of<J: ShopJob>() -> JobSpec {
    let declared = J::DECLARATION;
    JobSpec {
        name: J::NAME,
        lane: J::LANE,
        other_lanes: J::OTHER_LANES,
        policy: J::retry_policy(),
        timeout: J::TIMEOUT,
        schedule: declared.schedule,
        example: declared.example,
        summary: declared.summary,
        deployment: declared.deployment,
        uses: declared.uses,
    }
}

/// Every job's spec: its declaration, policy and timeout, none of which needs a built job.
///
/// # Errors
/// A schedule jobctl cannot read (checked here, once, so that no command, template or test
/// meets an unreadable one).
pub fn specs() -> Result<Vec<JobSpec>, RegistryError> {
    let specs = declared_specs();
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
