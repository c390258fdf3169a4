//! `jobctl batches [job]`: each batch's progress (Sidekiq Pro's batch page): members finished of
//! all, succeeded, failed, pending, and whether its callbacks were sent.

use jobkit::batch::BatchStatus;
use serde_json::json;

use super::{CommandError, job_spec};
use crate::{backend::Backend, output::Output, registry};

/// Width of the progress bar, in characters.
const BAR: u64 = 10;

/// `jobctl batches`.
///
/// # Errors
/// An unknown job (input), or the backend failing.
pub async fn batches(
    out: Output,
    backend: &Backend,
    job: Option<&str>,
    limit: usize,
) -> Result<(), CommandError> {
    let jobs = match job {
        Some(job) => vec![job_spec(job)?.name],
        None => registry::JOB_NAMES.to_vec(),
    };
    let all = backend.batches(&jobs, limit).await?;
    if out.json {
        out.json(&json!(all));
        return Ok(());
    }
    println!("{}", backend.describe());
    if all.is_empty() {
        println!("no batches (a batch's records are kept 14 days)");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = all.iter().map(row).collect();
    out.table(
        &["JOB", "BATCH", "PROGRESS", "SUCCEEDED", "FAILED", "PENDING", "STATE", "OPENED", "FOR"],
        &rows,
    );
    Ok(())
}

fn row(batch: &BatchStatus) -> Vec<String> {
    let done = batch.succeeded + batch.failed;
    vec![
        batch.job.clone(),
        batch.id.clone(),
        format!("{} {done}/{}", bar(done, batch.total), batch.total),
        batch.succeeded.to_string(),
        batch.failed.to_string(),
        batch.pending().to_string(),
        state(batch).to_owned(),
        batch.created_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        batch.description.clone(),
    ]
}

/// Where a batch is: still being enqueued, running, complete, its callbacks sent.
pub fn state(batch: &BatchStatus) -> &'static str {
    match (batch.sealed, batch.is_complete(), batch.callbacks_sent) {
        (false, ..) => "enqueueing",
        (true, false, _) => "running",
        (true, true, false) => "complete",
        (true, true, true) => "called back",
    }
}

/// `[####------]`: the share of `done` in `total` (full when there is nothing to do).
fn bar(done: u64, total: u64) -> String {
    let filled = (done.min(total) * BAR).checked_div(total).unwrap_or(BAR);
    let filled = usize::try_from(filled).unwrap_or(0);
    let width = usize::try_from(BAR).unwrap_or(0);
    format!("[{}{}]", "#".repeat(filled), "-".repeat(width - filled))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_fills_with_the_finished_share() {
        assert_eq!(bar(0, 20), "[----------]");
        assert_eq!(bar(7, 20), "[###-------]");
        assert_eq!(bar(20, 20), "[##########]");
        assert_eq!(bar(0, 0), "[##########]", "an empty batch is done");
    }
}
