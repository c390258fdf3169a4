//! One trace from enqueue to perform: a job enqueued by a job joins its trace, hop after hop.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};

use jobkit::{
    Job, JobContext, JobError,
    message::{OutgoingMessage, attr},
    ports::Queue,
    testing::TestHarness,
    trace::TraceContext,
};

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Hops {
    left: u32,
}

/// Enqueues itself with one hop fewer until none are left; records the traceparent it ran with.
#[derive(Clone, Default)]
struct Relay {
    seen: Arc<Mutex<Vec<Option<String>>>>,
}

impl Job for Relay {
    type Args = Hops;
    const NAME: &'static str = "relay";

    async fn perform(&self, args: Hops, ctx: &mut JobContext) -> Result<(), JobError> {
        self.seen.lock().unwrap().push(ctx.meta().traceparent.clone());
        if args.left > 0 {
            ctx.enqueuer()
                .perform_later::<Relay>(&Hops { left: args.left - 1 })
                .await
                .map_err(|e| JobError::retryable(jobkit::ErrorKind::UNAVAILABLE, e.to_string()))?;
        }
        Ok(())
    }
}

#[tokio::test]
async fn jobs_enqueued_by_a_job_continue_its_trace_each_under_a_span_of_its_own() {
    let t = TestHarness::new();
    let job = Relay::default();
    let runner = t.runner(job.clone());
    let producer = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let attributes = BTreeMap::from([(attr::TRACEPARENT.to_owned(), producer.to_owned())]);
    let first = OutgoingMessage { body: r#"{"left":2}"#.into(), attributes, ..Default::default() };
    t.queue().send(&TestHarness::queue_name::<Relay>(), first).await.unwrap();
    assert_eq!(t.drain(&runner).await.succeeded(), 3);

    let seen: Vec<TraceContext> = job
        .seen
        .lock()
        .unwrap()
        .iter()
        .map(|h| TraceContext::parse(h.as_deref().unwrap()).unwrap())
        .collect();
    assert!(seen.iter().all(|c| c.trace_id() == "4bf92f3577b34da6a3ce929d0e0e4736"), "{seen:?}");
    let headers: Vec<Option<String>> = job.seen.lock().unwrap().clone();
    assert_eq!(headers[0].as_deref(), Some(producer));
    assert!(
        headers[1] != headers[0] && headers[2] != headers[1],
        "each hop under a span of its own: {headers:?}"
    );
}

#[tokio::test]
async fn a_job_enqueued_outside_any_job_carries_no_traceparent_and_its_children_share_a_new_trace() {
    let t = TestHarness::new();
    let job = Relay::default();
    let runner = t.runner(job.clone());
    t.enqueuer().perform_later::<Relay>(&Hops { left: 1 }).await.unwrap();
    t.drain(&runner).await;
    let seen = job.seen.lock().unwrap().clone();
    assert_eq!(seen[0], None, "nothing to continue");
    assert!(
        seen[1].as_deref().and_then(TraceContext::parse).is_some(),
        "the child joined the run's new trace"
    );
}
