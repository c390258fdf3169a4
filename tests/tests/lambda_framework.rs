//! jobkit's promises on the Lambda path, with built binaries under the local Lambda (a Runtime
//! API stub fed by an event source mapping on moto's SQS): retries wait their backoff (seen in
//! `ApproximateReceiveCount` and the time between deliveries), exhausted jobs reach the DLQ with
//! their error, a function killed in the middle of a batch loses nothing, and an EventBridge
//! tick delivered twice runs once. The jobs of the template run on the stack as deployed; the
//! example job, which the template does not deploy, on a hand-built queue and state table.

use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::json;
use shop::{CatalogRepository, Money, Product, Variant, aws::DynamoCatalog};
use shop_sandbox::{Behaviour, FixtureShop, Fixtures, Sandbox};
use system_tests::{
    example_stack::{ExampleStack, FunctionSpec},
    lambda::{Delivery, Outcome},
    moto,
    sqs::dead_letters,
    stack::Stack,
};

/// The example job's first two waits (`Wait::Polynomial`: 1^4 + 2 s and 2^4 + 2 s, +15 % jitter
/// at most).
const FIRST_WAIT: Duration = Duration::from_secs(3);
const SECOND_WAIT: Duration = Duration::from_secs(18);
/// Slack for SQS's whole-second visibility, one long poll and an invocation on a busy machine.
const SLACK: Duration = Duration::from_secs(6);

fn example() -> FunctionSpec {
    let mut spec = FunctionSpec::new("example_job");
    spec.timeout = Duration::from_secs(20); // twice the job's 10 s, as the template would
    spec
}

fn deliveries_of<'a>(deliveries: &'a [Delivery], body: &str) -> Vec<&'a Delivery> {
    deliveries.iter().filter(|d| d.body == body).collect()
}

#[tokio::test]
async fn a_retry_waits_its_backoff_and_an_exhausted_job_reaches_the_dlq_with_its_error() {
    let stack = ExampleStack::create().await.expect("stack");
    let mut fn_ = stack.deploy(example()).await.expect("deployed");
    let sqs = stack.sqs();
    let flaky = r#"{"name":"Flo","fail":"flaky"}"#;
    let down = r#"{"name":"Dan","fail":"transient"}"#;
    fn_.send(&sqs, flaky).await.unwrap();
    fn_.send(&sqs, down).await.unwrap();
    fn_.lambda.drain(SECOND_WAIT + FIRST_WAIT + 4 * SLACK).await.expect("drained");
    let logs = fn_.lambda.logs();

    let flaky_runs = deliveries_of(&fn_.lambda.deliveries, flaky);
    let counts: Vec<u32> = flaky_runs.iter().map(|d| d.receive_count).collect();
    assert_eq!(counts, [1, 2], "one retry, then success\n{logs}");
    let gap = flaky_runs[1].at - flaky_runs[0].at;
    assert!(gap >= FIRST_WAIT && gap < FIRST_WAIT + SLACK, "waited the first backoff: {gap:?}");

    let down_runs = deliveries_of(&fn_.lambda.deliveries, down);
    let counts: Vec<u32> = down_runs.iter().map(|d| d.receive_count).collect();
    assert_eq!(counts, [1, 2, 3], "the policy's 3 attempts\n{logs}");
    let second_gap = down_runs[2].at - down_runs[1].at;
    assert!(
        second_gap >= SECOND_WAIT && second_gap < SECOND_WAIT + Duration::from_secs(3) + SLACK,
        "the second wait is polynomially longer: {second_gap:?}"
    );

    let dead = dead_letters(&sqs, &fn_.dlq_url).await.expect("DLQ read");
    assert_eq!(dead.len(), 1, "only the exhausted job: {dead:?}");
    let letter = &dead[0];
    assert_eq!(letter.body, down);
    let error = letter.error();
    assert_eq!(error.reason, "exhausted");
    assert_eq!(error.kind, "unavailable");
    assert_eq!(error.attempts, 3);
    assert!(error.message.contains("the greeter is down"), "{letter:?}");
    assert!(error.first_failed_at.is_some() && error.last_failed_at.is_some());
}

#[tokio::test]
async fn a_queue_whose_visibility_is_shorter_than_the_function_timeout_is_refused_as_lambda_does() {
    let stack = ExampleStack::create().await.expect("stack");
    let mut spec = example();
    spec.visibility = Duration::from_secs(5);
    match stack.deploy(spec).await {
        Ok(_) => panic!("a record could come back while its invocation still runs: Lambda refuses that"),
        Err(refused) => {
            let refused = refused.to_string();
            assert!(refused.contains("5 seconds is less than Function timeout: 20 seconds"), "{refused}");
        }
    }
}

#[tokio::test]
async fn a_function_killed_in_the_middle_of_a_batch_loses_nothing() {
    let stack = Stack::deploy().await.expect("stack");
    stack.add_store("acme", json!({"shopify_token": "x"})).await.unwrap();
    let catalog = DynamoCatalog::new(stack.dynamo(), stack.table("SHOP_PRODUCTS_TABLE").unwrap());
    let titles: Vec<String> = (1..=6).map(|n| moto::unique(&format!("Product {n}"))).collect();
    let products: Vec<Product> = titles
        .iter()
        .enumerate()
        .map(|(n, title)| Product {
            id: format!("gid://shopify/Product/{n}").into(),
            store_id: "acme".into(),
            title: title.clone(),
            handle: format!("p-{n}"),
            variants: vec![Variant {
                id: format!("gid://shopify/ProductVariant/{n}").into(),
                sku: None,
                price: Money { minor: 1000, currency: "USD".into() },
                inventory: 1,
            }],
        })
        .collect();
    catalog.upsert_products(&products).await.unwrap();
    // One record at a time, so "the first two are done" is a point in the batch, and the
    // runner's debug lines to see it: set on the deployed function, as an operator would. The
    // batch comes back when its visibility ends, no sooner than the killed invocation's
    // deadline (Lambda refuses a shorter one), by which time the key of the record running at
    // the kill is free again: the shortest faithful visibility is the function's timeout, not
    // the template's six times it (which would make this test wait six minutes).
    let job = "share_product_text_message";
    stack.configure(job, &[("JOBKIT_CONCURRENCY", "1"), ("RUST_LOG", "info,jobkit=debug")]).await.unwrap();
    let deployment = stack.deployment(job).await.unwrap();
    stack
        .sqs()
        .set_queue_attributes()
        .queue_url(&deployment.queue_url)
        .attributes(QueueAttributeName::VisibilityTimeout, deployment.timeout.as_secs().to_string())
        .send()
        .await
        .unwrap();
    let mut fn_ = stack.start(job, &[]).await.expect("started");
    let sqs = stack.sqs();
    for n in 0..6 {
        let body = json!({"share_id": format!("sh_{n}"), "store_id": "acme",
            "product_id": format!("gid://shopify/Product/{n}"), "phone": "+14155550123"});
        fn_.send(&sqs, &body.to_string()).await.unwrap();
    }

    let done =
        |logs: &str| logs.lines().filter(|l| l.contains("record handled") && l.contains("Succeeded")).count();
    let outcome =
        fn_.lambda.poll_killing_when(Duration::from_secs(2), |logs| done(logs) >= 2).await.expect("polled");
    assert_eq!(outcome, Some(Outcome::Crashed), "killed before it answered\n{}", fn_.lambda.logs());
    // moto hands out up to ten visible messages in one receive (SQS may give fewer).
    assert_eq!(fn_.lambda.deliveries.len(), 6, "the whole batch was in the killed invocation");
    fn_.lambda.drain(Duration::from_secs(90)).await.expect("the queue drains after the crash");
    let logs = fn_.lambda.logs();
    assert_eq!(fn_.lambda.cold_starts, 2, "a new environment after the crash");

    let outbox = moto::Outbox::read().await.expect("moto's outbox");
    let texts: Vec<usize> = titles.iter().map(|t| outbox.texts_containing(t)).collect();
    assert!(texts.iter().all(|&n| n >= 1), "every share texted: {texts:?}\n{logs}");
    // The two finished before the kill are not texted again. At most the one running at the
    // kill may be (its text sent, its completion not yet recorded): at-least-once's window.
    assert!(texts.iter().all(|&n| n <= 2), "no share texted more than twice: {texts:?}");
    assert!(
        texts.iter().filter(|&&n| n == 2).count() <= 1,
        "at most the record in flight repeats: {texts:?}"
    );
    assert!(dead_letters(&sqs, &fn_.dlq_url).await.unwrap().is_empty(), "nothing dead-lettered");
}

#[tokio::test]
async fn an_eventbridge_tick_delivered_twice_runs_once() {
    let stack = Stack::deploy().await.expect("stack");
    let shops = [("north", "shpat_n"), ("south", "shpat_s")];
    let fixtures = Fixtures {
        shops: shops
            .iter()
            .map(|(name, token)| {
                let shop =
                    FixtureShop { token: (*token).to_owned(), products: 3, behaviour: Behaviour::Healthy };
                ((*name).to_owned(), shop)
            })
            .collect(),
        pos: Default::default(),
    };
    let sandbox = Sandbox::start(fixtures).await.expect("sandbox");
    for (name, token) in shops {
        stack.add_store(name, json!({"shopify_token": token})).await.unwrap();
        // Pro stores: their recurring syncs take store_sync's own (high) lane, this function's.
        stack.set_plan(name, shop::Plan::Pro).await.unwrap();
    }
    let mut fn_ =
        stack.start("store_sync", &[("SHOPIFY_BASE_URL", sandbox.shopify_url())]).await.expect("started");
    let sqs = stack.sqs();
    // What the fan-out schedule puts on the queue, twice (EventBridge Scheduler delivers at
    // least once), the second after the first ran, as its duplicates come. (Twins in one batch wait for
    // the first: lambda_jobs' share_product_text_message test.)
    let tick = stack.tick(&fn_, "2026-11-29T12:15:00Z").await.expect("the fan-out schedule's tick");
    assert!(tick.contains(r#""all_stores": true"#), "{tick}");
    fn_.send(&sqs, &tick).await.unwrap();
    fn_.lambda.drain(Duration::from_secs(60)).await.expect("drained");
    fn_.send(&sqs, &tick).await.unwrap();
    fn_.lambda.drain(Duration::from_secs(60)).await.expect("drained");
    let logs = fn_.lambda.logs();

    let syncs: Vec<&Delivery> =
        fn_.lambda.deliveries.iter().filter(|d| d.body.contains("store_id")).collect();
    let distinct = |field: fn(&Delivery) -> &str| {
        let mut values: Vec<&str> = syncs.iter().map(|d| field(d)).collect();
        values.sort_unstable();
        values.dedup();
        values.len()
    };
    assert_eq!(distinct(|d| d.body.as_str()), 2, "one sync per store\n{logs}");
    assert_eq!(
        distinct(|d| d.message_id.as_str()),
        2,
        "each store enqueued once, not once per tick delivery\n{logs}"
    );
    assert_eq!(logs.matches("store syncs enqueued").count(), 1, "the fan-out ran once");
    // Both syncs finishing at once may each send the batch's callback: one job id, one run.
    let duplicates = |of_callback: bool| {
        logs.lines()
            .filter(|l| l.contains(r#""status":"Duplicate""#) && l.contains(".on_complete") == of_callback)
            .count()
    };
    assert_eq!(duplicates(false), 1, "the second delivery acknowledged as a duplicate\n{logs}");
    assert_eq!(logs.matches("all stores synced").count(), 1, "the fan-out's batch called back once\n{logs}");
    assert!(fn_.lambda.outcomes.iter().all(|o| matches!(o, Outcome::Answered { .. })));
    assert!(dead_letters(&sqs, &fn_.dlq_url).await.unwrap().is_empty());
}
