//! `jobctl stats`: per job, its queue's depth, in flight, delayed, oldest message's age, and
//! its DLQ's depth.

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
    for &job in registry::JOB_NAMES {
        let queue = backend.counts(&backend.queue_id(job).await?).await?;
        let dlq = backend.counts(&backend.dlq_id(job).await?).await?;
        rows.push(vec![
            job.to_owned(),
            queue.visible.to_string(),
            queue.in_flight.to_string(),
            queue.delayed.to_string(),
            queue
                .oldest_age_seconds
                .map_or_else(|| "-".to_owned(), |s| duration::format(std::time::Duration::from_secs(s))),
            dlq.total().to_string(),
        ]);
        entries.push(json!({"job": job, "queue": queue, "dlq_depth": dlq.total()}));
    }
    if out.json {
        out.json(&json!(entries));
    } else {
        println!("{}", backend.describe());
        out.table(&["JOB", "QUEUED", "IN FLIGHT", "DELAYED", "OLDEST", "DLQ"], &rows);
    }
    Ok(())
}
