//! jobctl: the operator CLI and the embedded local runtime.
//!
//! The library holds the job registry: the six jobs as the CLI, the local runtime and the
//! template's consistency test see them (name, priority, retry policy, timeout, schedule).
#![warn(missing_docs)]

pub mod registry;
