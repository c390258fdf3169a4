//! jobctl: the operator CLI and the embedded local runtime (`jobctl dev`).
//!
//! The library holds the job registry (the six jobs as the CLI, the local runtime and the
//! template see them: name, priority, retry policy, timeout, schedule, what each uses), the
//! renderer of `template.yaml` from it, the backends the commands act on (the embedded file or a
//! deployed stack), and the commands.
#![warn(missing_docs)]

pub mod backend;
pub mod cli;
pub mod commands;
pub mod console;
pub mod demo;
pub mod dev;
pub mod duration;
pub mod output;
pub mod registry;
pub mod sandbox;
pub mod schedule;
pub mod template;
