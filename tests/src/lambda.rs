//! A local Lambda: a function binary in an execution environment (the process under a Runtime
//! API stub), fed by an event source mapping that does what Lambda's does with an SQS trigger.
//!
//! Per poll: long-poll the queue for up to the batch size (gathering for up to the batching
//! window), invoke the function with the SQS event, then delete the records it did not report in
//! `batchItemFailures`. When the invocation
//! fails as a whole (an error answer, a crash, a timeout) nothing is deleted: the records come
//! back when their visibility timeout ends, as on Lambda. An environment that crashed or timed
//! out is replaced by a fresh process on the next poll (a new cold start).

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};

use crate::{
    function::FunctionProcess,
    runtime_api::{Answer, RuntimeApi},
    sqs::{now_ms, queue_arn, queue_depth, queue_visibility, receive_batch, sqs_event},
};

/// How long past the deadline an answer is still taken (scheduling jitter on a busy machine)
/// before the function is killed, as Lambda ends an invocation at its deadline.
const DEADLINE_GRACE: Duration = Duration::from_millis(250);

/// A record as the event source mapping received it.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The SQS message id.
    pub message_id: String,
    /// The body.
    pub body: String,
    /// SQS's `ApproximateReceiveCount` at this delivery.
    pub receive_count: u32,
    /// When it was received.
    pub at: Instant,
}

/// How an invocation ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The function answered; these message ids were reported as failures (left on the queue).
    Answered {
        /// `batchItemFailures[].itemIdentifier`.
        failures: Vec<String>,
    },
    /// The function answered with an invocation error (nothing deleted).
    Errored(serde_json::Value),
    /// The process ended before answering (nothing deleted).
    Crashed,
    /// No answer by the deadline; the process was killed (nothing deleted).
    TimedOut,
    /// An answer Lambda would refuse (a failure id not in the batch, a malformed list): the
    /// whole batch counts as failed (nothing deleted).
    InvalidResponse(serde_json::Value),
}

/// What the event source mapping is set up with.
#[derive(Debug, Clone)]
pub struct Mapping {
    /// The function's queue.
    pub queue_url: String,
    /// `BatchSize`: up to 10 a receive, as one `ReceiveMessage` call allows; a larger batch
    /// takes several within the batching window.
    pub batch_size: usize,
    /// `MaximumBatchingWindowInSeconds`: how long to keep gathering records after the first
    /// until the batch is full.
    pub batching_window: Duration,
    /// `FunctionResponseTypes: [ReportBatchItemFailures]`: without it Lambda ignores
    /// `batchItemFailures`, and an answered invocation deletes the whole batch.
    pub report_batch_item_failures: bool,
    /// The function's timeout: each invocation's deadline.
    pub timeout: Duration,
}

/// How the wait for an answer ended, before acting on it.
enum Ended {
    Answered(Outcome),
    Exited,
    Kill(Outcome),
}

struct Environment {
    api: RuntimeApi,
    process: FunctionProcess,
}

/// One function under a local event source mapping.
pub struct LocalLambda {
    sqs: aws_sdk_sqs::Client,
    mapping: Mapping,
    queue_arn: String,
    binary: PathBuf,
    env: Vec<(String, String)>,
    environment: Option<Environment>,
    /// Logs of environments that ended.
    past_logs: String,
    /// Every record received, in order.
    pub deliveries: Vec<Delivery>,
    /// Every invocation's outcome, in order.
    pub outcomes: Vec<Outcome>,
    /// Cold starts (environments started).
    pub cold_starts: usize,
}

impl LocalLambda {
    /// Sets up the mapping; the first poll starts the function.
    ///
    /// # Errors
    /// If the queue's attributes cannot be read, or (as Lambda refuses it) its visibility
    /// timeout is shorter than the function's timeout: a record would come back while the
    /// invocation that received it still runs.
    pub async fn new(
        sqs: aws_sdk_sqs::Client,
        mapping: Mapping,
        binary: PathBuf,
        env: Vec<(String, String)>,
    ) -> anyhow::Result<Self> {
        let visibility = queue_visibility(&sqs, &mapping.queue_url).await?;
        if visibility < mapping.timeout {
            bail!(
                "InvalidParameterValueException: Queue visibility timeout: {} seconds is less than \
                 Function timeout: {} seconds",
                visibility.as_secs(),
                mapping.timeout.as_secs()
            );
        }
        let queue_arn = queue_arn(&sqs, &mapping.queue_url).await?;
        Ok(Self {
            sqs,
            mapping,
            queue_arn,
            binary,
            env,
            environment: None,
            past_logs: String::new(),
            deliveries: Vec::new(),
            outcomes: Vec::new(),
            cold_starts: 0,
        })
    }

    /// Everything the function logged (stderr), across environments.
    pub fn logs(&self) -> String {
        let current = self.environment.as_ref().map(|e| e.process.stderr()).unwrap_or_default();
        format!("{}{current}", self.past_logs)
    }

    async fn environment(&mut self) -> anyhow::Result<&mut Environment> {
        if self.environment.is_none() {
            let api = RuntimeApi::start().await?;
            let env: Vec<(&str, String)> = self.env.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
            let process = FunctionProcess::start(&self.binary, &api.endpoint(), &env)?;
            self.cold_starts += 1;
            self.environment = Some(Environment { api, process });
        }
        self.environment.as_mut().context("no environment")
    }

    /// Ends the current environment (keeping its logs), as Lambda does after a crash.
    async fn retire(&mut self) -> anyhow::Result<()> {
        if let Some(environment) = self.environment.take() {
            let (_, stderr) = environment.process.stop().await?;
            self.past_logs.push_str(&stderr);
        }
        Ok(())
    }

    /// One poll: receives up to the batch size (waiting up to `wait` for the first), invokes the
    /// function, deletes what succeeded. `None` when nothing arrived.
    ///
    /// # Errors
    /// If SQS or the stub fails.
    pub async fn poll(&mut self, wait: Duration) -> anyhow::Result<Option<Outcome>> {
        self.poll_killing_when(wait, |_| false).await
    }

    /// [`Self::poll`], but kills the function (SIGKILL) as soon as its logs satisfy `kill_when`:
    /// a crash in the middle of a batch.
    ///
    /// # Errors
    /// If SQS or the stub fails.
    pub async fn poll_killing_when(
        &mut self,
        wait: Duration,
        kill_when: impl Fn(&str) -> bool,
    ) -> anyhow::Result<Option<Outcome>> {
        let messages = self.receive(wait).await?;
        if messages.is_empty() {
            return Ok(None);
        }
        let event = sqs_event(&messages, &self.queue_arn);
        let timeout = self.mapping.timeout;
        let reports_failures = self.mapping.report_batch_item_failures;
        let deadline_ms = now_ms() + u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        let Environment { api, process } = self.environment().await?;
        let logs = process.log_watch();
        // Only what this invocation logs can trigger the kill (lines are whole, so the
        // length so far is a character boundary).
        let logged_before = logs.stderr().len();
        let ended = tokio::select! {
            // An answer that arrives together with the exit or the kill condition counts.
            biased;
            answer = tokio::time::timeout(timeout + DEADLINE_GRACE, api.invoke(event, deadline_ms)) => match answer {
                Ok(Ok(Answer::Response(response))) => Ended::Answered(match failures(&response, &messages) {
                    _ if !reports_failures => Outcome::Answered { failures: Vec::new() },
                    Some(failures) => Outcome::Answered { failures },
                    None => Outcome::InvalidResponse(response),
                }),
                Ok(Ok(Answer::Error(error))) => Ended::Answered(Outcome::Errored(error)),
                Ok(Err(_)) => Ended::Exited,
                Err(_) => Ended::Kill(Outcome::TimedOut),
            },
            _ = process.exited() => Ended::Exited,
            () = logs.wait_for(|all| kill_when(&all[logged_before..])) => Ended::Kill(Outcome::Crashed),
        };
        let outcome = match ended {
            Ended::Answered(outcome) => outcome,
            Ended::Exited => Outcome::Crashed,
            Ended::Kill(outcome) => {
                process.kill().await?;
                outcome
            }
        };
        match &outcome {
            Outcome::Answered { failures } => self.delete_all_but(&messages, failures).await?,
            Outcome::Errored(_) | Outcome::InvalidResponse(_) => {}
            Outcome::Crashed | Outcome::TimedOut => self.retire().await?,
        }
        self.outcomes.push(outcome.clone());
        Ok(Some(outcome))
    }

    /// Polls until the queue holds nothing (visible, in flight or delayed) or `limit` passes.
    ///
    /// # Errors
    /// If the queue is not empty by then, or SQS or the stub fails.
    pub async fn drain(&mut self, limit: Duration) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            let left = limit.saturating_sub(started.elapsed());
            let polled = tokio::time::timeout(left, self.poll(Duration::from_secs(1))).await;
            match polled {
                Ok(outcome) => {
                    if outcome?.is_none() && self.queue_is_empty().await? {
                        return Ok(());
                    }
                }
                Err(_) => {
                    self.retire().await?;
                    bail!("an invocation was still running after {limit:?}\n{}", self.logs());
                }
            }
            if started.elapsed() > limit {
                bail!("the queue still holds messages after {limit:?}\n{}", self.logs());
            }
        }
    }

    /// Whether the queue holds no message, visible, in flight or delayed.
    ///
    /// # Errors
    /// If SQS fails.
    pub async fn queue_is_empty(&self) -> anyhow::Result<bool> {
        Ok(queue_depth(&self.sqs, &self.mapping.queue_url).await? == 0)
    }

    /// Stops the function; returns all its logs.
    ///
    /// # Errors
    /// If the process cannot be stopped.
    pub async fn stop(mut self) -> anyhow::Result<String> {
        self.retire().await?;
        Ok(self.past_logs)
    }

    /// A batch: waits up to `wait` for the first records, then, with a batching window, keeps
    /// receiving until the batch is full or the window has passed.
    async fn receive(&mut self, wait: Duration) -> anyhow::Result<Vec<Message>> {
        let mapping = &self.mapping;
        let messages =
            receive_batch(&self.sqs, &mapping.queue_url, mapping.batch_size, mapping.batching_window, wait)
                .await?;
        let at = Instant::now();
        for m in &messages {
            let receive_count = m
                .attributes()
                .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            self.deliveries.push(Delivery {
                message_id: m.message_id().unwrap_or_default().to_owned(),
                body: m.body().unwrap_or_default().to_owned(),
                receive_count,
                at,
            });
        }
        Ok(messages)
    }

    async fn delete_all_but(&self, messages: &[Message], failures: &[String]) -> anyhow::Result<()> {
        let failures: Vec<&str> = failures.iter().map(String::as_str).collect();
        crate::sqs::delete_all_but(&self.sqs, &self.mapping.queue_url, messages, &failures).await?;
        Ok(())
    }
}

/// The reported failures, or `None` when Lambda would refuse the answer: an item that is not
/// an object with the id of a message of this batch, or `batchItemFailures` of another type.
fn failures(response: &serde_json::Value, batch: &[Message]) -> Option<Vec<String>> {
    let items = match &response["batchItemFailures"] {
        serde_json::Value::Null => return Some(Vec::new()),
        serde_json::Value::Array(items) => items,
        _ => return None,
    };
    items
        .iter()
        .map(|item| {
            let id = item["itemIdentifier"].as_str()?;
            batch.iter().any(|m| m.message_id() == Some(id)).then(|| id.to_owned())
        })
        .collect()
}
