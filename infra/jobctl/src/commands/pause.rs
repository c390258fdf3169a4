//! `jobctl pause <job>` / `jobctl resume <job>`: a job's messages wait in its queue while it is
//! paused (Sidekiq Enterprise's and Solid Queue's queue pause).

use serde_json::json;

use super::{CommandError, job_spec};
use crate::{backend::Backend, output::Output};

/// Pauses (`paused`) or resumes `job`.
///
/// # Errors
/// An unknown job (input); the backend failing, or the job's function not found on AWS.
pub async fn set(out: Output, backend: &Backend, job: &str, paused: bool) -> Result<(), CommandError> {
    let spec = job_spec(job)?;
    backend.set_paused(spec.name, paused).await?;
    let now_paused = backend.is_paused(spec.name).await?;
    if out.json {
        out.json(&json!({"job": spec.name, "paused": now_paused}));
    } else if now_paused {
        println!(
            "paused {} on the {}: its messages wait in its queue until `jobctl resume {}`",
            spec.name,
            backend.describe(),
            spec.name
        );
    } else {
        println!("resumed {} on the {}", spec.name, backend.describe());
    }
    Ok(())
}
