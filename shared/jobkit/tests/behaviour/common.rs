//! A scripted job whose arguments say how to behave, and counters of its executions.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use jobkit::{ErrorKind, Job, JobContext, JobError, RetryPolicy, Wait};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Behaviour {
    #[default]
    Succeed,
    /// Fails with a retryable `unavailable` error on every execution.
    Transient,
    /// Fails with a retryable `unavailable` error on the first `n` executions.
    TransientTimes(u32),
    /// Fails with a permanent `not_found` error.
    Permanent,
    Panic,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScriptArgs {
    pub id: String,
    #[serde(default)]
    pub behaviour: Behaviour,
}

impl ScriptArgs {
    pub fn new(id: &str, behaviour: Behaviour) -> Self {
        Self { id: id.to_owned(), behaviour }
    }
}

/// One execution: the attempt it saw and when it ran.
pub type Run = (u32, chrono::DateTime<chrono::Utc>);

/// Executions per id.
#[derive(Debug, Clone, Default)]
pub struct Executions(Arc<Mutex<HashMap<String, Vec<Run>>>>);

impl Executions {
    pub fn of(&self, id: &str) -> Vec<Run> {
        self.0.lock().unwrap().get(id).cloned().unwrap_or_default()
    }

    pub fn count(&self, id: &str) -> usize {
        self.of(id).len()
    }

    fn record(&self, id: &str, attempt: u32, at: chrono::DateTime<chrono::Utc>) -> usize {
        let mut map = self.0.lock().unwrap();
        let runs = map.entry(id.to_owned()).or_default();
        runs.push((attempt, at));
        runs.len()
    }
}

/// Retries `unavailable` 3 times, 30 s apart; discards `not_found`.
#[derive(Debug, Clone, Default)]
pub struct ScriptedJob {
    pub executions: Executions,
}

pub const RETRY_WAIT: Duration = Duration::from_secs(30);
pub const ATTEMPTS: u32 = 3;

impl Job for ScriptedJob {
    type Args = ScriptArgs;
    const NAME: &'static str = "scripted";

    async fn perform(&self, args: ScriptArgs, ctx: &mut JobContext) -> Result<(), JobError> {
        let run = self.executions.record(&args.id, ctx.meta().attempt, ctx.now());
        match args.behaviour {
            Behaviour::Succeed => Ok(()),
            Behaviour::Transient => Err(JobError::retryable(ErrorKind::UNAVAILABLE, "upstream answered 503")),
            Behaviour::TransientTimes(n) if run <= n as usize => {
                Err(JobError::retryable(ErrorKind::UNAVAILABLE, "upstream answered 503"))
            }
            Behaviour::TransientTimes(_) => Ok(()),
            Behaviour::Permanent => Err(JobError::permanent(ErrorKind::NOT_FOUND, "record 42 is gone")),
            Behaviour::Panic => panic!("scripted panic"),
        }
    }

    fn retry_policy() -> RetryPolicy {
        RetryPolicy::new()
            .retry_on([ErrorKind::UNAVAILABLE], Wait::Fixed(RETRY_WAIT), ATTEMPTS)
            .discard_on([ErrorKind::NOT_FOUND])
    }

    const TIMEOUT: Duration = Duration::from_secs(10);
}

pub fn attr<'a>(message: &'a jobkit::message::ReceivedMessage, name: &str) -> &'a str {
    message.attributes.get(name).map(String::as_str).unwrap_or_else(|| panic!("attribute {name} missing"))
}

/// A writer whose bytes the test can read back (EMF lines, logs).
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// Each line written, parsed as JSON.
    pub fn lines(&self) -> Vec<serde_json::Value> {
        let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
        text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }
}
