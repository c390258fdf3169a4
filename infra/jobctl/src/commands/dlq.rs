//! `jobctl dlq list | show | redrive | purge`: what failed and why, and bringing it back.
//!
//! Redrive receives from the DLQ, re-sends to the job's queue and deletes, one message at a time,
//! so it can filter by error kind and works where `StartMessageMoveTask` does not (moto, the
//! embedded backend). A message is deleted from the DLQ only after its copy was sent: a crash
//! in between leaves a duplicate, never a loss, and the job's idempotency absorbs the duplicate.

use std::{
    collections::{BTreeMap, HashSet},
    io::{BufRead, IsTerminal, Write},
    time::{Duration, Instant},
};

use jobkit::{OutgoingMessage, ReceivedMessage, message::attr};
use serde_json::{Value, json};

use super::{CommandError, job_spec, jobs_or_all};
use crate::{
    backend::Backend,
    output::{Output, Progress, truncate},
};

/// How many messages `dlq list` reads per DLQ when not told.
pub const DEFAULT_LIST_LIMIT: usize = 100;

/// The attributes the runner writes on a DLQ message; a redriven message goes back without
/// them (and without `not_before`: a redrive means now).
const DLQ_ONLY: [&str; 8] = [
    attr::ERROR_KIND,
    attr::ERROR_MESSAGE,
    attr::ATTEMPTS,
    attr::FIRST_FAILED_AT,
    attr::LAST_FAILED_AT,
    attr::ORIGINAL_MESSAGE_ID,
    attr::DLQ_REASON,
    attr::NOT_BEFORE,
];

/// One DLQ message as operators read it.
#[derive(Debug, Clone)]
struct DeadLetter {
    job: &'static str,
    message: ReceivedMessage,
}

impl DeadLetter {
    fn get(&self, name: &str) -> &str {
        self.message.attributes.get(name).map_or("", String::as_str)
    }

    /// The job id, or the SQS message id of a message sent by hand.
    fn id(&self) -> &str {
        match self.get(attr::JOB_ID) {
            "" => &self.message.message_id,
            id => id,
        }
    }

    fn error_kind(&self) -> &str {
        match self.get(attr::ERROR_KIND) {
            // Moved by SQS's own redrive (maxReceiveCount), not by the runner.
            "" => "unknown",
            kind => kind,
        }
    }

    fn matches(&self, error: Option<&str>) -> bool {
        error.is_none_or(|kind| self.error_kind().eq_ignore_ascii_case(kind))
    }

    fn summary_json(&self) -> Value {
        json!({
            "id": self.id(),
            "job": self.job,
            "error_kind": self.error_kind(),
            "error_message": self.get(attr::ERROR_MESSAGE),
            "reason": self.get(attr::DLQ_REASON),
            "attempts": self.get(attr::ATTEMPTS).parse::<u32>().ok(),
            "failed_at": self.get(attr::LAST_FAILED_AT),
            "message_id": self.message.message_id,
        })
    }
}

async fn dead_letters(
    backend: &Backend,
    jobs: &[&'static str],
    error: Option<&str>,
    limit: usize,
) -> Result<Vec<DeadLetter>, CommandError> {
    let mut found = Vec::new();
    for job in jobs {
        let dlq = backend.dlq_id(job).await?;
        for message in backend.list(&dlq, limit).await? {
            let letter = DeadLetter { job, message };
            if letter.matches(error) {
                found.push(letter);
            }
        }
    }
    Ok(found)
}

/// `jobctl dlq list [<job>] [--error <kind>] [--limit N]`.
///
/// # Errors
/// An unknown job; a backend error.
pub async fn list(
    out: Output,
    backend: &Backend,
    job: Option<&str>,
    error: Option<&str>,
    limit: usize,
) -> Result<(), CommandError> {
    let letters = dead_letters(backend, &jobs_or_all(job)?, error, limit).await?;
    if out.json {
        out.json(&json!(letters.iter().map(DeadLetter::summary_json).collect::<Vec<_>>()));
        return Ok(());
    }
    if letters.is_empty() {
        println!(
            "no messages in the DLQ{} ({})",
            job.map(|j| format!(" of {j}")).unwrap_or_default(),
            backend.describe()
        );
        return Ok(());
    }
    let rows: Vec<Vec<String>> = letters
        .iter()
        .map(|l| {
            vec![
                l.id().to_owned(),
                l.job.to_owned(),
                l.error_kind().to_owned(),
                truncate(l.get(attr::ERROR_MESSAGE), 60),
                l.get(attr::ATTEMPTS).to_owned(),
                l.get(attr::LAST_FAILED_AT).to_owned(),
            ]
        })
        .collect();
    out.table(&["ID", "JOB", "ERROR", "MESSAGE", "ATTEMPTS", "FAILED AT"], &rows);
    Ok(())
}

/// `jobctl dlq show <id> [--job <job>]`: the full error, the attributes and the arguments.
///
/// # Errors
/// [`CommandError::NotFound`] when no DLQ holds the id; a backend error.
pub async fn show(out: Output, backend: &Backend, id: &str, job: Option<&str>) -> Result<(), CommandError> {
    let letters = dead_letters(backend, &jobs_or_all(job)?, None, usize::MAX).await?;
    let letter = letters.iter().find(|l| l.id() == id || l.message.message_id == id).ok_or_else(|| {
        CommandError::NotFound(format!("no DLQ message has the id {id} ({})", backend.describe()))
    })?;
    let arguments: Value =
        serde_json::from_str(&letter.message.body).unwrap_or(Value::String(letter.message.body.clone()));
    if out.json {
        let mut shown = letter.summary_json();
        shown["attributes"] = json!(letter.message.attributes);
        shown["arguments"] = arguments;
        out.json(&shown);
        return Ok(());
    }
    let rows: Vec<Vec<String>> =
        letter.message.attributes.iter().map(|(k, v)| vec![k.clone(), v.clone()]).collect();
    println!("{} job {} in {}'s DLQ: {}", letter.job, letter.id(), letter.job, letter.error_kind());
    println!("\n{}\n", letter.get(attr::ERROR_MESSAGE));
    out.table(&["ATTRIBUTE", "VALUE"], &rows);
    println!("\narguments:\n{}", serde_json::to_string_pretty(&arguments).unwrap_or_default());
    Ok(())
}

/// What `dlq redrive` is asked to do.
#[derive(Debug, Clone, Default)]
pub struct Redrive {
    /// The job whose DLQ is redriven.
    pub job: String,
    /// Only messages that failed with this error kind.
    pub error: Option<String>,
    /// At most this many.
    pub limit: Option<usize>,
    /// At most this many per second.
    pub rate: Option<u32>,
    /// Print what would be redriven; change nothing.
    pub dry_run: bool,
}

/// `jobctl dlq redrive <job> [--error <kind>] [--limit N] [--rate N] [--dry-run]`.
///
/// # Errors
/// An unknown job; a backend error (what was moved before it stays moved).
pub async fn redrive(out: Output, backend: &Backend, request: Redrive) -> Result<(), CommandError> {
    let job = job_spec(&request.job)?.name;
    let limit = request.limit.unwrap_or(usize::MAX);
    if request.dry_run {
        let letters = dead_letters(backend, &[job], request.error.as_deref(), usize::MAX).await?;
        let chosen: Vec<&DeadLetter> = letters.iter().take(limit).collect();
        if out.json {
            let ids: Vec<&str> = chosen.iter().map(|l| l.id()).collect();
            out.json(&json!({"job": job, "dry_run": true, "would_redrive": ids}));
        } else {
            println!("would redrive {} message(s) of {job}'s DLQ (dry run, nothing changed):", chosen.len());
            for l in chosen {
                println!("  {}  {}  {}", l.id(), l.error_kind(), truncate(l.get(attr::ERROR_MESSAGE), 60));
            }
        }
        return Ok(());
    }
    let moved = move_letters(backend, job, &request, limit).await?;
    if out.json {
        out.json(&json!({"job": job, "redriven": moved.moved, "skipped": moved.skipped}));
    } else {
        let filter = request.error.as_deref().map(|e| format!(" with error {e}")).unwrap_or_default();
        println!(
            "redrove {} message(s){filter} from {job}'s DLQ to its queue; {} left in the DLQ",
            moved.moved, moved.skipped
        );
    }
    Ok(())
}

struct Moved {
    moved: usize,
    skipped: usize,
}

async fn move_letters(
    backend: &Backend,
    job: &'static str,
    request: &Redrive,
    limit: usize,
) -> Result<Moved, CommandError> {
    let queue = backend.queue();
    let (dlq_id, queue_id) = (backend.dlq_id(job).await?, backend.queue_id(job).await?);
    let wait = if backend.embedded().is_some() { Duration::ZERO } else { Duration::from_secs(1) };
    let pace = request.rate.filter(|r| *r > 0).map(|r| Duration::from_secs_f64(1.0 / f64::from(r)));
    let progress = Progress::new("redriving", request.limit);
    let mut seen = HashSet::new();
    let mut held: Vec<String> = Vec::new();
    let mut moved = 0;
    'receive: while moved < limit {
        let batch = queue.receive(&dlq_id, 10, wait).await?;
        let mut fresh = 0;
        for message in batch {
            if !seen.insert(message.message_id.clone()) {
                held.push(message.receipt_handle);
                continue;
            }
            fresh += 1;
            let letter = DeadLetter { job, message };
            if moved >= limit || !letter.matches(request.error.as_deref()) {
                held.push(letter.message.receipt_handle);
                continue;
            }
            let started = Instant::now();
            let attributes: BTreeMap<String, String> = letter
                .message
                .attributes
                .iter()
                .filter(|(k, _)| !DLQ_ONLY.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let copy = OutgoingMessage {
                body: letter.message.body.clone(),
                attributes,
                ..OutgoingMessage::default()
            };
            queue.send(&queue_id, copy).await?;
            queue.delete(&dlq_id, &letter.message.receipt_handle).await?;
            moved += 1;
            progress.set(moved);
            if let Some(pace) = pace {
                tokio::time::sleep(pace.saturating_sub(started.elapsed())).await;
            }
        }
        if fresh == 0 {
            break 'receive;
        }
    }
    // What was received and not moved goes back at once rather than after the DLQ's
    // visibility timeout.
    for handle in &held {
        queue.change_visibility(&dlq_id, handle, Duration::ZERO).await?;
    }
    let skipped = usize::try_from(backend.counts(&dlq_id).await?.total()).unwrap_or(usize::MAX);
    Ok(Moved { moved, skipped })
}

/// `jobctl dlq purge <job> [--yes]`: deletes every message of the job's DLQ, after the operator
/// types the job's name (or passes `--yes`).
///
/// # Errors
/// [`CommandError::Declined`] without confirmation; an unknown job; a backend error.
pub async fn purge(out: Output, backend: &Backend, job: &str, yes: bool) -> Result<(), CommandError> {
    let job = job_spec(job)?.name;
    let dlq = backend.dlq_id(job).await?;
    let count = backend.counts(&dlq).await?.total();
    if !yes {
        if !std::io::stdin().is_terminal() {
            return Err(CommandError::Declined(format!(
                "purging {job}'s DLQ deletes {count} message(s) for good: pass --yes to confirm without a prompt"
            )));
        }
        eprint!("purge {count} message(s) from {job}'s DLQ for good? type the job's name to confirm: ");
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer).map_err(|e| CommandError::Declined(e.to_string()))?;
        if answer.trim() != job {
            return Err(CommandError::Declined("not confirmed: nothing purged".to_owned()));
        }
    }
    backend.purge(&dlq).await?;
    if out.json {
        out.json(&json!({"job": job, "purged": count}));
    } else {
        println!("purged {count} message(s) from {job}'s DLQ ({})", backend.describe());
    }
    Ok(())
}
