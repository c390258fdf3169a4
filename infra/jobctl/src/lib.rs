//! jobctl: the operator CLI and the embedded local runtime (`jobctl dev`).
//!
//! The library holds the backends the commands act on (the embedded file or a deployed stack),
//! the commands, the console and `jobctl dev`. The registry of jobs, their schedules and the
//! renderer of `template.yaml` are the `job_registry` crate, re-exported here under the names
//! the commands use; the demo's Shopify and Square are the `shop_sandbox` crate.
#![warn(missing_docs)]

pub mod backend;
pub mod cli;
pub mod commands;
pub mod console;
pub mod demo;
pub mod dev;
pub mod duration;
pub mod output;

pub use job_registry as registry;
pub use job_registry::{schedule, template};
pub use shop_sandbox as sandbox;
