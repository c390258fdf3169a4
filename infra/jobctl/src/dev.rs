//! `jobctl dev`: every job of the registry in one process on the embedded backend, with the batch runner
//! Lambda uses: a worker per job queue receives up to 10 visible messages, runs them, deletes
//! what is done; the schedules tick from the template's cron expressions into the same queues;
//! error emails and texts land in `outbox/` as readable files.
//!
//! `--until-idle` stops once every job queue is empty (delayed retries included), which is
//! what scripts and tests want. Ctrl-C stops as Sidekiq does on TERM: no new batch starts,
//! records not started are handed back, a job with steps stops at its next checkpoint and
//! continues in a new message, other jobs get [`STOP_GRACE`] to finish. A second Ctrl-C (or the
//! grace running out) stops at once: what was mid-run stays in flight and comes back after its
//! visibility timeout, as after a crash on Lambda. Nothing is lost either way.

use std::{
    future::Future,
    path::{Path, PathBuf},
    pin::Pin,
    sync::Arc,
    time::Duration,
};

use chrono::{DateTime, Utc};
use jobkit::{
    Job, Lane, PortError,
    clock::{Clock, ManualClock, SharedClock, SystemClock},
    embedded::{EmbeddedQueue, OutboxMailer},
    enqueue::QueueRoutes,
    message::{OutgoingMessage, SCHEDULE_KEY},
    notify::{Notifier, NotifyConfig},
    ports::Queue,
    runner::{BatchRunner, RecordStatus, RunnerConfig, Runtime},
    shutdown::Shutdown,
};
use serde_json::{Value, json};
use shop::{
    EmbeddedPorts, ShopPorts, embedded::ShopDb, shopify::ShopifyConfig, sms_outbox::SmsOutbox,
    square::SquareConfig,
};

use crate::{
    backend::{Backend, BackendError},
    registry::{self, EachJob, Jobs, RegistryError, Schedule, ScheduleExt, ZoneExt},
    schedule::CronSchedule,
};

/// How `jobctl dev` runs.
#[derive(Debug, Clone)]
pub struct DevOptions {
    /// The embedded backend's folder.
    pub dir: PathBuf,
    /// Stop once every job queue is empty.
    pub until_idle: bool,
    /// Shopify's base URL (`http://127.0.0.1:PORT/{shop}`); real Shopify when `None`.
    pub shopify_url: Option<String>,
    /// Square's base URL; real Square when `None`.
    pub square_url: Option<String>,
    /// Tick the schedules.
    pub schedules: bool,
    /// The zone of the schedules declared in the stack's (`ScheduleTimeZone`): what a
    /// deployment would give it.
    pub stack_zone: chrono_tz::Tz,
    /// Tries of one Shopify or Square request before the job sees the error (clients' default
    /// when `None`); the demo uses 1 so that retries show at the job's level.
    pub client_tries: Option<u32>,
    /// A clock the run moves itself, straight to the next due message, instead of waiting
    /// (the demo's retries and backoffs take hours of this clock and no real time).
    pub virtual_clock: Option<ManualClock>,
}

impl DevOptions {
    /// Every job on `dir` against the real outside world, on the system clock.
    pub fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            until_idle: false,
            shopify_url: None,
            square_url: None,
            schedules: true,
            stack_zone: chrono_tz::Tz::UTC,
            client_tries: None,
            virtual_clock: None,
        }
    }
}

/// `jobctl dev` could not start or its backend failed.
#[derive(Debug, thiserror::Error)]
pub enum DevError {
    /// The backend.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// The registry.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The queue.
    #[error(transparent)]
    Port(#[from] PortError),
    /// The shop's database.
    #[error("cannot open the shop's database: {0}")]
    Shop(String),
    /// Ctrl-C cannot be listened for.
    #[error("cannot listen for Ctrl-C: {0}")]
    Signal(std::io::Error),
}

/// What a run did, per job.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Tally {
    /// The job.
    pub job: &'static str,
    /// Records that succeeded.
    pub succeeded: u64,
    /// Records that failed and come back later.
    pub retried: u64,
    /// Records moved to the DLQ.
    pub dead_lettered: u64,
    /// Records handled otherwise (duplicates, hops, continuations, hand-backs).
    pub other: u64,
}

impl Tally {
    fn add(&mut self, status: &RecordStatus) {
        match status {
            RecordStatus::Succeeded => self.succeeded += 1,
            RecordStatus::Retrying(_) => self.retried += 1,
            RecordStatus::DeadLettered(..) => self.dead_lettered += 1,
            _ => self.other += 1,
        }
    }
}

/// How long running jobs get to finish after Ctrl-C (Sidekiq's default shutdown timeout).
pub const STOP_GRACE: Duration = Duration::from_secs(25);

type Polled<'a> = Pin<Box<dyn Future<Output = Result<Vec<RecordStatus>, PortError>> + Send + 'a>>;

/// One job's worker: its runner and its queues (one per lane of the job).
trait Worker: Send + Sync {
    fn job(&self) -> &'static str;
    fn queues(&self) -> Vec<&str>;
    /// Receives one batch of visible messages from one of its lanes, runs it, deletes what is
    /// done.
    fn poll(&self) -> Polled<'_>;
}

struct JobWorker<J: Job> {
    runner: BatchRunner<J>,
    /// Each lane of the job with its queue, the job's own first.
    lanes: Vec<(Lane, String)>,
    clock: SharedClock,
    /// Each batch's deadline, as the template's function timeout: twice the job's. The runner
    /// starts a record only if the job's timeout fits before it, and a key in progress is held
    /// until it (so a duplicate in the same batch waits this long, not Lambda's 15 minutes).
    invocation_timeout: chrono::Duration,
}

impl<J: Job> Worker for JobWorker<J> {
    fn job(&self) -> &'static str {
        J::NAME
    }

    fn queues(&self) -> Vec<&str> {
        self.lanes.iter().map(|(_, queue)| queue.as_str()).collect()
    }

    /// Looks at the job's lanes in a weighted random order (Sidekiq's weighted queues: the
    /// high lane first six times in ten against one low one) and runs the first batch found,
    /// so a busy fast lane is served first without starving a slow one.
    fn poll(&self) -> Polled<'_> {
        // The order is drawn before the first await: the thread's generator is not Send.
        let order = weighted_order(&self.lanes, &mut rand::rng());
        Box::pin(async move {
            for queue in order {
                let deadline = self.clock.now() + self.invocation_timeout;
                let outcome = self.runner.poll_queue(queue, 10, Duration::ZERO, deadline).await?;
                if !outcome.records.is_empty() {
                    return Ok(outcome.records.into_iter().map(|r| r.status).collect());
                }
            }
            Ok(Vec::new())
        })
    }
}

/// The lanes' queues in a random order where each comes next with a chance in proportion to
/// its lane's weight ([`Lane::weight`]) among those left.
fn weighted_order<'a>(lanes: &'a [(Lane, String)], rng: &mut impl rand::Rng) -> Vec<&'a str> {
    let mut left: Vec<&(Lane, String)> = lanes.iter().collect();
    let mut order = Vec::with_capacity(lanes.len());
    while !left.is_empty() {
        let total: u32 = left.iter().map(|(lane, _)| lane.weight()).sum();
        let mut pick = rng.random_range(0..total.max(1));
        let index = left
            .iter()
            .position(|(lane, _)| {
                let hit = pick < lane.weight();
                pick = pick.saturating_sub(lane.weight());
                hit
            })
            .unwrap_or(0);
        order.push(left.remove(index).1.as_str());
    }
    order
}

/// Builds a worker per job of the registry, each on its own queue (by jobkit's convention, so a
/// job enqueueing another reaches that one's queue).
struct Workers<'a> {
    runtime: &'a Runtime,
    shutdown: &'a Shutdown,
    built: Vec<Box<dyn Worker>>,
}

impl EachJob for Workers<'_> {
    fn job<J: Job + Clone>(&mut self, job: &J) {
        let mut config = RunnerConfig::new(registry::queue_name(J::NAME), registry::dlq_name(J::NAME));
        for &lane in J::OTHER_LANES {
            config = config.with_lane(lane, jobkit::job::lane_queue_name(J::NAME, lane));
        }
        let lanes = jobkit::job::lanes_of::<J>().zip(config.queues().map(|(_, q)| q.to_owned())).collect();
        let runtime = self.runtime.clone();
        let clock = runtime.clock.clone();
        let invocation_timeout =
            chrono::Duration::from_std(J::TIMEOUT * 2).unwrap_or(chrono::Duration::minutes(15));
        let runner = BatchRunner::new(job.clone(), runtime, config).with_shutdown(self.shutdown.clone());
        self.built.push(Box::new(JobWorker { runner, lanes, clock, invocation_timeout }));
    }
}

/// Where `jobctl dev` writes what would leave the system.
pub fn outbox(dir: &Path) -> PathBuf {
    dir.join("outbox")
}

/// A schedule and when it fires next.
struct Ticker {
    job: &'static str,
    schedule: Schedule,
    cron: CronSchedule,
    /// Its zone: it fires at local times of it, as EventBridge Scheduler does.
    zone: chrono_tz::Tz,
    next: Option<DateTime<Utc>>,
}

impl Ticker {
    /// The ticker of `job`'s `schedule`, due next after `now`; `stack_zone` is the zone of a
    /// schedule declared in the stack's.
    fn new(
        job: &'static str,
        schedule: Schedule,
        stack_zone: chrono_tz::Tz,
        now: DateTime<Utc>,
    ) -> Result<Self, RegistryError> {
        let unreadable = |source| RegistryError::Schedule { job, rule: schedule.rule, source };
        let cron = schedule.cron().map_err(unreadable)?;
        let zone = schedule.zone.resolve(stack_zone).map_err(unreadable)?;
        let mut ticker = Self { job, schedule, cron, zone, next: None };
        ticker.next = ticker.next_after(now);
        Ok(ticker)
    }

    /// The next firing after `after`, in UTC.
    fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron.next_in(self.zone, after, 1).first().map(|t| t.with_timezone(&Utc))
    }

    /// The tick EventBridge Scheduler sends: the schedule's arguments and `$schedule` with the
    /// schedule's name and the scheduled time (UTC).
    fn message(&self, at: DateTime<Utc>) -> OutgoingMessage {
        let mut body: Value = serde_json::from_str(self.schedule.args).unwrap_or_else(|_| json!({}));
        body[SCHEDULE_KEY] = json!({"rule": self.schedule.rule, "time": at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)});
        OutgoingMessage { body: body.to_string(), ..OutgoingMessage::default() }
    }
}

/// The running system.
pub struct Dev {
    backend: Backend,
    queue: Arc<EmbeddedQueue>,
    workers: Vec<Box<dyn Worker>>,
    tickers: Vec<Ticker>,
    clock: SharedClock,
    virtual_clock: Option<ManualClock>,
    shutdown: Shutdown,
}

impl Dev {
    /// Opens the embedded backend in `options.dir` and builds every job on it.
    ///
    /// # Errors
    /// A backend or database that cannot be opened.
    pub async fn open(options: &DevOptions) -> Result<Self, DevError> {
        let clock: SharedClock = match &options.virtual_clock {
            Some(manual) => Arc::new(manual.clone()),
            None => Arc::new(SystemClock),
        };
        let backend = Backend::open_embedded(&options.dir, clock.clone())?;
        let queue = backend
            .embedded()
            .cloned()
            .ok_or_else(|| DevError::Shop("the embedded backend has no embedded queue".to_owned()))?;
        let shop =
            ShopDb::open(options.dir.join("jobs.sqlite3")).map_err(|e| DevError::Shop(e.to_string()))?;
        let outbox = outbox(&options.dir);
        let ports = ShopPorts::embedded(EmbeddedPorts {
            shop,
            job_state: backend.store(),
            sms: Arc::new(SmsOutbox::new(outbox.join("sms"))),
            shopify: ShopifyConfig {
                base_url: options.shopify_url.clone(),
                max_tries: options.client_tries.unwrap_or(ShopifyConfig::default().max_tries),
                ..ShopifyConfig::default()
            },
            square: SquareConfig {
                base_url: options.square_url.clone().unwrap_or_else(|| SquareConfig::default().base_url),
                max_tries: options.client_tries.unwrap_or(SquareConfig::default().max_tries),
                ..SquareConfig::default()
            },
            settings: registry::embedded_settings(),
        });
        let jobs = Jobs::on(&ports)?;
        let mailer = Arc::new(OutboxMailer::new(outbox.join("mail")));
        let notify = NotifyConfig {
            from: "jobs@localhost".to_owned(),
            to: vec!["operators@localhost".to_owned()],
            window: Duration::from_secs(3600),
        };
        let runtime = Runtime {
            queue: queue.clone(),
            store: backend.store(),
            clock: clock.clone(),
            notifier: Some(Notifier::new(mailer, notify)),
            metrics: None,
            routes: QueueRoutes::default(),
        };
        let shutdown = Shutdown::new();
        let mut workers = Workers { runtime: &runtime, shutdown: &shutdown, built: Vec::new() };
        jobs.each(&mut workers);
        let workers = workers.built;
        let now = clock.now();
        let mut tickers = Vec::new();
        if options.schedules {
            for spec in jobs.specs() {
                let Some(schedule) = spec.schedule else { continue };
                tickers.push(Ticker::new(spec.name, schedule, options.stack_zone, now)?);
            }
        }
        let virtual_clock = options.virtual_clock.clone();
        Ok(Self { backend, queue, workers, tickers, clock, virtual_clock, shutdown })
    }

    /// The backend the system runs on.
    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// Where the system runs, for messages.
    pub fn describe(&self) -> String {
        self.backend.describe()
    }

    /// Sends the ticks that are due.
    async fn tick(&mut self, now: DateTime<Utc>) -> Result<(), DevError> {
        for ticker in &mut self.tickers {
            while let Some(at) = ticker.next.filter(|at| *at <= now) {
                let queue = registry::queue_name(ticker.job);
                self.queue.send(&queue, ticker.message(at)).await?;
                tracing::info!(job = ticker.job, rule = ticker.schedule.rule, time = %at, "schedule ticked");
                ticker.next = ticker.next_after(at);
            }
        }
        Ok(())
    }

    /// True when no job queue holds a message in any state.
    fn idle(&self, paused: &[bool]) -> Result<bool, DevError> {
        for queue in self.running(paused).flat_map(|w| w.queues()) {
            let stats = self.queue.stats(queue)?;
            if stats.visible + stats.in_flight + stats.delayed > 0 {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// When the next message of any job queue becomes visible.
    fn next_due(&self, paused: &[bool]) -> Result<Option<DateTime<Utc>>, DevError> {
        let mut next = None;
        for queue in self.running(paused).flat_map(|w| w.queues()) {
            next = next.into_iter().chain(self.queue.next_visible_at(queue)?).min();
        }
        Ok(next)
    }

    /// How long to wait when nothing is visible: until the next message or tick is due, at
    /// most a second (a message sent by another process is noticed within it).
    fn pause(&self, now: DateTime<Utc>, paused: &[bool]) -> Result<Duration, DevError> {
        let mut due: Vec<DateTime<Utc>> = self.tickers.iter().filter_map(|t| t.next).collect();
        for queue in self.running(paused).flat_map(|w| w.queues()) {
            due.extend(self.queue.next_visible_at(queue)?);
        }
        let until = due
            .into_iter()
            .min()
            .map_or(Duration::from_secs(1), |at| (at - now).to_std().unwrap_or_default());
        Ok(until.clamp(Duration::from_millis(10), Duration::from_secs(1)))
    }

    /// Per worker, whether `jobctl pause` paused its job (read before each round, so a pause
    /// from another shell takes effect at the next batch).
    async fn paused(&self) -> Result<Vec<bool>, DevError> {
        let mut paused = Vec::with_capacity(self.workers.len());
        for worker in &self.workers {
            paused.push(self.backend.is_paused(worker.job()).await?);
        }
        Ok(paused)
    }

    /// The workers of jobs that are not paused (a paused job's queue holds its messages: it
    /// neither keeps `--until-idle` waiting nor wakes the loop).
    fn running<'a>(&'a self, paused: &'a [bool]) -> impl Iterator<Item = &'a Box<dyn Worker>> + 'a {
        self.workers.iter().zip(paused).filter(|(_, paused)| !**paused).map(|(worker, _)| worker)
    }

    /// Runs until Ctrl-C, or until idle with `until_idle`; returns what each job did.
    /// Ctrl-C while jobs run stops them as the module's documentation says.
    ///
    /// # Errors
    /// The queue failing.
    pub async fn run(&mut self, until_idle: bool) -> Result<Vec<Tally>, DevError> {
        let mut tallies: Vec<Tally> =
            self.workers.iter().map(|w| Tally { job: w.job(), ..Tally::default() }).collect();
        let mut interrupts = Interrupts::listen()?;
        loop {
            self.tick(self.clock.now()).await?;
            // Every queue's worker polls at once, so a long store sync does not hold up a text
            // waiting on another queue (on Lambda each queue has its own functions).
            let paused = self.paused().await?;
            let polling = futures::future::join_all(self.workers.iter().zip(&paused).map(|(w, paused)| {
                if *paused { Box::pin(async { Ok(Vec::new()) }) as Polled<'_> } else { w.poll() }
            }));
            tokio::pin!(polling);
            let polled = tokio::select! {
                polled = &mut polling => polled,
                () = interrupts.next() => {
                    self.shutdown.request();
                    tracing::warn!(
                        grace_seconds = STOP_GRACE.as_secs(),
                        "stopping: no new work; jobs with steps stop at their next checkpoint, others \
                         get the grace to finish (Ctrl-C again stops now)"
                    );
                    tokio::select! {
                        polled = &mut polling => {
                            count(polled, &mut tallies)?;
                            tracing::info!("stopped: every running job finished or continues later");
                        }
                        () = interrupts.next() => abandoned("a second Ctrl-C"),
                        () = tokio::time::sleep(STOP_GRACE) => abandoned("the grace ran out"),
                    }
                    return Ok(tallies);
                }
            };
            let handled = count(polled, &mut tallies)?;
            if handled > 0 {
                continue;
            }
            if until_idle && self.idle(&paused)? {
                return Ok(tallies);
            }
            if let Some(clock) = &self.virtual_clock
                && let Some(next) = self.next_due(&paused)?
            {
                // Nothing is visible now: move the clock to the next message that will be.
                clock.set(next.max(clock.now()));
                continue;
            }
            let pause = self.pause(Utc::now(), &paused)?;
            tokio::select! {
                () = interrupts.next() => {
                    tracing::info!("stopping: Ctrl-C");
                    return Ok(tallies);
                }
                // An enqueue in this process (a job enqueuing another) wakes the loop at once.
                () = self.queue.wait_for_send(pause) => {}
            }
        }
    }
}

/// Ctrl-C, listened for from the start of a run. `tokio::signal::ctrl_c()` installs its handler
/// only when first polled: a Ctrl-C arriving between the first request and that poll got the
/// default action and killed the process mid-job (the dev_stop test caught it on a busy machine).
struct Interrupts {
    #[cfg(unix)]
    signal: tokio::signal::unix::Signal,
}

impl Interrupts {
    fn listen() -> Result<Self, DevError> {
        #[cfg(unix)]
        {
            let signal = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
                .map_err(DevError::Signal)?;
            Ok(Self { signal })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    /// The next Ctrl-C.
    async fn next(&mut self) {
        #[cfg(unix)]
        self.signal.recv().await;
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Adds each worker's statuses to its tally; how many records were handled.
fn count(
    polled: Vec<Result<Vec<RecordStatus>, PortError>>,
    tallies: &mut [Tally],
) -> Result<usize, DevError> {
    let mut handled = 0;
    for (statuses, tally) in polled.into_iter().zip(tallies) {
        let statuses = statuses?;
        handled += statuses.len();
        statuses.iter().for_each(|s| tally.add(s));
    }
    Ok(handled)
}

fn abandoned(why: &str) {
    tracing::warn!(
        "stopped now ({why}): jobs still running were cut off; their messages stay in flight and \
         come back when their visibility timeout ends, as after a crash on Lambda"
    );
}

#[cfg(test)]
mod tests {
    #[test]
    fn weighted_polling_looks_at_the_high_lane_first_six_times_in_ten_against_one_low() {
        use jobkit::Lane;
        use rand::SeedableRng;
        let lanes = [
            (Lane::High, "high".to_owned()),
            (Lane::Default, "default".to_owned()),
            (Lane::Low, "low".to_owned()),
        ];
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut first = std::collections::BTreeMap::new();
        for _ in 0..10_000 {
            let order = super::weighted_order(&lanes, &mut rng);
            assert_eq!(order.len(), 3, "every lane is looked at: {order:?}");
            *first.entry(order[0]).or_insert(0) += 1;
        }
        // 6 : 3 : 1 of 10,000, within a few percent.
        assert!((5_700..6_300).contains(&first["high"]), "{first:?}");
        assert!((2_700..3_300).contains(&first["default"]), "{first:?}");
        assert!((800..1_200).contains(&first["low"]), "{first:?}");
    }

    use chrono::TimeZone;

    use super::*;

    fn utc(y: i32, mo: u32, d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, 0, 0).single().expect("a valid time")
    }

    #[test]
    fn a_schedule_in_the_stacks_zone_ticks_at_its_local_time() {
        let (job, schedule) = registry::schedules()
            .expect("registry")
            .into_iter()
            .find(|(job, _)| *job == "clean_database")
            .expect("clean_database's schedule");
        let berlin =
            Ticker::new(job, schedule, chrono_tz::Europe::Berlin, utc(2026, 6, 30, 12)).expect("ticker");
        assert_eq!(berlin.next, Some(utc(2026, 7, 1, 1)), "03:00 CEST");
        assert_eq!(berlin.next_after(utc(2026, 10, 25, 0)), Some(utc(2026, 10, 25, 2)), "03:00 CET");
        let body: Value = serde_json::from_str(&berlin.message(utc(2026, 7, 1, 1)).body).expect("JSON");
        assert_eq!(
            body[SCHEDULE_KEY],
            json!({"rule": "clean-database-daily", "time": "2026-07-01T01:00:00Z"})
        );
        let default = Ticker::new(job, schedule, chrono_tz::Tz::UTC, utc(2026, 6, 30, 12)).expect("ticker");
        assert_eq!(default.next, Some(utc(2026, 7, 1, 3)), "03:00 UTC");
    }
}
