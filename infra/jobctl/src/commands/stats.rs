//! `jobctl stats`: per job, its queue's depth, in flight, delayed, oldest message's age, its
//! DLQ's depth, and whether it is paused.

use serde_json::json;

use super::CommandError;
use crate::{backend::Backend, duration, output::Output, registry};

/// `jobctl stats`.
///
/// # Errors
/// A backend error (a queue missing on AWS names the stack it looked for).
pub async fn stats(out: Output, backend: &Backend) -> Result<(), CommandError> {
    let mut rows = Vec::new();
    let mut entries = Vec::new();
    let mut warned = false;
    for &job in registry::JOB_NAMES {
        let queue = backend.counts(&backend.queue_id(job).await?).await?;
        let dlq = backend.counts(&backend.dlq_id(job).await?).await?;
        // Whether it is paused is worth a column, not a failed command: on AWS it needs Lambda
        // permissions an operator reading queues may not have.
        let paused = match backend.is_paused(job).await {
            Ok(paused) => Some(paused),
            Err(e) => {
                if !warned {
                    eprintln!("jobctl: cannot tell which jobs are paused: {e}");
                    warned = true;
                }
                None
            }
        };
        rows.push(vec![
            job.to_owned(),
            queue.visible.to_string(),
            queue.in_flight.to_string(),
            queue.delayed.to_string(),
            queue
                .oldest_age_seconds
                .map_or_else(|| "-".to_owned(), |s| duration::format(std::time::Duration::from_secs(s))),
            dlq.total().to_string(),
            paused.map_or("?", |p| if p { "paused" } else { "-" }).to_owned(),
        ]);
        entries.push(json!({"job": job, "queue": queue, "dlq_depth": dlq.total(), "paused": paused}));
    }
    if out.json {
        out.json(&json!(entries));
    } else {
        println!("{}", backend.describe());
        out.table(&["JOB", "QUEUED", "IN FLIGHT", "DELAYED", "OLDEST", "DLQ", "PAUSED"], &rows);
    }
    Ok(())
}
