//! Lanes chosen per run (ActiveJob's `queue_as` with a block, `set(queue:)`): a run goes to the
//! queue of the lane its arguments pick or its enqueue chooses, and stays there through a retry,
//! its continuations and its hops; a lane the job does not have is refused.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use jobkit::{
    EnqueueError, EnqueueOptions, ErrorKind, Job, JobContext, JobError, JobRef, Lane, runner::RecordStatus,
    testing::TestHarness,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ReportArgs {
    store: String,
    pro: bool,
}

impl ReportArgs {
    fn basic(store: &str) -> Self {
        Self { store: store.into(), pro: false }
    }

    fn pro(store: &str) -> Self {
        Self { store: store.into(), pro: true }
    }

    /// A Pro store's report on the high lane, a Basic one's on the low.
    fn lane(&self) -> Lane {
        if self.pro { Lane::High } else { Lane::Low }
    }
}

/// Writes a store's report in 6 pages of 20 s each (so it continues in 60 s executions); its
/// first execution fails once.
#[derive(Clone)]
struct Report {
    clock: jobkit::clock::ManualClock,
    failed_once: Arc<Mutex<bool>>,
    pages: Arc<Mutex<Vec<u32>>>,
}

impl Job for Report {
    type Args = ReportArgs;
    const NAME: &'static str = "report";
    const LANE: Lane = Lane::High;
    const OTHER_LANES: &'static [Lane] = &[Lane::Low];

    fn lane(args: &ReportArgs) -> Lane {
        args.lane()
    }

    async fn perform(&self, _args: ReportArgs, ctx: &mut JobContext) -> Result<(), JobError> {
        if !std::mem::replace(&mut *self.failed_once.lock().unwrap(), true) {
            return Err(JobError::retryable(ErrorKind::UNAVAILABLE, "the warehouse is down"));
        }
        ctx.step("pages", 0_u32, async |step| {
            while *step.cursor() < 6 {
                self.clock.advance(chrono::Duration::seconds(20));
                self.pages.lock().unwrap().push(*step.cursor());
                step.advance(step.cursor() + 1).await?;
            }
            Ok(())
        })
        .await?;
        Ok(())
    }

    const TIMEOUT: Duration = Duration::from_secs(60);
}

fn report(t: &TestHarness) -> Report {
    Report { clock: t.clock().clone(), failed_once: Arc::default(), pages: Arc::default() }
}

/// Messages waiting (visible, in flight or delayed) on each of the report's lanes: (high, low).
fn waiting(t: &TestHarness) -> (u64, u64) {
    let on = |lane| {
        let stats = t.queue().stats(&TestHarness::lane_queue::<Report>(lane)).unwrap();
        stats.visible + stats.in_flight + stats.delayed
    };
    (on(Lane::High), on(Lane::Low))
}

#[tokio::test]
async fn a_run_takes_the_lane_its_arguments_pick_and_an_enqueue_may_choose_another_of_the_jobs() {
    let t = TestHarness::new();
    let _runner = t.runner(report(&t));
    let enqueuer = t.enqueuer();

    enqueuer.perform_later::<Report>(&ReportArgs::basic("st_1")).await.unwrap();
    assert_eq!(waiting(&t), (0, 1), "a Basic store's report picks the low lane");
    enqueuer.perform_later::<Report>(&ReportArgs::pro("st_2")).await.unwrap();
    assert_eq!(waiting(&t), (1, 1), "a Pro store's the high one");
    let on_high = EnqueueOptions::on_lane(Lane::High);
    enqueuer.perform_later_with::<Report>(&ReportArgs::basic("st_3"), on_high).await.unwrap();
    assert_eq!(waiting(&t), (2, 1), "the enqueue's choice wins over the job's");

    let refused = enqueuer
        .perform_later_with::<Report>(&ReportArgs::basic("st_4"), EnqueueOptions::on_lane(Lane::Default))
        .await
        .unwrap_err();
    let EnqueueError::InvalidArguments(error) = refused else { panic!("{refused:?}") };
    assert_eq!(error.kind(), &ErrorKind::INVALID_ARGUMENTS);
    assert!(error.to_string().contains("report has no default lane (its lanes: high, low)"), "{error}");
    assert_eq!(waiting(&t), (2, 1), "nothing sent for the refused lane");

    // A bulk enqueue sends each job to its own lane and answers in order.
    let answers = enqueuer
        .perform_later_bulk::<Report>([ReportArgs::pro("a"), ReportArgs::basic("b"), ReportArgs::pro("c")])
        .await
        .unwrap();
    assert!(answers.iter().all(Result::is_ok), "{answers:?}");
    assert_eq!(waiting(&t), (4, 2));
    let queued = t.enqueued::<Report>().await;
    assert_eq!(queued.len(), 6, "the harness sees every lane: {queued:?}");
}

#[tokio::test]
async fn a_job_addressed_by_name_goes_to_the_lanes_its_address_declares() {
    let t = TestHarness::new();
    let _runner = t.runner(report(&t));
    let enqueuer = t.enqueuer();

    let with_lanes: JobRef<ReportArgs> =
        JobRef::new("report").with_lanes(Lane::High, &[Lane::Low], ReportArgs::lane);
    enqueuer
        .perform_later_to(&with_lanes, &ReportArgs::basic("st_1"), EnqueueOptions::default())
        .await
        .unwrap();
    assert_eq!(waiting(&t), (0, 1));

    // An address without lanes reaches the job's own queue only; asking it for another lane is
    // refused rather than sent where nothing reads.
    let by_name: JobRef<ReportArgs> = JobRef::new("report");
    enqueuer.perform_later_to(&by_name, &ReportArgs::basic("st_2"), EnqueueOptions::default()).await.unwrap();
    assert_eq!(waiting(&t), (1, 1));
    let refused = enqueuer
        .perform_later_to(&by_name, &ReportArgs::basic("st_3"), EnqueueOptions::on_lane(Lane::Low))
        .await;
    assert!(matches!(refused, Err(EnqueueError::InvalidArguments(_))), "{refused:?}");
    assert_eq!(waiting(&t), (1, 1));
}

#[tokio::test]
async fn a_retry_its_continuations_and_a_hop_keep_a_run_on_its_lane() {
    let t = TestHarness::new();
    let job = report(&t);
    let runner = t.runner(job.clone());
    // Two hours ahead: it hops (SQS delays at most 15 minutes) on its way there.
    let later = EnqueueOptions::delay(Duration::from_secs(2 * 3600));
    t.enqueuer().perform_later_with::<Report>(&ReportArgs::basic("st_1"), later).await.unwrap();

    let mut seen = Vec::new();
    for _ in 0..100 {
        let records = t.run_once(&runner).await;
        seen.extend(records.iter().map(|r| r.status.clone()));
        assert_eq!(waiting(&t).0, 0, "nothing ever reaches the high lane; so far: {seen:?}");
        if records.iter().any(|r| matches!(r.status, RecordStatus::Retrying(_))) {
            // The retry's wait was set on the lane's queue: it comes back after the policy's
            // wait, not after the queue's visibility timeout (6 minutes).
            let back = t.queue().next_visible_at(&TestHarness::lane_queue::<Report>(Lane::Low)).unwrap();
            let wait = back.expect("the retry waits on the low lane") - jobkit::clock::Clock::now(t.clock());
            assert!(wait < chrono::Duration::seconds(300), "the retry comes back in {wait}");
        }
        match t.queue().next_visible_at(&TestHarness::lane_queue::<Report>(Lane::Low)).unwrap() {
            Some(at) => t.clock().set(at.max(jobkit::clock::Clock::now(t.clock()))),
            None => break,
        }
    }
    assert_eq!(*job.pages.lock().unwrap(), (0..6).collect::<Vec<_>>(), "every page once: {seen:?}");
    let count = |f: fn(&RecordStatus) -> bool| seen.iter().filter(|s| f(s)).count();
    assert!(count(|s| *s == RecordStatus::Hopped) >= 7, "two hours in 15-minute hops: {seen:?}");
    assert_eq!(count(|s| matches!(s, RecordStatus::Retrying(_))), 1, "{seen:?}");
    assert!(count(|s| *s == RecordStatus::Continued) >= 1, "120 s of pages in 60 s executions: {seen:?}");
    assert_eq!(count(|s| *s == RecordStatus::Succeeded), 1, "{seen:?}");
    assert_eq!(waiting(&t), (0, 0));
}
