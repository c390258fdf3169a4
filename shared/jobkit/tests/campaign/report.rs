//! What the campaign found, per path: each job's pages (steps) applied exactly once, the job in
//! the DLQ with its reason (only those scripted to fail for good, their pages before the
//! failure applied once), or a finding: lost, a page applied twice, in the DLQ without reason.

use std::{collections::BTreeMap, ops::Range};

use jobkit::{dead_letter::DeadLetterError, message::ReceivedMessage};

use super::job::{Effects, Faults, Path, Script, batches, on_other_lane, pages, script, scripted_page};

/// One path's counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// Distinct jobs.
    pub jobs: u64,
    /// Pages (steps) the jobs are to apply.
    pub steps: u64,
    /// Messages sent for them, duplicates included.
    pub deliveries: u64,
    /// Every page applied once, not in the DLQ.
    pub exactly_once: u64,
    /// In the DLQ with an error kind and reason, pages before the failure applied once.
    pub in_dlq_with_reason: u64,
    /// Of those, scripted to fail for good (the rest are findings).
    pub in_dlq_scripted: u64,
    /// In the DLQ without a reason (moved there by SQS's `maxReceiveCount`).
    pub in_dlq_without_reason: u64,
    /// A page never applied and the job not in the DLQ.
    pub lost: u64,
    /// Pages applied more than once.
    pub doubled: u64,
    /// Not scripted to fail, yet in the DLQ after applying pages.
    pub applied_and_dead: u64,
}

impl Tally {
    fn add(&mut self, o: &Tally) {
        self.jobs += o.jobs;
        self.steps += o.steps;
        self.deliveries += o.deliveries;
        self.exactly_once += o.exactly_once;
        self.in_dlq_with_reason += o.in_dlq_with_reason;
        self.in_dlq_scripted += o.in_dlq_scripted;
        self.in_dlq_without_reason += o.in_dlq_without_reason;
        self.lost += o.lost;
        self.doubled += o.doubled;
        self.applied_and_dead += o.applied_and_dead;
    }

    /// True when nothing was lost or applied twice and only scripted failures are in the DLQ.
    pub fn is_clean(&self) -> bool {
        self.lost == 0
            && self.doubled == 0
            && self.applied_and_dead == 0
            && self.in_dlq_without_reason == 0
            && self.in_dlq_with_reason == self.in_dlq_scripted
            && self.exactly_once + self.in_dlq_with_reason == self.jobs
    }

    fn row(&self, label: &str) -> String {
        format!(
            "| {label} | {} | {} | {} | {} | {} | **{}** | **{}** |",
            self.jobs,
            self.steps,
            self.deliveries,
            self.exactly_once,
            self.in_dlq_with_reason,
            self.lost,
            self.doubled,
        )
    }
}

/// The header of [`Report::table`].
pub const HEADER: &str = "| path | jobs | steps | deliveries sent | every step once | in the DLQ with reason (scripted) | lost | steps applied twice |\n|---|---|---|---|---|---|---|---|";

/// The campaign's counts, per path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Per path.
    pub paths: BTreeMap<Path, Tally>,
    /// The jobs of every path that ran on the job's other lane (counted in their paths too).
    pub other_lane: Tally,
    /// Queue and store calls failed on purpose.
    pub port_faults: u64,
    /// Of those, sends made whose answer was lost.
    pub lost_send_answers: u64,
    /// Workers shut down mid-step (and replaced).
    pub workers_stopped: u64,
    /// Batches the runners handled.
    pub batches: u64,
    /// How far the clock moved, in minutes.
    pub minutes: i64,
    /// The slowest settling (after an execution: the run's record, the DLQ copy, the retry
    /// delay) of each batch, in microseconds: what the runner's deadline margin must cover.
    pub settle_us: Vec<u64>,
}

impl Report {
    /// Every path's counts added up.
    pub fn total(&self) -> Tally {
        let mut total = Tally::default();
        for tally in self.paths.values() {
            total.add(tally);
        }
        total
    }

    /// Adds `other`'s counts to these (waves of one campaign).
    pub fn add(&mut self, other: &Report) {
        for (path, tally) in &other.paths {
            self.paths.entry(*path).or_default().add(tally);
        }
        self.other_lane.add(&other.other_lane);
        self.port_faults += other.port_faults;
        self.lost_send_answers += other.lost_send_answers;
        self.workers_stopped += other.workers_stopped;
        self.batches += other.batches;
        self.minutes += other.minutes;
        self.settle_us.extend(&other.settle_us);
    }

    /// The Markdown table: a row per path, then the total.
    pub fn table(&self, backend: &str) -> String {
        let mut lines = vec![HEADER.to_owned()];
        for (path, tally) in &self.paths {
            lines.push(tally.row(path.name()));
        }
        lines.push(self.total().row(&format!("**all paths, {backend}**")));
        lines.push(self.other_lane.row("of which on the job's other lane (its own queue)"));
        lines.join("\n")
    }

    /// The slowest settling per batch: median, 99th percentile and maximum, in milliseconds.
    pub fn settle_line(&self) -> String {
        let mut sorted = self.settle_us.clone();
        sorted.sort_unstable();
        let at = |q: f64| {
            let index = ((sorted.len() as f64 - 1.0) * q).round() as usize;
            sorted.get(index).map_or(0.0, |us| *us as f64 / 1000.0)
        };
        format!(
            "settling, the slowest record of each of {} batches: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            sorted.len(),
            at(0.5),
            at(0.99),
            at(1.0)
        )
    }

    /// One line on the faults injected.
    pub fn faults_line(&self) -> String {
        format!(
            "{} port faults injected ({} sends whose answer was lost), {} workers shut down mid-step, {} batches, {} minutes of the clock",
            self.port_faults, self.lost_send_answers, self.workers_stopped, self.batches, self.minutes
        )
    }
}

/// Counts each job of `numbers` by its pages' effects and its place in the DLQ: per path, and
/// for the jobs on the other lane.
pub fn tally(
    numbers: Range<u64>,
    effects: &Effects,
    faults: &Faults,
    deliveries: &BTreeMap<u64, u64>,
    dead: &[ReceivedMessage],
) -> (BTreeMap<Path, Tally>, Tally) {
    // A job's number is in its body, whatever its job id (a tick's is its message id).
    let mut dead_jobs: BTreeMap<u64, bool> = BTreeMap::new();
    for message in dead {
        let Some(n) =
            serde_json::from_str::<serde_json::Value>(&message.body).ok().and_then(|b| b["n"].as_u64())
        else {
            continue;
        };
        let reasoned = DeadLetterError::read(&message.attributes).is_some_and(|e| !e.reason.is_empty());
        *dead_jobs.entry(n).or_default() |= reasoned;
    }
    let mut paths: BTreeMap<Path, Tally> = BTreeMap::new();
    // A batch's callback is one more step of its path: run once, after the last member, told
    // every member's outcome (only the scripted permanent failures failed).
    for members in batches(numbers.clone()) {
        let t = paths.entry(Path::Batch).or_default();
        t.steps += 1;
        let failed = members.iter().filter(|n| script(**n, faults) == Script::Permanent).count() as u64;
        match effects.callbacks(members[0]).as_slice() {
            [] => t.lost += 1,
            [told]
                if told.total == members.len() as u64
                    && told.failed == failed
                    && told.succeeded + failed == told.total => {}
            [told] => panic!(
                "batch {}: its callback was told {told:?}, not {} members of which {failed} failed",
                members[0],
                members.len()
            ),
            _ => t.doubled += 1,
        }
    }
    let mut other_lane = Tally::default();
    for n in numbers {
        let mut one = Tally::default();
        count_job(&mut one, n, effects, faults, deliveries, &dead_jobs);
        paths.entry(Path::of(n)).or_default().add(&one);
        if on_other_lane(n) {
            other_lane.add(&one);
        }
    }
    (paths, other_lane)
}

/// Counts job `n` into `t`.
fn count_job(
    t: &mut Tally,
    n: u64,
    effects: &Effects,
    faults: &Faults,
    deliveries: &BTreeMap<u64, u64>,
    dead_jobs: &BTreeMap<u64, bool>,
) {
    {
        let applied: Vec<u32> = (0..pages(n)).map(|p| effects.applied(n, p)).collect();
        t.jobs += 1;
        t.steps += u64::from(pages(n));
        t.deliveries += deliveries.get(&n).copied().unwrap_or(0);
        t.doubled += applied.iter().filter(|a| **a > 1).count() as u64;
        let dead = dead_jobs.get(&n).copied();
        if script(n, faults) == Script::Permanent {
            let failed_at = scripted_page(n) as usize;
            let before_once = applied[..failed_at].iter().all(|a| *a == 1);
            let after_none = applied[failed_at..].iter().all(|a| *a == 0);
            match dead {
                Some(true) if before_once && after_none => {
                    t.in_dlq_with_reason += 1;
                    t.in_dlq_scripted += 1;
                }
                Some(true) => t.applied_and_dead += 1,
                Some(false) => t.in_dlq_without_reason += 1,
                None => t.lost += 1,
            }
            return;
        }
        match dead {
            None if applied.iter().all(|a| *a == 1) => t.exactly_once += 1,
            None if applied.contains(&0) => t.lost += 1,
            None => {}
            Some(_) if applied.iter().any(|a| *a > 0) => t.applied_and_dead += 1,
            Some(true) => t.in_dlq_with_reason += 1,
            Some(false) => t.in_dlq_without_reason += 1,
        }
    }
}
