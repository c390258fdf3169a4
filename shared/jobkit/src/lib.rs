//! jobkit: background jobs on AWS Lambda + SQS with ActiveJob's semantics.
//!
//! A job is a type implementing [`Job`]: typed arguments, a `perform`, and defaulted hooks for
//! its retry policy, idempotency and timeout. The [`BatchRunner`] turns an SQS batch into
//! per-record executions with retries by visibility timeout, DLQ hand-off with the error in
//! message attributes, idempotency, panics caught per record and the Lambda deadline watched.
//!
//! Architecture invariants: jobkit knows nothing about stores or shops; every outside system is
//! a port ([`Queue`], [`StateStore`], [`Mailer`], [`Clock`]) with an AWS adapter and an
//! embedded SQLite adapter that keeps SQS's semantics.
#![warn(missing_docs)]

pub mod aws;
mod clock;
mod context;
pub mod dead_letter;
#[cfg(feature = "embedded")]
pub mod embedded;
mod enqueue;
mod error;
mod ids;
mod job;
mod keys;
pub mod lambda;
pub mod limits;
pub mod message;
mod notify;
mod policy;
mod ports;
mod redact;
mod runner;
mod runs;
mod shutdown;
mod steps;
mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;

pub use clock::{Clock, ManualClock, SharedClock, SystemClock};
pub use context::{INTERRUPTED, JobContext};
pub use enqueue::{
    DEFAULT_MAX_SCHEDULE_AHEAD, EnqueueError, EnqueueOptions, Enqueuer, JobRef, MAX_DELAY_SECONDS,
    QueueRoutes,
};
pub use error::{
    Disposition, ErrorKind, IntegrationError, IntegrationErrorKind, JobError, PortError, PortResult,
    ResultExt, Severity,
};
pub use ids::JobId;
pub use job::{Job, Lane, default_idempotency_key, dlq_name, queue_name};
pub use keys::{MAX_KEY_BYTES, job_key_prefix};
pub use lambda::from_sqs_message;
pub use limits::{
    LimitError, MAX_MESSAGE_ATTRIBUTES, MAX_MESSAGE_BYTES, MAX_VISIBILITY, check_message, message_size,
};
pub use message::{ContinuationRef, Metadata, OutgoingMessage, ReceivedMessage, Tick};
pub use notify::{Notifier, NotifyConfig};
pub use policy::{Decision, MAX_WAIT, RetryPolicy, Timeline, TimelineStep, Wait};
pub use ports::{Email, Mailer, PutOutcome, Queue, StateStore, StoredRecord};
pub use redact::redact;
pub use runner::{BatchOutcome, BatchRunner, DlqReason, RecordOutcome, RecordStatus, RunnerConfig, Runtime};
pub use shutdown::Shutdown;
pub use steps::Step;
pub use telemetry::{BatchCounts, MetricsSink, init_logging, init_logging_to};
