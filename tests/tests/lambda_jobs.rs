//! Each of the six jobs as its built binary under the local Lambda (a Runtime API stub fed by an
//! event source mapping on moto's SQS), on the stack as deployed (`template.yaml` created on
//! moto's CloudFormation, each function with the configuration Lambda holds for it), against
//! moto's DynamoDB, Secrets Manager and SNS and the loopback sandbox of Shopify and Square: a
//! success and a failure path per job. Ticks are what the deployed EventBridge Scheduler
//! schedules send (their input, Scheduler's context attributes filled in).

use std::{collections::HashMap, time::Duration};

use chrono::Utc;
use serde_json::json;
use shop::{
    Cart, CartItem, CartStatus, CatalogRepository, History, HistoryEntry, Plan, RecordKind, StoreRepository,
    SyncState,
    aws::{DynamoCarts, DynamoCatalog, DynamoHistory, DynamoStores},
};
use shop_sandbox::{Behaviour, FixturePos, FixtureShop, Fixtures, Sandbox};
use system_tests::{
    lambda::Outcome,
    moto,
    sqs::{dead_letters, queue_depth},
    stack::{Function, Stack},
};

/// Long enough for any of these batches; a drain that takes longer has lost something.
const DRAIN_LIMIT: Duration = Duration::from_secs(60);

async fn sandbox(shops: &[(&str, &str, usize)], pos: &[(&str, usize)]) -> Sandbox {
    let fixtures = Fixtures {
        shops: shops
            .iter()
            .map(|(name, token, products)| {
                let shop = FixtureShop {
                    token: (*token).to_owned(),
                    products: *products,
                    behaviour: Behaviour::Healthy,
                };
                ((*name).to_owned(), shop)
            })
            .collect(),
        pos: pos
            .iter()
            .map(|(token, customers)| ((*token).to_owned(), FixturePos { customers: *customers }))
            .collect(),
    };
    Sandbox::start(fixtures).await.expect("sandbox started")
}

async fn count_items(dynamo: &aws_sdk_dynamodb::Client, table: &str) -> i32 {
    let out = dynamo
        .scan()
        .table_name(table)
        .select(aws_sdk_dynamodb::types::Select::Count)
        .send()
        .await
        .expect("scanned");
    out.count()
}

/// Runs the function until its queue is empty and returns what it logged.
async fn drain(function: &mut Function) -> String {
    function.lambda.drain(DRAIN_LIMIT).await.expect("the queue drains");
    function.lambda.logs()
}

/// The DLQ's only message, checked to be `body` discarded with `kind`; returns its error message.
async fn discarded(stack: &Stack, function: &Function, body: &str, kind: &str) -> String {
    let dead = dead_letters(&stack.sqs(), &function.dlq_url).await.expect("DLQ read");
    assert_eq!(dead.len(), 1, "one message in the DLQ: {dead:?}");
    let letter = &dead[0];
    assert_eq!(letter.body, body, "the arguments kept as they were sent");
    let error = letter.error();
    assert_eq!(error.kind, kind, "{letter:?}");
    assert_eq!(error.reason, "discarded", "{letter:?}");
    assert_eq!(error.attempts, 1, "a permanent failure is not retried: {letter:?}");
    error.message
}

#[tokio::test]
async fn store_sync_stores_a_shops_catalog_and_discards_an_unknown_store() {
    let stack = Stack::deploy().await.expect("stack");
    let shop = sandbox(&[("acme", "shpat_acme", 600)], &[]).await;
    stack.add_store("acme", json!({"shopify_token": "shpat_acme"})).await.expect("store");
    let mut fn_ =
        stack.start("store_sync", &[("SHOPIFY_BASE_URL", shop.shopify_url())]).await.expect("started");
    let sqs = stack.sqs();
    fn_.send(&sqs, r#"{"store_id":"acme"}"#).await.expect("sent");
    let unknown = r#"{"store_id":"st_gone"}"#;
    fn_.send(&sqs, unknown).await.expect("sent");
    let logs = drain(&mut fn_).await;

    let catalog = DynamoCatalog::new(stack.dynamo(), stack.table("SHOP_PRODUCTS_TABLE").unwrap());
    assert_eq!(
        catalog.count_products(&"acme".into()).await.unwrap(),
        600,
        "every product, 12 pages of 50\n{logs}"
    );
    let stores = DynamoStores::new(stack.dynamo(), stack.table("SHOP_STORES_TABLE").unwrap());
    let state = stores.get(&"acme".into()).await.unwrap().expect("store").sync_state;
    assert!(matches!(state, SyncState::Succeeded { products: 600, .. }), "progress recorded: {state:?}");
    let reason = discarded(&stack, &fn_, unknown, "not_found").await;
    assert!(reason.contains("st_gone"), "the reason names the store: {reason}");
    assert!(!logs.contains("shpat_acme"), "the token never reaches the logs");
    // The operators were told, from the sender and to the recipients the stack was deployed with.
    let emails = emails_to(fn_.setting("JOBKIT_ALERT_TO").unwrap()).await;
    assert_eq!(emails.len(), 1, "{emails:?}\n{logs}");
    let email = emails[0].to_string();
    assert!(email.contains(fn_.setting("JOBKIT_ALERT_FROM").unwrap()), "{email}");
    assert!(email.contains("store_sync") && email.contains("not_found"), "{email}");
}

/// The emails moto's SES sent to `recipient`.
async fn emails_to(recipient: &str) -> Vec<serde_json::Value> {
    let outbox = moto::Outbox::read().await.expect("moto's outbox");
    outbox.emails_naming(recipient).into_iter().cloned().collect()
}

#[tokio::test]
async fn customer_sync_pulls_the_pos_customers_and_discards_a_revoked_token() {
    let stack = Stack::deploy().await.expect("stack");
    let pos = sandbox(&[], &[("sq_good", 230)]).await;
    stack.add_store("acme", json!({"shopify_token": "x", "square_token": "sq_good"})).await.unwrap();
    stack.add_store("revoked", json!({"shopify_token": "x", "square_token": "sq_revoked"})).await.unwrap();
    let mut fn_ =
        stack.start("customer_sync", &[("SQUARE_BASE_URL", pos.square_url())]).await.expect("started");
    let sqs = stack.sqs();
    fn_.send(&sqs, r#"{"store_id":"acme"}"#).await.unwrap();
    let revoked = r#"{"store_id":"revoked"}"#;
    fn_.send(&sqs, revoked).await.unwrap();
    let logs = drain(&mut fn_).await;

    let customers = count_items(&stack.dynamo(), &stack.table("SHOP_CUSTOMERS_TABLE").unwrap()).await;
    assert_eq!(customers, 230, "every customer, across 3 pages of 100\n{logs}");
    discarded(&stack, &fn_, revoked, "unauthorized").await;
    assert!(!logs.contains("sq_good") && !logs.contains("sq_revoked"), "no token in the logs");
}

fn cart(id: &str, idle_for: chrono::Duration, variant: &str, quantity: u32) -> Cart {
    let now = Utc::now();
    Cart {
        id: id.into(),
        store_id: "acme".into(),
        items: vec![CartItem { variant_id: variant.into(), quantity }],
        status: CartStatus::Active,
        stock_reserved: true,
        last_activity_at: now - idle_for,
        expires_at: now + chrono::Duration::days(7),
    }
}

#[tokio::test]
async fn clean_active_carts_abandons_idle_carts_once_and_discards_an_event_of_another_shape() {
    let stack = Stack::deploy().await.expect("stack");
    let carts = DynamoCarts::new(
        stack.dynamo(),
        stack.table("SHOP_CARTS_TABLE").unwrap(),
        stack.table("SHOP_INVENTORY_TABLE").unwrap(),
    );
    carts.put_cart(&cart("c_idle", chrono::Duration::hours(5), "v_idle", 3)).await.unwrap();
    carts.put_cart(&cart("c_busy", chrono::Duration::minutes(5), "v_busy", 2)).await.unwrap();
    let mut fn_ = stack.start("clean_active_carts", &[]).await.expect("started");
    let sqs = stack.sqs();
    // The hourly tick and a manual run for the same idle cart, and an event of another shape.
    // (Janitors racing in parallel: shop_adapters' carts_on_dynamodb_abandon_once_and_expire.)
    let tick = stack.tick(&fn_, "2026-11-29T10:00:00Z").await.expect("the hourly schedule's tick");
    fn_.send(&sqs, &tick).await.unwrap();
    fn_.send(&sqs, "{}").await.unwrap();
    let other_event = r#"{"version":"0","detail-type":"EC2 Instance State-change Notification","source":"aws.ec2","detail":{}}"#;
    fn_.send(&sqs, other_event).await.unwrap();
    let first = drain(&mut fn_).await;
    // The tick delivered again after it ran: acknowledged without running.
    fn_.send(&sqs, &tick).await.unwrap();
    let logs = drain(&mut fn_).await;
    let again = &logs[first.len()..];
    assert!(
        again.contains(r#""status":"Duplicate""#),
        "the second delivery of the tick is a duplicate\n{again}"
    );
    assert_eq!(carts.available("v_idle").await.unwrap(), 3, "the idle cart's stock released once\n{logs}");
    assert_eq!(carts.available("v_busy").await.unwrap(), 0, "the busy cart keeps its stock");
    let reason = discarded(&stack, &fn_, other_event, "invalid_arguments").await;
    assert!(!reason.is_empty(), "the reason names the problem");
}

#[tokio::test]
async fn clean_database_deletes_what_is_past_retention_and_discards_bad_arguments() {
    let stack = Stack::deploy().await.expect("stack");
    let history = DynamoHistory::new(stack.dynamo(), stack.table("SHOP_HISTORY_TABLE").unwrap());
    let entry = |kind, id: &str, days: i64| HistoryEntry {
        kind,
        id: id.to_owned(),
        store_id: "acme".into(),
        at: Utc::now() - chrono::Duration::days(days),
        detail: json!({}),
    };
    for (kind, id, days) in [
        (RecordKind::Temporary, "t_old", 2),
        (RecordKind::Temporary, "t_new", 0),
        (RecordKind::SyncRun, "s_old", 31),
        (RecordKind::SyncRun, "s_new", 29),
        (RecordKind::AuditLog, "a_old", 400),
        (RecordKind::AuditLog, "a_new", 300),
    ] {
        history.append(&entry(kind, id, days)).await.unwrap();
    }
    let mut fn_ = stack.start("clean_database", &[]).await.expect("started");
    let sqs = stack.sqs();
    let tick = stack.tick(&fn_, "2026-11-29T03:00:00Z").await.expect("the daily schedule's tick");
    fn_.send(&sqs, &tick).await.unwrap();
    let bad = r#"{"batch_size":"lots"}"#;
    fn_.send(&sqs, bad).await.unwrap();
    let logs = drain(&mut fn_).await;

    let mut kept = Vec::new();
    for kind in RecordKind::ALL {
        kept.extend(history.recent(kind, 100).await.unwrap().into_iter().map(|e| e.id));
    }
    kept.sort();
    assert_eq!(kept, ["a_new", "s_new", "t_new"], "only what is within retention stays\n{logs}");
    let reason = discarded(&stack, &fn_, bad, "invalid_arguments").await;
    assert!(reason.contains("batch_size"), "the reason names the field: {reason}");
}

#[tokio::test]
async fn create_shopify_webhook_creates_only_what_is_missing_and_discards_a_refused_token() {
    let stack = Stack::deploy().await.expect("stack");
    let shop = sandbox(&[("acme", "shpat_acme", 1), ("revoked", "shpat_new", 1)], &[]).await;
    stack.add_store("acme", json!({"shopify_token": "shpat_acme"})).await.unwrap();
    stack.add_store("revoked", json!({"shopify_token": "shpat_old"})).await.unwrap();
    let mut fn_ = stack
        .start("create_shopify_webhook", &[("SHOPIFY_BASE_URL", shop.shopify_url())])
        .await
        .expect("started");
    // The topics the stack is deployed with (the template's default, as the operator left it).
    let topics: Vec<String> =
        fn_.setting("SHOPIFY_WEBHOOK_TOPICS").unwrap().split(',').map(str::to_owned).collect();
    assert!(topics.len() > 1, "{topics:?}");
    let sqs = stack.sqs();
    fn_.send(&sqs, r#"{"store_id":"acme"}"#).await.unwrap();
    drain(&mut fn_).await;
    assert_eq!(shop.webhook_topics("acme"), topics);

    // Installed again (a new job id, so not an idempotent replay): it lists and creates nothing.
    fn_.send(&sqs, r#"{"store_id":"acme"}"#).await.unwrap();
    let refused = r#"{"store_id":"revoked"}"#;
    fn_.send(&sqs, refused).await.unwrap();
    let logs = drain(&mut fn_).await;
    assert_eq!(shop.webhook_topics("acme"), topics, "nothing created twice\n{logs}");
    assert!(shop.webhook_topics("revoked").is_empty());
    discarded(&stack, &fn_, refused, "unauthorized").await;
}

/// Chaining across functions, and where routing by lane once broke: `create_shopify_webhook`
/// and `customer_sync` share the default lane. An installation registers the webhooks, then
/// its chained catalog and customer syncs reach `store_sync`'s and `customer_sync`'s queues
/// (the settings the stack gives the webhook function) and run in their functions, once.
#[tokio::test]
async fn an_installation_registers_the_webhooks_then_the_store_and_customer_syncs_run_in_their_functions() {
    let stack = Stack::deploy().await.expect("stack");
    let shop = sandbox(&[("acme", "shpat_acme", 300)], &[("sq_good", 120)]).await;
    stack.add_store("acme", json!({"shopify_token": "shpat_acme", "square_token": "sq_good"})).await.unwrap();
    let mut webhooks = stack
        .start("create_shopify_webhook", &[("SHOPIFY_BASE_URL", shop.shopify_url())])
        .await
        .expect("started");
    let mut customers =
        stack.start("customer_sync", &[("SQUARE_BASE_URL", shop.square_url())]).await.expect("started");
    let mut catalog =
        stack.start("store_sync", &[("SHOPIFY_BASE_URL", shop.shopify_url())]).await.expect("started");
    let sqs = stack.sqs();
    webhooks.send(&sqs, r#"{"store_id":"acme","install":true}"#).await.unwrap();
    let webhook_logs = drain(&mut webhooks).await;
    assert!(!shop.webhook_topics("acme").is_empty(), "{webhook_logs}");
    assert!(
        webhooks.lambda.queue_is_empty().await.unwrap(),
        "nothing went back into the webhook job's own queue"
    );
    let customer_logs = drain(&mut customers).await;
    let synced = count_items(&stack.dynamo(), &stack.table("SHOP_CUSTOMERS_TABLE").unwrap()).await;
    assert_eq!(synced, 120, "the chained sync ran in customer_sync's function\n{customer_logs}");
    let catalog_logs = drain(&mut catalog).await;
    let products = DynamoCatalog::new(stack.dynamo(), stack.table("SHOP_PRODUCTS_TABLE").unwrap());
    let count = products.count_products(&"acme".into()).await.unwrap();
    assert_eq!(count, 300, "the chained catalog sync ran in store_sync's function\n{catalog_logs}");
    for function in [&webhooks, &customers, &catalog] {
        let dead = dead_letters(&sqs, &function.dlq_url).await.unwrap();
        assert!(dead.is_empty(), "{}: {dead:?}", function.function_name);
    }
}

/// Lanes on the deployed stack: the recurring fan-out sends a Pro store's sync to
/// `store_sync`'s own (high) queue and a Basic store's to its low lane's queue, which a second
/// event source mapping (concurrency 2) feeds into the same function. A record from the low lane
/// is settled there: its retry's wait is set on the low lane's queue (a receipt handle is only
/// good on the queue that gave it) and nothing it does reaches the high lane.
#[tokio::test]
async fn a_basic_stores_recurring_sync_runs_and_retries_on_store_syncs_low_lane() {
    let stack = Stack::deploy().await.expect("stack");
    let deployed = stack.deployment("store_sync").await.expect("a consistent deployment");
    let [low] = &deployed.lanes[..] else { panic!("store_sync has one other lane: {:?}", deployed.lanes) };
    assert_eq!((low.lane.as_str(), low.max_concurrency), ("low", Some(2)), "{low:?}");
    assert!(low.report_batch_item_failures, "{low:?}");

    let fixture = |products, behaviour| FixtureShop { token: String::new(), products, behaviour };
    let shops = [
        ("acme", fixture(600, Behaviour::Healthy)),
        ("globex", fixture(250, Behaviour::Healthy)),
        ("initech", fixture(10, Behaviour::Down)),
    ];
    let fixtures = Fixtures {
        shops: shops
            .into_iter()
            .map(|(name, shop)| (name.to_owned(), FixtureShop { token: format!("shpat_{name}"), ..shop }))
            .collect(),
        pos: HashMap::new(),
    };
    let shop = Sandbox::start(fixtures).await.expect("sandbox started");
    for id in ["acme", "globex", "initech"] {
        stack.add_store(id, json!({"shopify_token": format!("shpat_{id}")})).await.expect("store");
    }
    stack.set_plan("globex", Plan::Pro).await.unwrap();

    let sandboxed = [("SHOPIFY_BASE_URL", shop.shopify_url())];
    let mut high = stack.start("store_sync", &sandboxed).await.expect("started");
    let mut on_low =
        stack.start_on_lane("store_sync", "low", &sandboxed).await.expect("started on the low lane");
    let sqs = stack.sqs();
    high.send(&sqs, r#"{"all_stores":true}"#).await.unwrap();
    let high_logs = drain(&mut high).await;
    let catalog = DynamoCatalog::new(stack.dynamo(), stack.table("SHOP_PRODUCTS_TABLE").unwrap());
    assert_eq!(
        catalog.count_products(&"globex".into()).await.unwrap(),
        250,
        "Pro: the high lane\n{high_logs}"
    );
    assert_eq!(catalog.count_products(&"acme".into()).await.unwrap(), 0, "Basic: not on the high lane");
    assert_eq!(
        queue_depth(&sqs, &low.queue_url).await.unwrap(),
        2,
        "the two Basic syncs wait on the low lane"
    );

    // The low lane's mapping: acme syncs; initech's shop is down, so its sync waits to retry.
    for _ in 0..4 {
        if on_low.lambda.poll(Duration::from_secs(1)).await.unwrap().is_none() {
            break;
        }
    }
    let low_logs = on_low.lambda.logs();
    assert_eq!(catalog.count_products(&"acme".into()).await.unwrap(), 600, "{low_logs}");
    assert!(low_logs.contains("Retrying("), "initech's sync failed and waits to retry\n{low_logs}");
    assert!(!low_logs.contains("could not"), "every settle call went to the low lane's queue\n{low_logs}");
    assert_eq!(queue_depth(&sqs, &low.queue_url).await.unwrap(), 1, "initech's retry waits on the low lane");
    assert!(high.lambda.queue_is_empty().await.unwrap(), "nothing of the low lane reached the high one");
    assert!(dead_letters(&sqs, &high.dlq_url).await.unwrap().is_empty());
}

#[tokio::test]
async fn share_product_text_message_texts_once_per_share_and_discards_an_invalid_phone() {
    let stack = Stack::deploy().await.expect("stack");
    stack.add_store("acme", json!({"shopify_token": "x"})).await.unwrap();
    let title = moto::unique("Red Shoe");
    stack.add_shared_product("acme", &title).await.unwrap();
    // The three deliveries arrive in one batch: the twins wait for the first in the invocation
    // and are acknowledged as duplicates once it is done.
    let mut fn_ = stack.start("share_product_text_message", &[]).await.expect("started");
    let sqs = stack.sqs();
    let share = |id: &str, phone: &str| {
        json!({"share_id": id, "store_id": "acme", "product_id": "gid://shopify/Product/1", "phone": phone})
            .to_string()
    };
    // The same share delivered three times (a double click, a producer's retry, SQS's own).
    for _ in 0..3 {
        fn_.send(&sqs, &share("sh_1", "+14155550123")).await.unwrap();
    }
    let invalid = share("sh_2", "555-0100");
    fn_.send(&sqs, &invalid).await.unwrap();
    let logs = drain(&mut fn_).await;

    let outbox = moto::Outbox::read().await.expect("moto's outbox");
    assert_eq!(outbox.texts_containing(&title), 1, "one text for the share\n{logs}");
    assert_eq!(logs.matches(r#""status":"Duplicate""#).count(), 2, "the twins acknowledged\n{logs}");
    let reason = discarded(&stack, &fn_, &invalid, "invalid_arguments").await;
    assert!(reason.contains("E.164"), "the reason names the problem: {reason}");
    assert!(!logs.contains("4155550123"), "the phone number is masked in the logs");
    let outcomes: HashMap<bool, usize> = fn_.lambda.outcomes.iter().fold(HashMap::new(), |mut m, o| {
        *m.entry(matches!(o, Outcome::Answered { .. })).or_default() += 1;
        m
    });
    assert_eq!(outcomes.get(&false), None, "every invocation answered: {:?}", fn_.lambda.outcomes);
}

/// A stack that is not a sandbox (the template's default `Sandbox=false`) refuses a platform's
/// address that is not `https`: the function fails at start, naming the setting, before it
/// reads a record, so no store's token can travel in clear text.
#[tokio::test]
async fn outside_a_sandbox_a_function_refuses_an_http_base_url_at_start() {
    use system_tests::{
        function::{FunctionProcess, deployed_binary},
        runtime_api::RuntimeApi,
        stack::lambda_environment,
    };

    let stack = Stack::deploy_with(&[("Sandbox", "false")]).await.expect("deployed");
    let deployment = stack.deployment("customer_sync").await.expect("deployment");
    assert_eq!(deployment.env.get("SHOP_SANDBOX").map(String::as_str), Some("false"), "the sandbox flag");
    let http = [("SQUARE_BASE_URL", "http://127.0.0.1:9/square".to_owned())];
    let env = lambda_environment(&deployment, moto::function_env(), &http).expect("environment");
    let env: Vec<(&str, String)> = env.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    let api = RuntimeApi::start().await.expect("stub started");
    let binary = deployed_binary("customer_sync", &deployment.logical_id).expect("binary");
    let mut function = FunctionProcess::start(&binary, &api.endpoint(), &env).expect("started");
    let status = tokio::time::timeout(Duration::from_secs(30), function.exited())
        .await
        .expect("it stops at start")
        .expect("exit status");
    let (_, stderr) = function.stop().await.expect("output");
    assert!(!status.success(), "{stderr}");
    // main prints the build error as it returns it (`Error: NotHttps { name: .., url: .. }`).
    assert!(stderr.contains("NotHttps") && stderr.contains("SQUARE_BASE_URL"), "{stderr}");
    assert!(stderr.contains("http://127.0.0.1:9/square"), "{stderr}");
    assert_eq!(api.first_next_at(), None, "it never asked for a record");
}
