//! create_shopify_webhook on the embedded backend against a stub shop that remembers its
//! subscriptions.

use std::sync::{Arc, Mutex};

use create_shopify_webhook::{CreateShopifyWebhook, CreateShopifyWebhookArgs, WebhookSettings};
use jobkit::{
    ErrorKind,
    embedded::QueueConfig,
    runner::{DlqReason, RecordStatus},
    testing::TestHarness,
};
use serde_json::{Value, json};
use shop::{
    History, Plan, RecordKind, Secret, Store, StoreRepository, SyncState,
    embedded::ShopDb,
    services::WebhookRegistrar,
    shopify::{ShopifyClient, ShopifyConfig},
};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate, matchers::method};

const URI: &str = "https://hooks.example.com/shopify";

/// A shop's webhook subscriptions: listed and created through the GraphQL shapes.
#[derive(Clone, Default)]
struct StubWebhooks {
    subscriptions: Arc<Mutex<Vec<(String, String)>>>,
    creates: Arc<Mutex<u32>>,
}

impl Respond for StubWebhooks {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&request.body).expect("JSON request");
        let query = body["query"].as_str().expect("query");
        let mut subscriptions = self.subscriptions.lock().unwrap();
        if query.contains("webhookSubscriptionCreate") {
            *self.creates.lock().unwrap() += 1;
            let topic = body["variables"]["topic"].as_str().expect("topic").to_owned();
            let uri = body["variables"]["uri"].as_str().expect("uri").to_owned();
            if topic.starts_with("NOT_") {
                return ResponseTemplate::new(200).set_body_json(
                    json!({"data": {"webhookSubscriptionCreate": {
                    "webhookSubscription": null,
                    "userErrors": [{"field": ["topic"], "message": "Topic is not a valid webhook topic"}]}}}),
                );
            }
            subscriptions.push((topic.clone(), uri.clone()));
            let id = format!("gid://shopify/WebhookSubscription/{}", subscriptions.len());
            return ResponseTemplate::new(200).set_body_json(json!({"data": {"webhookSubscriptionCreate": {
                "webhookSubscription": {"id": id, "topic": topic, "uri": uri}, "userErrors": []}}}));
        }
        let nodes: Vec<Value> = subscriptions
            .iter()
            .enumerate()
            .map(|(i, (topic, uri))| json!({"id": format!("gid://shopify/WebhookSubscription/{}", i + 1), "topic": topic, "uri": uri}))
            .collect();
        ResponseTemplate::new(200).set_body_json(json!({"data": {"webhookSubscriptions": {"nodes": nodes}}}))
    }
}

struct World {
    t: TestHarness,
    db: ShopDb,
    shopify: MockServer,
}

async fn world() -> World {
    let db = ShopDb::in_memory().unwrap();
    let store = Store {
        id: "st_42".into(),
        shopify_domain: "acme.myshopify.com".parse().unwrap(),
        pos_location_id: None,
        plan: Plan::Basic,
        sync_state: SyncState::Never,
    };
    db.put(&store).await.unwrap();
    db.set_shopify_token(&store.id, &Secret::new("shpat_test")).unwrap();
    World { t: TestHarness::new(), db, shopify: MockServer::start().await }
}

fn job(w: &World, topics: &[&str]) -> CreateShopifyWebhook {
    let config =
        ShopifyConfig { base_url: Some(format!("{}/{{shop}}", w.shopify.uri())), ..ShopifyConfig::default() };
    let registrar = WebhookRegistrar::new(ShopifyClient::new(config).unwrap(), Arc::new(w.db.clone()));
    let settings =
        WebhookSettings { topics: topics.iter().map(|t| (*t).to_owned()).collect(), uri: URI.to_owned() };
    CreateShopifyWebhook::new(Arc::new(w.db.clone()), registrar, settings, Arc::new(w.db.clone()))
}

fn args(store: &str) -> CreateShopifyWebhookArgs {
    CreateShopifyWebhookArgs { store_id: store.into(), install: false }
}

#[tokio::test]
async fn creates_only_what_is_missing_and_nothing_the_second_time() {
    let w = world().await;
    let stub = StubWebhooks::default();
    stub.subscriptions.lock().unwrap().push(("ORDERS_CREATE".into(), URI.into()));
    Mock::given(method("POST")).respond_with(stub.clone()).mount(&w.shopify).await;
    let runner = w.t.runner(job(&w, &["ORDERS_CREATE", "PRODUCTS_UPDATE", "APP_UNINSTALLED"]));

    w.t.enqueuer().perform_later::<CreateShopifyWebhook>(&args("st_42")).await.unwrap();
    assert_eq!(w.t.drain(&runner).await.succeeded(), 1);
    assert_eq!(*stub.creates.lock().unwrap(), 2, "ORDERS_CREATE existed");

    // Run again (a new enqueue, not a duplicate delivery): everything exists now.
    w.t.enqueuer().perform_later::<CreateShopifyWebhook>(&args("st_42")).await.unwrap();
    assert_eq!(w.t.drain(&runner).await.succeeded(), 1);
    assert_eq!(*stub.creates.lock().unwrap(), 2, "nothing created the second time");
    let topics: Vec<String> = stub.subscriptions.lock().unwrap().iter().map(|(t, _)| t.clone()).collect();
    assert_eq!(topics, ["ORDERS_CREATE", "PRODUCTS_UPDATE", "APP_UNINSTALLED"]);
    let mut audited: Vec<String> =
        w.db.recent(RecordKind::AuditLog, 10).await.unwrap().into_iter().map(|e| e.id).collect();
    audited.sort();
    assert_eq!(audited, ["webhook_created:st_42:APP_UNINSTALLED", "webhook_created:st_42:PRODUCTS_UPDATE"]);
}

#[tokio::test]
async fn a_second_delivery_is_a_duplicate() {
    let w = world().await;
    let stub = StubWebhooks::default();
    Mock::given(method("POST")).respond_with(stub.clone()).mount(&w.shopify).await;
    let runner = w.t.runner(job(&w, &["ORDERS_CREATE"]));
    let id = w.t.enqueuer().perform_later::<CreateShopifyWebhook>(&args("st_42")).await.unwrap();
    w.t.drain(&runner).await;
    let again = jobkit::EnqueueOptions { job_id: Some(id), ..Default::default() };
    w.t.enqueuer().perform_later_with::<CreateShopifyWebhook>(&args("st_42"), again).await.unwrap();
    assert_eq!(w.t.drain(&runner).await.count(|s| *s == RecordStatus::Duplicate), 1);
    assert_eq!(*stub.creates.lock().unwrap(), 1);
}

#[tokio::test]
async fn unknown_stores_refused_tokens_and_rejected_topics_go_to_the_dlq() {
    let w = world().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(json!({"errors": "[API] Invalid API key or access token"})),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&w.shopify)
        .await;
    Mock::given(method("POST")).respond_with(StubWebhooks::default()).mount(&w.shopify).await;
    let runner = w.t.runner(job(&w, &["NOT_A_TOPIC"]));
    let discarded = |kind| RecordStatus::DeadLettered(DlqReason::Discarded, kind);

    w.t.enqueuer().perform_later::<CreateShopifyWebhook>(&args("st_42")).await.unwrap();
    assert_eq!(w.t.run_once(&runner).await[0].status, discarded(ErrorKind::UNAUTHORIZED));
    w.t.enqueuer().perform_later::<CreateShopifyWebhook>(&args("st_missing")).await.unwrap();
    assert_eq!(w.t.run_once(&runner).await[0].status, discarded(ErrorKind::NOT_FOUND));
    w.t.enqueuer().perform_later::<CreateShopifyWebhook>(&args("st_42")).await.unwrap();
    assert_eq!(w.t.run_once(&runner).await[0].status, discarded(ErrorKind::INVALID_INPUT));
    assert_eq!(w.t.dead_letters::<CreateShopifyWebhook>().len(), 3);
}

#[tokio::test]
async fn an_installation_enqueues_the_stores_catalog_and_customer_syncs_on_their_queues_once() {
    let w = world().await;
    Mock::given(method("POST")).respond_with(StubWebhooks::default()).mount(&w.shopify).await;
    let runner = w.t.runner(job(&w, &["ORDERS_CREATE"]));
    // customer_sync's queue, by jobkit's convention (its function runs it).
    let customer_sync = jobkit::job::queue_name(shop::jobs::CUSTOMER_SYNC.name());
    w.t.queue().create_queue(&customer_sync, QueueConfig::default()).unwrap();
    let store_sync = jobkit::job::queue_name(shop::jobs::STORE_SYNC.name());
    w.t.queue().create_queue(&store_sync, QueueConfig::default()).unwrap();
    let install = CreateShopifyWebhookArgs { store_id: "st_42".into(), install: true };
    let id = w.t.enqueuer().perform_later::<CreateShopifyWebhook>(&install).await.unwrap();
    assert_eq!(w.t.drain(&runner).await.succeeded(), 1);
    // A second copy of the same job: acknowledged, nothing enqueued again.
    let again = jobkit::EnqueueOptions { job_id: Some(id), ..Default::default() };
    w.t.enqueuer().perform_later_with::<CreateShopifyWebhook>(&install, again).await.unwrap();
    w.t.drain(&runner).await;

    let chained = w.t.queue().peek(&customer_sync, 10).unwrap();
    assert_eq!(chained.len(), 1, "{chained:?}");
    assert_eq!(chained[0].body, r#"{"store_id":"st_42"}"#);
    assert_eq!(chained[0].attributes.get("job").map(String::as_str), Some("customer_sync"));
    let catalog = w.t.queue().peek(&store_sync, 10).unwrap();
    assert_eq!(catalog.len(), 1, "{catalog:?}");
    assert_eq!(catalog[0].body, r#"{"store_id":"st_42"}"#);
    assert_eq!(catalog[0].attributes.get("job").map(String::as_str), Some("store_sync"));
    assert!(
        w.t.queue().peek(&TestHarness::queue_name::<CreateShopifyWebhook>(), 10).unwrap().is_empty(),
        "nothing went to the webhook job's own queue"
    );
}
