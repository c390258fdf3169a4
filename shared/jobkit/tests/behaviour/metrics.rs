use jobkit::{
    runner::{BatchRunner, RunnerConfig, Runtime},
    telemetry::MetricsSink,
    testing::TestHarness,
};

use crate::common::{Behaviour, Captured, ScriptArgs, ScriptedJob};

#[tokio::test]
async fn each_batch_writes_one_emf_line_with_its_outcomes() {
    let t = TestHarness::new();
    let _ = t.runner(ScriptedJob::default());
    let captured = Captured::default();
    let runtime = Runtime {
        metrics: Some(MetricsSink::to_writer("Jobs", Box::new(captured.clone()))),
        ..t.runtime().clone()
    };
    let runner =
        BatchRunner::new(ScriptedJob::default(), runtime, RunnerConfig::new("scripted", "scripted-dlq"));
    let enqueuer = t.enqueuer();
    for (id, behaviour) in
        [("a", Behaviour::Succeed), ("b", Behaviour::Transient), ("c", Behaviour::Permanent)]
    {
        enqueuer.perform_later::<ScriptedJob>(&ScriptArgs::new(id, behaviour)).await.unwrap();
    }
    t.clock().advance(chrono::Duration::seconds(2));
    t.run_once(&runner).await;

    let lines = captured.lines();
    let text = format!("{lines:?}");
    assert_eq!(lines.len(), 1, "one line per batch: {text}");
    let line = &lines[0];
    assert_eq!(line["_aws"]["CloudWatchMetrics"][0]["Namespace"], "Jobs");
    assert_eq!(line["job"], "scripted");
    assert_eq!(
        (line["succeeded"].as_u64(), line["retried"].as_u64(), line["discarded"].as_u64()),
        (Some(1), Some(1), Some(1))
    );
    // Every started record's value, not the batch's maximum: CloudWatch's p50 and p99 are per record.
    assert_eq!(
        line["queue_latency"],
        serde_json::json!([2000.0, 2000.0, 2000.0]),
        "each enqueued two seconds of the test clock ago"
    );
    assert_eq!(line["duration"].as_array().map(Vec::len), Some(3), "one duration per execution: {line}");
}
