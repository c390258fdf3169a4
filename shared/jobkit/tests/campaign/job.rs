//! The campaign's job: job number `n` walks the path and the script its number gives it, and
//! each page it walks is an effect counted per job and page (per step).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use jobkit::{
    ErrorKind, Job, JobContext, JobError, Lane, RetryPolicy, Wait, batch::BatchSummary, shutdown::Shutdown,
};
use serde::{Deserialize, Serialize};

/// The job's timeout; an overrun sleeps twice as long.
pub const TIMEOUT: Duration = Duration::from_millis(40);

/// How often each fault happens.
#[derive(Debug, Clone, Copy)]
pub struct Faults {
    /// Jobs that fail with an outage 1-3 times, then succeed.
    pub transient: f64,
    /// Jobs that fail for good (discarded to the DLQ).
    pub permanent: f64,
    /// Jobs that panic on their first run.
    pub panic: f64,
    /// Jobs whose first run outlives the job's timeout.
    pub overrun: f64,
    /// Jobs sent twice with the same job id.
    pub duplicate: f64,
    /// Queue and store calls that fail (half before doing their work, half after).
    pub port: f64,
}

/// The rates.
pub const FAULTS: Faults =
    Faults { transient: 0.20, permanent: 0.05, panic: 0.01, overrun: 0.01, duplicate: 0.10, port: 0.02 };

/// The way a job travels: each is a path through the runner that must keep the promise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Path {
    /// One step, sent once (10 % twice with the same job id).
    Plain,
    /// 3-6 pages, each checkpoint continuing in a new message (10 % sent twice).
    Steps,
    /// Due later: hops until due (10 % sent twice).
    Delayed,
    /// A scheduled tick delivered 2-3 times, its run 2-4 pages long.
    Ticks,
    /// Sent three times at once with one job id: twins in one batch and across workers.
    Twins,
    /// Enqueued with `unique_for` through a queue whose sends fail; the caller retries.
    Unique,
    /// 3-6 pages; the worker running its first page is shut down there, and replaced.
    Shutdown,
    /// One page, a member of a batch of ten enqueued through a queue whose sends fail (the
    /// caller retries); the batch's callback must run once, after the last member.
    Batch,
}

impl Path {
    /// Every path, in table order.
    pub const ALL: [Path; 8] = [
        Path::Plain,
        Path::Steps,
        Path::Delayed,
        Path::Ticks,
        Path::Twins,
        Path::Unique,
        Path::Shutdown,
        Path::Batch,
    ];

    /// The path of job `n`.
    pub fn of(n: u64) -> Path {
        Self::ALL[(n % Self::ALL.len() as u64) as usize]
    }

    /// The row's name in RELIABILITY.md.
    pub fn name(self) -> &'static str {
        match self {
            Path::Plain => "plain (retry, panic, overrun, duplicate)",
            Path::Steps => "steps continued 2-5 times",
            Path::Delayed => "delayed, hopping (lost hop answers)",
            Path::Ticks => "tick delivered 2-3 times while its run continues",
            Path::Twins => "twins in a batch and across workers",
            Path::Unique => "unique_for whose send fails",
            Path::Shutdown => "worker shut down mid-step",
            Path::Batch => "batch members (its callback once)",
        }
    }
}

/// The pages job `n` walks.
pub fn pages(n: u64) -> u32 {
    match Path::of(n) {
        Path::Steps | Path::Shutdown => 3 + (n / 7 % 4) as u32,
        Path::Ticks | Path::Twins => 2 + (n / 7 % 3) as u32,
        Path::Plain | Path::Delayed | Path::Unique | Path::Batch => 1,
    }
}

/// What job number `n` is scripted to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Script {
    /// Succeeds.
    Clean,
    /// Fails with an outage this many times at its scripted page, then succeeds.
    Transient(u32),
    /// Fails for good at its scripted page.
    Permanent,
    /// Panics at its scripted page the first time.
    Panic,
    /// Outlives its timeout at its scripted page the first time.
    Overrun,
}

/// A uniform number in [0, 1) from `n` (SplitMix64), so a job's script does not depend on
/// the order things run in.
pub fn unit(n: u64, salt: u64) -> f64 {
    let mut z = n.wrapping_add(salt).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// The script of job `n` under `faults`.
pub fn script(n: u64, faults: &Faults) -> Script {
    let u = unit(n, 1);
    let mut edge = faults.permanent;
    if u < edge {
        return Script::Permanent;
    }
    edge += faults.panic;
    if u < edge {
        return Script::Panic;
    }
    edge += faults.overrun;
    if u < edge {
        return Script::Overrun;
    }
    edge += faults.transient;
    if u < edge {
        return Script::Transient(1 + (n % 3) as u32);
    }
    Script::Clean
}

/// The page at which job `n`'s script strikes.
pub fn scripted_page(n: u64) -> u32 {
    (unit(n, 3) * f64::from(pages(n))) as u32
}

/// Members of one batch.
pub const BATCH_SIZE: usize = 10;

/// A batch callback's job number: this plus its batch's first member.
pub const CALLBACK: u64 = 1 << 40;

/// Whether job `n` runs on the job's other lane (a third of each path's jobs): its messages go
/// to the lane's queue, where the runner must settle them (retries, hops, continuations).
pub fn on_other_lane(n: u64) -> bool {
    n < CALLBACK && (n / Path::ALL.len() as u64) % 3 == 2
}

/// The batches of the batch-path jobs among `numbers`: ten consecutive members each (the last
/// one shorter), named by their first member.
pub fn batches(numbers: std::ops::Range<u64>) -> Vec<Vec<u64>> {
    let members: Vec<u64> = numbers.filter(|n| Path::of(*n) == Path::Batch).collect();
    members.chunks(BATCH_SIZE).map(<[u64]>::to_vec).collect()
}

/// The side effects: a counter per job and page, the executions that reached each page, and
/// what each batch's callback was told, by the batch's first member.
#[derive(Debug, Default)]
pub struct Effects {
    applied: Mutex<HashMap<(u64, u32), u32>>,
    reached: Mutex<HashMap<(u64, u32), u32>>,
    called_back: Mutex<HashMap<u64, Vec<BatchSummary>>>,
}

impl Effects {
    fn apply(&self, n: u64, page: u32) {
        *self.applied.lock().unwrap().entry((n, page)).or_default() += 1;
    }

    fn reach(&self, n: u64, page: u32) -> u32 {
        let mut reached = self.reached.lock().unwrap();
        let count = reached.entry((n, page)).or_default();
        *count += 1;
        *count
    }

    /// What the callbacks of the batch whose first member is `first` were told, once per run.
    pub fn callbacks(&self, first: u64) -> Vec<BatchSummary> {
        self.called_back.lock().unwrap().get(&first).cloned().unwrap_or_default()
    }

    /// Times page `page` of job `n` was applied.
    pub fn applied(&self, n: u64, page: u32) -> u32 {
        self.applied.lock().unwrap().get(&(n, page)).copied().unwrap_or(0)
    }
}

/// The job's arguments; a batch's callback gets its summary in `batch`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CampaignArgs {
    pub n: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<BatchSummary>,
}

impl CampaignArgs {
    /// Job number `n`.
    pub fn new(n: u64) -> Self {
        Self { n, batch: None }
    }
}

/// The job under test, as one worker runs it: the worker's stop switch is its own.
#[derive(Clone)]
pub struct CampaignJob {
    pub effects: Arc<Effects>,
    pub faults: Faults,
    pub shutdown: Shutdown,
}

impl Job for CampaignJob {
    type Args = CampaignArgs;
    const NAME: &'static str = "campaign";
    const OTHER_LANES: &'static [Lane] = &[Lane::Low];

    fn lane(args: &CampaignArgs) -> Lane {
        if on_other_lane(args.n) { Lane::Low } else { Self::LANE }
    }

    async fn perform(&self, args: CampaignArgs, ctx: &mut JobContext) -> Result<(), JobError> {
        let n = args.n;
        if let Some(summary) = args.batch {
            let first = n - CALLBACK;
            self.effects.called_back.lock().unwrap().entry(first).or_default().push(summary);
            return Ok(());
        }
        ctx.step("pages", 0_u32, async |step| {
            loop {
                self.walk(n, *step.cursor()).await?;
                *step.cursor_mut() += 1;
                if *step.cursor() == pages(n) {
                    return Ok(());
                }
                step.checkpoint().await?;
            }
        })
        .await?;
        Ok(())
    }

    fn retry_policy() -> RetryPolicy {
        RetryPolicy::new().default_retry(Wait::Fixed(Duration::from_secs(5)), 8)
    }

    const TIMEOUT: Duration = TIMEOUT;
}

impl CampaignJob {
    /// Page `page` of job `n`: its scripted fault, if this is the page and the attempt for it,
    /// else its effect.
    async fn walk(&self, n: u64, page: u32) -> Result<(), JobError> {
        let reached = self.effects.reach(n, page);
        if Path::of(n) == Path::Shutdown && page == 1 && reached == 1 {
            // The worker is told to stop while this step runs: it stops at the checkpoint.
            self.shutdown.request();
        }
        if page == scripted_page(n) {
            match script(n, &self.faults) {
                Script::Permanent => {
                    return Err(JobError::permanent(ErrorKind::INVALID_INPUT, "scripted: refused for good"));
                }
                Script::Panic if reached == 1 => panic!("scripted panic of job {n}"),
                Script::Overrun if reached == 1 => tokio::time::sleep(TIMEOUT * 2).await,
                Script::Transient(failures) if reached <= failures => {
                    return Err(JobError::retryable(ErrorKind::UNAVAILABLE, "scripted outage"));
                }
                _ => {}
            }
        }
        self.effects.apply(n, page);
        Ok(())
    }
}
