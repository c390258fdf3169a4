//! `jobctl enqueue <job> --file jobs.jsonl [--delay 2h | --at <time>]`: many jobs at once, one
//! JSON object of arguments per line (`-` reads standard input). Every line is checked against
//! the job's argument type before anything is sent, so a bad file sends nothing; then the jobs
//! go out with `SendMessageBatch`, with a progress line.

use std::{future::Future, pin::Pin, sync::Arc};

use jobkit::{
    EnqueueError, EnqueueOptions, Enqueuer, Job, JobError, clock::SystemClock, enqueue::QueueRoutes,
    message::parse_args,
};
use serde_json::{Value, json};

use super::{CommandError, job_spec};
use crate::{
    backend::Backend,
    output::{Output, Progress},
    registry::{self, JobSpec, JobVisitor},
};

/// Jobs sent per step: one `SendMessageBatch` call, so a call that fails as a whole fails
/// exactly these and the lines after them are reported unsent, not guessed at.
const CHUNK: usize = 10;
/// Bad lines listed in the error before "and N more".
const SHOWN_ERRORS: usize = 10;

/// A file whose every line fits the job's arguments.
#[derive(Debug, Clone)]
pub struct CheckedFile {
    spec: JobSpec,
    /// (line number in the file, arguments).
    lines: Vec<(usize, Value)>,
}

struct CheckLine<'a>(&'a Value);

impl JobVisitor for CheckLine<'_> {
    type Output = Result<(), JobError>;
    fn visit<J: Job>(self) -> Self::Output {
        parse_args::<J::Args>(self.0).map(drop)
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
                Ok(()) => lines.push((number, value)),
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
    routes: QueueRoutes,
    lines: Vec<Value>,
    options: EnqueueOptions,
}

/// Per line, in order: the job id, or why it was not sent.
type Results = Vec<Result<String, String>>;
type Sent = Pin<Box<dyn Future<Output = Results> + Send>>;

impl JobVisitor for SendAll {
    type Output = Sent;
    fn visit<J: Job>(self) -> Self::Output {
        Box::pin(async move {
            let enqueuer =
                Enqueuer::new(self.backend.queue(), self.backend.store(), Arc::new(SystemClock), self.routes);
            let progress = Progress::new("enqueueing", Some(self.lines.len()));
            let mut results: Results = Vec::with_capacity(self.lines.len());
            for chunk in self.lines.chunks(CHUNK) {
                let sent = match chunk.iter().map(parse_args::<J::Args>).collect::<Result<Vec<_>, _>>() {
                    Ok(args) => enqueuer.perform_later_bulk_with::<J>(args, &self.options).await,
                    Err(e) => Err(EnqueueError::InvalidArguments(e)),
                };
                match sent {
                    Ok(sent) => results.extend(
                        sent.into_iter().map(|r| r.map(|id| id.to_string()).map_err(|e| e.to_string())),
                    ),
                    Err(e) => {
                        // The call failed as a whole: this chunk and the rest are not sent.
                        let reason = e.to_string();
                        results.resize(self.lines.len(), Err(format!("not sent: {reason}")));
                        break;
                    }
                }
                progress.set(results.len());
            }
            results
        })
    }
}

/// `jobctl enqueue --file`, once [`check`]ed: prints how many were enqueued (with `--json`,
/// every job id in line order).
///
/// # Errors
/// A backend error before sending, or [`CommandError::Incomplete`] when some jobs were not
/// sent (the rest were).
pub async fn enqueue(
    out: Output,
    backend: Arc<Backend>,
    options: EnqueueOptions,
    checked: CheckedFile,
) -> Result<(), CommandError> {
    let CheckedFile { spec, lines } = checked;
    let total = lines.len();
    let routes = backend.routes(&spec).await?;
    let queue_id = routes.resolve(spec.name).into_owned();
    let (numbers, lines): (Vec<usize>, Vec<Value>) = lines.into_iter().unzip();
    let send = SendAll { backend: backend.clone(), routes, lines, options };
    let results = registry::visit(spec.name, send)?.await;
    let failed: Vec<(usize, &String)> =
        numbers.iter().zip(&results).filter_map(|(line, r)| r.as_ref().err().map(|e| (*line, e))).collect();
    if out.json {
        let jobs: Vec<Value> = numbers
            .iter()
            .zip(&results)
            .map(|(line, r)| match r {
                Ok(id) => json!({"line": line, "job_id": id}),
                Err(e) => json!({"line": line, "error": e}),
            })
            .collect();
        out.json(&json!({
            "job": spec.name, "queue": queue_id, "enqueued": total - failed.len(),
            "failed": failed.len(), "jobs": jobs,
        }));
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
        Some((line, error)) => Err(CommandError::Incomplete(format!(
            "{} of {total} jobs not sent (the first, line {line}: {error}); the others are enqueued, \
             so resend only the failed lines (--json lists them)",
            failed.len()
        ))),
    }
}
