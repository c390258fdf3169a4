//! `jobctl enqueue <job> --file jobs.jsonl [--delay 2h | --at <time>]`: many jobs at once, one
//! JSON object of arguments per line (`-` reads standard input). Every line is checked against
//! the job's argument type before anything is sent, so a bad file sends nothing; then the jobs
//! go out with `SendMessageBatch`, with a progress line.

use std::{future::Future, pin::Pin, sync::Arc};

use chrono::{DateTime, Utc};
use jobkit::{EnqueueError, EnqueueOptions, Enqueuer, Job, JobError, PortError, QueueRoutes, SystemClock};
use serde_json::{Value, json};

use super::{CommandError, job_spec};
use crate::{
    backend::Backend,
    output::{Output, Progress},
    registry::{self, JobSpec, JobVisitor},
};

/// Jobs sent per batch of the progress line (ten `SendMessageBatch` calls).
const CHUNK: usize = 100;
/// Bad lines listed in the error before "and N more".
const SHOWN_ERRORS: usize = 10;

/// A file whose every line fits the job's arguments.
#[derive(Debug, Clone)]
pub struct CheckedFile {
    spec: JobSpec,
    lines: Vec<Value>,
}

struct CheckLine<'a>(&'a Value);

impl JobVisitor for CheckLine<'_> {
    type Output = Result<(), JobError>;
    fn visit<J: Job>(self) -> Self::Output {
        jobkit::message::parse_args::<J::Args>(self.0).map(drop)
    }
}

/// Judges every non-blank line of `text` as `job`'s arguments.
///
/// # Errors
/// [`CommandError::Input`] listing the bad lines by number with what is wrong, or for a file
/// with no job in it.
pub fn check(job: &str, text: &str) -> Result<CheckedFile, CommandError> {
    let spec = job_spec(job)?;
    let mut lines = Vec::new();
    let mut bad = Vec::new();
    for (index, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let number = index + 1;
        match serde_json::from_str::<Value>(line) {
            Ok(value) => match registry::visit(spec.name, CheckLine(&value))? {
                Ok(()) => lines.push(value),
                Err(e) => bad.push(format!("line {number}: {e}")),
            },
            Err(e) => bad.push(format!("line {number}: not JSON: {e}")),
        }
    }
    if !bad.is_empty() {
        let more = bad.len().saturating_sub(SHOWN_ERRORS);
        let mut message = format!(
            "nothing sent: {} of {} lines do not fit {} (for example {}):\n  {}",
            bad.len(),
            bad.len() + lines.len(),
            spec.name,
            spec.example,
            bad[..bad.len().min(SHOWN_ERRORS)].join("\n  ")
        );
        if more > 0 {
            message.push_str(&format!("\n  and {more} more"));
        }
        return Err(CommandError::Input(message));
    }
    if lines.is_empty() {
        return Err(CommandError::Input(
            "the file holds no job: one JSON object of arguments per line".into(),
        ));
    }
    Ok(CheckedFile { spec, lines })
}

/// Sends the lines as jobs of the visited type, a chunk at a time.
struct SendAll {
    backend: Arc<Backend>,
    queue_id: String,
    lines: Vec<Value>,
    options: EnqueueOptions,
}

type Results = Vec<Result<String, String>>;
type Sent = Pin<Box<dyn Future<Output = Result<Results, EnqueueError>> + Send>>;

impl JobVisitor for SendAll {
    type Output = Sent;
    fn visit<J: Job>(self) -> Self::Output {
        Box::pin(async move {
            let routes = QueueRoutes::default().with(J::QUEUE, self.queue_id);
            let enqueuer =
                Enqueuer::new(self.backend.queue(), self.backend.store(), Arc::new(SystemClock), routes);
            let progress = Progress::new("enqueueing", Some(self.lines.len()));
            let mut results = Vec::with_capacity(self.lines.len());
            for chunk in self.lines.chunks(CHUNK) {
                let args = chunk
                    .iter()
                    .map(jobkit::message::parse_args::<J::Args>)
                    .collect::<Result<Vec<_>, _>>()?;
                let sent = enqueuer.perform_later_bulk_with::<J>(args, &self.options).await?;
                results.extend(
                    sent.into_iter()
                        .map(|r| r.map(|id| id.to_string()).map_err(|e: PortError| e.to_string())),
                );
                progress.set(results.len());
            }
            Ok(results)
        })
    }
}

/// `jobctl enqueue --file`, once [`check`]ed: prints how many were enqueued (with `--json`,
/// every job id in line order).
///
/// # Errors
/// A backend error, or [`CommandError::Incomplete`] when some jobs were not sent.
pub async fn enqueue(
    out: Output,
    backend: Arc<Backend>,
    delay: Option<std::time::Duration>,
    at: Option<DateTime<Utc>>,
    checked: CheckedFile,
) -> Result<(), CommandError> {
    let CheckedFile { spec, lines } = checked;
    let total = lines.len();
    let queue_id = backend.queue_id(spec.name).await?;
    let options = EnqueueOptions { delay, wait_until: at, ..EnqueueOptions::default() };
    let send = SendAll { backend: backend.clone(), queue_id: queue_id.clone(), lines, options };
    let results = registry::visit(spec.name, send)?.await.map_err(|e| match e {
        EnqueueError::Port(port) => CommandError::from(port),
        other => CommandError::Input(other.to_string()),
    })?;
    let failed: Vec<(usize, &String)> =
        results.iter().enumerate().filter_map(|(i, r)| r.as_ref().err().map(|e| (i + 1, e))).collect();
    if out.json {
        let jobs: Vec<Value> = results
            .iter()
            .map(|r| match r {
                Ok(id) => json!({"job_id": id}),
                Err(e) => json!({"error": e}),
            })
            .collect();
        out.json(&json!({"job": spec.name, "queue": queue_id, "enqueued": total - failed.len(), "failed": failed.len(), "jobs": jobs}));
    } else {
        println!(
            "enqueued {} of {total} {} jobs on the {}",
            total - failed.len(),
            spec.name,
            backend.describe()
        );
    }
    match failed.first() {
        None => Ok(()),
        Some((job, error)) => Err(CommandError::Incomplete(format!(
            "{} of {total} jobs not sent (the first, job {job} of the file: {error}); the others are enqueued, \
             so resend only the failed lines (--json lists them)",
            failed.len()
        ))),
    }
}
