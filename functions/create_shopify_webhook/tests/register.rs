//! create_shopify_webhook on the embedded backend against a stub shop that remembers its
//! subscriptions, lists them a page at a time and refuses what Shopify refuses before running a
//! document (`shop::shopify::cost`).

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
    shopify::{ShopifyClient, ShopifyConfig, cost},
};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate, matchers::method};

const URI: &str = "https://hooks.example.com/shopify";

/// A shop's webhook subscriptions: listed (as many a page as the document's `first`, after the
/// cursor) and created through the GraphQL shapes.
#[derive(Clone, Default)]
struct StubWebhooks {
    subscriptions: Arc<Mutex<Vec<(String, String)>>>,
    creates: Arc<Mutex<u32>>,
    /// Pages listed.
    pages: Arc<Mutex<u32>>,
}

impl StubWebhooks {
    /// A shop with these subscriptions already.
    fn with(existing: impl IntoIterator<Item = (String, String)>) -> Self {
        let stub = Self::default();
        stub.subscriptions.lock().unwrap().extend(existing);
        stub
    }
}

impl Respond for StubWebhooks {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&request.body).expect("JSON request");
        let query = body["query"].as_str().expect("query");
        let analysis = match cost::analyze(query, None, &body["variables"]) {
            Ok(analysis) => analysis,
            Err(refusal) => return ResponseTemplate::new(200).set_body_json(refusal.answer()),
        };
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
        *self.pages.lock().unwrap() += 1;
        let first = analysis.page_size("webhookSubscriptions").expect("a page size") as usize;
        let start = body["variables"]["after"].as_str().map_or(0, |c| c.parse().expect("cursor"));
        let end = (start + first).min(subscriptions.len());
        let nodes: Vec<Value> = (start..end)
            .map(|i| {
                let (topic, uri) = &subscriptions[i];
                json!({"id": format!("gid://shopify/WebhookSubscription/{}", i + 1), "topic": topic, "uri": uri})
            })
            .collect();
        ResponseTemplate::new(200).set_body_json(json!({"data": {"webhookSubscriptions": {
            "pageInfo": {"hasNextPage": end < subscriptions.len(), "endCursor": end.to_string()}, "nodes": nodes}}}))
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
    let stub = StubWebhooks::with([("ORDERS_CREATE".to_owned(), URI.to_owned())]);
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
    assert_eq!(audited, ["webhooks_created:st_42:APP_UNINSTALLED,PRODUCTS_UPDATE"], "one entry for the run");
}

/// A shop of 120 subscriptions (other addresses and topics; the listing gives 100 a page), ours
/// for ORDERS_CREATE the 111th: every page is read, so only PRODUCTS_UPDATE is created, and a
/// second run creates nothing.
#[tokio::test]
async fn a_shop_with_more_than_a_page_of_subscriptions_gets_only_what_is_missing() {
    let w = world().await;
    let existing = (0..120).map(|i| match i {
        110 => ("ORDERS_CREATE".to_owned(), URI.to_owned()),
        _ => ("ORDERS_UPDATED".to_owned(), format!("https://other-app.example.com/{i}")),
    });
    let stub = StubWebhooks::with(existing);
    Mock::given(method("POST")).respond_with(stub.clone()).mount(&w.shopify).await;
    let runner = w.t.runner(job(&w, &["ORDERS_CREATE", "PRODUCTS_UPDATE"]));

    w.t.enqueuer().perform_later::<CreateShopifyWebhook>(&args("st_42")).await.unwrap();
    assert_eq!(w.t.drain(&runner).await.succeeded(), 1);
    assert_eq!(*stub.pages.lock().unwrap(), 2, "120 subscriptions are two pages");
    assert_eq!(*stub.creates.lock().unwrap(), 1, "ORDERS_CREATE existed on the second page");

    w.t.enqueuer().perform_later::<CreateShopifyWebhook>(&args("st_42")).await.unwrap();
    assert_eq!(w.t.drain(&runner).await.succeeded(), 1);
    assert_eq!(*stub.creates.lock().unwrap(), 1, "nothing created the second time");
    let ours: Vec<String> = stub
        .subscriptions
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, uri)| uri == URI)
        .map(|(t, _)| t.clone())
        .collect();
    assert_eq!(ours, ["ORDERS_CREATE", "PRODUCTS_UPDATE"]);
    let audited: Vec<String> =
        w.db.recent(RecordKind::AuditLog, 10).await.unwrap().into_iter().map(|e| e.id).collect();
    assert_eq!(audited, ["webhooks_created:st_42:PRODUCTS_UPDATE"]);
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
