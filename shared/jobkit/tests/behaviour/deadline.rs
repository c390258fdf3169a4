use chrono::Duration;
use jobkit::{RecordStatus, testing::TestHarness};

use crate::common::{Behaviour, ScriptArgs, ScriptedJob};

#[tokio::test]
async fn records_that_cannot_finish_before_the_deadline_come_back_unstarted() {
    let t = TestHarness::new();
    let job = ScriptedJob::default();
    let runner = t.runner(job.clone());
    for id in ["x", "y", "z"] {
        t.enqueuer().perform_later::<ScriptedJob>(&ScriptArgs::new(id, Behaviour::Succeed)).await.unwrap();
    }
    // The job's timeout is 10 s: with 5 s left none of them may start.
    let deadline = t.runtime().clock.now() + Duration::seconds(5);
    let outcomes = t.run_once_with_deadline(&runner, deadline).await;
    assert_eq!(outcomes.len(), 3);
    assert!(outcomes.iter().all(|o| o.status == RecordStatus::ReturnedUnstarted));
    assert_eq!(job.executions.count("x"), 0);

    // They are visible again at once, and the unstarted delivery is not counted as an attempt.
    let again = t.run_once(&runner).await;
    assert!(again.iter().all(|o| o.status == RecordStatus::Succeeded));
    assert_eq!(job.executions.of("x")[0].0, 1, "first execution is attempt 1 on the second delivery");
}
