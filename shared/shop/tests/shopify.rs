//! The Shopify client against an HTTP stub serving realistic Admin GraphQL answers.

use std::{
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
    time::Duration,
};

use jobkit::IntegrationErrorKind;
use serde_json::{Value, json};
use shop::{
    Secret, StoreId,
    shopify::{API_VERSION, Pacer, ShopifyClient, ShopifyConfig, ShopifyShop},
};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{body_partial_json, header, method, path},
};

/// The pinned version, spelled out: a bump of `API_VERSION` shows here too.
const GRAPHQL_PATH: &str = "/acme/admin/api/2026-10/graphql.json";

/// Records waits instead of sleeping.
#[derive(Debug, Default)]
struct RecordingPacer(Mutex<Vec<Duration>>);

impl Pacer for RecordingPacer {
    fn wait(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        self.0.lock().unwrap().push(duration);
        Box::pin(async {})
    }
}

fn shop() -> ShopifyShop {
    ShopifyShop { domain: "acme.myshopify.com".parse().unwrap(), token: Secret::new("shpat_test") }
}

fn client(server: &MockServer) -> (ShopifyClient, Arc<RecordingPacer>) {
    let pacer = Arc::new(RecordingPacer::default());
    let config =
        ShopifyConfig { base_url: Some(format!("{}/{{shop}}", server.uri())), ..ShopifyConfig::default() };
    (ShopifyClient::with_pacer(config, pacer.clone()).unwrap(), pacer)
}

fn cost(available: f64) -> Value {
    json!({"cost": {"requestedQueryCost": 52, "actualQueryCost": 12,
        "throttleStatus": {"maximumAvailable": 2000.0, "currentlyAvailable": available, "restoreRate": 100.0}}})
}

fn product_node(n: u32) -> Value {
    json!({
        "id": format!("gid://shopify/Product/{n}"),
        "title": format!("Product {n}"),
        "handle": format!("product-{n}"),
        "variants": {"nodes": [
            {"id": format!("gid://shopify/ProductVariant/{n}1"), "sku": format!("SKU-{n}"), "price": "19.90", "inventoryQuantity": 7},
            {"id": format!("gid://shopify/ProductVariant/{n}2"), "sku": "", "price": "24.5", "inventoryQuantity": null}
        ]}
    })
}

fn products_page(first: u32, count: u32, next: Option<&str>) -> Value {
    json!({
        "data": {
            "shop": {"currencyCode": "EUR"},
            "products": {
                "pageInfo": {"hasNextPage": next.is_some(), "endCursor": next},
                "nodes": (first..first + count).map(product_node).collect::<Vec<_>>()
            }
        },
        "extensions": cost(1900.0)
    })
}

#[tokio::test]
async fn products_are_read_page_by_page_with_the_cursor() {
    let server = MockServer::start().await;
    for (after, first, next) in
        [(Value::Null, 1, Some("c1")), (json!("c1"), 3, Some("c2")), (json!("c2"), 5, None)]
    {
        Mock::given(method("POST"))
            .and(path(GRAPHQL_PATH))
            .and(header("X-Shopify-Access-Token", "shpat_test"))
            .and(body_partial_json(json!({"variables": {"after": after, "first": 2}})))
            .respond_with(ResponseTemplate::new(200).set_body_json(products_page(first, 2, next)))
            .expect(1)
            .mount(&server)
            .await;
    }
    let (client, pacer) = client(&server);
    let store = StoreId::from("st_42");
    let mut cursor: Option<String> = None;
    let mut products = Vec::new();
    loop {
        let page = client.products_page(&store, &shop(), cursor.as_deref(), 2).await.unwrap();
        products.extend(page.products);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(products.len(), 6);
    let first = &products[0];
    assert_eq!(first.id.as_str(), "gid://shopify/Product/1");
    assert_eq!(first.store_id, store);
    assert_eq!(first.variants[0].price.minor, 1990);
    assert_eq!(first.variants[0].price.currency, "EUR");
    assert_eq!(first.variants[0].inventory, 7);
    assert_eq!(first.variants[1].sku, None, "an empty SKU is no SKU");
    assert_eq!(first.variants[1].price.minor, 2450);
    assert!(pacer.0.lock().unwrap().is_empty(), "a full budget needs no wait");
}

#[tokio::test]
async fn a_throttled_answer_waits_for_the_bucket_to_refill_then_retries() {
    let server = MockServer::start().await;
    let throttled = json!({
        "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/limits"}}],
        "extensions": cost(2.0)
    });
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(throttled))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(products_page(1, 1, None)))
        .mount(&server)
        .await;
    let (client, pacer) = client(&server);
    let page = client.products_page(&StoreId::from("st_1"), &shop(), None, 50).await.unwrap();
    assert_eq!(page.products.len(), 1);
    // 52 points requested, 2 left, 100 restored a second: half a second.
    assert_eq!(*pacer.0.lock().unwrap(), [Duration::from_millis(500)]);
}

#[tokio::test]
async fn http_429_honours_retry_after_and_gives_up_after_the_tries() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(429).insert_header("Retry-After", "3").set_body_string("Too Many Requests"),
        )
        .expect(4)
        .mount(&server)
        .await;
    let (client, pacer) = client(&server);
    let err = client.webhook_subscriptions(&shop()).await.unwrap_err();
    assert_eq!(err.kind, IntegrationErrorKind::RateLimited);
    assert!(err.recoverable, "the job's policy retries it later");
    assert_eq!(*pacer.0.lock().unwrap(), [Duration::from_secs(3); 3]);
}

#[tokio::test]
async fn a_refused_token_is_permanent_and_not_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(json!({"errors": "[API] Invalid API key or access token"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let (client, _) = client(&server);
    let err = client.products_page(&StoreId::from("st_1"), &shop(), None, 50).await.unwrap_err();
    assert_eq!(err.kind, IntegrationErrorKind::Unauthorized);
    assert!(!err.recoverable);
    assert!(!format!("{err:?}").contains("shpat_test"), "the token never shows in errors");
}

#[tokio::test]
async fn a_low_budget_makes_the_next_request_wait() {
    let server = MockServer::start().await;
    let mut low = products_page(1, 1, Some("c1"));
    low["extensions"] = cost(100.0);
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(low))
        .mount(&server)
        .await;
    let (client, pacer) = client(&server);
    client.products_page(&StoreId::from("st_1"), &shop(), None, 1).await.unwrap();
    client.products_page(&StoreId::from("st_1"), &shop(), Some("c1"), 1).await.unwrap();
    // 100 of 2000 left; wanted: the page's last cost (52) and a tenth (200); 100 restored a
    // second: 1.52 s.
    assert_eq!(*pacer.0.lock().unwrap(), [Duration::from_millis(1520)]);
}

#[tokio::test]
async fn the_next_request_waits_for_room_for_a_query_like_the_last_not_for_a_throttled_answer() {
    let server = MockServer::start().await;
    let mut costly = products_page(1, 1, Some("c1"));
    costly["extensions"] = json!({"cost": {"requestedQueryCost": 1500, "actualQueryCost": 1500,
        "throttleStatus": {"maximumAvailable": 2000.0, "currentlyAvailable": 300.0, "restoreRate": 100.0}}});
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(costly))
        .expect(2)
        .mount(&server)
        .await;
    let (client, pacer) = client(&server);
    client.products_page(&StoreId::from("st_1"), &shop(), None, 1).await.unwrap();
    client.products_page(&StoreId::from("st_1"), &shop(), Some("c1"), 1).await.unwrap();
    // 300 left, 1700 wanted (the last page's 1500 and a tenth), 100 a second: 14 s.
    assert_eq!(*pacer.0.lock().unwrap(), [Duration::from_secs(14)]);
}

#[tokio::test]
async fn webhooks_are_listed_and_created_and_user_errors_are_permanent() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(wiremock::matchers::body_string_contains("webhookSubscriptions(first"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {"webhookSubscriptions": {"nodes": [
            {"id": "gid://shopify/WebhookSubscription/1", "topic": "ORDERS_CREATE", "uri": "https://hooks.example.com/orders"}
        ]}}})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(body_partial_json(json!({"variables": {"topic": "PRODUCTS_UPDATE"}})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {"webhookSubscriptionCreate": {
            "webhookSubscription": {"id": "gid://shopify/WebhookSubscription/2", "topic": "PRODUCTS_UPDATE", "uri": "https://hooks.example.com/products"},
            "userErrors": []
        }}})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(body_partial_json(json!({"variables": {"topic": "NOT_A_TOPIC"}})))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"data": {"webhookSubscriptionCreate": {
                "webhookSubscription": null,
                "userErrors": [{"field": ["webhookSubscription", "uri"], "message": "Address is invalid"}]
            }}}),
        ))
        .mount(&server)
        .await;
    let (client, _) = client(&server);
    let listed = client.webhook_subscriptions(&shop()).await.unwrap();
    assert_eq!(listed[0].topic, "ORDERS_CREATE");
    let created = client
        .create_webhook_subscription(&shop(), "PRODUCTS_UPDATE", "https://hooks.example.com/products")
        .await
        .unwrap();
    assert_eq!(created.id, "gid://shopify/WebhookSubscription/2");
    let err = client.create_webhook_subscription(&shop(), "NOT_A_TOPIC", "ftp://x").await.unwrap_err();
    assert_eq!(err.kind, IntegrationErrorKind::InvalidInput);
    assert!(err.message.contains("webhookSubscription.uri: Address is invalid"), "{}", err.message);
}

#[tokio::test]
async fn a_redirect_is_not_followed_and_is_a_permanent_error_naming_its_host() {
    let server = MockServer::start().await;
    let elsewhere = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(302).insert_header("Location", format!("{}/collect?x=1", elsewhere.uri())),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(200).set_body_json(products_page(1, 1, None)))
        .mount(&elsewhere)
        .await;
    let (client, pacer) = client(&server);
    let result = client.products_page(&StoreId::from("st_1"), &shop(), None, 50).await;

    let received = elsewhere.received_requests().await.unwrap();
    assert!(received.is_empty(), "the redirect was followed, with the token: {received:?}");
    let err = result.unwrap_err();
    assert_eq!(err.kind, IntegrationErrorKind::Unexpected);
    assert!(!err.recoverable, "a redirect does not pass by itself");
    let host = elsewhere.address().to_string();
    assert!(err.message.contains("302") && err.message.contains(&host), "{}", err.message);
    assert!(!err.message.contains("/collect"), "only the host is named: {}", err.message);
    assert!(!format!("{err:?}").contains("shpat_test"), "the token never shows in errors");
    assert!(pacer.0.lock().unwrap().is_empty(), "not retried");
}

#[tokio::test]
async fn a_retry_after_past_the_cap_is_not_slept_in_process_but_left_to_the_jobs_retry_policy() {
    for huge in ["1e20", "99999999999", "inf", "61"] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", huge))
            .expect(1)
            .mount(&server)
            .await;
        let (client, pacer) = client(&server);
        let err = client.webhook_subscriptions(&shop()).await.unwrap_err();
        assert_eq!(err.kind, IntegrationErrorKind::RateLimited, "{huge}");
        assert!(err.recoverable, "{huge}: the job's policy backs off instead");
        assert!(pacer.0.lock().unwrap().is_empty(), "{huge}: no wait in process");
    }
}

#[tokio::test]
async fn an_unreadable_retry_after_waits_the_default() {
    for odd in ["NaN", "-5", "soon"] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(503).insert_header("Retry-After", odd))
            .expect(4)
            .mount(&server)
            .await;
        let (client, pacer) = client(&server);
        let err = client.webhook_subscriptions(&shop()).await.unwrap_err();
        assert_eq!(err.kind, IntegrationErrorKind::Unavailable, "{odd}");
        assert_eq!(*pacer.0.lock().unwrap(), [Duration::from_secs(2); 3], "{odd}");
    }
}

fn variant_nodes(product: u32, range: std::ops::Range<u32>) -> Vec<Value> {
    range
        .map(|v| {
            json!({"id": format!("gid://shopify/ProductVariant/{product}-{v}"), "sku": format!("SKU-{v}"),
                        "price": "5.00", "inventoryQuantity": 1})
        })
        .collect()
}

/// A product of 300 variants: the products page carries the first 16 (what the products query
/// asks, to stay under Shopify's single-query cost maximum) and says there are more; the rest
/// come from the product's own variant pages, 250 at a time.
#[tokio::test]
async fn a_product_with_more_variants_than_a_page_gets_all_of_them() {
    let server = MockServer::start().await;
    let big = json!({
        "id": "gid://shopify/Product/7", "title": "Many sizes", "handle": "many-sizes",
        "variants": {"pageInfo": {"hasNextPage": true, "endCursor": "v16"}, "nodes": variant_nodes(7, 0..16)}
    });
    let page = json!({"data": {"shop": {"currencyCode": "EUR"},
        "products": {"pageInfo": {"hasNextPage": false, "endCursor": null}, "nodes": [big, product_node(8)]}},
        "extensions": cost(1900.0)});
    Mock::given(method("POST"))
        .and(path(GRAPHQL_PATH))
        .and(body_partial_json(json!({"variables": {"first": 50}})))
        .respond_with(ResponseTemplate::new(200).set_body_json(page))
        .expect(1)
        .mount(&server)
        .await;
    for (after, range, next) in [("v16", 16..266, Some("v266")), ("v266", 266..300, None)] {
        let answer = json!({"data": {"product": {"variants": {
            "pageInfo": {"hasNextPage": next.is_some(), "endCursor": next}, "nodes": variant_nodes(7, range)}}},
            "extensions": cost(1900.0)});
        Mock::given(method("POST"))
            .and(path(GRAPHQL_PATH))
            .and(body_partial_json(json!({"variables": {"id": "gid://shopify/Product/7", "after": after}})))
            .respond_with(ResponseTemplate::new(200).set_body_json(answer))
            .expect(1)
            .mount(&server)
            .await;
    }
    let (client, _) = client(&server);
    let page = client.products_page(&StoreId::from("st_42"), &shop(), None, 50).await.unwrap();
    assert_eq!(page.products.len(), 2);
    let variants: Vec<&str> = page.products[0].variants.iter().map(|v| v.id.as_str()).collect();
    assert_eq!(variants.len(), 300, "none of the 284 past the first page lost");
    assert_eq!(variants[299], "gid://shopify/ProductVariant/7-299");
    assert_eq!(page.products[1].variants.len(), 2, "a product within one page asks nothing more");
}

fn webhook_nodes(range: std::ops::Range<u32>) -> Vec<Value> {
    range
        .map(|n| {
            json!({"id": format!("gid://shopify/WebhookSubscription/{n}"), "topic": "ORDERS_CREATE",
                   "uri": format!("https://hooks.example.com/{n}")})
        })
        .collect()
}

/// The shop's webhook subscriptions are read page by page to the last (120 in pages of 100);
/// a next page without a new cursor is an error, not a loop.
#[tokio::test]
async fn webhook_subscriptions_are_read_to_the_last_page() {
    let server = MockServer::start().await;
    for (after, range, next) in [(Value::Null, 0..100, Some("c100")), (json!("c100"), 100..120, None)] {
        let answer = json!({"data": {"webhookSubscriptions": {
            "pageInfo": {"hasNextPage": next.is_some(), "endCursor": next}, "nodes": webhook_nodes(range)}}});
        Mock::given(method("POST"))
            .and(body_partial_json(json!({"variables": {"after": after}})))
            .respond_with(ResponseTemplate::new(200).set_body_json(answer))
            .expect(1)
            .mount(&server)
            .await;
    }
    let (paged, _) = client(&server);
    let listed = paged.webhook_subscriptions(&shop()).await.unwrap();
    assert_eq!(listed.len(), 120);
    assert_eq!(listed[119].uri.as_deref(), Some("https://hooks.example.com/119"));

    let stuck = MockServer::start().await;
    let answer = json!({"data": {"webhookSubscriptions": {
        "pageInfo": {"hasNextPage": true, "endCursor": "same"}, "nodes": webhook_nodes(0..1)}}});
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(answer))
        .expect(2)
        .mount(&stuck)
        .await;
    let (stuck_client, _) = client(&stuck);
    let err = stuck_client.webhook_subscriptions(&shop()).await.unwrap_err();
    assert_eq!(err.kind, IntegrationErrorKind::Unexpected, "{err:?}");
}

#[tokio::test]
async fn a_mutation_that_failed_as_a_whole_reports_shopifys_errors() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": {"webhookSubscriptionCreate": null},
            "errors": [{"message": "Access denied for webhookSubscriptionCreate field.",
                        "extensions": {"code": "ACCESS_DENIED"}}]
        })))
        .expect(1)
        .mount(&server)
        .await;
    let (client, _) = client(&server);
    let err = client
        .create_webhook_subscription(&shop(), "ORDERS_CREATE", "https://hooks.example.com/orders")
        .await
        .unwrap_err();
    assert_eq!(err.kind, IntegrationErrorKind::InvalidInput);
    assert!(err.message.contains("Access denied"), "{}", err.message);
}

/// A buffer the client's metric lines and the test's log lines are written into.
#[derive(Debug, Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

/// Shopify falls forward to the oldest supported version once the pinned one is retired, and
/// says so in `X-Shopify-Api-Version`: the client warns (both versions named), counts it and
/// writes the EMF metric line; an answer of the pinned version does none of that.
#[tokio::test]
async fn an_answer_served_by_another_api_version_is_logged_and_counted() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(body_partial_json(json!({"variables": {"after": null}})))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("X-Shopify-Api-Version", API_VERSION)
                .set_body_json(products_page(1, 1, Some("c1"))),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(body_partial_json(json!({"variables": {"after": "c1"}})))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("X-Shopify-Api-Version", "2027-01")
                .set_body_json(products_page(2, 1, None)),
        )
        .expect(1)
        .mount(&server)
        .await;
    let metrics = Captured::default();
    let logs = Captured::default();
    let subscriber = {
        let logs = logs.clone();
        tracing_subscriber::fmt()
            .with_writer(move || logs.clone())
            .with_max_level(tracing::Level::WARN)
            .with_ansi(false)
            .finish()
    };
    let _default = tracing::subscriber::set_default(subscriber);
    let (client, _) = client(&server);
    let client = client.with_metrics_writer("Jobs", Box::new(metrics.clone()));

    client.products_page(&StoreId::from("st_1"), &shop(), None, 1).await.unwrap();
    assert_eq!(client.api_version_mismatches(), 0, "the pinned version was served");
    assert!(metrics.text().is_empty() && logs.text().is_empty(), "{}{}", metrics.text(), logs.text());

    let page = client.products_page(&StoreId::from("st_1"), &shop(), Some("c1"), 1).await.unwrap();
    assert_eq!(page.products.len(), 1, "the answer is still used");
    assert_eq!(client.api_version_mismatches(), 1);
    assert_eq!(client.clone().api_version_mismatches(), 1, "clones share the count");

    let log = logs.text();
    assert!(log.contains("WARN"), "{log}");
    assert!(log.contains(&format!("requested_version=\"{API_VERSION}\"")), "{log}");
    assert!(log.contains("served_version=\"2027-01\""), "{log}");
    assert!(log.contains("document=\"Products\""), "{log}");
    assert!(!log.contains("shpat_test"), "the token never shows in logs");

    let lines: Vec<Value> = metrics.text().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    let line = &lines[0];
    let directive = &line["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(directive["Namespace"], "Jobs");
    assert_eq!(directive["Metrics"][0], json!({"Name": "shopify_api_version_mismatch", "Unit": "Count"}));
    assert_eq!(directive["Dimensions"], json!([[]]));
    assert!(line["_aws"]["Timestamp"].as_i64().unwrap() > 0);
    assert_eq!(line["shopify_api_version_mismatch"], 1);
    assert_eq!(line["requested_version"], API_VERSION);
    assert_eq!(line["served_version"], "2027-01");
}

#[tokio::test]
async fn a_product_node_that_cannot_be_mapped_is_set_aside_and_the_page_stands() {
    let server = MockServer::start().await;
    let mut page = products_page(1, 5, Some("next"));
    let nodes = page["data"]["products"]["nodes"].as_array_mut().unwrap();
    nodes[1]["variants"]["nodes"][0]["price"] = json!("19,90");
    nodes[2].as_object_mut().unwrap().remove("title");
    nodes[3].as_object_mut().unwrap().remove("id");
    nodes[4]["variants"]["nodes"][1]["id"] = json!(null);
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page))
        .mount(&server)
        .await;
    let (client, _) = client(&server);

    let page = client.products_page(&StoreId::from("st_1"), &shop(), None, 50).await.unwrap();
    let ids: Vec<&str> = page.products.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["gid://shopify/Product/1"]);
    assert_eq!(page.next_cursor.as_deref(), Some("next"), "the page goes on");
    let set_aside: Vec<&str> = page.set_aside.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(
        set_aside,
        ["gid://shopify/Product/2", "gid://shopify/Product/3", "handle:product-4", "gid://shopify/Product/5"]
    );
    assert!(page.set_aside[0].reason.contains("unreadable price"), "{:?}", page.set_aside[0]);
    assert!(page.set_aside[1].reason.contains("title"), "{:?}", page.set_aside[1]);
    assert!(page.set_aside[2].reason.contains("id"), "{:?}", page.set_aside[2]);
    assert!(page.set_aside[3].reason.contains("variant"), "{:?}", page.set_aside[3]);
}
