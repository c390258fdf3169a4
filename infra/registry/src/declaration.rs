//! What jobctl knows of a job: its type's identity and policy with its declaration
//! ([`shop::declaration`], written beside the job), and what jobctl reads in it (a schedule's
//! cron expression and zone) and derives from it (timeouts, receives, alarms).

use std::time::Duration;

use chrono_tz::Tz;
use jobkit::{Lane, RetryPolicy};

pub use shop::declaration::{
    Declaration, Deployment, STACK_ZONE_DEFAULT, STACK_ZONE_PARAMETER, Schedule, Setting, ShopJob, Table,
    TableUse, Uses, Zone,
};

use crate::schedule::{self, CronSchedule, ScheduleError};

/// What jobctl reads in a declared schedule: its cron expression and its zone (the parser
/// lives here, not beside the declaration the jobs make).
pub trait ScheduleExt {
    /// Its cron expression, read from [`Schedule::every`].
    ///
    /// # Errors
    /// [`ScheduleError`] for text jobctl does not read, or a zone in the text other than
    /// [`Schedule::zone`] (a schedule's zone is declared once).
    fn cron(&self) -> Result<CronSchedule, ScheduleError>;
}

/// A declared zone as a time zone.
pub trait ZoneExt {
    /// The zone, [`Zone::Stack`] read as `stack` (the deployment's `ScheduleTimeZone`).
    ///
    /// # Errors
    /// A named zone that is not an IANA name.
    fn resolve(self, stack: Tz) -> Result<Tz, ScheduleError>;
}

impl ZoneExt for Zone {
    fn resolve(self, stack: Tz) -> Result<Tz, ScheduleError> {
        match self {
            Zone::Named(name) => schedule::zone(name),
            Zone::Stack => Ok(stack),
        }
    }
}

impl ScheduleExt for Schedule {
    fn cron(&self) -> Result<CronSchedule, ScheduleError> {
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
