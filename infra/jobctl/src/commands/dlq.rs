//! `jobctl dlq list | show | redrive | purge`: what failed and why, and bringing it back.
//!
//! Each command is a function that returns data ([`read`], [`groups`], [`find`],
//! [`redrive_messages`], [`purge_dlq`]) and one that prints it; `jobctl console` renders the
//! same data.
//!
//! Redrive receives from the DLQ, re-sends to the job's queue and deletes, one message at a time,
//! so it can filter by error kind and works where `StartMessageMoveTask` does not (moto, the
//! embedded backend). A message is deleted from the DLQ only after its copy was sent: a crash
//! in between leaves a duplicate, never a loss, and the job's idempotency absorbs the duplicate.

use std::{
    collections::{BTreeMap, HashSet},
    io::{BufRead, IsTerminal, Write},
    sync::Arc,
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use jobkit::{
    dead_letter::{DeadLetterError, LastError, last_error},
    message::{OutgoingMessage, ReceivedMessage, attr},
    ports::StateStore,
};
use serde_json::{Value, json};

use super::{CommandError, job_spec, jobs_or_all};
use crate::{
    backend::Backend,
    output::{Output, Progress, truncate},
};

/// How many messages `dlq list` reads per DLQ when not told.
pub const DEFAULT_LIST_LIMIT: usize = 100;

/// How many messages per DLQ `dlq summary` reads unless told: enough to group a bad day's
/// failures, bounded because reading a DLQ means receiving each message.
pub const DEFAULT_SUMMARY_LIMIT: usize = 1000;

/// The attributes the runner writes on a DLQ message, in today's form (`error`) and the older
/// one: a redriven message goes back without them (and without `not_before`: a redrive means
/// now). Everything else (`job`, `job_id`, `idempotency_key`, `continuation`, a producer's own
/// attributes) goes back as it came.
const DLQ_ONLY: [&str; 9] = [
    attr::ERROR,
    attr::ERROR_KIND,
    attr::ERROR_MESSAGE,
    attr::ATTEMPTS,
    attr::FIRST_FAILED_AT,
    attr::LAST_FAILED_AT,
    attr::ORIGINAL_MESSAGE_ID,
    attr::DLQ_REASON,
    attr::NOT_BEFORE,
];

/// The error kind of a message that records none (SQS moved it), as `--error` selects it.
const NO_ACCOUNT_KIND: &str = "unknown";

/// Why a message is in the DLQ, as whoever moved it recorded it.
#[derive(Debug, Clone)]
pub enum Account {
    /// The runner's account: the `error` attribute, or the older one-attribute-per-field form.
    Runner(DeadLetterError),
    /// None: SQS's redrive moved it after `maxReceiveCount` receives (a crash loop, timeouts).
    Sqs {
        /// The job queue's `maxReceiveCount`: the receives the message had when moved.
        receives: Option<u32>,
        /// The last error the runner recorded for the job id.
        last_error: LastSeen,
    },
}

/// The last error the runner recorded for a job id, as far as it could be looked up.
#[derive(Debug, Clone)]
pub enum LastSeen {
    /// Not looked up (yet).
    Unknown,
    /// None is kept.
    NotRecorded,
    /// This one.
    Found(LastError),
    /// The state store could not be read; why.
    Unavailable(String),
}

/// One DLQ message as operators read it.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    /// The job whose DLQ holds it.
    pub job: &'static str,
    /// The message as received (body, attributes, SQS ids).
    pub message: ReceivedMessage,
    /// Why it is there.
    pub account: Account,
}

impl DeadLetter {
    fn new(job: &'static str, message: ReceivedMessage) -> Self {
        let account = match DeadLetterError::read(&message.attributes) {
            Some(error) => Account::Runner(error),
            None => Account::Sqs { receives: None, last_error: LastSeen::Unknown },
        };
        Self { job, message, account }
    }

    /// The job id, or the SQS message id of a message sent without one (as the runner keys
    /// its records).
    pub fn id(&self) -> &str {
        match self.message.attributes.get(attr::JOB_ID).map(String::as_str) {
            None | Some("") => &self.message.message_id,
            Some(id) => id,
        }
    }

    /// The runner's error kind, or `unknown` for a message SQS moved.
    pub fn error_kind(&self) -> &str {
        match &self.account {
            Account::Runner(error) => &error.kind,
            Account::Sqs { .. } => NO_ACCOUNT_KIND,
        }
    }

    fn matches(&self, error: Option<&str>) -> bool {
        error.is_none_or(|kind| self.error_kind().eq_ignore_ascii_case(kind))
    }

    /// Who moved it to the DLQ: `runner` or `sqs`.
    pub fn recorded_by(&self) -> &'static str {
        match self.account {
            Account::Runner(_) => "runner",
            Account::Sqs { .. } => "sqs",
        }
    }

    /// The runner's error message, or what is known of a message SQS moved.
    pub fn error_message(&self) -> String {
        match &self.account {
            Account::Runner(error) => error.message.clone(),
            Account::Sqs { receives: Some(n), .. } => {
                format!("moved by SQS after {n} receives, no reason recorded")
            }
            Account::Sqs { receives: None, .. } => "no reason recorded".to_owned(),
        }
    }

    /// The error message, and for a message SQS moved the last error the runner saw.
    pub fn summary_line(&self) -> String {
        match &self.account {
            Account::Sqs { last_error: LastSeen::Found(last), .. } => {
                format!("{}; last error: {}: {}", self.error_message(), last.kind, last.message)
            }
            _ => self.error_message(),
        }
    }

    /// The attempts the runner counted (`None` for a message SQS moved).
    pub fn attempts(&self) -> Option<u32> {
        match &self.account {
            Account::Runner(error) => Some(error.attempts),
            Account::Sqs { .. } => None,
        }
    }

    /// The last failure: the runner's, or the last error recorded for a message SQS moved.
    pub fn failed_at(&self) -> Option<DateTime<Utc>> {
        match &self.account {
            Account::Runner(error) => error.last_failed_at,
            Account::Sqs { last_error: LastSeen::Found(last), .. } => Some(last.at),
            Account::Sqs { .. } => None,
        }
    }

    /// The arguments: the body as JSON, or as a string when it is not JSON.
    pub fn arguments(&self) -> Value {
        serde_json::from_str(&self.message.body).unwrap_or(Value::String(self.message.body.clone()))
    }

    fn summary_json(&self) -> Value {
        let (reason, attempts, failed_at, receives, last) = match &self.account {
            Account::Runner(error) => {
                (Some(error.reason.as_str()), Some(error.attempts), error.last_failed_at, None, None)
            }
            Account::Sqs { receives, last_error } => {
                let last = match last_error {
                    LastSeen::Found(last) => Some(last),
                    _ => None,
                };
                (None, None, None, *receives, last)
            }
        };
        json!({
            "id": self.id(),
            "job": self.job,
            "recorded_by": self.recorded_by(),
            "error_kind": self.error_kind(),
            "error_message": self.error_message(),
            "reason": reason,
            "attempts": attempts,
            "failed_at": failed_at,
            "receives": receives,
            "last_error": last,
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
            let letter = DeadLetter::new(job, message);
            if letter.matches(error) {
                found.push(letter);
            }
        }
    }
    Ok(found)
}

/// Completes the account of the messages SQS moved: the receives they had (their job queue's
/// `maxReceiveCount`, which listing cannot change) and the last error the runner recorded for
/// their job id. A state store that cannot be read is said once on standard error and leaves
/// the last errors out: the DLQ is still worth seeing.
async fn explain(backend: &Backend, letters: &mut [DeadLetter]) -> Result<(), CommandError> {
    let mut max_receives: BTreeMap<&'static str, Option<u32>> = BTreeMap::new();
    // Opened at the first message SQS moved; once it fails, it is not asked again.
    let mut store: Option<Result<Arc<dyn StateStore>, String>> = None;
    let mut warned = false;
    let now = Utc::now();
    for letter in letters.iter_mut() {
        if !matches!(letter.account, Account::Sqs { .. }) {
            continue;
        }
        let receives = match max_receives.get(letter.job) {
            Some(n) => *n,
            None => {
                let n = backend.max_receive_count(letter.job).await?;
                max_receives.insert(letter.job, n);
                n
            }
        };
        if store.is_none() {
            store = Some(backend.job_state().await.map_err(|e| e.to_string()));
        }
        let read = match &store {
            Some(Ok(opened)) => last_error(opened.as_ref(), letter.job, letter.id(), now)
                .await
                .map_err(|e| format!("cannot read the state store: {e}")),
            Some(Err(why)) => Err(why.clone()),
            None => Ok(None),
        };
        let last_error = match read {
            Ok(Some(last)) => LastSeen::Found(last),
            Ok(None) => LastSeen::NotRecorded,
            Err(why) => {
                if !warned {
                    eprintln!("jobctl: the last errors the runner saw are not shown: {why}");
                    warned = true;
                }
                store = Some(Err(why.clone()));
                LastSeen::Unavailable(why)
            }
        };
        letter.account = Account::Sqs { receives, last_error };
    }
    Ok(())
}

/// Up to `limit` messages of each DLQ of `job` (every job when `None`) that failed with `error`
/// (any when `None`), with what is known of the ones SQS moved.
///
/// # Errors
/// An unknown job; a backend error.
pub async fn read(
    backend: &Backend,
    job: Option<&str>,
    error: Option<&str>,
    limit: usize,
) -> Result<Vec<DeadLetter>, CommandError> {
    let mut letters = dead_letters(backend, &jobs_or_all(job)?, error, limit).await?;
    explain(backend, &mut letters).await?;
    Ok(letters)
}

/// The messages of one job and error kind: how many, the oldest and newest failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// The job.
    pub job: &'static str,
    /// The error kind (`unknown` for messages SQS moved).
    pub error_kind: String,
    /// How many of the messages read.
    pub count: u64,
    /// The oldest failure among them.
    pub oldest: Option<DateTime<Utc>>,
    /// The newest.
    pub newest: Option<DateTime<Utc>>,
}

/// `letters` grouped by job and error kind, in that order.
pub fn groups(letters: &[DeadLetter]) -> Vec<Group> {
    let mut groups: BTreeMap<(&'static str, String), Group> = BTreeMap::new();
    for letter in letters {
        let at = letter.failed_at();
        let group = groups.entry((letter.job, letter.error_kind().to_owned())).or_insert_with(|| Group {
            job: letter.job,
            error_kind: letter.error_kind().to_owned(),
            count: 0,
            oldest: None,
            newest: None,
        });
        group.count += 1;
        group.oldest = group.oldest.into_iter().chain(at).min();
        group.newest = group.newest.into_iter().chain(at).max();
    }
    groups.into_values().collect()
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
    let letters = read(backend, job, error, limit).await?;
    if out.json {
        out.json(&json!(letters.iter().map(DeadLetter::summary_json).collect::<Vec<_>>()));
        return Ok(());
    }
    let depth = depth(backend, &jobs_or_all(job)?).await?;
    if letters.is_empty() {
        match depth {
            0 => println!(
                "no messages in the DLQ{} ({})",
                job.map(|j| format!(" of {j}")).unwrap_or_default(),
                backend.describe()
            ),
            held => println!(
                "none could be read now: {held} message(s) in the DLQ are being read elsewhere (another \
                 listing or a redrive holds them for its visibility timeout); try again shortly"
            ),
        }
        return Ok(());
    }
    let rows: Vec<Vec<String>> = letters
        .iter()
        .map(|l| {
            vec![
                l.id().to_owned(),
                l.job.to_owned(),
                l.error_kind().to_owned(),
                message_cell(l),
                attempts_cell(l),
                failed_at_cell(l),
            ]
        })
        .collect();
    out.table(&["ID", "JOB", "ERROR", "MESSAGE", "ATTEMPTS", "FAILED AT"], &rows);
    let read = letters.len();
    if error.is_none() && depth > read as u64 {
        println!("showing {read} of {depth} messages (at most {limit} per DLQ: --limit to read more)");
    } else if depth > read as u64 {
        println!("{read} matching --error among the {depth} messages read (at most {limit} per DLQ)");
    }
    Ok(())
}

/// Messages in the DLQs of `jobs`: visible, in flight and delayed.
///
/// # Errors
/// A backend error.
pub async fn depth(backend: &Backend, jobs: &[&'static str]) -> Result<u64, CommandError> {
    let mut total = 0;
    for job in jobs {
        total += backend.counts(&backend.dlq_id(job).await?).await?.total();
    }
    Ok(total)
}

/// `jobctl dlq summary`: per job and error kind, how many, the oldest and newest failure.
///
/// # Errors
/// An unknown job, or the backend failing.
pub async fn summary(
    out: Output,
    backend: &Backend,
    job: Option<&str>,
    limit: usize,
) -> Result<(), CommandError> {
    let jobs = jobs_or_all(job)?;
    let letters = read(backend, job, None, limit).await?;
    let groups = groups(&letters);
    let depth = depth(backend, &jobs).await?;
    let when = |t: &Option<DateTime<Utc>>| t.map_or_else(|| "-".to_owned(), |t| t.to_rfc3339());
    if out.json {
        let rows: Vec<_> = groups
            .iter()
            .map(|g| {
                json!({"job": g.job, "error_kind": g.error_kind, "count": g.count, "oldest": g.oldest, "newest": g.newest})
            })
            .collect();
        out.json(&json!({"groups": rows, "read": letters.len(), "depth": depth}));
        return Ok(());
    }
    let rows: Vec<Vec<String>> = groups
        .iter()
        .map(|g| {
            vec![
                g.job.to_owned(),
                g.error_kind.clone(),
                g.count.to_string(),
                when(&g.oldest),
                when(&g.newest),
            ]
        })
        .collect();
    out.table(&["JOB", "ERROR", "COUNT", "OLDEST FAILURE", "NEWEST FAILURE"], &rows);
    println!("{} of {depth} messages read ({})", letters.len(), backend.describe());
    Ok(())
}

/// The message column: the runner's message cut to fit; for a message SQS moved, the whole
/// "moved by SQS after N receives" and the last error as room allows.
fn message_cell(letter: &DeadLetter) -> String {
    match letter.account {
        Account::Runner(_) => truncate(&letter.summary_line(), 60),
        Account::Sqs { .. } => truncate(&letter.summary_line(), 120),
    }
}

fn attempts_cell(letter: &DeadLetter) -> String {
    letter.attempts().map_or_else(|| "-".to_owned(), |n| n.to_string())
}

fn failed_at_cell(letter: &DeadLetter) -> String {
    letter.failed_at().map_or_else(|| "-".to_owned(), |t| t.to_rfc3339())
}

/// The DLQ message whose job id (or SQS message id) is `id`, in `job`'s DLQ or any.
///
/// # Errors
/// [`CommandError::NotFound`] when no DLQ holds the id; an unknown job; a backend error.
pub async fn find(backend: &Backend, id: &str, job: Option<&str>) -> Result<DeadLetter, CommandError> {
    let letters = dead_letters(backend, &jobs_or_all(job)?, None, usize::MAX).await?;
    let Some(letter) = letters.into_iter().find(|l| l.id() == id || l.message.message_id == id) else {
        return Err(CommandError::NotFound(format!(
            "no DLQ message has the id {id} ({})",
            backend.describe()
        )));
    };
    let mut letters = [letter];
    explain(backend, &mut letters).await?;
    let [letter] = letters;
    Ok(letter)
}

/// `jobctl dlq show <id> [--job <job>]`: the full error, the attributes and the arguments.
///
/// # Errors
/// [`CommandError::NotFound`] when no DLQ holds the id; a backend error.
pub async fn show(out: Output, backend: &Backend, id: &str, job: Option<&str>) -> Result<(), CommandError> {
    let letter = find(backend, id, job).await?;
    let arguments = letter.arguments();
    if out.json {
        let mut shown = letter.summary_json();
        shown["error"] = match &letter.account {
            Account::Runner(error) => json!(error),
            Account::Sqs { .. } => Value::Null,
        };
        shown["attributes"] = json!(letter.message.attributes);
        shown["arguments"] = arguments;
        out.json(&shown);
        return Ok(());
    }
    let rows: Vec<Vec<String>> =
        letter.message.attributes.iter().map(|(k, v)| vec![k.clone(), v.clone()]).collect();
    println!("{} job {} in {}'s DLQ: {}", letter.job, letter.id(), letter.job, letter.error_kind());
    println!("\n{}", letter.error_message());
    match &letter.account {
        Account::Runner(error) => print_runner_account(error),
        Account::Sqs { last_error, .. } => print_last_error(letter.id(), last_error),
    }
    println!();
    out.table(&["ATTRIBUTE", "VALUE"], &rows);
    println!("\narguments:\n{}", serde_json::to_string_pretty(&arguments).unwrap_or_default());
    Ok(())
}

fn print_runner_account(error: &DeadLetterError) {
    let time = |t: Option<chrono::DateTime<Utc>>| t.map_or_else(|| "-".to_owned(), |t| t.to_rfc3339());
    let reason = if error.reason.is_empty() { "in the DLQ" } else { &error.reason };
    println!(
        "\n{reason} after {} attempt(s); failed first at {}, last at {}",
        error.attempts,
        time(error.first_failed_at),
        time(error.last_failed_at)
    );
    if !error.dropped_attributes.is_empty() {
        println!("attributes the copy had no room for: {}", error.dropped_attributes.join(", "));
    }
}

fn print_last_error(id: &str, last_error: &LastSeen) {
    match last_error {
        LastSeen::Found(last) => println!(
            "last error the runner saw for {id}: {} at attempt {}, {}: {}",
            last.kind,
            last.attempt,
            last.at.to_rfc3339(),
            last.message
        ),
        LastSeen::NotRecorded => println!("no last error recorded for {id}"),
        LastSeen::Unavailable(why) => println!("the last error for {id} could not be read: {why}"),
        LastSeen::Unknown => {}
    }
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
/// An unknown job; a backend error (what was moved before it stays moved, and is said).
pub async fn redrive(out: Output, backend: &Backend, request: Redrive) -> Result<(), CommandError> {
    let job = job_spec(&request.job)?.name;
    let limit = request.limit.unwrap_or(usize::MAX);
    if request.dry_run {
        let mut letters = dead_letters(backend, &[job], request.error.as_deref(), usize::MAX).await?;
        letters.truncate(limit);
        explain(backend, &mut letters).await?;
        if out.json {
            let ids: Vec<&str> = letters.iter().map(|l| l.id()).collect();
            out.json(&json!({"job": job, "dry_run": true, "would_redrive": ids}));
        } else {
            println!("would redrive {} message(s) of {job}'s DLQ (dry run, nothing changed):", letters.len());
            for l in &letters {
                println!("  {}  {}  {}", l.id(), l.error_kind(), message_cell(l));
            }
        }
        return Ok(());
    }
    let moved = redrive_messages(backend, &request).await?;
    if out.json {
        out.json(&json!({"job": job, "redriven": moved.moved.len(), "skipped": moved.left_in_dlq}));
    } else {
        let filter = request.error.as_deref().map(|e| format!(" with error {e}")).unwrap_or_default();
        println!(
            "redrove {} message(s){filter} from {job}'s DLQ to its queue; {} left in the DLQ",
            moved.moved.len(),
            moved.left_in_dlq
        );
    }
    match moved.stopped {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

/// What a redrive did.
#[derive(Debug)]
pub struct Moved {
    /// The ids of the messages sent back to the job's queue (and deleted from the DLQ).
    pub moved: Vec<String>,
    /// The ids of messages received that matched but were not moved: past the limit in the
    /// last batch, or met after the redrive stopped. (Receiving stops at the limit, so a DLQ
    /// larger than a batch past it is not walked through to name them all.)
    pub not_moved: Vec<String>,
    /// Messages left in the DLQ afterwards (any kind).
    pub left_in_dlq: u64,
    /// Why the redrive stopped early, when it did: what was moved before stays moved.
    pub stopped: Option<CommandError>,
}

/// Moves the messages of `request.job`'s DLQ that match its error kind back to the job's
/// queue, up to its limit and at its rate: each one sent, then deleted from the DLQ.
///
/// # Errors
/// An unknown job, or the backend failing before anything moved; a failure after that is
/// [`Moved::stopped`], beside what did move.
pub async fn redrive_messages(backend: &Backend, request: &Redrive) -> Result<Moved, CommandError> {
    let job = job_spec(&request.job)?.name;
    let limit = request.limit.unwrap_or(usize::MAX);
    let queue = backend.queue();
    let (dlq_id, queue_id) = (backend.dlq_id(job).await?, backend.queue_id(job).await?);
    let wait = if backend.embedded().is_some() { Duration::ZERO } else { Duration::from_secs(1) };
    let pace = request.rate.filter(|r| *r > 0).map(|r| Duration::from_secs_f64(1.0 / f64::from(r)));
    let progress = Progress::new("redriving", request.limit);
    let mut seen = HashSet::new();
    let mut held: Vec<String> = Vec::new();
    let mut moved = Vec::new();
    let mut not_moved = Vec::new();
    let mut stopped = None;
    'receive: while moved.len() < limit && stopped.is_none() {
        let batch = match queue.receive(&dlq_id, 10, wait).await {
            Ok(batch) => batch,
            Err(e) => {
                stopped = Some(e.into());
                break 'receive;
            }
        };
        let mut fresh = 0;
        for message in batch {
            if !seen.insert(message.message_id.clone()) {
                held.push(message.receipt_handle);
                continue;
            }
            fresh += 1;
            let letter = DeadLetter::new(job, message);
            if !letter.matches(request.error.as_deref()) {
                held.push(letter.message.receipt_handle);
                continue;
            }
            if moved.len() >= limit || stopped.is_some() {
                not_moved.push(letter.id().to_owned());
                held.push(letter.message.receipt_handle);
                continue;
            }
            let started = Instant::now();
            match move_one(queue.as_ref(), &dlq_id, &queue_id, &letter).await {
                Ok(()) => moved.push(letter.id().to_owned()),
                Err(e) => {
                    not_moved.push(letter.id().to_owned());
                    held.push(letter.message.receipt_handle);
                    stopped = Some(e.into());
                    continue;
                }
            }
            progress.set(moved.len());
            if let Some(pace) = pace {
                tokio::time::sleep(pace.saturating_sub(started.elapsed())).await;
            }
        }
        if fresh == 0 {
            break 'receive;
        }
    }
    if moved.is_empty()
        && let Some(error) = stopped
    {
        return Err(error);
    }
    // What was received and not moved goes back at once rather than after the DLQ's
    // visibility timeout.
    for handle in &held {
        queue.change_visibility(&dlq_id, handle, Duration::ZERO).await?;
    }
    let left_in_dlq = backend.counts(&dlq_id).await?.total();
    Ok(Moved { moved, not_moved, left_in_dlq, stopped })
}

/// Sends a copy of `letter` to the job's queue (without the DLQ's attributes), then deletes
/// it from the DLQ: a failure in between leaves a duplicate, never a loss.
async fn move_one(
    queue: &dyn jobkit::ports::Queue,
    dlq_id: &str,
    queue_id: &str,
    letter: &DeadLetter,
) -> Result<(), jobkit::PortError> {
    let attributes: BTreeMap<String, String> = letter
        .message
        .attributes
        .iter()
        .filter(|(k, _)| !DLQ_ONLY.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let copy =
        OutgoingMessage { body: letter.message.body.clone(), attributes, ..OutgoingMessage::default() };
    queue.send(queue_id, copy).await?;
    queue.delete(dlq_id, &letter.message.receipt_handle).await?;
    Ok(())
}

/// Checks an operator's confirmation of a purge: the job's name, typed.
///
/// # Errors
/// [`CommandError::Declined`] for any other answer.
pub fn confirm_purge(job: &str, answer: &str) -> Result<(), CommandError> {
    if answer.trim() == job {
        Ok(())
    } else {
        Err(CommandError::Declined(format!("not confirmed (the job's name is {job}): nothing purged")))
    }
}

/// What a purge did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Purged {
    /// Messages the DLQ held when the purge began (SQS's count is approximate).
    pub purged: u64,
    /// Messages it holds after (sent while it ran).
    pub left: u64,
}

/// Deletes every message of `job`'s DLQ; the caller has confirmed.
///
/// # Errors
/// An unknown job; a backend error.
pub async fn purge_dlq(backend: &Backend, job: &str) -> Result<Purged, CommandError> {
    let job = job_spec(job)?.name;
    let dlq = backend.dlq_id(job).await?;
    let purged = backend.counts(&dlq).await?.total();
    backend.purge(&dlq).await?;
    let left = backend.counts(&dlq).await?.total();
    Ok(Purged { purged, left })
}

/// `jobctl dlq purge <job> [--yes]`: deletes every message of the job's DLQ, after the operator
/// types the job's name (or passes `--yes`).
///
/// # Errors
/// [`CommandError::Declined`] without confirmation; an unknown job; a backend error.
pub async fn purge(out: Output, backend: &Backend, job: &str, yes: bool) -> Result<(), CommandError> {
    let job = job_spec(job)?.name;
    if !yes {
        let count = backend.counts(&backend.dlq_id(job).await?).await?.total();
        if !std::io::stdin().is_terminal() {
            return Err(CommandError::Declined(format!(
                "purging {job}'s DLQ deletes {count} message(s) for good: pass --yes to confirm without a prompt"
            )));
        }
        eprint!("purge {count} message(s) from {job}'s DLQ for good? type the job's name to confirm: ");
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer).map_err(|e| CommandError::Declined(e.to_string()))?;
        confirm_purge(job, &answer)?;
    }
    let purged = purge_dlq(backend, job).await?;
    if out.json {
        out.json(&json!({"job": job, "purged": purged.purged}));
    } else {
        println!("purged {} message(s) from {job}'s DLQ ({})", purged.purged, backend.describe());
    }
    Ok(())
}
