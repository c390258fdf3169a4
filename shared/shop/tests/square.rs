//! The Square client against an HTTP stub: what it does with answers it must not trust, and
//! the requests it sends keeping within Square's published limits.

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
    shopify::Pacer,
    square::{SquareClient, SquareConfig},
};
use wiremock::{
    Mock, MockServer, Request, Respond, ResponseTemplate,
    matchers::{any, method, path},
};

/// Records waits instead of sleeping.
#[derive(Debug, Default)]
struct RecordingPacer(Mutex<Vec<Duration>>);

impl Pacer for RecordingPacer {
    fn wait(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        self.0.lock().unwrap().push(duration);
        Box::pin(async {})
    }
}

fn client(server: &MockServer) -> (SquareClient, Arc<RecordingPacer>) {
    let pacer = Arc::new(RecordingPacer::default());
    let config = SquareConfig { base_url: server.uri(), ..SquareConfig::default() };
    (SquareClient::with_pacer(config, pacer.clone()).unwrap(), pacer)
}

async fn customers_page(
    client: &SquareClient,
) -> Result<shop::square::CustomerPage, jobkit::IntegrationError> {
    client.customers_page(&StoreId::from("st_1"), "L1", &Secret::new("sq0atp-test"), None).await
}

#[tokio::test]
async fn a_redirect_is_not_followed_and_is_a_permanent_error_naming_its_host() {
    let server = MockServer::start().await;
    let elsewhere = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2/customers"))
        .respond_with(
            ResponseTemplate::new(307).insert_header("Location", format!("{}/collect?x=1", elsewhere.uri())),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"customers": []})))
        .mount(&elsewhere)
        .await;
    let (client, pacer) = client(&server);
    let result = customers_page(&client).await;

    let received = elsewhere.received_requests().await.unwrap();
    assert!(received.is_empty(), "the redirect was followed, with the token: {received:?}");
    let err = result.unwrap_err();
    assert_eq!(err.kind, IntegrationErrorKind::Unexpected);
    assert!(!err.recoverable, "a redirect does not pass by itself");
    let host = elsewhere.address().to_string();
    assert!(err.message.contains("307") && err.message.contains(&host), "{}", err.message);
    assert!(!err.message.contains("/collect"), "only the host is named: {}", err.message);
    assert!(!format!("{err:?}").contains("sq0atp-test"), "the token never shows in errors");
    assert!(pacer.0.lock().unwrap().is_empty(), "not retried");
}

#[tokio::test]
async fn a_retry_after_past_the_cap_is_not_slept_in_process_but_left_to_the_jobs_retry_policy() {
    for huge in ["1e20", "99999999999", "inf", "61"] {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", huge))
            .expect(1)
            .mount(&server)
            .await;
        let (client, pacer) = client(&server);
        let err = customers_page(&client).await.unwrap_err();
        assert_eq!(err.kind, IntegrationErrorKind::RateLimited, "{huge}");
        assert!(err.recoverable, "{huge}: the job's policy backs off instead");
        assert!(pacer.0.lock().unwrap().is_empty(), "{huge}: no wait in process");
    }
}

#[tokio::test]
async fn a_retry_after_within_the_cap_is_waited_in_process() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503).insert_header("Retry-After", "60"))
        .expect(4)
        .mount(&server)
        .await;
    let (client, pacer) = client(&server);
    let err = customers_page(&client).await.unwrap_err();
    assert_eq!(err.kind, IntegrationErrorKind::Unavailable);
    assert_eq!(*pacer.0.lock().unwrap(), [Duration::from_secs(60); 3]);
}

/// `GET /v2/customers`: customers `c0`..`c{n-1}` on one page.
async fn mount_customers(server: &MockServer, n: usize) {
    let customers: Vec<Value> = (0..n).map(|i| json!({"id": format!("c{i}"), "given_name": "Ana"})).collect();
    Mock::given(method("GET"))
        .and(path("/v2/customers"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "customers": customers })))
        .mount(server)
        .await;
}

/// The customer ids of a search.
fn searched_ids(body: &Value) -> Vec<String> {
    serde_json::from_value(body["query"]["filter"]["customer_filter"]["customer_ids"].clone()).unwrap()
}

/// A search as Square answers it: more than 10 customer ids refused in Square's error shape;
/// customer `cN` has `N % 3 + 1` completed orders of `100 * (N + 1)` cents each, 2 orders a page.
struct PagedOrders;

impl Respond for PagedOrders {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        let ids = searched_ids(&body);
        if ids.len() > 10 {
            return ResponseTemplate::new(400).set_body_json(json!({"errors": [{
                "category": "INVALID_REQUEST_ERROR", "code": "ARRAY_LENGTH_TOO_LONG",
                "detail": "too many", "field": "query.filter.customer_filter.customer_ids"}]}));
        }
        let orders: Vec<Value> = ids
            .iter()
            .flat_map(|id| {
                let n: i64 = id[1..].parse().unwrap();
                (0..n % 3 + 1).map(move |k| {
                    json!({"id": format!("o{n}-{k}"), "customer_id": id, "state": "COMPLETED",
                           "total_money": {"amount": 100 * (n + 1), "currency": "USD"}})
                })
            })
            .collect();
        let start: usize = body["cursor"].as_str().map_or(0, |c| c[1..].parse().unwrap());
        let end = (start + 2).min(orders.len());
        let mut answer = json!({"orders": orders[start..end]});
        if end < orders.len() {
            answer["cursor"] = json!(format!("p{end}"));
        }
        ResponseTemplate::new(200).set_body_json(answer)
    }
}

#[tokio::test]
async fn a_pages_order_history_is_searched_ten_customers_at_a_time_and_each_search_to_its_last_page() {
    let server = MockServer::start().await;
    mount_customers(&server, 25).await;
    Mock::given(method("POST")).and(path("/v2/orders/search")).respond_with(PagedOrders).mount(&server).await;
    let (client, _) = client(&server);
    let page = customers_page(&client).await.unwrap();

    assert_eq!(page.customers.len(), 25);
    for customer in &page.customers {
        let n: i64 = customer.id.as_str()[1..].parse().unwrap();
        let count = n % 3 + 1;
        assert_eq!(
            (i64::from(customer.order_count), customer.total_spent_minor),
            (count, count * 100 * (n + 1)),
            "{}: every order of every page of its search, once",
            customer.id.as_str()
        );
    }
    let searches: Vec<(Value, Option<String>)> = server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.url.path() == "/v2/orders/search")
        .map(|r| {
            let version = r.headers.get("square-version").and_then(|v| v.to_str().ok()).map(str::to_owned);
            (serde_json::from_slice(&r.body).unwrap(), version)
        })
        .collect();
    let mut batches: Vec<Vec<String>> = Vec::new();
    let mut first_of_batch: Option<Value> = None;
    for (body, version) in &searches {
        assert_eq!(version.as_deref(), Some("2026-09-16"), "the newest version the SDK pins");
        assert_eq!(body["location_ids"], json!(["L1"]), "{body}");
        assert!(body["limit"].as_u64().is_some_and(|l| (1..=1000).contains(&l)), "{body}");
        assert_eq!(body["query"]["filter"]["state_filter"]["states"], json!(["COMPLETED"]));
        let ids = searched_ids(body);
        assert!((1..=10).contains(&ids.len()), "at most 10 customer ids a search: {ids:?}");
        if body.get("cursor").is_none() {
            batches.push(ids);
            first_of_batch = Some(body.clone());
        } else {
            // Square: a later page is asked for with the original query.
            let first = first_of_batch.as_ref().expect("a first page before its next");
            assert_eq!((&body["query"], &body["location_ids"]), (&first["query"], &first["location_ids"]));
        }
    }
    let sizes: Vec<usize> = batches.iter().map(Vec::len).collect();
    assert_eq!(sizes, [10, 10, 5]);
    let searched: Vec<String> = batches.concat();
    let expected: Vec<String> = (0..25).map(|i| format!("c{i}")).collect();
    assert_eq!(searched, expected, "every customer of the page searched once");
    assert!(searches.len() > batches.len(), "the searches were paged: {}", searches.len());
}

#[tokio::test]
async fn an_order_found_by_two_searches_counts_once_for_its_owner_and_only_completed_orders_count() {
    let server = MockServer::start().await;
    mount_customers(&server, 12).await;
    // Square's customer filter matches the order's customer and any tender's.
    let orders = json!([
        // c1's order, paid by c11 (in the second batch): found by both searches.
        {"id": "a", "customer_id": "c1", "state": "COMPLETED", "total_money": {"amount": 700},
         "tenders": [{"customer_id": "c11"}]},
        // No customer on the order, c10's card on the tender: c10's.
        {"id": "b", "state": "COMPLETED", "total_money": {"amount": 300}, "tenders": [{"customer_id": "c10"}]},
        // c20's (on another page of customers) paid by c2: counted with c20's page, not here.
        {"id": "c", "customer_id": "c20", "state": "COMPLETED", "total_money": {"amount": 900},
         "tenders": [{"customer_id": "c2"}]},
        // Not completed, whatever the filter let through.
        {"id": "d", "customer_id": "c3", "state": "OPEN", "total_money": {"amount": 500}},
    ]);
    Mock::given(method("POST"))
        .and(path("/v2/orders/search"))
        .respond_with(move |request: &Request| {
            let body: Value = serde_json::from_slice(&request.body).unwrap();
            let ids = searched_ids(&body);
            let found: Vec<&Value> = orders
                .as_array()
                .unwrap()
                .iter()
                .filter(|o| {
                    let tender = o["tenders"][0]["customer_id"].as_str();
                    [o["customer_id"].as_str(), tender]
                        .into_iter()
                        .flatten()
                        .any(|c| ids.iter().any(|id| id == c))
                })
                .collect();
            ResponseTemplate::new(200).set_body_json(json!({ "orders": found }))
        })
        .expect(2)
        .mount(&server)
        .await;
    let (client, _) = client(&server);
    let page = customers_page(&client).await.unwrap();

    let history = |id: &str| {
        let c = page.customers.iter().find(|c| c.id.as_str() == id).unwrap();
        (c.order_count, c.total_spent_minor)
    };
    assert_eq!(history("c1"), (1, 700), "once, for its owner");
    assert_eq!(history("c11"), (0, 0), "the payer of another's order");
    assert_eq!(history("c10"), (1, 300), "the tender's customer when the order names none");
    assert_eq!(history("c2"), (0, 0), "another page's customer's order, paid by c2");
    assert_eq!(history("c3"), (0, 0), "an open order");
}

#[tokio::test]
async fn a_request_square_refuses_is_permanent_and_names_squares_code_and_field() {
    let server = MockServer::start().await;
    mount_customers(&server, 3).await;
    Mock::given(method("POST"))
        .and(path("/v2/orders/search"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"errors": [{
            "category": "INVALID_REQUEST_ERROR", "code": "ARRAY_LENGTH_TOO_LONG",
            "detail": "at most 10 elements", "field": "query.filter.customer_filter.customer_ids"}]})))
        .expect(1)
        .mount(&server)
        .await;
    let (client, pacer) = client(&server);
    let err = customers_page(&client).await.unwrap_err();

    assert_eq!(err.kind, IntegrationErrorKind::InvalidInput);
    assert!(!err.recoverable, "the same request is refused again");
    assert!(
        err.message.contains("ARRAY_LENGTH_TOO_LONG")
            && err.message.contains("query.filter.customer_filter.customer_ids"),
        "{}",
        err.message
    );
    assert_eq!(err.details.get("code").map(String::as_str), Some("ARRAY_LENGTH_TOO_LONG"));
    assert!(pacer.0.lock().unwrap().is_empty(), "not retried");
}

#[tokio::test]
async fn a_search_that_answers_with_the_cursor_it_was_given_is_an_error_not_an_endless_walk() {
    let server = MockServer::start().await;
    mount_customers(&server, 3).await;
    Mock::given(method("POST"))
        .and(path("/v2/orders/search"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"orders": [], "cursor": "again"})))
        .expect(2)
        .mount(&server)
        .await;
    let (client, _) = client(&server);
    let err = customers_page(&client).await.unwrap_err();
    assert_eq!(err.kind, IntegrationErrorKind::Unexpected, "{}", err.message);
}

#[tokio::test]
async fn a_customer_or_an_order_that_cannot_be_read_is_set_aside_and_the_page_stands() {
    let server = MockServer::start().await;
    let customers = json!({"customers": [
        {"id": "c0", "given_name": "Ana"},
        {"id": "c1", "given_name": "Bo", "preferences": {"email_unsubscribed": "no"}},
        {"given_name": "Cy", "created_at": "2025-01-01T00:00:00Z"},
        {"id": "c3", "phone_number": "415-555-0107"}
    ]});
    Mock::given(method("GET"))
        .and(path("/v2/customers"))
        .respond_with(ResponseTemplate::new(200).set_body_json(customers))
        .mount(&server)
        .await;
    let orders = json!({"orders": [
        {"id": "o1", "customer_id": "c0", "state": "COMPLETED", "total_money": {"amount": 1500, "currency": "USD"}},
        {"id": "o2", "customer_id": "c0", "state": "COMPLETED", "total_money": {"amount": "15.00", "currency": "USD"}},
        {"id": "o3", "customer_id": "c9", "state": "COMPLETED", "total_money": {"amount": 1.5}}
    ]});
    Mock::given(method("POST"))
        .and(path("/v2/orders/search"))
        .respond_with(ResponseTemplate::new(200).set_body_json(orders))
        .expect(1)
        .mount(&server)
        .await;
    let (client, _) = client(&server);

    let page = customers_page(&client).await.unwrap();
    let ids: Vec<&str> = page.customers.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["c0", "c3"], "c3's phone, not E.164, is only left out");
    assert_eq!(page.customers[1].phone, None);
    assert_eq!((page.customers[0].order_count, page.customers[0].total_spent_minor), (1, 1500));
    let set_aside: Vec<&str> = page.set_aside.iter().map(|r| r.id.as_str()).collect();
    // o3 is another customer's (not of this search's batch): its own search sets it aside.
    assert_eq!(set_aside, ["c1", "created_at:2025-01-01T00:00:00Z", "o2"]);
    let searched = &server.received_requests().await.unwrap();
    let search = searched.iter().find(|r| r.url.path() == "/v2/orders/search").unwrap();
    let body: Value = serde_json::from_slice(&search.body).unwrap();
    assert_eq!(searched_ids(&body), ["c0", "c3"], "customers set aside are not searched");
}
