//! A run: one job's work from its first start to its outcome (success, or the DLQ), across
//! retries, continuations and redrives, as one record in the state store.
//!
//! A job with an idempotency key has an *exclusive* run: the record at the key says who owns
//! it (a token: the SQS message id of the message that started it, carried by every
//! continuation and DLQ copy in the `continuation` attribute) and in which phase it is. The
//! run's own messages re-enter it; any other delivery with the key is a duplicate, handed back
//! while the run is unfinished and acknowledged once it is done. The record also holds the
//! run's checkpoint and failure count, so a continuation attribute is only a reference: the
//! state a sender could forge lives in the store.
//!
//! A job without a key (it opted out: its effects are idempotent by construction) has a *free*
//! run: a record by token holding its checkpoint and failures, read only on a redelivery or a
//! continuation and written only when there is something to keep, so a first delivery that
//! succeeds touches the store not at all.
//!
//! Invariants:
//! - At most one execution holds an exclusive run at a time: every change is a compare-and-swap
//!   on the record as last seen, so two deliveries racing for the run cannot both enter it.
//! - A checkpoint is written only by the execution holding the run, so it never moves back.
//! - A record in progress (`Running`) stays so until its invocation's deadline; only after it,
//!   when Lambda has surely ended that invocation, may another delivery take the run over.
//! - Attempts are `failures + 1`: a failed or crashed execution counts; a continuation does not.
//! - An operator's cancellation of a job id marks the run at the job id's own key
//!   (`job:<id>`, the default key): the mark comes back with the claim (the record a refused
//!   conditional write returns), so a job checks for it without a read of its own. An
//!   execution holding the run when it is marked finishes (its writes keep the mark); what
//!   would come after it (a retry, a continuation, a redrive, a duplicate) is refused.

use std::{collections::BTreeMap, sync::Arc};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{
    cancel::CancelMark,
    error::{PortError, PortResult},
    keys::{kind, state_key},
    ports::{PutOutcome, StateStore},
};

/// How long an unfinished run's record is kept: as long as a DLQ keeps a message (14 days), so
/// that a redrive of a dead run resumes from its checkpoint.
pub(crate) const RUN_RETENTION: chrono::Duration = chrono::Duration::days(14);

/// Tries of a compare-and-swap that races or whose answer was lost, before giving up.
const SWAP_TRIES: u32 = 4;

/// Where a run is in its life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub(crate) enum Phase {
    /// An execution holds the run until this time (its invocation's deadline).
    Running {
        /// When the holder's invocation has surely ended.
        until: DateTime<Utc>,
    },
    /// Between executions: its own message comes back (a retry's backoff, a continuation sent).
    /// Past `until`, another delivery may take it over (its own message was lost).
    Waiting {
        /// When others may take the run over.
        until: DateTime<Utc>,
    },
    /// Finished successfully: every other delivery is a duplicate.
    Completed,
    /// In the DLQ: other deliveries are duplicates; the run's own copy, redriven, re-enters.
    DeadLettered,
}

/// A run's progress through its steps (ActiveJob::Continuable).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Checkpoint {
    /// Steps finished, in order.
    #[serde(default)]
    pub(crate) completed: Vec<String>,
    /// The step in progress and its cursor.
    #[serde(default)]
    pub(crate) current: Option<(String, serde_json::Value)>,
    /// The final cursor of each finished step, given back when a later execution skips it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) final_cursors: BTreeMap<String, serde_json::Value>,
}

/// The stored record of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct RunRecord {
    #[serde(flatten)]
    pub(crate) phase: Phase,
    /// The token of the run's own messages.
    pub(crate) owner: String,
    /// The arguments' hash: a key reused with other arguments is refused.
    #[serde(default)]
    pub(crate) hash: String,
    /// The job id the run started under.
    #[serde(default)]
    pub(crate) job_id: String,
    /// Executions that failed (or crashed).
    #[serde(default)]
    pub(crate) failures: u32,
    /// The first failure.
    #[serde(default)]
    pub(crate) first_failed_at: Option<DateTime<Utc>>,
    /// The last failure.
    #[serde(default)]
    pub(crate) last_failed_at: Option<DateTime<Utc>>,
    /// Times the run continued in a new message.
    #[serde(default)]
    pub(crate) resumptions: u32,
    /// Its steps.
    #[serde(default)]
    pub(crate) checkpoint: Checkpoint,
    /// When an operator cancelled the job: no execution enters the run after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) cancelled_at: Option<DateTime<Utc>>,
}

impl RunRecord {
    fn new(owner: &str, hash: &str, job_id: &str, phase: Phase) -> Self {
        Self {
            phase,
            owner: owner.to_owned(),
            hash: hash.to_owned(),
            job_id: job_id.to_owned(),
            failures: 0,
            first_failed_at: None,
            last_failed_at: None,
            resumptions: 0,
            checkpoint: Checkpoint::default(),
            cancelled_at: None,
        }
    }

    fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    fn note_failure(&mut self, now: DateTime<Utc>) {
        self.failures = self.failures.saturating_add(1);
        self.first_failed_at.get_or_insert(now);
        self.last_failed_at = Some(now);
    }
}

/// Who asks for a run, and until when it would hold it.
#[derive(Debug, Clone)]
pub(crate) struct Claimant<'a> {
    /// The delivery's run token.
    pub(crate) token: &'a str,
    /// The arguments' hash.
    pub(crate) hash: &'a str,
    /// The job id.
    pub(crate) job_id: &'a str,
    /// The invocation's deadline: the run is held until then.
    pub(crate) until: DateTime<Utc>,
}

/// What asking for an exclusive run found.
#[derive(Debug)]
pub(crate) enum Claim {
    /// The run is this delivery's: run it (from its checkpoint).
    Entered(Box<Run>),
    /// The run is done (succeeded, or in the DLQ): acknowledge without running.
    Done {
        /// It succeeded (else it is in the DLQ).
        succeeded: bool,
    },
    /// Another delivery holds the run until this time: hand back until then.
    Busy(DateTime<Utc>),
    /// The key was used with other arguments.
    Mismatch,
    /// An operator cancelled the job: acknowledge the delivery without running it.
    Cancelled,
}

/// How a run ends.
#[derive(Debug, Clone)]
pub(crate) enum Ending {
    /// It succeeded: duplicates are acknowledged until `keep_until`.
    Completed {
        /// When the record may go.
        keep_until: DateTime<Utc>,
    },
    /// It is in the DLQ: duplicates are acknowledged, its redriven copy re-enters it.
    DeadLettered,
}

/// Why a write to a run was not made.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RunWriteError {
    /// Another delivery took the run over: this execution must stop touching it.
    #[error("the run was taken over by another delivery")]
    Lost,
    /// The store failed.
    #[error(transparent)]
    Port(#[from] PortError),
}

/// A run held by one execution: its record as last written, and how to write it.
#[derive(Debug)]
pub(crate) struct Run {
    store: Arc<dyn StateStore>,
    key: String,
    exclusive: bool,
    /// The record's value as the store holds it (the compare-and-swap's expectation); `None`
    /// when nothing is stored yet (a free run's first delivery).
    stored: Option<String>,
    record: RunRecord,
}

impl Run {
    /// Asks for the exclusive run of `job`'s idempotency key `key`.
    pub(crate) async fn claim(
        store: Arc<dyn StateStore>,
        job: &str,
        key: &str,
        who: &Claimant<'_>,
        now: DateTime<Utc>,
    ) -> PortResult<Claim> {
        let key = state_key(job, kind::IDEMPOTENT_RUN, key);
        let fresh = RunRecord::new(who.token, who.hash, who.job_id, Phase::Running { until: who.until });
        let value = fresh.encode();
        let mut existing = match store.put_if_vacant(&key, &value, now + RUN_RETENTION, now).await? {
            PutOutcome::Written => return Ok(Self::entered(store, key, value, fresh)),
            PutOutcome::Taken(existing) => existing,
        };
        for _ in 0..SWAP_TRIES {
            // A record another version wrote, or garbage: waiting is safe, running twice is not.
            let Ok(record) = serde_json::from_str::<RunRecord>(&existing.value) else {
                return Ok(Claim::Busy(existing.expires_at.min(now + RUN_RETENTION)));
            };
            if existing.value == value {
                // Our own write, whose answer was lost and which the caller asked again.
                return Ok(Self::entered(store, key, value, record));
            }
            let entered = match entry(&record, who, now) {
                Entry::Refused(claim) => return Ok(claim),
                Entry::Enter(entered) => *entered,
            };
            let entered_value = entered.encode();
            if store.replace(&key, &existing.value, &entered_value, now + RUN_RETENTION).await? {
                return Ok(Self::entered(store, key, entered_value, entered));
            }
            // Someone changed it meanwhile: look again.
            match store.get(&key, now).await? {
                Some(again) => existing = again,
                None => {
                    return match store.put_if_vacant(&key, &value, now + RUN_RETENTION, now).await? {
                        PutOutcome::Written => Ok(Self::entered(store, key, value, fresh)),
                        PutOutcome::Taken(again) => {
                            Ok(Claim::Busy(again.expires_at.min(now + RUN_RETENTION)))
                        }
                    };
                }
            }
        }
        Err(PortError::Throttled(format!("the run at {key} kept changing while it was claimed")))
    }

    /// The claim of an exclusive run whose record the store holds as `stored`.
    fn entered(store: Arc<dyn StateStore>, key: String, stored: String, record: RunRecord) -> Claim {
        Claim::Entered(Box::new(Self { store, key, exclusive: true, stored: Some(stored), record }))
    }

    /// The free run (no idempotency key) of `job` under `token`; read from the store only when
    /// `look` (a redelivery or a continuation: a first delivery has nothing stored).
    pub(crate) async fn free(
        store: Arc<dyn StateStore>,
        job: &str,
        who: &Claimant<'_>,
        look: bool,
        now: DateTime<Utc>,
    ) -> PortResult<Self> {
        let key = state_key(job, kind::RUN, who.token);
        let running = Phase::Running { until: who.until };
        let stored = if look { store.get(&key, now).await? } else { None };
        let (stored, record) = match stored
            .and_then(|s| serde_json::from_str::<RunRecord>(&s.value).ok().map(|record| (s.value, record)))
        {
            Some((value, mut record)) => {
                if record.phase == Phase::DeadLettered {
                    // A redrive: the operator asks for a new set of attempts.
                    reset_failures(&mut record);
                }
                record.phase = running;
                (Some(value), record)
            }
            None => (None, RunRecord::new(who.token, who.hash, who.job_id, running)),
        };
        Ok(Self { store, key, exclusive: false, stored, record })
    }

    /// The attempt this execution is: failed (or crashed) executions so far, plus one.
    pub(crate) fn attempt(&self) -> u32 {
        self.record.failures.saturating_add(1)
    }

    /// The run's record (read-only).
    pub(crate) fn record(&self) -> &RunRecord {
        &self.record
    }

    /// The run's token.
    pub(crate) fn token(&self) -> &str {
        &self.record.owner
    }

    /// Keeps `checkpoint` in the record in memory, unwritten: the run's next write carries it.
    pub(crate) fn keep_checkpoint(&mut self, checkpoint: Checkpoint) {
        self.record.checkpoint = checkpoint;
    }

    /// Saves the run's new checkpoint.
    pub(crate) async fn save_checkpoint(
        &mut self,
        checkpoint: Checkpoint,
        now: DateTime<Utc>,
    ) -> Result<(), RunWriteError> {
        let mut record = self.record.clone();
        record.checkpoint = checkpoint;
        self.write(record, now + RUN_RETENTION).await
    }

    /// Notes that the run continues in a new message; others may take it over after `until`.
    pub(crate) async fn suspend_to_continue(
        &mut self,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), RunWriteError> {
        let mut record = self.record.clone();
        record.phase = Phase::Waiting { until };
        record.resumptions = record.resumptions.saturating_add(1);
        self.write(record, now + RUN_RETENTION).await
    }

    /// Notes a failed execution whose retry comes back by itself; others may take the run
    /// over after `until`.
    pub(crate) async fn suspend_to_retry(
        &mut self,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), RunWriteError> {
        let mut record = self.record.clone();
        record.note_failure(now);
        record.phase = Phase::Waiting { until };
        self.write(record, now + RUN_RETENTION).await
    }

    /// Notes the failure that ends the run in the DLQ.
    pub(crate) fn note_final_failure(&mut self, now: DateTime<Utc>) {
        self.record.note_failure(now);
    }

    /// Writes how the run ended. A free run that completed is forgotten instead.
    pub(crate) async fn end(&mut self, ending: &Ending, now: DateTime<Utc>) -> Result<(), RunWriteError> {
        match ending {
            Ending::DeadLettered => {
                let mut record = self.record.clone();
                record.phase = Phase::DeadLettered;
                self.write(record, now + RUN_RETENTION).await
            }
            Ending::Completed { .. } if !self.exclusive => {
                if self.stored.is_some() {
                    self.store.delete(&self.key).await?;
                    self.stored = None;
                }
                Ok(())
            }
            Ending::Completed { keep_until } => {
                let mut record = RunRecord::new(
                    &self.record.owner,
                    &self.record.hash,
                    &self.record.job_id,
                    Phase::Completed,
                );
                record.failures = self.record.failures;
                record.resumptions = self.record.resumptions;
                self.write(record, *keep_until).await
            }
        }
    }

    /// Writes `record` in place of the one last seen: a compare-and-swap for an exclusive run
    /// (an answer lost after the write is recognised by reading it back), a plain write for a
    /// free one.
    async fn write(&mut self, mut record: RunRecord, expires_at: DateTime<Utc>) -> Result<(), RunWriteError> {
        let mut value = record.encode();
        if !self.exclusive {
            self.store.put(&self.key, &value, expires_at).await?;
            self.stored = Some(value);
            self.record = record;
            return Ok(());
        }
        let mut expected = self.stored.clone().unwrap_or_default();
        let mut last_error = None;
        for _ in 0..SWAP_TRIES {
            match self.store.replace(&self.key, &expected, &value, expires_at).await {
                Ok(true) => {
                    self.stored = Some(value);
                    self.record = record;
                    return Ok(());
                }
                Ok(false) => {}
                Err(e) if e.is_transient() => last_error = Some(e),
                Err(e) => return Err(e.into()),
            }
            // Refused, or no answer: what is there now says whether the write happened.
            // Read whatever its expiry: only the value matters here.
            let now_stored = match self.store.get(&self.key, DateTime::<Utc>::MIN_UTC).await {
                Ok(current) => current.map(|c| c.value),
                Err(e) => {
                    last_error = Some(e);
                    continue;
                }
            };
            if now_stored.as_deref() == Some(value.as_str()) {
                self.stored = Some(value);
                self.record = record;
                return Ok(());
            }
            if now_stored.as_deref() == Some(expected.as_str()) {
                continue;
            }
            // An operator cancelled the job meanwhile: this execution still holds the run and
            // writes on, keeping the mark, which refuses whatever would come after it.
            match now_stored.as_deref().and_then(|stored| cancelled_meanwhile(&expected, stored)) {
                Some(at) => {
                    record.cancelled_at = Some(at);
                    value = record.encode();
                    expected = now_stored.unwrap_or_default();
                }
                None => return Err(RunWriteError::Lost),
            }
        }
        Err(last_error.map_or(RunWriteError::Lost, RunWriteError::Port))
    }
}

/// Whether a delivery may enter a run as it stands.
enum Entry {
    // Boxed: a record (its checkpoint) is far larger than a refusal.
    Enter(Box<RunRecord>),
    Refused(Claim),
}

/// The record after `who` enters it, or why it may not.
fn entry(record: &RunRecord, who: &Claimant<'_>, now: DateTime<Utc>) -> Entry {
    // Before the hash: a job cancelled before it ever ran has a record without one.
    if record.cancelled_at.is_some() && record.phase != Phase::Completed {
        return Entry::Refused(Claim::Cancelled);
    }
    if record.hash != who.hash {
        return Entry::Refused(Claim::Mismatch);
    }
    let own = record.owner == who.token;
    let mut entered = record.clone();
    match record.phase {
        Phase::Completed => return Entry::Refused(Claim::Done { succeeded: true }),
        Phase::DeadLettered if !own => return Entry::Refused(Claim::Done { succeeded: false }),
        // A redrive of the run's DLQ copy: a new set of attempts from where it stopped.
        Phase::DeadLettered => reset_failures(&mut entered),
        Phase::Running { until } if until > now => return Entry::Refused(Claim::Busy(until)),
        // Its holder's invocation ended without a word: a crash or a timeout, which counts.
        Phase::Running { .. } => entered.note_failure(now),
        Phase::Waiting { until } if !own && until > now => return Entry::Refused(Claim::Busy(until)),
        Phase::Waiting { .. } => {}
    }
    entered.phase = Phase::Running { until: who.until };
    entered.owner = who.token.to_owned();
    Entry::Enter(Box::new(entered))
}

/// When `stored` is the record `expected` with only an operator's cancellation added: its time.
fn cancelled_meanwhile(expected: &str, stored: &str) -> Option<DateTime<Utc>> {
    let mut stored = serde_json::from_str::<RunRecord>(stored).ok()?;
    let at = stored.cancelled_at.take()?;
    let expected = serde_json::from_str::<RunRecord>(expected).ok()?;
    (expected.cancelled_at.is_none() && stored == expected).then_some(at)
}

/// Marks the run of `job_id` at its default key (`job:<id>`) cancelled, creating the record if
/// the job never ran; see the module's invariants. Kept `RUN_RETENTION`, SQS's longest
/// retention: no message of the job outlives it.
pub(crate) async fn mark_cancelled(
    store: &dyn StateStore,
    job: &str,
    job_id: &str,
    now: DateTime<Utc>,
) -> PortResult<CancelMark> {
    let key = state_key(job, kind::IDEMPOTENT_RUN, &crate::job::default_job_key(job_id));
    let mut never_ran = RunRecord::new("", "", job_id, Phase::Waiting { until: now });
    never_ran.cancelled_at = Some(now);
    let expires_at = now + RUN_RETENTION;
    for _ in 0..SWAP_TRIES {
        let existing = match store.put_if_vacant(&key, &never_ran.encode(), expires_at, now).await? {
            PutOutcome::Written => return Ok(CancelMark::Marked),
            PutOutcome::Taken(existing) => existing,
        };
        let Ok(mut record) = serde_json::from_str::<RunRecord>(&existing.value) else {
            return Err(PortError::Invalid(format!("the run at {key} is not a record jobkit reads")));
        };
        if record.phase == Phase::Completed {
            return Ok(CancelMark::AlreadyCompleted);
        }
        if record.cancelled_at.is_some() {
            return Ok(CancelMark::Marked);
        }
        record.cancelled_at = Some(now);
        if store.replace(&key, &existing.value, &record.encode(), expires_at.max(existing.expires_at)).await?
        {
            return Ok(CancelMark::Marked);
        }
    }
    Err(PortError::Throttled(format!("the run at {key} kept changing while it was cancelled")))
}

fn reset_failures(record: &mut RunRecord) {
    record.failures = 0;
    record.first_failed_at = None;
    record.last_failed_at = None;
}

#[cfg(all(test, feature = "embedded"))]
mod tests {
    use super::*;
    use crate::embedded::{EmbeddedDb, EmbeddedStore};

    fn store() -> Arc<dyn StateStore> {
        Arc::new(EmbeddedStore::new(EmbeddedDb::in_memory().unwrap()))
    }

    fn at(minute: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + minute * 60, 0).unwrap()
    }

    fn who(token: &str, until: DateTime<Utc>) -> Claimant<'_> {
        Claimant { token, hash: "h", job_id: "j", until }
    }

    async fn enter(store: &Arc<dyn StateStore>, token: &str, now: DateTime<Utc>) -> Claim {
        Run::claim(store.clone(), "job", "k", &who(token, now + chrono::Duration::minutes(15)), now)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn one_run_one_owner_from_first_start_to_outcome() {
        let store = store();
        let Claim::Entered(mut run) = enter(&store, "a", at(0)).await else { panic!("fresh key") };
        assert!(matches!(enter(&store, "b", at(1)).await, Claim::Busy(_)), "held while running");
        assert!(
            matches!(enter(&store, "a", at(1)).await, Claim::Busy(_)),
            "even its own token while running"
        );

        run.suspend_to_continue(at(30), at(1)).await.unwrap();
        assert!(
            matches!(enter(&store, "b", at(2)).await, Claim::Busy(t) if t == at(30)),
            "waiting for its own"
        );
        let Claim::Entered(mut run) = enter(&store, "a", at(2)).await else {
            panic!("its continuation enters")
        };
        assert_eq!(run.attempt(), 1, "a continuation is not an attempt");

        run.end(&Ending::Completed { keep_until: at(60 * 24) }, at(3)).await.unwrap();
        assert!(matches!(enter(&store, "b", at(3)).await, Claim::Done { .. }));
        assert!(matches!(enter(&store, "a", at(3)).await, Claim::Done { .. }));
    }

    #[tokio::test]
    async fn a_crashed_holder_counts_as_a_failure_and_is_taken_over_after_its_deadline() {
        let store = store();
        let Claim::Entered(_) = enter(&store, "a", at(0)).await else { panic!() };
        let Claim::Entered(run) = enter(&store, "b", at(16)).await else { panic!("its deadline passed") };
        assert_eq!(run.attempt(), 2);
        assert_eq!(run.token(), "b");
    }

    #[tokio::test]
    async fn a_write_after_losing_the_run_is_refused() {
        let store = store();
        let Claim::Entered(mut stale) = enter(&store, "a", at(0)).await else { panic!() };
        let Claim::Entered(_) = enter(&store, "b", at(16)).await else { panic!() };
        let refused = stale.save_checkpoint(Checkpoint::default(), at(17)).await;
        assert!(matches!(refused, Err(RunWriteError::Lost)), "{refused:?}");
    }

    #[tokio::test]
    async fn a_dead_run_refuses_duplicates_and_its_redrive_starts_a_new_set_of_attempts() {
        let store = store();
        let Claim::Entered(mut run) = enter(&store, "a", at(0)).await else { panic!() };
        run.suspend_to_retry(at(5), at(1)).await.unwrap();
        let Claim::Entered(mut run) = enter(&store, "a", at(6)).await else { panic!() };
        assert_eq!(run.attempt(), 2);
        run.note_final_failure(at(7));
        run.end(&Ending::DeadLettered, at(7)).await.unwrap();
        assert!(matches!(enter(&store, "b", at(8)).await, Claim::Done { .. }));
        let Claim::Entered(run) = enter(&store, "a", at(9)).await else { panic!("the redrive enters") };
        assert_eq!(run.attempt(), 1);
    }

    #[tokio::test]
    async fn other_arguments_under_the_key_are_refused() {
        let store = store();
        let Claim::Entered(_) = enter(&store, "a", at(0)).await else { panic!() };
        let other = Claimant { hash: "other", ..who("b", at(15)) };
        assert!(matches!(
            Run::claim(store.clone(), "job", "k", &other, at(1)).await.unwrap(),
            Claim::Mismatch
        ));
    }
}
