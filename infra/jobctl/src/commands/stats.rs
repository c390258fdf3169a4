//! `jobctl stats`: per job, its queue's depth, in flight, delayed, oldest message's age, its
//! DLQ's depth, and whether it is paused.
//!
//! [`collect`] reads the numbers; [`stats`] prints them, and `jobctl console` renders them.

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
    /// Its queue.
    pub queue: Counts,
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
    for &job in registry::JOB_NAMES {
        jobs.push(job_stats(backend, job, &mut paused_unknown).await?);
    }
    Ok(Stats { jobs, paused_unknown })
}

/// One job's numbers (`job` must be a registry name). A pause that cannot be read is noted in
/// `paused_unknown` (the first such error only).
///
/// # Errors
/// A backend error.
pub async fn job_stats(
    backend: &Backend,
    job: &'static str,
    paused_unknown: &mut Option<String>,
) -> Result<JobStats, CommandError> {
    let queue = backend.counts(&backend.queue_id(job).await?).await?;
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
    Ok(JobStats { job, queue, dlq, paused })
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
            .map(|s| json!({"job": s.job, "queue": s.queue, "dlq_depth": s.dlq.total(), "paused": s.paused}))
            .collect();
        out.json(&json!(entries));
        return Ok(());
    }
    let rows: Vec<Vec<String>> = stats
        .jobs
        .iter()
        .map(|s| {
            vec![
                s.job.to_owned(),
                s.queue.visible.to_string(),
                s.queue.in_flight.to_string(),
                s.queue.delayed.to_string(),
                oldest_cell(&s.queue),
                s.dlq.total().to_string(),
                s.paused.map_or("?", |p| if p { "paused" } else { "-" }).to_owned(),
            ]
        })
        .collect();
    println!("{}", backend.describe());
    out.table(&["JOB", "QUEUED", "IN FLIGHT", "DELAYED", "OLDEST", "DLQ", "PAUSED"], &rows);
    Ok(())
}
