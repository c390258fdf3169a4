//! The commands, one module per family; each prints through [`crate::output::Output`] and
//! answers with a [`CommandError`] whose kind becomes the exit code.

pub mod batches;
pub mod bulk;
pub mod cancel;
pub mod cost;
pub mod dlq;
pub mod enqueue;
pub mod info;
pub mod pause;
pub mod stats;
pub mod template;
pub mod versions;

use crate::{
    backend::BackendError,
    registry::{self, JobSpec, RegistryError},
};

/// Why a command did not do its work; each kind has its exit code.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The input is wrong (unknown job, arguments that do not fit, unreadable schedule): exit 2.
    #[error("{0}")]
    Input(String),
    /// The operator did not confirm: exit 3.
    #[error("{0}")]
    Declined(String),
    /// Nothing matched (`dlq show` of an id in no DLQ): exit 4.
    #[error("{0}")]
    NotFound(String),
    /// The backend failed: exit 1.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// `jobctl dev` could not run: exit 1.
    #[error(transparent)]
    Dev(#[from] crate::dev::DevError),
    /// Part of the work was done, part failed (some jobs of a bulk enqueue not sent): exit 1.
    #[error("{0}")]
    Incomplete(String),
    /// The template could not be rendered or written: exit 1.
    #[error(transparent)]
    Template(#[from] crate::template::TemplateError),
    /// `template --check`: the file is not what the registry renders: exit 1.
    #[error("{0}")]
    Stale(String),
    /// `jobctl console` could not serve: exit 1.
    #[error(transparent)]
    Console(#[from] crate::console::ConsoleError),
}

impl CommandError {
    /// The process's exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Backend(_)
            | Self::Dev(_)
            | Self::Incomplete(_)
            | Self::Template(_)
            | Self::Stale(_)
            | Self::Console(_) => 1,
            Self::Input(_) => 2,
            Self::Declined(_) => 3,
            Self::NotFound(_) => 4,
        }
    }
}

impl From<RegistryError> for CommandError {
    fn from(e: RegistryError) -> Self {
        match e {
            RegistryError::Unknown(unknown) => Self::Input(unknown.to_string()),
            other => Self::Backend(BackendError::Registry(other)),
        }
    }
}

impl From<registry::UnknownJob> for CommandError {
    fn from(e: registry::UnknownJob) -> Self {
        Self::Input(e.to_string())
    }
}

impl From<jobkit::PortError> for CommandError {
    fn from(e: jobkit::PortError) -> Self {
        Self::Backend(BackendError::Port(e))
    }
}

/// The registry's entry for `job`, an unknown name being an input error.
///
/// # Errors
/// [`CommandError::Input`] naming the jobs there are.
pub fn job_spec(job: &str) -> Result<JobSpec, CommandError> {
    Ok(registry::spec(job)?)
}

/// `job`, or every job when `None`, checked against the registry.
///
/// # Errors
/// [`CommandError::Input`] for an unknown name.
pub fn jobs_or_all(job: Option<&str>) -> Result<Vec<&'static str>, CommandError> {
    match job {
        Some(name) => Ok(vec![job_spec(name)?.name]),
        None => Ok(registry::JOB_NAMES.to_vec()),
    }
}
