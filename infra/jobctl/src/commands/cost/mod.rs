//! `jobctl cost [job] [--jobs-per-day N]`: what a job costs on AWS, per million jobs and per
//! month, from the calls counted on the stack deployed on moto (`measured.json`, written by
//! `scripts/bench-cost`) and the public us-east-1 prices below; beside it, the same jobs as two
//! other deployments a team would otherwise choose, each column saying what it rests on.
//!
//! Per job: a run that succeeds the first time, and what one retry adds. Fixed costs that do not
//! grow with jobs (the event source mappings' idle long polls, custom metrics, storage) are
//! listed apart: at a few jobs a day they are the bill.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{CommandError, job_spec};
use crate::{output::Output, registry};

/// What `scripts/bench-cost` counted (see `tests/benches/cost.rs`).
const MEASURED: &str = include_str!("measured.json");

// ------------------------------------------------------------------------ prices (us-east-1)
// Checked on 2026-12-01; BENCHMARKS.md ("What a job costs on AWS") cites each page.

/// SQS standard queues: $0.40 per million requests (first 100 billion a month); a batch of up
/// to 10 messages (64 KB) is one request.
pub const SQS_PER_REQUEST: f64 = 0.40 / 1e6;
/// DynamoDB on-demand, Standard table class: $0.625 per million write request units.
pub const DYNAMODB_PER_WRITE_UNIT: f64 = 0.625 / 1e6;
/// DynamoDB on-demand, Standard table class: $0.125 per million read request units.
pub const DYNAMODB_PER_READ_UNIT: f64 = 0.125 / 1e6;
/// Lambda: $0.20 per million requests.
pub const LAMBDA_PER_REQUEST: f64 = 0.20 / 1e6;
/// Lambda duration on arm64 (the template's default), first 7.5 billion GB-seconds a month.
pub const LAMBDA_ARM64_PER_GB_SECOND: f64 = 0.000_013_333_4;
/// Lambda duration on x86_64, first 6 billion GB-seconds a month.
pub const LAMBDA_X86_PER_GB_SECOND: f64 = 0.000_016_666_7;
/// SES à la carte: $0.10 per 1,000 outbound recipients.
pub const SES_PER_EMAIL: f64 = 0.10 / 1000.0;
/// CloudWatch Logs, Standard class, Lambda logs' first tier (first 10 TB a month): $0.50 per GB.
pub const LOGS_PER_BYTE: f64 = 0.50 / 1e9;
/// Secrets Manager: $0.05 per 10,000 API calls.
pub const SECRETS_PER_CALL: f64 = 0.05 / 10_000.0;
/// KMS: $0.03 per 10,000 requests (the data keys of the tokens sealed on store records).
pub const KMS_PER_REQUEST: f64 = 0.03 / 10_000.0;
/// A month, for `--jobs-per-day`.
pub const DAYS_PER_MONTH: f64 = 30.0;

// ---------------------------------------------------------- what the counts do not contain

/// The lines Lambda writes to a function's log stream around every invocation (text format,
/// the template's), each a CloudWatch Logs event: ingestion bills these too.
const PLATFORM_LINES: [&str; 3] = [
    "START RequestId: 8f507cfc-1f2e-4697-b07a-ac58fc914c95 Version: $LATEST",
    "END RequestId: 8f507cfc-1f2e-4697-b07a-ac58fc914c95",
    "REPORT RequestId: 8f507cfc-1f2e-4697-b07a-ac58fc914c95\tDuration: 41.27 ms\tBilled Duration: 42 ms\tMemory Size: 128 MB\tMax Memory Used: 19 MB\t",
];
/// CloudWatch Logs sizes an event as its message plus 26 bytes (PutLogEvents' accounting).
const LOG_EVENT_OVERHEAD: f64 = 26.0;
/// The share of invocations that start a new execution environment: AWS's analysis of
/// production workloads puts cold starts under 1% of invocations (its post on billing the
/// INIT phase, which Lambda bills since 2025-08-01 for every runtime).
pub const COLD_START_SHARE: f64 = 0.01;
/// lambda-perf (maxday/lambda-perf, data/2026-08-22.json), arm64 zip hello worlds, mean init
/// duration in ms: Rust on provided.al2023 at 128 MB.
pub const RUST_INIT_MS: f64 = 13.9;
/// The same, python3.13 at 128 MB.
pub const PYTHON_INIT_MS: f64 = 80.6;
/// The same, ruby3.4 at 1024 MB (lambda-perf has no 1792 MB function).
pub const RUBY_INIT_MS: f64 = 263.6;
/// The same file's mean warm invocation of the ruby3.4 hello world at 1024 MB, ms.
pub const RUBY_INVOKE_MS: f64 = 2.9;
/// lambdakiq's README deploys the jobs function with `MemorySize: 1792` and `BatchSize: 1`.
pub const LAMBDAKIQ_MEMORY_MB: f64 = 1792.0;
/// What a lambdakiq job writes to its log besides Lambda's lines: ActiveJob's two info lines
/// and lambdakiq's EMF line for each of the two events it instruments (`perform_start` and
/// `perform`), written out here as they would read for a job with one argument.
const LAMBDAKIQ_LINES: [&str; 4] = [
    r#"[ActiveJob] [StoreSyncJob] [0b5c7f4e-3d0a-4f52-9c55-2a8a1e3e5c11] Performing StoreSyncJob (Job ID: 0b5c7f4e-3d0a-4f52-9c55-2a8a1e3e5c11) from Lambdakiq(store-jobs-JobsQueue-14F18LG6XFUW5) enqueued at 2026-12-01T10:00:00.000000000Z with arguments: "st_42""#,
    r#"[ActiveJob] [StoreSyncJob] [0b5c7f4e-3d0a-4f52-9c55-2a8a1e3e5c11] Performed StoreSyncJob (Job ID: 0b5c7f4e-3d0a-4f52-9c55-2a8a1e3e5c11) from Lambdakiq(store-jobs-JobsQueue-14F18LG6XFUW5) in 41.27ms"#,
    r#"{"_aws":{"Timestamp":1764583200000,"CloudWatchMetrics":[{"Namespace":"Lambdakiq","Dimensions":[["AppName","JobEvent","JobName"]],"Metrics":[{"Name":"Duration","Unit":"Milliseconds"},{"Name":"Count","Unit":"Count"}]}]},"AppName":"Store","JobEvent":"perform_start.active_job","JobName":"StoreSyncJob","Duration":0,"Count":1,"JobId":"0b5c7f4e-3d0a-4f52-9c55-2a8a1e3e5c11","QueueName":"store-jobs-JobsQueue-14F18LG6XFUW5","MessageId":"5653246d-dc5e-4c95-9583-b6b83ec78602","EnqueuedAt":"2026-12-01T10:00:00Z","Executions":0,"JobArg#1":"st_42"}"#,
    r#"{"_aws":{"Timestamp":1764583200041,"CloudWatchMetrics":[{"Namespace":"Lambdakiq","Dimensions":[["AppName","JobEvent","JobName"]],"Metrics":[{"Name":"Duration","Unit":"Milliseconds"},{"Name":"Count","Unit":"Count"}]}]},"AppName":"Store","JobEvent":"perform.active_job","JobName":"StoreSyncJob","Duration":41,"Count":1,"JobId":"0b5c7f4e-3d0a-4f52-9c55-2a8a1e3e5c11","QueueName":"store-jobs-JobsQueue-14F18LG6XFUW5","MessageId":"5653246d-dc5e-4c95-9583-b6b83ec78602","EnqueuedAt":"2026-12-01T10:00:00Z","Executions":1,"JobArg#1":"st_42"}"#,
];
/// An idle event source mapping long-polls its queue with five pollers, 20 s each: about
/// 5 x 3 x 60 x 24 x 30 = 648,000 empty receives a month per queue, whatever the jobs.
pub const IDLE_RECEIVES_PER_QUEUE_MONTH: f64 = 5.0 * 3.0 * 60.0 * 24.0 * DAYS_PER_MONTH;

// --------------------------------------------------------------------------- measured.json

#[derive(Debug, Clone, Deserialize)]
struct Measured {
    measured_on: String,
    jobs_per_run: usize,
    binaries: String,
    jobs: Vec<JobRuns>,
    noop: JobRuns,
    #[serde(default)]
    powertools: Option<PowertoolsRuns>,
}

#[derive(Debug, Clone, Deserialize)]
struct JobRuns {
    job: String,
    work: String,
    memory_mb: u32,
    batch_size: usize,
    success: Run,
    retry: Run,
}

#[derive(Debug, Clone, Deserialize)]
struct Run {
    jobs: usize,
    failed_executions: usize,
    invocations: usize,
    billed_ms: u64,
    log_bytes: u64,
    log_lines: u64,
    calls: Vec<Call>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct Call {
    service: String,
    action: String,
    resource: String,
    requests: f64,
    empty: f64,
    rcu: f64,
    wcu: f64,
    emails: f64,
    texts: f64,
    /// Units by the kind of record (`wcu.idem`: idempotency keys in jobkit's state table).
    #[serde(flatten)]
    by_kind: std::collections::BTreeMap<String, f64>,
}

#[derive(Debug, Clone, Deserialize)]
struct PowertoolsRuns {
    python: String,
    powertools: String,
    init_ms: f64,
    records: usize,
    per_record_ms: f64,
    success: Vec<Call>,
    retry_records: usize,
    retry: Vec<Call>,
}

/// The SQS actions a job's life bills (sends, receives that returned messages, deletes,
/// visibility changes); empty receives are the mappings' idle polling, priced apart.
const SQS_BILLED: [&str; 7] = [
    "SendMessage",
    "SendMessageBatch",
    "ReceiveMessage",
    "DeleteMessage",
    "DeleteMessageBatch",
    "ChangeMessageVisibility",
    "ChangeMessageVisibilityBatch",
];
/// The setting that names jobkit's state table, where its idempotency keys live.
const STATE_TABLE: &str = "JOBKIT_STATE_TABLE";

// ------------------------------------------------------------------------------- the model

/// What jobs consume, in billing units.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Usage {
    /// SQS requests.
    pub sqs_requests: f64,
    /// Lambda invocations.
    pub lambda_requests: f64,
    /// Lambda GB-seconds (invocations and the cold starts' share).
    pub gb_seconds: f64,
    /// DynamoDB read request units.
    pub read_units: f64,
    /// DynamoDB write request units.
    pub write_units: f64,
    /// Of those, the read units of jobkit's state table (idempotency keys, cancellation checks,
    /// checkpoints, last errors, email rate limits; Powertools' idempotency table).
    pub state_read_units: f64,
    /// Of those, the write units of that table.
    pub state_write_units: f64,
    /// Of those, the read units of idempotency keys alone.
    pub idempotency_read_units: f64,
    /// Of those, the write units of idempotency keys alone.
    pub idempotency_write_units: f64,
    /// SES emails.
    pub emails: f64,
    /// SNS texts (priced per country and carrier: counted, not in the dollars).
    pub texts: f64,
    /// Secrets Manager calls.
    pub secrets_calls: f64,
    /// KMS requests.
    pub kms_requests: f64,
    /// CloudWatch Logs bytes ingested.
    pub log_bytes: f64,
}

impl Usage {
    fn scaled(self, k: f64) -> Self {
        Self {
            sqs_requests: self.sqs_requests * k,
            lambda_requests: self.lambda_requests * k,
            gb_seconds: self.gb_seconds * k,
            read_units: self.read_units * k,
            write_units: self.write_units * k,
            state_read_units: self.state_read_units * k,
            state_write_units: self.state_write_units * k,
            idempotency_read_units: self.idempotency_read_units * k,
            idempotency_write_units: self.idempotency_write_units * k,
            emails: self.emails * k,
            texts: self.texts * k,
            secrets_calls: self.secrets_calls * k,
            kms_requests: self.kms_requests * k,
            log_bytes: self.log_bytes * k,
        }
    }

    fn minus(self, other: Self) -> Self {
        // A count is never negative: a retry run that happened to do less than the success
        // runs' average (a checkpoint skipped a step) costs nothing extra there.
        let d = |a: f64, b: f64| (a - b).max(0.0);
        Self {
            sqs_requests: d(self.sqs_requests, other.sqs_requests),
            lambda_requests: d(self.lambda_requests, other.lambda_requests),
            gb_seconds: d(self.gb_seconds, other.gb_seconds),
            read_units: d(self.read_units, other.read_units),
            write_units: d(self.write_units, other.write_units),
            state_read_units: d(self.state_read_units, other.state_read_units),
            state_write_units: d(self.state_write_units, other.state_write_units),
            idempotency_read_units: d(self.idempotency_read_units, other.idempotency_read_units),
            idempotency_write_units: d(self.idempotency_write_units, other.idempotency_write_units),
            emails: d(self.emails, other.emails),
            texts: d(self.texts, other.texts),
            secrets_calls: d(self.secrets_calls, other.secrets_calls),
            kms_requests: d(self.kms_requests, other.kms_requests),
            log_bytes: d(self.log_bytes, other.log_bytes),
        }
    }

    /// The dollars, by service.
    pub fn dollars(&self, arch: Architecture) -> Dollars {
        let dynamodb = self.read_units * DYNAMODB_PER_READ_UNIT + self.write_units * DYNAMODB_PER_WRITE_UNIT;
        let idempotency = self.idempotency_read_units * DYNAMODB_PER_READ_UNIT
            + self.idempotency_write_units * DYNAMODB_PER_WRITE_UNIT;
        let state =
            self.state_read_units * DYNAMODB_PER_READ_UNIT + self.state_write_units * DYNAMODB_PER_WRITE_UNIT;
        Dollars {
            sqs: self.sqs_requests * SQS_PER_REQUEST,
            lambda: self.lambda_requests * LAMBDA_PER_REQUEST + self.gb_seconds * arch.per_gb_second(),
            dynamodb,
            state,
            idempotency,
            ses: self.emails * SES_PER_EMAIL,
            logs: self.log_bytes * LOGS_PER_BYTE,
            secrets: self.secrets_calls * SECRETS_PER_CALL + self.kms_requests * KMS_PER_REQUEST,
        }
    }
}

/// Dollars by service (`state` is part of `dynamodb`, `idempotency` part of `state`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Dollars {
    /// SQS.
    pub sqs: f64,
    /// Lambda requests and duration.
    pub lambda: f64,
    /// DynamoDB, idempotency included.
    pub dynamodb: f64,
    /// The part of `dynamodb` spent on the job framework's state (jobkit's state table).
    pub state: f64,
    /// The part of `state` spent on idempotency keys.
    pub idempotency: f64,
    /// SES.
    pub ses: f64,
    /// CloudWatch Logs ingestion.
    pub logs: f64,
    /// Secrets Manager, and KMS (the tokens sealed on store records).
    pub secrets: f64,
}

impl Dollars {
    /// Everything.
    pub fn total(&self) -> f64 {
        self.sqs + self.lambda + self.dynamodb + self.ses + self.logs + self.secrets
    }

    /// The service that costs the most, and its share of the total.
    pub fn dominant(&self) -> (&'static str, f64) {
        let parts = [
            ("SQS", self.sqs),
            ("Lambda", self.lambda),
            ("DynamoDB", self.dynamodb),
            ("SES", self.ses),
            ("CloudWatch Logs", self.logs),
            ("Secrets Manager and KMS", self.secrets),
        ];
        let (name, most) = parts.into_iter().fold(("-", 0.0), |best, p| if p.1 > best.1 { p } else { best });
        let total = self.total();
        (name, if total > 0.0 { most / total } else { 0.0 })
    }
}

/// The Lambda architecture the duration is priced at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Architecture {
    /// Graviton, the template's default.
    #[default]
    Arm64,
    /// x86_64 (`Architecture=x86_64`).
    #[value(name = "x86_64")]
    X86_64,
}

impl Architecture {
    fn per_gb_second(self) -> f64 {
        match self {
            Self::Arm64 => LAMBDA_ARM64_PER_GB_SECOND,
            Self::X86_64 => LAMBDA_X86_PER_GB_SECOND,
        }
    }
}

/// One deployment of a job: a successful run and what a retry adds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Estimate {
    /// One job that succeeds the first time.
    pub job: Usage,
    /// What one retry adds.
    pub retry: Usage,
}

/// A job's costs as deployed here and as the two alternatives.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobCost {
    /// The job.
    pub job: String,
    /// What the measured run did.
    pub work: String,
    /// The function's memory.
    pub memory_mb: u32,
    /// The mapping's batch size.
    pub batch_size: usize,
    /// This project, measured.
    pub jobkit: Estimate,
    /// Powertools for AWS Lambda (Python), batch processor + DynamoDB idempotency.
    pub powertools: Option<Estimate>,
    /// A lambdakiq-style Ruby deployment (batch size 1, no idempotency).
    pub lambdakiq: Estimate,
}

fn per_job_ms(run: &Run) -> f64 {
    run.billed_ms as f64 / run.jobs as f64
}

/// The usage of `run` as measured, all of its jobs together.
fn usage(run: &Run, memory_mb: u32, init_ms: f64) -> Usage {
    let mut u = Usage::default();
    for call in &run.calls {
        match call.service.as_str() {
            "sqs" if SQS_BILLED.contains(&call.action.as_str()) => {
                u.sqs_requests += call.requests - call.empty
            }
            "dynamodb" => {
                u.read_units += call.rcu;
                u.write_units += call.wcu;
                if call.resource == STATE_TABLE {
                    u.state_read_units += call.rcu;
                    u.state_write_units += call.wcu;
                    u.idempotency_read_units += call.by_kind.get("rcu.idem").copied().unwrap_or(0.0);
                    u.idempotency_write_units += call.by_kind.get("wcu.idem").copied().unwrap_or(0.0);
                }
            }
            "secretsmanager" => u.secrets_calls += call.requests,
            "kms" => u.kms_requests += call.requests,
            _ => {}
        }
        u.emails += call.emails;
        u.texts += call.texts;
    }
    let invocations = run.invocations as f64;
    let gb = f64::from(memory_mb) / 1024.0;
    u.lambda_requests = invocations;
    u.gb_seconds = (run.billed_ms as f64 + COLD_START_SHARE * invocations * init_ms) / 1000.0 * gb;
    u.log_bytes =
        run.log_bytes as f64 + LOG_EVENT_OVERHEAD * run.log_lines as f64 + invocations * platform_bytes();
    u
}

fn platform_bytes() -> f64 {
    PLATFORM_LINES.iter().map(|l| l.len() as f64 + 1.0 + LOG_EVENT_OVERHEAD).sum()
}

fn lines_bytes(lines: &[&str]) -> f64 {
    lines.iter().map(|l| l.len() as f64 + 1.0 + LOG_EVENT_OVERHEAD).sum()
}

/// One job's success and the increment of one retry, from the two runs.
fn estimate(success: Usage, success_jobs: usize, retry: Usage, retries: usize) -> Estimate {
    let job = success.scaled(1.0 / success_jobs as f64);
    let retried_jobs = retries.max(1) as f64;
    Estimate { job, retry: retry.minus(job.scaled(retried_jobs)).scaled(1.0 / retried_jobs) }
}

fn jobkit(runs: &JobRuns) -> Estimate {
    let success = usage(&runs.success, runs.memory_mb, RUST_INIT_MS);
    let retry = usage(&runs.retry, runs.memory_mb, RUST_INIT_MS);
    estimate(success, runs.success.jobs, retry, runs.retry.failed_executions)
}

/// `run` with jobkit's own part swapped for Powertools': its idempotency units instead of
/// jobkit's state table, its time per record instead of jobkit's no-op's, no visibility
/// changes (Powertools leaves a failed record to the queue's visibility timeout), and each of
/// the `tokens` platform tokens the job uses read from Secrets Manager per execution (as the
/// jobs we replace did, and as Powertools' `parameters.get_secret`, cached 5 s by default, does
/// for a store synced every 15 minutes) where ours come sealed on the store record. Its log is
/// ours: the job's own lines and metrics, which a Python job writes as well (Powertools'
/// Logger and Metrics), and Lambda's.
fn as_powertools(
    runs: &JobRuns,
    run: &Run,
    noop: &Run,
    pt: &PowertoolsRuns,
    calls: &[Call],
    (records, tokens): (f64, f64),
) -> Usage {
    let jobs = run.jobs as f64;
    let mut u = usage(run, runs.memory_mb, PYTHON_INIT_MS + pt.init_ms);
    let ours_state_r = u.state_read_units;
    let ours_state_w = u.state_write_units;
    let (pt_r, pt_w) =
        calls.iter().filter(|c| c.service == "dynamodb").fold((0.0, 0.0), |(r, w), c| (r + c.rcu, w + c.wcu));
    let (pt_r, pt_w) = (pt_r / records * jobs, pt_w / records * jobs);
    u.read_units += pt_r - ours_state_r;
    u.write_units += pt_w - ours_state_w;
    (u.state_read_units, u.state_write_units) = (pt_r, pt_w);
    (u.idempotency_read_units, u.idempotency_write_units) = (pt_r, pt_w);
    let changes: f64 = run
        .calls
        .iter()
        .filter(|c| c.service == "sqs" && c.action.starts_with("ChangeMessageVisibility"))
        .map(|c| c.requests)
        .sum();
    u.sqs_requests -= changes;
    let work_ms = (per_job_ms(run) - per_job_ms(noop)).max(0.0);
    let invocations = run.invocations as f64;
    let gb = f64::from(runs.memory_mb) / 1024.0;
    let executions = jobs + run.failed_executions as f64;
    u.gb_seconds = ((work_ms * jobs + pt.per_record_ms * executions)
        + COLD_START_SHARE * invocations * (PYTHON_INIT_MS + pt.init_ms))
        / 1000.0
        * gb;
    u.kms_requests = 0.0;
    u.secrets_calls = tokens * executions;
    u
}

fn powertools(runs: &JobRuns, noop: &JobRuns, pt: &PowertoolsRuns, tokens: f64) -> Estimate {
    let success =
        as_powertools(runs, &runs.success, &noop.success, pt, &pt.success, (pt.records as f64, tokens));
    // Powertools' retry run: each record failed once then succeeded, so its counts per record
    // are those of one retried job.
    let retry =
        as_powertools(runs, &runs.retry, &noop.retry, pt, &pt.retry, (pt.retry_records as f64, tokens));
    estimate(success, runs.success.jobs, retry, runs.retry.failed_executions)
}

/// `run` as a lambdakiq job: one invocation per job at lambdakiq's memory, SQS's receive per
/// job and two deletes (lambdakiq deletes the message itself, then the mapping deletes the
/// batch), no idempotency table, Ruby's warm invocation in place of jobkit's no-op, and
/// ActiveJob's and lambdakiq's lines in the log, and each of the `tokens` platform tokens the
/// job uses read from Secrets Manager per execution (as the jobs we replace did).
fn as_lambdakiq(run: &Run, noop: &Run, memory_mb: u32, tokens: f64) -> Usage {
    let jobs = run.jobs as f64;
    let executions = jobs + run.failed_executions as f64;
    let mut u = usage(run, memory_mb, RUBY_INIT_MS);
    u.read_units -= u.state_read_units;
    u.write_units -= u.state_write_units;
    (u.state_read_units, u.state_write_units) = (0.0, 0.0);
    (u.idempotency_read_units, u.idempotency_write_units) = (0.0, 0.0);
    let ours = |actions: &[&str]| -> f64 {
        run.calls
            .iter()
            .filter(|c| c.service == "sqs" && actions.contains(&c.action.as_str()))
            .map(|c| c.requests - c.empty)
            .sum()
    };
    let receives_and_deletes = ours(&["ReceiveMessage", "DeleteMessage", "DeleteMessageBatch"]);
    // Each execution is received once; a successful one deleted twice.
    u.sqs_requests = u.sqs_requests - receives_and_deletes + executions + 2.0 * jobs;
    let work_ms = (per_job_ms(run) - per_job_ms(noop)).max(0.0);
    let gb = LAMBDAKIQ_MEMORY_MB / 1024.0;
    u.lambda_requests = executions;
    u.gb_seconds =
        (work_ms * jobs + RUBY_INVOKE_MS * executions + COLD_START_SHARE * executions * RUBY_INIT_MS)
            / 1000.0
            * gb;
    u.log_bytes = executions * (platform_bytes() + lines_bytes(&LAMBDAKIQ_LINES));
    u.kms_requests = 0.0;
    u.secrets_calls = tokens * executions;
    u
}

fn lambdakiq(runs: &JobRuns, noop: &JobRuns, tokens: f64) -> Estimate {
    let success = as_lambdakiq(&runs.success, &noop.success, runs.memory_mb, tokens);
    let retry = as_lambdakiq(&runs.retry, &noop.retry, runs.memory_mb, tokens);
    estimate(success, runs.success.jobs, retry, runs.retry.failed_executions)
}

fn measured() -> Result<Measured, CommandError> {
    serde_json::from_str(MEASURED).map_err(|e| {
        CommandError::Input(format!("jobctl's measured.json does not read ({e}): run scripts/bench-cost"))
    })
}

/// Every job's costs (or `job`'s), from the embedded measurements.
///
/// # Errors
/// [`CommandError::Input`] for a job the registry does not know, or one that was not measured.
pub fn estimates(job: Option<&str>) -> Result<Vec<JobCost>, CommandError> {
    let measured = measured()?;
    let names: Vec<&str> = match job {
        Some(name) => vec![job_spec(name)?.name],
        None => registry::JOB_NAMES.to_vec(),
    };
    let cost_of = |runs: &JobRuns, job: String| {
        let tokens = tokens_of(job.trim_end_matches(FAN_OUT_SUFFIX));
        JobCost {
            job,
            work: runs.work.clone(),
            memory_mb: runs.memory_mb,
            batch_size: runs.batch_size,
            jobkit: jobkit(runs),
            powertools: measured.powertools.as_ref().map(|pt| powertools(runs, &measured.noop, pt, tokens)),
            lambdakiq: lambdakiq(runs, &measured.noop, tokens),
        }
    };
    let mut costs = Vec::new();
    for name in names {
        let runs =
            measured.jobs.iter().find(|r| r.job == name).ok_or_else(|| {
                CommandError::Input(format!("{name} was not measured: run scripts/bench-cost"))
            })?;
        costs.push(cost_of(runs, runs.job.clone()));
        // The job as production runs it, where that is another path (store_sync's fan-out).
        let production = format!("{name}{FAN_OUT_SUFFIX}");
        if let Some(runs) = measured.jobs.iter().find(|r| r.job == production) {
            costs.push(cost_of(runs, production));
        }
    }
    if job.is_none() {
        // The framework's floor: what a job that does nothing costs on each deployment.
        costs.push(cost_of(&measured.noop, NOOP.to_owned()));
    }
    Ok(costs)
}

/// How many platform tokens a job uses (the registry's declaration; 0 for the no-op job).
fn tokens_of(job: &str) -> f64 {
    registry::spec(job).map_or(0.0, |spec| spec.uses.tokens.len() as f64)
}

/// What the row of a job's scheduled fan-out adds to its name (`store_sync (fan-out)`).
pub const FAN_OUT_SUFFIX: &str = " (fan-out)";

/// The row of jobkit's no-op example job in the table of every job.
pub const NOOP: &str = "(no-op job)";

/// The queues the stack's event source mappings poll: each job's own and its other lanes'.
///
/// # Errors
/// The registry failing to build.
pub fn polled_queues() -> Result<usize, CommandError> {
    Ok(registry::specs()?.iter().map(|s| 1 + s.other_lanes.len()).sum())
}

/// The fixed monthly cost of `queues` event source mappings polling idle queues.
pub fn idle_polling_per_month(queues: usize) -> f64 {
    queues as f64 * IDLE_RECEIVES_PER_QUEUE_MONTH * SQS_PER_REQUEST
}

fn money(dollars: f64) -> String {
    if dollars >= 100.0 {
        format!("${dollars:.0}")
    } else if dollars >= 1.0 {
        format!("${dollars:.2}")
    } else {
        format!("${dollars:.3}")
    }
}

/// `jobctl cost [job] [--jobs-per-day N] [--architecture A]`.
///
/// # Errors
/// [`CommandError::Input`] for an unknown job.
pub fn cost(
    out: Output,
    job: Option<&str>,
    jobs_per_day: Option<u64>,
    arch: Architecture,
) -> Result<(), CommandError> {
    let costs = estimates(job)?;
    let measured = measured()?;
    let queues = polled_queues()?;
    let per_month =
        |usage: &Usage| jobs_per_day.map(|n| usage.dollars(arch).total() * n as f64 * DAYS_PER_MONTH);
    if out.json {
        let jobs: Vec<_> = costs
            .iter()
            .map(|c| {
                let column = |e: &Estimate| {
                    let (job, retry) = (e.job.dollars(arch), e.retry.dollars(arch));
                    json!({
                        "per_job": e.job, "per_retry": e.retry,
                        "dollars_per_million_jobs": job.total() * 1e6,
                        "dollars_per_million_retries": retry.total() * 1e6,
                        "by_service_per_million_jobs": json!({
                            "sqs": job.sqs * 1e6, "lambda": job.lambda * 1e6, "dynamodb": job.dynamodb * 1e6,
                            "framework_state": job.state * 1e6,
                            "idempotency": job.idempotency * 1e6, "ses": job.ses * 1e6, "logs": job.logs * 1e6,
                            "secrets_manager": job.secrets * 1e6,
                        }),
                        "dollars_per_month": per_month(&e.job),
                    })
                };
                json!({
                    "job": c.job, "work": c.work, "memory_mb": c.memory_mb, "batch_size": c.batch_size,
                    "jobkit": column(&c.jobkit),
                    "powertools_python": c.powertools.as_ref().map(column),
                    "lambdakiq": column(&c.lambdakiq),
                })
            })
            .collect();
        out.json(&json!({
            "architecture": arch, "jobs_per_day": jobs_per_day, "measured_on": measured.measured_on,
            "jobs_per_run": measured.jobs_per_run, "prices_checked_on": "2026-12-01",
            "polled_queues": queues, "idle_polling_dollars_per_month": idle_polling_per_month(queues), "jobs": jobs,
        }));
        return Ok(());
    }
    let mut headers = vec![
        "JOB",
        "SQS",
        "LAMBDA",
        "DYNAMODB (STATE, IDEMPOTENCY)",
        "SES",
        "LOGS",
        "SECRETS",
        "PER 1M JOBS",
        "PER 1M RETRIES",
    ];
    if jobs_per_day.is_some() {
        headers.push("PER MONTH");
    }
    headers.extend(["POWERTOOLS-PY 1M", "LAMBDAKIQ 1M"]);
    let rows: Vec<Vec<String>> = costs
        .iter()
        .map(|c| {
            let d = c.jobkit.job.dollars(arch);
            let mut row = vec![
                c.job.clone(),
                money(d.sqs * 1e6),
                money(d.lambda * 1e6),
                format!(
                    "{} ({}, {})",
                    money(d.dynamodb * 1e6),
                    money(d.state * 1e6),
                    money(d.idempotency * 1e6)
                ),
                money(d.ses * 1e6),
                money(d.logs * 1e6),
                money(d.secrets * 1e6),
                money(d.total() * 1e6),
                money(c.jobkit.retry.dollars(arch).total() * 1e6),
            ];
            if let Some(month) = per_month(&c.jobkit.job) {
                row.push(money(month));
            }
            row.push(
                c.powertools.map_or_else(|| "-".to_owned(), |e| money(e.job.dollars(arch).total() * 1e6)),
            );
            row.push(money(c.lambdakiq.job.dollars(arch).total() * 1e6));
            row
        })
        .collect();
    out.table(&headers, &rows);
    println!();
    for c in &costs {
        let d = c.jobkit.job.dollars(arch);
        let (service, share) = d.dominant();
        let texts = if c.jobkit.job.texts > 0.0 {
            format!("; plus {:.0} text(s) a job, priced per country and carrier", c.jobkit.job.texts)
        } else {
            String::new()
        };
        let share_of = |part: f64| if d.total() > 0.0 { part / d.total() * 100.0 } else { 0.0 };
        println!(
            "{}: {} ({} MB, batches of {}); {service} is {:.0}% of it, jobkit's state table {:.0}% \
             (idempotency keys {:.0}%){texts}",
            c.job,
            c.work,
            c.memory_mb,
            c.batch_size,
            share * 100.0,
            share_of(d.state),
            share_of(d.idempotency)
        );
    }
    println!(
        "\nLambda {} at us-east-1 prices of 2026-12-01; counts measured {} on moto ({} jobs a run, {}).",
        match arch {
            Architecture::Arm64 => "arm64",
            Architecture::X86_64 => "x86_64",
        },
        measured.measured_on,
        measured.jobs_per_run,
        measured.binaries
    );
    if let Some(pt) = &measured.powertools {
        println!(
            "Powertools-Python: Python {}, aws-lambda-powertools {} measured here ({:.0} ms import, {:.1} ms a record).",
            pt.python, pt.powertools, pt.init_ms, pt.per_record_ms
        );
    }
    println!(
        "Fixed, whatever the jobs: the {queues} mappings' idle long polls, about {} a month. See BENCHMARKS.md.",
        money(idle_polling_per_month(queues))
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_measured_counts_read_and_cover_every_job() {
        let costs = estimates(None).expect("measured.json reads");
        let names: Vec<&str> = costs.iter().map(|c| c.job.as_str()).collect();
        for job in registry::JOB_NAMES {
            assert!(names.contains(job), "{job} is measured: {names:?}");
        }
        assert!(names.contains(&"store_sync (fan-out)"), "store_sync's production path: {names:?}");
        assert_eq!(costs.last().map(|c| c.job.as_str()), Some(NOOP));
        for c in &costs {
            assert!(c.jobkit.job.lambda_requests > 0.0, "{}: no invocation counted", c.job);
            // Sent alone (a fan-out sends ten to a request); received and deleted with its batch.
            let sent = if c.job.ends_with(FAN_OUT_SUFFIX) { 0.1 } else { 1.0 };
            let least = sent + 2.0 / c.batch_size as f64;
            assert!(c.jobkit.job.sqs_requests >= least - 1e-9, "{}: {:?}", c.job, c.jobkit.job);
            assert!(c.jobkit.retry.lambda_requests > 0.0, "{}: a retry is invoked again", c.job);
        }
    }

    #[test]
    fn idle_mappings_cost_a_fixed_amount_per_polled_queue() {
        // Five pollers, a 20 s long poll each, 30 days: 648,000 empty receives at $0.40 a million.
        assert!((idle_polling_per_month(1) - 0.2592).abs() < 1e-9);
        let queues = polled_queues().expect("the registry builds");
        assert!(queues > registry::JOB_NAMES.len(), "store_sync's low lane has a mapping of its own");
    }

    #[test]
    fn a_usage_prices_each_unit_at_its_rate() {
        let usage = Usage {
            sqs_requests: 1e6,
            lambda_requests: 1e6,
            gb_seconds: 1.0,
            read_units: 1e6,
            write_units: 1e6,
            idempotency_write_units: 1e6,
            emails: 1000.0,
            log_bytes: 1e9,
            secrets_calls: 10_000.0,
            ..Usage::default()
        };
        let d = usage.dollars(Architecture::Arm64);
        assert!((d.sqs - 0.40).abs() < 1e-9);
        assert!((d.lambda - (0.20 + 0.000_013_333_4)).abs() < 1e-9);
        assert!((d.dynamodb - (0.125 + 0.625)).abs() < 1e-9);
        assert!((d.idempotency - 0.625).abs() < 1e-9);
        assert!((d.ses - 0.10).abs() < 1e-9);
        assert!((d.logs - 0.50).abs() < 1e-9);
        assert!((d.secrets - 0.05).abs() < 1e-9);
        let x86 = usage.dollars(Architecture::X86_64);
        assert!(x86.lambda > d.lambda, "x86_64 duration costs more");
    }

    #[test]
    fn a_retry_is_what_the_retry_run_adds_per_failed_execution() {
        let one = Usage { sqs_requests: 3.0, write_units: 2.0, ..Usage::default() };
        // 4 jobs that each failed once: the run did 4 jobs' work plus 4 retries of 2 requests, 1 unit.
        let retry_run =
            Usage { sqs_requests: 4.0 * 3.0 + 4.0 * 2.0, write_units: 4.0 * 2.0 + 4.0, ..Usage::default() };
        let e = estimate(one.scaled(10.0), 10, retry_run, 4);
        assert_eq!(e.job, one);
        assert_eq!(e.retry.sqs_requests, 2.0);
        assert_eq!(e.retry.write_units, 1.0);
    }
}
