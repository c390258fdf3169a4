//! The runner's behaviour on the embedded backend with a hand-turned clock: retries, the DLQ,
//! idempotency, the deadline, delays, unique jobs, resumable steps, error emails, records set
//! aside and the export of spans.

mod after_discard;
mod batch;
mod cancel;
mod common;
mod contract;
mod deadline;
mod delay;
mod dlq;
mod helpers;
mod idempotency;
mod job_batches;
mod keys;
mod lanes;
mod limit;
mod metrics;
mod notify;
mod otel;
mod retry;
mod runs;
mod set_aside;
mod state_cost;
mod steps;
mod trace;
mod unique;
