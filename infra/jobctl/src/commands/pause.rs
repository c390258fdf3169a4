//! `jobctl pause <job>` / `jobctl resume <job>`: a job's messages wait in its queue while it is
//! paused (Sidekiq Enterprise's and Solid Queue's queue pause).

use serde_json::json;

use super::{CommandError, job_spec};
use crate::{backend::Backend, output::Output};

/// Pauses (`paused`) or resumes `job`, and answers whether it is paused now, read back from
/// the backend.
///
/// # Errors
/// An unknown job (input); the backend failing, or the job's function not found on AWS.
pub async fn set_paused(backend: &Backend, job: &str, paused: bool) -> Result<bool, CommandError> {
    let spec = job_spec(job)?;
    backend.set_paused(spec.name, paused).await?;
    Ok(backend.is_paused(spec.name).await?)
}

/// `jobctl pause` (`paused`) or `jobctl resume`.
///
/// # Errors
/// As [`set_paused`].
pub async fn set(out: Output, backend: &Backend, job: &str, paused: bool) -> Result<(), CommandError> {
    let now_paused = set_paused(backend, job, paused).await?;
    let name = job_spec(job)?.name;
    if out.json {
        out.json(&json!({"job": name, "paused": now_paused}));
    } else if now_paused {
        println!(
            "paused {name} on the {}: its messages wait in its queue until `jobctl resume {name}`",
            backend.describe(),
        );
    } else {
        println!("resumed {name} on the {}", backend.describe());
    }
    Ok(())
}
