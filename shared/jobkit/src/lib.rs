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
//!
//! # A tour
//!
//! **A job** is its arguments (the SQS message body, unknown fields refused), its name (which
//! names its queue and DLQ), its lane, what it does, and what a failure means: an error kind
//! retried with waits (ActiveJob's `retry_on`) or discarded to the DLQ (`discard_on`). A job's
//! code says what a failure is where it happens, with [`JobError::retryable`] or
//! [`JobError::permanent`].
//!
//! ```
//! use jobkit::{ErrorKind, Job, JobContext, JobError, Lane, RetryPolicy, Wait};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Debug, Serialize, Deserialize)]
//! struct ReportArgs { store_id: String, day: String }
//!
//! struct DailyReport;
//!
//! impl Job for DailyReport {
//!     type Args = ReportArgs;
//!     const NAME: &'static str = "daily_report"; // queue `daily-report`, DLQ `daily-report-dlq`
//!     const LANE: Lane = Lane::Low;
//!
//!     async fn perform(&self, args: ReportArgs, ctx: &mut JobContext) -> Result<(), JobError> {
//!         if args.store_id.is_empty() {
//!             return Err(JobError::permanent(ErrorKind::INVALID_INPUT, "no store"));
//!         }
//!         // A long job walks in steps: each cursor is checkpointed, so a retry or a
//!         // continuation near the Lambda deadline resumes where it stopped.
//!         let pages = ctx
//!             .step("pages", 0u32, async |step| {
//!                 while *step.cursor() < 3 {
//!                     *step.cursor_mut() += 1; // one page's work
//!                     step.checkpoint().await?;
//!                 }
//!                 Ok(())
//!             })
//!             .await?;
//!         tracing::info!(pages, day = %args.day, "report written");
//!         Ok(())
//!     }
//!
//!     /// Outages retry 5 times with ActiveJob's polynomial waits; a missing store is discarded.
//!     fn retry_policy() -> RetryPolicy {
//!         RetryPolicy::new()
//!             .retry_on([ErrorKind::UNAVAILABLE, ErrorKind::THROTTLED], Wait::Polynomial, 5)
//!             .discard_on([ErrorKind::NOT_FOUND])
//!     }
//! }
//! # fn main() {}
//! ```
//!
//! **A record it cannot process**, in a job that walks many (carts, products, customers), is
//! set aside with [`JobContext::set_aside`] and the job goes on: logged, counted in the
//! `set_aside` metric and emailed once per record ([`set_aside`]), never a failed run.
//!
//! **Enqueueing**: `ctx.enqueuer().perform_later::<Other>(&args)` from a job (to `Other`'s
//! queue), an [`Enqueuer`] elsewhere, or a bare `aws sqs send-message` whose body is the
//! arguments: metadata (job id, attempt, idempotency key, trace context) rides in message
//! attributes, all optional ([`message`]). [`EnqueueOptions`] add a delay, a lane, uniqueness.
//!
//! **Testing** (feature `testing`): `testing::TestHarness` runs jobs on the embedded backend
//! in memory with a hand-turned clock, so retries, delays and continuations are walked
//! deterministically; see its module for an example.
//!
//! **On Lambda**, a function's `main.rs` is one call:
//!
//! ```no_run
//! # use jobkit::{Job, JobContext, JobError};
//! # struct DailyReport;
//! # impl Job for DailyReport {
//! #     type Args = serde_json::Value;
//! #     const NAME: &'static str = "daily_report";
//! #     async fn perform(&self, _: serde_json::Value, _: &mut JobContext) -> Result<(), JobError> { Ok(()) }
//! # }
//! #[tokio::main]
//! async fn main() -> Result<(), jobkit::lambda::Error> {
//!     jobkit::lambda::run(DailyReport).await
//! }
//! ```
//!
//! It reads its queue, DLQ and state table from the environment the template sets
//! ([`lambda`]), and answers each batch with `batchItemFailures`.
//!
//! # Features
//!
//! | feature | what it adds | who turns it on |
//! |---|---|---|
//! | `embedded` | the SQLite adapters: a queue with SQS's semantics, the state store, mailboxes (`jobkit::embedded`) | `jobctl dev`, tests; never a deployed bootstrap |
//! | `testing` | `testing::TestHarness` and the wrapper ports tests build on (implies `embedded`) | tests |
//! | `otel` | OpenTelemetry export of the record spans over OTLP/HTTP (`jobkit::otel`) | a function that wants it; every test build |
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
pub mod set_aside;
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
pub use set_aside::SetAside;
pub use steps::Step;
