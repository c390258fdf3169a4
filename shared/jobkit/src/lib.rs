//! jobkit: background jobs on AWS Lambda + SQS with ActiveJob's semantics.
//!
//! A job is a type implementing [`Job`]: typed arguments, a `perform`, and defaulted hooks for
//! its retry policy, idempotency and timeout. The [`runner::BatchRunner`] turns an SQS batch into
//! per-record executions with retries by visibility timeout, DLQ hand-off with the error in
//! message attributes, idempotency, panics caught per record and the Lambda deadline watched.
//!
//! Architecture invariants: jobkit knows nothing about stores or shops; every outside system is
//! a port ([`ports::Queue`], [`ports::StateStore`], [`ports::Mailer`], [`clock::Clock`]) with an AWS adapter and an
//! embedded SQLite adapter that keeps SQS's semantics.
#![warn(missing_docs)]

pub mod aws;
pub mod batch;
pub mod cancel;
pub mod clock;
mod concurrency;
pub mod context;
pub mod dead_letter;
#[cfg(feature = "embedded")]
pub mod embedded;
pub mod enqueue;
pub mod error;
mod ids;
pub mod job;
pub mod keys;
pub mod lambda;
pub mod limits;
pub mod message;
pub mod notify;
#[cfg(feature = "otel")]
pub mod otel;
pub mod policy;
pub mod ports;
pub mod redact;
pub mod runner;
mod runs;
pub mod shutdown;
mod steps;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
pub mod trace;

// The crate root is what a job author uses: the job, its context and steps, its errors and
// policy, and enqueueing. Running and operating jobs (the runner, the ports and their adapters,
// messages, telemetry) live in their modules.
pub use concurrency::ConcurrencyLimit;
pub use context::JobContext;
pub use enqueue::{EnqueueError, EnqueueOptions, Enqueuer, JobRef};
pub use error::{
    ErrorKind, IntegrationError, IntegrationErrorKind, JobError, PortError, PortResult, ResultExt,
};
pub use ids::JobId;
pub use job::{Discarded, Job, Lane};
pub use message::Tick;
pub use policy::{RetryPolicy, Wait};
pub use steps::Step;
