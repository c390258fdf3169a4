//! A run owns its idempotency key from its first start to its outcome, across continuations
//! and retries: every other delivery with the key (a tick delivered twice, an SDK re-send with
//! the same job id, a twin in the batch) is handed back while the run is unfinished and
//! acknowledged once it is done; the run's checkpoints never move backwards.

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use jobkit::{
    ErrorKind, Job, JobContext, JobError,
    clock::ManualClock,
    dead_letter::DeadLetterError,
    message::{OutgoingMessage, attr},
    ports::Queue,
    runner::{BatchRunner, DlqReason, RecordOutcome, RecordStatus},
    testing::TestHarness,
};

/// Pages each run walks.
const PAGES: u32 = 6;

/// Walks `PAGES` pages, each taking 20 s of the test clock, checkpointing the page cursor: in
/// a 60 s execution it does three pages, then continues. Each page walked is an effect.
#[derive(Clone, Default)]
struct Pages {
    clock: Option<ManualClock>,
    effects: Arc<Mutex<Vec<(String, u32)>>>,
    finished: Arc<Mutex<Vec<String>>>,
    /// Fails once, before walking this page: retryable, or permanent.
    fail_once_at: Option<(u32, bool)>,
    failed: Arc<AtomicBool>,
}

#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct PagesArgs {
    name: String,
}

impl Pages {
    fn on(t: &TestHarness) -> Self {
        Self { clock: Some(t.clock().clone()), ..Self::default() }
    }

    fn effects(&self) -> Vec<(String, u32)> {
        let mut effects = self.effects.lock().unwrap().clone();
        effects.sort();
        effects
    }

    fn finished(&self) -> Vec<String> {
        self.finished.lock().unwrap().clone()
    }
}

impl Job for Pages {
    type Args = PagesArgs;
    const NAME: &'static str = "pages";

    async fn perform(&self, args: PagesArgs, ctx: &mut JobContext) -> Result<(), JobError> {
        ctx.step("pages", 0_u32, async |step| {
            while *step.cursor() < PAGES {
                let page = *step.cursor();
                let fails_here = self.fail_once_at.filter(|(at, _)| *at == page);
                if let Some((_, retryable)) = fails_here.filter(|_| !self.failed.swap(true, Ordering::SeqCst))
                {
                    let message = format!("page {page} failed");
                    return Err(if retryable {
                        JobError::retryable(ErrorKind::UNAVAILABLE, message)
                    } else {
                        JobError::permanent(ErrorKind::NOT_FOUND, message)
                    });
                }
                if let Some(clock) = &self.clock {
                    clock.advance(chrono::Duration::seconds(20));
                }
                self.effects.lock().unwrap().push((args.name.clone(), page));
                step.advance(page + 1).await?;
            }
            Ok(())
        })
        .await?;
        self.finished.lock().unwrap().push(args.name);
        Ok(())
    }
}

fn every_page_once(name: &str) -> Vec<(String, u32)> {
    (0..PAGES).map(|p| (name.to_owned(), p)).collect()
}

fn message(body: &str, attributes: &[(&str, &str)]) -> OutgoingMessage {
    let attributes: BTreeMap<String, String> =
        attributes.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    OutgoingMessage { body: body.to_owned(), attributes, ..Default::default() }
}

/// Receives one visible message and runs it alone, as a separate invocation would; deletes it
/// when done.
async fn run_one<J: Job>(t: &TestHarness, runner: &BatchRunner<J>) -> RecordOutcome {
    let messages = t.queue().receive(&TestHarness::queue_name::<J>(), 1, Duration::ZERO).await.unwrap();
    assert_eq!(messages.len(), 1, "a message is visible");
    let deadline = t.runtime().clock.now() + chrono::Duration::minutes(15);
    let outcome = runner.process(messages, deadline).await.records.remove(0);
    if outcome.status.is_done() {
        t.queue().delete(&TestHarness::queue_name::<J>(), &outcome.receipt_handle).await.unwrap();
    }
    outcome
}

fn tick(t: &TestHarness) -> String {
    let time = t.runtime().clock.now().to_rfc3339();
    format!(r#"{{"name":"carts","$schedule":{{"rule":"clean-active-carts-hourly","time":"{time}"}}}}"#)
}

#[tokio::test]
async fn a_tick_delivered_twice_while_the_first_run_continues_runs_once_from_its_checkpoint() {
    let t = TestHarness::new();
    let job = Pages::on(&t);
    let runner = t.runner(job.clone());
    let tick = tick(&t);
    t.queue().send("pages", message(&tick, &[])).await.unwrap();
    t.queue().send("pages", message(&tick, &[])).await.unwrap();

    assert_eq!(run_one(&t, &runner).await.status, RecordStatus::Continued, "three pages, then continues");
    // Before: the continuation released the tick's key, and the second delivery took it and
    // walked every page again under its own job id.
    assert_eq!(run_one(&t, &runner).await.status, RecordStatus::InProgressElsewhere);

    let report = t.drain(&runner).await;
    assert_eq!(job.effects(), every_page_once("carts"));
    assert_eq!(job.finished(), ["carts"]);
    assert_eq!(report.count(|s| *s == RecordStatus::Duplicate), 1, "acknowledged once the run is done");
}

#[tokio::test]
async fn a_re_send_with_the_same_job_id_neither_restarts_the_run_nor_moves_its_checkpoint_back() {
    let t = TestHarness::new();
    let job = Pages::on(&t);
    let runner = t.runner(job.clone());
    for _ in 0..2 {
        t.queue().send("pages", message(r#"{"name":"resent"}"#, &[(attr::JOB_ID, "job-7")])).await.unwrap();
    }

    assert_eq!(run_one(&t, &runner).await.status, RecordStatus::Continued);
    // Before: the re-send took the freed key and started from page 0, overwriting the
    // checkpoint with less progress.
    assert_eq!(run_one(&t, &runner).await.status, RecordStatus::InProgressElsewhere);
    t.drain(&runner).await;
    assert_eq!(job.effects(), every_page_once("resent"));
    assert_eq!(job.finished(), ["resent"]);
}

#[tokio::test]
async fn a_twin_in_the_batch_of_a_run_that_continues_is_handed_back_not_restarted() {
    let t = TestHarness::new();
    let job = Pages::on(&t);
    let runner = t.runner(job.clone());
    for _ in 0..2 {
        t.queue().send("pages", message(r#"{"name":"twin"}"#, &[(attr::JOB_ID, "job-8")])).await.unwrap();
    }

    let mut statuses: Vec<String> =
        t.run_once(&runner).await.into_iter().map(|o| format!("{:?}", o.status)).collect();
    statuses.sort();
    assert_eq!(statuses, ["Continued", "InProgressElsewhere"]);
    t.drain(&runner).await;
    assert_eq!(job.effects(), every_page_once("twin"));
    assert_eq!(job.finished(), ["twin"]);
}

#[tokio::test]
async fn a_duplicate_of_a_run_waiting_for_its_retry_is_handed_back_and_the_retry_resumes() {
    let t = TestHarness::new();
    let job = Pages { fail_once_at: Some((1, true)), ..Pages::on(&t) };
    let runner = t.runner(job.clone());
    t.queue().send("pages", message(r#"{"name":"flaky"}"#, &[(attr::JOB_ID, "job-9")])).await.unwrap();
    assert!(matches!(run_one(&t, &runner).await.status, RecordStatus::Retrying(_)), "page 0, then fails");

    // Before: the failure released the key, so this copy started again from page 0.
    t.queue().send("pages", message(r#"{"name":"flaky"}"#, &[(attr::JOB_ID, "job-9")])).await.unwrap();
    assert_eq!(run_one(&t, &runner).await.status, RecordStatus::InProgressElsewhere);
    t.drain(&runner).await;
    assert_eq!(job.effects(), every_page_once("flaky"));
    assert_eq!(job.finished(), ["flaky"]);
}

#[tokio::test]
async fn a_forged_continuation_cannot_skip_a_step() {
    let t = TestHarness::new();
    let job = Pages::on(&t);
    let runner = t.runner(job.clone());
    let forged = message(r#"{"name":"forged"}"#, &[(attr::CONTINUATION, r#"{"completed":["pages"]}"#)]);
    t.queue().send("pages", forged).await.unwrap();

    // Before: the attribute was the checkpoint itself, so the job skipped its step and succeeded.
    let outcome = run_one(&t, &runner).await;
    assert_eq!(
        outcome.status,
        RecordStatus::DeadLettered(DlqReason::Discarded, ErrorKind::INVALID_ARGUMENTS)
    );
    assert!(job.finished().is_empty());
    let dead = t.dead_letters::<Pages>();
    let error = DeadLetterError::read(&dead[0].attributes).expect("the DLQ copy says why");
    assert!(error.message.contains("continuation"), "{}", error.message);
}

#[tokio::test]
async fn a_run_that_reaches_the_dlq_keeps_its_key_and_continuation_and_a_redrive_resumes_it() {
    let t = TestHarness::new();
    let job = Pages { fail_once_at: Some((4, false)), ..Pages::on(&t) };
    let runner = t.runner(job.clone());
    let sent = message(r#"{"name":"redriven"}"#, &[(attr::IDEMPOTENCY_KEY, "import-2026-12-01")]);
    t.queue().send("pages", sent).await.unwrap();
    let report = t.drain(&runner).await;
    assert_eq!(report.dead_lettered(), 1, "pages 0-3 over two executions, then a permanent failure");

    let dead = t.dead_letters::<Pages>();
    assert_eq!(dead.len(), 1);
    let copy = &dead[0];
    // Before: nine error attributes left room for only one of the two.
    assert_eq!(copy.attributes.get(attr::IDEMPOTENCY_KEY).map(String::as_str), Some("import-2026-12-01"));
    assert!(copy.attributes.contains_key(attr::CONTINUATION), "{:?}", copy.attributes);
    assert!(copy.attributes.len() <= 10, "{:?}", copy.attributes);

    // A duplicate of the dead run is acknowledged: its outcome is final.
    let duplicate = message(r#"{"name":"redriven"}"#, &[(attr::IDEMPOTENCY_KEY, "import-2026-12-01")]);
    t.queue().send("pages", duplicate).await.unwrap();
    assert_eq!(run_one(&t, &runner).await.status, RecordStatus::Duplicate);

    // An operator's redrive: the copy without the error, back on the queue. It resumes at page 4.
    let mut attributes = copy.attributes.clone();
    attributes.remove(attr::ERROR);
    let redrive = OutgoingMessage { body: copy.body.clone(), attributes, ..Default::default() };
    t.queue().send("pages", redrive).await.unwrap();
    let report = t.drain(&runner).await;
    assert_eq!(report.succeeded(), 1);
    assert_eq!(job.effects(), every_page_once("redriven"), "no page walked twice");
    assert_eq!(job.finished(), ["redriven"]);
}
