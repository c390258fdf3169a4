//! customer_sync on the embedded backend against a stub of Square's Customers and Orders APIs.

use std::sync::Arc;

use customer_sync::{CustomerSyncArgs, CustomerSyncJob};
use jobkit::{
    ErrorKind,
    runner::{DlqReason, RecordStatus},
    testing::TestHarness,
};
use serde_json::{Value, json};
use shop::{
    CustomerRepository, History, Plan, RecordKind, Secret, Store, StoreRepository, SyncState,
    embedded::ShopDb,
    services::CustomerSync,
    square::{SquareClient, SquareConfig},
};
use wiremock::{
    Mock, MockServer, Request, Respond, ResponseTemplate,
    matchers::{any, header, method, path},
};

const CUSTOMERS: u32 = 250;
/// Order searches of a whole sync: 10 customer ids a search (25 of them for 250 customers),
/// each answered in two pages.
const SEARCHES: u64 = 2 * 25;

/// Customers `c0`..`c<customers - 1>`, 100 a page; customer `cN` has `N % 3` completed orders
/// of 10.00 (`o-N-K`). A search of more than 10 customer ids is refused, as Square refuses it
/// (`SearchOrdersCustomerFilter.customer_ids`: "Max: 10 customer ids").
struct StubSquare {
    customers: u32,
    /// A customer whose preferences do not read (`email_unsubscribed` is not a boolean).
    poison: Option<u32>,
    /// An order (`o-N-0`) whose amount does not read (a decimal string, not minor units).
    bad_order: Option<u32>,
}

/// `CUSTOMERS` customers, all readable.
const STUB: StubSquare = StubSquare { customers: CUSTOMERS, poison: None, bad_order: None };

impl Respond for StubSquare {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let customers_in_all = self.customers;
        if request.url.path() == "/v2/customers" {
            let start: u32 = request
                .url
                .query_pairs()
                .find(|(k, _)| k == "cursor")
                .map_or(0, |(_, v)| v.trim_start_matches("cur_").parse().expect("cursor"));
            let end = (start + 100).min(customers_in_all);
            let customers: Vec<Value> = (start..end)
                .map(|n| {
                    json!({
                        "id": format!("c{n}"),
                        "given_name": "Ana",
                        "family_name": format!("Doe{n}"),
                        "email_address": format!("ana{n}@example.com"),
                        "phone_number": if n == 7 { "415-555-0107".to_owned() } else { format!("+1415555{n:04}") },
                        "preferences": if self.poison == Some(n) {
                            json!({"email_unsubscribed": "sometimes"})
                        } else {
                            json!({"email_unsubscribed": n == 3})
                        },
                        "created_at": "2025-01-01T00:00:00Z"
                    })
                })
                .collect();
            let mut body = json!({ "customers": customers });
            if end < customers_in_all {
                body["cursor"] = json!(format!("cur_{end}"));
            }
            return ResponseTemplate::new(200).set_body_json(body);
        }
        let search: Value = serde_json::from_slice(&request.body).expect("JSON");
        let ids: Vec<String> =
            serde_json::from_value(search["query"]["filter"]["customer_filter"]["customer_ids"].clone())
                .expect("ids");
        if ids.len() > 10 {
            return ResponseTemplate::new(400).set_body_json(json!({"errors": [{
                "category": "INVALID_REQUEST_ERROR", "code": "ARRAY_LENGTH_TOO_LONG",
                "field": "query.filter.customer_filter.customer_ids"}]}));
        }
        assert!(
            self.poison.is_none_or(|n| !ids.contains(&format!("c{n}"))),
            "a customer set aside is searched"
        );
        let bad_order = self.bad_order;
        let orders: Vec<Value> = ids
            .iter()
            .flat_map(|id| {
                let n: u32 = id[1..].parse().expect("id");
                (0..n % 3).map(move |k| {
                    let amount = if bad_order == Some(n) && k == 0 { json!("10.00") } else { json!(1000) };
                    json!({"id": format!("o-{n}-{k}"), "customer_id": format!("c{n}"), "state": "COMPLETED",
                           "total_money": {"amount": amount, "currency": "USD"}})
                })
            })
            .collect();
        // Two pages of orders per search, to walk the orders cursor too.
        let half = orders.len() / 2;
        let (page, cursor) = match search["cursor"].as_str() {
            None => (&orders[..half], Some("second")),
            Some(_) => (&orders[half..], None),
        };
        ResponseTemplate::new(200).set_body_json(json!({"orders": page, "cursor": cursor}))
    }
}

async fn world(location: Option<&str>) -> (TestHarness, ShopDb, MockServer) {
    let db = ShopDb::in_memory().unwrap();
    let store = Store {
        id: "st_42".into(),
        shopify_domain: "acme.myshopify.com".parse().unwrap(),
        pos_location_id: location.map(str::to_owned),
        plan: Plan::Basic,
        sync_state: SyncState::Never,
    };
    db.put(&store).await.unwrap();
    db.set_square_token(&store.id, &Secret::new("sq0atp-test")).unwrap();
    (TestHarness::new(), db, MockServer::start().await)
}

fn job(db: &ShopDb, square: &MockServer) -> CustomerSyncJob {
    let config = SquareConfig { base_url: square.uri(), ..SquareConfig::default() };
    let sync =
        CustomerSync::new(SquareClient::new(config).unwrap(), Arc::new(db.clone()), Arc::new(db.clone()));
    CustomerSyncJob::new(Arc::new(db.clone()), sync, Arc::new(db.clone()))
}

fn args() -> CustomerSyncArgs {
    CustomerSyncArgs { store_id: "st_42".into() }
}

#[tokio::test]
async fn customers_and_their_order_history_are_synced_across_pages() {
    let (t, db, square) = world(Some("L1")).await;
    Mock::given(method("GET"))
        .and(path("/v2/customers"))
        .and(header("Authorization", "Bearer sq0atp-test"))
        .and(header("Square-Version", "2026-09-16"))
        .respond_with(STUB)
        .expect(3)
        .mount(&square)
        .await;
    Mock::given(method("POST"))
        .and(path("/v2/orders/search"))
        .respond_with(STUB)
        .expect(SEARCHES)
        .mount(&square)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/customers"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "0"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&square)
        .await;
    let runner = t.runner(job(&db, &square));
    t.enqueuer().perform_later::<CustomerSyncJob>(&args()).await.unwrap();
    assert_eq!(t.drain(&runner).await.succeeded(), 1, "a 429 is retried inside the client");

    let runs = db.recent(RecordKind::SyncRun, 10).await.unwrap();
    assert_eq!(runs.len(), 1, "one sync run recorded");
    assert_eq!(runs[0].detail["counts"]["customers"], 250, "{:?}", runs[0].detail);
    let c5 = db.get_customer(&"st_42".into(), &"c5".into()).await.unwrap().expect("c5 stored");
    assert_eq!((c5.order_count, c5.total_spent_minor), (2, 2000));
    assert_eq!(c5.name, "Ana Doe5");
    assert_eq!(c5.phone.as_ref().map(|p| p.expose().to_owned()), Some("+14155550005".to_owned()));
    let c7 = db.get_customer(&"st_42".into(), &"c7".into()).await.unwrap().unwrap();
    assert_eq!(c7.phone, None, "a number that is not E.164 is left out");
    let c3 = db.get_customer(&"st_42".into(), &"c3".into()).await.unwrap().unwrap();
    assert!(!c3.preferences.email_marketing);
    assert!(db.get_customer(&"st_42".into(), &"c249".into()).await.unwrap().is_some(), "the last page too");
}

#[tokio::test]
async fn a_refused_token_and_a_store_without_pos_go_to_the_dlq() {
    let (t, db, square) = world(Some("L1")).await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({"errors": [{"code": "UNAUTHORIZED"}]})))
        .mount(&square)
        .await;
    let runner = t.runner(job(&db, &square));
    t.enqueuer().perform_later::<CustomerSyncJob>(&args()).await.unwrap();
    assert_eq!(
        t.run_once(&runner).await[0].status,
        RecordStatus::DeadLettered(DlqReason::Discarded, ErrorKind::UNAUTHORIZED)
    );
    // after_discard: the store's sync history says the sync failed, and why.
    let runs = db.recent(RecordKind::SyncRun, 10).await.unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert!(runs[0].detail["reason"].as_str().is_some_and(|r| r.starts_with("unauthorized: ")), "{runs:?}");

    let (t, db, square) = world(None).await;
    let runner = t.runner(job(&db, &square));
    t.enqueuer().perform_later::<CustomerSyncJob>(&args()).await.unwrap();
    assert_eq!(
        t.run_once(&runner).await[0].status,
        RecordStatus::DeadLettered(DlqReason::Discarded, ErrorKind::NOT_FOUND)
    );
    assert!(
        t.dead_letter_errors::<CustomerSyncJob>()[0]
            .as_ref()
            .is_some_and(|e| e.message.contains("no POS location"))
    );
}

#[tokio::test]
async fn an_outage_is_retried_with_the_policys_backoff() {
    let (t, db, square) = world(Some("L1")).await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503).insert_header("Retry-After", "0"))
        .mount(&square)
        .await;
    let runner = t.runner(job(&db, &square));
    t.enqueuer().perform_later::<CustomerSyncJob>(&args()).await.unwrap();
    let RecordStatus::Retrying(wait) = t.run_once(&runner).await[0].status else { panic!("not retried") };
    assert!((3.0..=3.2).contains(&wait.as_secs_f64()), "{wait:?}");
}

#[tokio::test]
async fn a_second_delivery_changes_nothing() {
    let (t, db, square) = world(Some("L1")).await;
    Mock::given(method("GET")).and(path("/v2/customers")).respond_with(STUB).expect(3).mount(&square).await;
    Mock::given(method("POST"))
        .and(path("/v2/orders/search"))
        .respond_with(STUB)
        .expect(SEARCHES)
        .mount(&square)
        .await;
    let runner = t.runner(job(&db, &square));
    let id = t.enqueuer().perform_later::<CustomerSyncJob>(&args()).await.unwrap();
    t.drain(&runner).await;

    let again = jobkit::EnqueueOptions { job_id: Some(id), ..Default::default() };
    t.enqueuer().perform_later_with::<CustomerSyncJob>(&args(), again).await.unwrap();
    assert_eq!(t.drain(&runner).await.count(|s| *s == RecordStatus::Duplicate), 1);
    assert_eq!(db.recent(RecordKind::SyncRun, 10).await.unwrap().len(), 1, "the run is recorded once");
    // `expect(3)` and `expect(SEARCHES)` are checked when the stub drops: the POS was not called again.
}

#[tokio::test]
async fn a_redirect_elsewhere_is_not_followed_and_the_job_is_discarded_to_the_dlq() {
    let (t, db, square) = world(Some("L1")).await;
    let elsewhere = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(307).insert_header("Location", format!("{}/steal", elsewhere.uri())),
        )
        .mount(&square)
        .await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"customers": []})))
        .mount(&elsewhere)
        .await;
    let runner = t.runner(job(&db, &square));
    t.enqueuer().perform_later::<CustomerSyncJob>(&args()).await.unwrap();

    let outcome = t.run_once(&runner).await;
    assert!(elsewhere.received_requests().await.unwrap().is_empty(), "the request went to another host");
    assert_eq!(
        outcome[0].status,
        RecordStatus::DeadLettered(DlqReason::Discarded, ErrorKind::UNEXPECTED_RESPONSE)
    );
    let message =
        &t.dead_letter_errors::<CustomerSyncJob>()[0].clone().expect("the error is recorded").message;
    assert!(message.contains("307") && message.contains(&elsewhere.address().to_string()), "{message}");
}

/// Syncs the store once to the end; returns the profiles upserted, as the run recorded them.
async fn sync_to_the_end(
    t: &TestHarness,
    db: &ShopDb,
    runner: &jobkit::runner::BatchRunner<CustomerSyncJob>,
) -> Value {
    t.enqueuer().perform_later::<CustomerSyncJob>(&args()).await.unwrap();
    let report = t.drain(runner).await;
    assert_eq!(report.succeeded(), 1, "{:?}", report.records);
    db.recent(RecordKind::SyncRun, 1).await.unwrap()[0].detail["counts"]["customers"].clone()
}

#[tokio::test]
async fn one_poison_customer_among_500_is_set_aside_and_reported_once_and_the_rest_synced() {
    let (t, db, square) = world(Some("L1")).await;
    Mock::given(any())
        .respond_with(StubSquare { customers: 500, poison: Some(250), bad_order: None })
        .mount(&square)
        .await;
    let runner = t.runner(job(&db, &square));

    assert_eq!(sync_to_the_end(&t, &db, &runner).await, 499);
    let store = "st_42".into();
    assert_eq!(db.get_customer(&store, &"c250".into()).await.unwrap(), None, "not written");
    for n in [0, 249, 251, 499] {
        let id = format!("c{n}").as_str().into();
        let customer = db.get_customer(&store, &id).await.unwrap().unwrap_or_else(|| panic!("c{n} stored"));
        assert_eq!((customer.order_count, customer.total_spent_minor), (n % 3, i64::from(n % 3) * 1000));
    }
    let emails = t.sent_emails();
    assert_eq!(emails.len(), 1, "{emails:?}");
    assert!(
        emails[0].subject.contains("customer_sync") && emails[0].subject.contains("c250"),
        "{}",
        emails[0].subject
    );
    assert!(
        emails[0].text.contains("email_unsubscribed") || emails[0].text.contains("unreadable customer"),
        "{}",
        emails[0].text
    );

    // The next run meets it again: not emailed again.
    assert_eq!(sync_to_the_end(&t, &db, &runner).await, 499);
    assert_eq!(t.sent_emails().len(), 1, "reported once: {:?}", t.sent_emails());
}

#[tokio::test]
async fn an_unreadable_order_is_set_aside_and_its_customer_counts_the_others() {
    let (t, db, square) = world(Some("L1")).await;
    // c5 has two orders; the first one's amount does not read.
    Mock::given(any())
        .respond_with(StubSquare { customers: CUSTOMERS, poison: None, bad_order: Some(5) })
        .mount(&square)
        .await;
    let runner = t.runner(job(&db, &square));

    assert_eq!(sync_to_the_end(&t, &db, &runner).await, 250);
    let c5 = db.get_customer(&"st_42".into(), &"c5".into()).await.unwrap().expect("c5 stored");
    assert_eq!((c5.order_count, c5.total_spent_minor), (1, 1000), "the other order only");
    let emails = t.sent_emails();
    assert_eq!(emails.len(), 1, "{emails:?}");
    assert!(emails[0].subject.contains("o-5-0"), "{}", emails[0].subject);
}
