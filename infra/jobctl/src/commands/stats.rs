//! `jobctl stats`: per job, its queue's depth, in flight, delayed, oldest message's age, its
//! DLQ's depth, and whether it is paused; for a job with other lanes, the sum of its queues and
//! a row per lane.
//!
//! [`collect`] reads the numbers; [`stats`] prints them, and `jobctl console` renders them.

use jobkit::Lane;
use serde_json::json;

use super::CommandError;
use crate::{
    backend::{Backend, Counts},
    duration,
    output::Output,
    registry,
};

/// One job's numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobStats {
    /// The job.
    pub job: &'static str,
    /// Its queue, with its other lanes' queues added in.
    pub queue: Counts,
    /// For a job with other lanes, each lane's queue (its own first); empty otherwise.
    pub lanes: Vec<(Lane, Counts)>,
    /// Its DLQ.
    pub dlq: Counts,
    /// Whether it is paused; `None` when the backend could not tell.
    pub paused: Option<bool>,
}

/// Every job's numbers, and why pauses could not be read (if they could not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stats {
    /// Per job, in the registry's order.
    pub jobs: Vec<JobStats>,
    /// The first error met reading whether a job is paused.
    pub paused_unknown: Option<String>,
}

/// Reads every job's numbers.
///
/// # Errors
/// A backend error (a queue missing on AWS names the stack it looked for).
pub async fn collect(backend: &Backend) -> Result<Stats, CommandError> {
    let mut jobs = Vec::new();
    let mut paused_unknown = None;
    for spec in registry::specs()? {
        jobs.push(job_stats(backend, &spec, &mut paused_unknown).await?);
    }
    Ok(Stats { jobs, paused_unknown })
}

/// One job's numbers. A pause that cannot be read is noted in `paused_unknown` (the first such
/// error only).
///
/// # Errors
/// A backend error.
pub async fn job_stats(
    backend: &Backend,
    spec: &registry::JobSpec,
    paused_unknown: &mut Option<String>,
) -> Result<JobStats, CommandError> {
    let job = spec.name;
    let own = backend.counts(&backend.queue_id(job).await?).await?;
    let mut queue = own.clone();
    let mut lanes = Vec::new();
    if !spec.other_lanes.is_empty() {
        lanes.push((spec.lane, own));
        for &lane in spec.other_lanes {
            let counts = backend.counts(&backend.lane_queue_id(job, lane).await?).await?;
            queue = queue.plus(&counts);
            lanes.push((lane, counts));
        }
    }
    let dlq = backend.counts(&backend.dlq_id(job).await?).await?;
    // Whether it is paused is worth a column, not a failed command: on AWS it needs Lambda
    // permissions an operator reading queues may not have.
    let paused = match backend.is_paused(job).await {
        Ok(paused) => Some(paused),
        Err(e) => {
            paused_unknown.get_or_insert_with(|| e.to_string());
            None
        }
    };
    Ok(JobStats { job, queue, lanes, dlq, paused })
}

/// The age of a queue's oldest message for people (`-` when unknown or empty).
pub fn oldest_cell(counts: &Counts) -> String {
    counts
        .oldest_age_seconds
        .map_or_else(|| "-".to_owned(), |s| duration::format(std::time::Duration::from_secs(s)))
}

/// `jobctl stats`.
///
/// # Errors
/// A backend error (a queue missing on AWS names the stack it looked for).
pub async fn stats(out: Output, backend: &Backend) -> Result<(), CommandError> {
    let stats = collect(backend).await?;
    if let Some(why) = &stats.paused_unknown {
        eprintln!("jobctl: cannot tell which jobs are paused: {why}");
    }
    if out.json {
        let entries: Vec<_> = stats
            .jobs
            .iter()
            .map(|s| {
                let mut entry =
                    json!({"job": s.job, "queue": s.queue, "dlq_depth": s.dlq.total(), "paused": s.paused});
                if !s.lanes.is_empty() {
                    entry["lanes"] = s
                        .lanes
                        .iter()
                        .map(|(lane, counts)| (lane.as_str().to_owned(), json!(counts)))
                        .collect();
                }
                entry
            })
            .collect();
        out.json(&json!(entries));
        return Ok(());
    }
    let row = |name: String, queue: &Counts, dlq: String, paused: String| {
        vec![
            name,
            queue.visible.to_string(),
            queue.in_flight.to_string(),
            queue.delayed.to_string(),
            oldest_cell(queue),
            dlq,
            paused,
        ]
    };
    let mut rows: Vec<Vec<String>> = Vec::new();
    for s in &stats.jobs {
        let paused = s.paused.map_or("?", |p| if p { "paused" } else { "-" }).to_owned();
        rows.push(row(s.job.to_owned(), &s.queue, s.dlq.total().to_string(), paused));
        // A job's lanes under it: how much of its work waits on each.
        for (lane, counts) in &s.lanes {
            rows.push(row(format!("  {lane} lane"), counts, String::new(), String::new()));
        }
    }
    println!("{}", backend.describe());
    out.table(&["JOB", "QUEUED", "IN FLIGHT", "DELAYED", "OLDEST", "DLQ", "PAUSED"], &rows);
    Ok(())
}
