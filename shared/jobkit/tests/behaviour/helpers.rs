//! The test helpers a Rails developer reaches for: the block form of `assert_enqueued_with` and
//! `perform_enqueued_jobs` with `assert_performed_jobs`.

use jobkit::testing::TestHarness;

use crate::common::{Behaviour, ScriptArgs, ScriptedJob};

#[tokio::test]
async fn the_block_form_counts_only_what_the_block_enqueued() {
    let t = TestHarness::new();
    let _runner = t.runner(ScriptedJob::default());
    let args = ScriptArgs::new("a", Behaviour::Succeed);
    let id = t
        .assert_enqueues_with::<ScriptedJob, _>(&args, async {
            t.enqueuer().perform_later::<ScriptedJob>(&args).await.unwrap()
        })
        .await;
    assert!(!id.as_str().is_empty(), "the block's output comes back");
    // Already queued before the block: a block that enqueues nothing fails the assertion.
    let nothing =
        tokio::spawn(async move { t.assert_enqueues_with::<ScriptedJob, _>(&args, async {}).await });
    assert!(nothing.await.unwrap_err().is_panic(), "a block that enqueued nothing is caught");
}

#[tokio::test]
async fn assert_performed_walks_retries_and_counts_the_successes() {
    let t = TestHarness::new();
    let job = ScriptedJob::default();
    let runner = t.runner(job.clone());
    for (id, behaviour) in
        [("ok", Behaviour::Succeed), ("flaky", Behaviour::TransientTimes(2)), ("bad", Behaviour::Permanent)]
    {
        t.enqueuer().perform_later::<ScriptedJob>(&ScriptArgs::new(id, behaviour)).await.unwrap();
    }
    let report = t.assert_performed(&runner, 2).await;
    assert_eq!((report.retried(), report.dead_lettered()), (2, 1));
    assert_eq!(job.executions.of("flaky").len(), 3);
}
