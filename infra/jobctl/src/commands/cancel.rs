//! `jobctl cancel <job> <job id>`: a pending job is acknowledged without running when it is
//! next delivered (its retries, delays and continuations too), on the embedded backend or on
//! a deployed stack (the stack's state table).

use chrono::{DateTime, Utc};
use jobkit::{
    JobId,
    cancel::{CANCELLATION_KEPT, CancelMark},
};
use serde_json::json;

use super::{CommandError, job_spec};
use crate::{backend::Backend, output::Output};

/// `jobctl cancel`.
///
/// # Errors
/// An unknown job or an empty job id (input), or the state store failing.
pub async fn cancel(
    out: Output,
    backend: &Backend,
    job: &str,
    job_id: &str,
    now: DateTime<Utc>,
) -> Result<(), CommandError> {
    let spec = job_spec(job)?;
    let job_id = job_id.trim();
    if job_id.is_empty() || job_id.chars().any(char::is_whitespace) {
        return Err(CommandError::Input(format!("{job_id:?} is not a job id (jobctl enqueue prints it)")));
    }
    let store = backend.job_state().await?;
    let mark = jobkit::cancel::cancel(store.as_ref(), spec.name, &JobId::from(job_id), now)
        .await
        .map_err(|e| CommandError::Backend(crate::backend::BackendError::Port(e)))?;
    let days = CANCELLATION_KEPT.as_secs() / 86_400;
    let completed = mark == CancelMark::AlreadyCompleted;
    if out.json {
        out.json(&json!({
            "job": spec.name,
            "job_id": job_id,
            "cancelled": true,
            "already_completed": completed,
            "kept_days": days,
        }));
    } else if completed {
        println!("{} job {job_id} had already completed: nothing of it is left to run", spec.name);
    } else {
        println!(
            "cancelled {} job {job_id}: its next delivery is acknowledged without running (kept {days} days; \
             an execution already running finishes)",
            spec.name
        );
    }
    Ok(())
}
