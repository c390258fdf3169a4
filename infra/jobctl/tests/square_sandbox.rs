//! The sandbox's Square refuses what Square refuses (each limit just over it, in Square's
//! `errors[]` shape, and takes a request at it), and `customer_sync`, run by the real `jobctl dev`,
//! syncs a store of 150 customers through it with every customer's order total right.

mod support;

use std::{collections::HashMap, path::Path, process::Stdio, time::Duration};

use serde_json::{Value, json};
use shop::{CustomerRepository, Plan, Secret, Store, StoreRepository, SyncState, embedded::ShopDb};
use shop_sandbox::{FixturePos, Fixtures, Sandbox};
use support::{folder, jobctl_command};

const TOKEN: &str = "sq_acme";
/// How long a `jobctl` run of these tests may take before it counts as hung.
const HUNG: Duration = Duration::from_secs(120);

async fn sandbox(customers: usize) -> Sandbox {
    let fixtures = Fixtures {
        shops: HashMap::new(),
        pos: HashMap::from([(TOKEN.to_owned(), FixturePos { customers })]),
    };
    Sandbox::start(fixtures).await.expect("the sandbox starts")
}

/// A request to the sandbox's Square with the token and `Square-Version` 2026-09-16.
fn square(sandbox: &Sandbox, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
    reqwest::Client::new()
        .request(method, format!("{}{path}", sandbox.square_url()))
        .bearer_auth(TOKEN)
        .header("Square-Version", "2026-09-16")
}

async fn status_and_body(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.expect("the sandbox answers");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON body"))
}

async fn search(sandbox: &Sandbox, body: &Value) -> (u16, Value) {
    status_and_body(square(sandbox, reqwest::Method::POST, "/v2/orders/search").json(body)).await
}

async fn list(sandbox: &Sandbox, query: &str) -> (u16, Value) {
    status_and_body(square(sandbox, reqwest::Method::GET, &format!("/v2/customers?{query}"))).await
}

/// Square's refusal: HTTP 400, one error of category `INVALID_REQUEST_ERROR` with this code,
/// about this field, with a detail.
#[track_caller]
fn assert_refused((status, body): &(u16, Value), code: &str, field: Option<&str>) {
    assert_eq!(*status, 400, "{body}");
    let errors = body["errors"].as_array().unwrap_or_else(|| panic!("no errors[]: {body}"));
    assert_eq!(errors.len(), 1, "{body}");
    let error = &errors[0];
    assert_eq!(error["category"], "INVALID_REQUEST_ERROR", "{body}");
    assert_eq!(error["code"], code, "{body}");
    assert_eq!(error["field"].as_str(), field, "{body}");
    assert!(error["detail"].as_str().is_some_and(|d| !d.is_empty()), "{body}");
}

#[track_caller]
fn assert_taken((status, body): &(u16, Value)) {
    assert_eq!(*status, 200, "{body}");
    assert!(body.get("errors").is_none(), "{body}");
}

fn ids(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("CUST{i:05}")).collect()
}

/// A search for these customers' completed orders at `L1`.
fn search_body(customers: &[String]) -> Value {
    json!({"location_ids": ["L1"], "limit": 1000, "query": {"filter": {
        "customer_filter": {"customer_ids": customers},
        "state_filter": {"states": ["COMPLETED"]}}}})
}

#[tokio::test]
async fn search_orders_refuses_eleven_customer_ids_and_takes_ten() {
    let sandbox = sandbox(30).await;
    let field = Some("query.filter.customer_filter.customer_ids");
    assert_refused(&search(&sandbox, &search_body(&ids(11))).await, "ARRAY_LENGTH_TOO_LONG", field);
    // The page of 100 ids customer_sync once sent in one search.
    assert_refused(&search(&sandbox, &search_body(&ids(100))).await, "ARRAY_LENGTH_TOO_LONG", field);
    let taken = search(&sandbox, &search_body(&ids(10))).await;
    assert_taken(&taken);
    assert!(!taken.1["orders"].as_array().unwrap().is_empty(), "{}", taken.1);
}

#[tokio::test]
async fn search_orders_refuses_eleven_location_ids_or_none_and_takes_ten_or_one() {
    let sandbox = sandbox(30).await;
    let with_locations = |locations: Value| {
        let mut body = search_body(&ids(10));
        body["location_ids"] = locations;
        body
    };
    let eleven: Vec<String> = (0..11).map(|i| format!("L{i}")).collect();
    let field = Some("location_ids");
    assert_refused(&search(&sandbox, &with_locations(json!(eleven))).await, "ARRAY_LENGTH_TOO_LONG", field);
    assert_refused(&search(&sandbox, &with_locations(json!([]))).await, "ARRAY_LENGTH_TOO_SHORT", field);
    let mut missing = search_body(&ids(10));
    missing.as_object_mut().unwrap().remove("location_ids");
    assert_refused(&search(&sandbox, &missing).await, "MISSING_REQUIRED_PARAMETER", field);
    assert_taken(&search(&sandbox, &with_locations(json!(eleven[..10]))).await);
    assert_taken(&search(&sandbox, &with_locations(json!(["L1"]))).await);
}

#[tokio::test]
async fn search_orders_refuses_a_limit_over_1000_or_under_1_and_takes_1000_and_1() {
    let sandbox = sandbox(30).await;
    let with_limit = |limit: Value| {
        let mut body = search_body(&ids(10));
        body["limit"] = limit;
        body
    };
    assert_refused(&search(&sandbox, &with_limit(json!(1001))).await, "VALUE_TOO_HIGH", Some("limit"));
    assert_refused(&search(&sandbox, &with_limit(json!(0))).await, "VALUE_TOO_LOW", Some("limit"));
    assert_refused(&search(&sandbox, &with_limit(json!("ten"))).await, "EXPECTED_INTEGER", Some("limit"));
    assert_taken(&search(&sandbox, &with_limit(json!(1000))).await);
    let one = search(&sandbox, &with_limit(json!(1))).await;
    assert_taken(&one);
    assert_eq!(one.1["orders"].as_array().unwrap().len(), 1, "a page of the limit");
    assert!(one.1["cursor"].is_string(), "and a cursor to the rest: {}", one.1);
}

#[tokio::test]
async fn search_orders_refuses_a_state_filter_without_states_or_with_an_unknown_state() {
    let sandbox = sandbox(30).await;
    let field = Some("query.filter.state_filter.states");
    let mut body = search_body(&ids(10));
    body["query"]["filter"]["state_filter"] = json!({});
    assert_refused(&search(&sandbox, &body).await, "MISSING_REQUIRED_PARAMETER", field);
    body["query"]["filter"]["state_filter"] = json!({"states": ["PAID"]});
    assert_refused(&search(&sandbox, &body).await, "INVALID_ENUM_VALUE", field);
    body["query"]["filter"]["state_filter"] = json!({"states": ["OPEN", "COMPLETED", "CANCELED", "DRAFT"]});
    assert_taken(&search(&sandbox, &body).await);
}

#[tokio::test]
async fn search_orders_refuses_a_body_that_is_not_a_json_object() {
    let sandbox = sandbox(3).await;
    assert_refused(&search(&sandbox, &json!([1, 2])).await, "EXPECTED_JSON_BODY", None);
}

#[tokio::test]
async fn a_search_cursor_goes_on_with_its_own_query_only_and_walks_every_order_once() {
    let sandbox = sandbox(40).await;
    // Pages of 5, so that the search takes several.
    let body = |customers: &[String]| {
        let mut body = search_body(customers);
        body["limit"] = json!(5);
        body
    };
    let first = search(&sandbox, &body(&ids(10))).await;
    assert_taken(&first);
    let cursor = first.1["cursor"].as_str().expect("more than a page of orders").to_owned();

    let mut other = body(&ids(40)[10..20]);
    other["cursor"] = json!(cursor);
    assert_refused(&search(&sandbox, &other).await, "INVALID_CURSOR", Some("cursor"));
    let mut garbage = body(&ids(10));
    garbage["cursor"] = json!("not-a-cursor");
    assert_refused(&search(&sandbox, &garbage).await, "INVALID_CURSOR", Some("cursor"));

    // The pages of one search hold every matching order once, and only those.
    let mut seen: Vec<String> = Vec::new();
    let mut page = first.1;
    loop {
        for order in page["orders"].as_array().unwrap() {
            assert_eq!(order["state"], "COMPLETED", "{order}");
            let customer = order["customer_id"].as_str();
            let payer = order["tenders"][0]["customer_id"].as_str();
            assert!(
                [customer, payer].into_iter().flatten().any(|c| ids(10).iter().any(|id| id == c)),
                "the order's customer or its tender's is searched for: {order}"
            );
            seen.push(order["id"].as_str().unwrap().to_owned());
        }
        let Some(cursor) = page["cursor"].as_str() else { break };
        let mut next = body(&ids(10));
        next["cursor"] = json!(cursor);
        let answer = search(&sandbox, &next).await;
        assert_taken(&answer);
        page = answer.1;
    }
    let count = seen.len();
    assert!(count > 5, "several pages: {count} orders");
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), count, "no order twice");
}

#[tokio::test]
async fn list_customers_refuses_a_limit_outside_1_to_100_and_an_unknown_cursor() {
    let sandbox = sandbox(150).await;
    assert_refused(&list(&sandbox, "limit=101").await, "VALUE_TOO_HIGH", Some("limit"));
    assert_refused(&list(&sandbox, "limit=0").await, "VALUE_TOO_LOW", Some("limit"));
    assert_refused(&list(&sandbox, "limit=many").await, "EXPECTED_INTEGER", Some("limit"));
    assert_refused(&list(&sandbox, "cursor=zz").await, "INVALID_CURSOR", Some("cursor"));
    let hundred = list(&sandbox, "limit=100").await;
    assert_taken(&hundred);
    assert_eq!(hundred.1["customers"].as_array().unwrap().len(), 100);
    let cursor = hundred.1["cursor"].as_str().expect("a second page").to_owned();
    let rest = list(&sandbox, &format!("limit=100&cursor={cursor}")).await;
    assert_taken(&rest);
    assert_eq!(rest.1["customers"].as_array().unwrap().len(), 50);
    assert!(rest.1.get("cursor").is_none(), "the last page has no cursor: {}", rest.1);
    let one = list(&sandbox, "limit=1").await;
    assert_eq!(one.1["customers"].as_array().unwrap().len(), 1, "{}", one.1);
    let default = list(&sandbox, "").await;
    assert_eq!(default.1["customers"].as_array().unwrap().len(), 100, "100 by default");
}

#[tokio::test]
async fn a_malformed_square_version_and_an_unknown_token_are_refused_as_square_refuses_them() {
    let sandbox = sandbox(3).await;
    let url = format!("{}/v2/customers", sandbox.square_url());
    let malformed = status_and_body(
        reqwest::Client::new().get(&url).bearer_auth(TOKEN).header("Square-Version", "2026-9"),
    )
    .await;
    assert_refused(&malformed, "INVALID_SQUARE_VERSION_FORMAT", None);
    // Without the header Square answers in the application's default version.
    assert_taken(&status_and_body(reqwest::Client::new().get(&url).bearer_auth(TOKEN)).await);
    let (status, body) = status_and_body(
        reqwest::Client::new().get(&url).bearer_auth("sq_other").header("Square-Version", "2026-09-16"),
    )
    .await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(
        (&body["errors"][0]["category"], &body["errors"][0]["code"]),
        (&json!("AUTHENTICATION_ERROR"), &json!("UNAUTHORIZED"))
    );
}

fn jobctl(dir: &Path, args: &[&str]) -> tokio::process::Command {
    let mut command = tokio::process::Command::from(jobctl_command(dir, args));
    command.stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    command
}

#[tokio::test]
async fn customer_sync_of_a_150_customer_store_sums_every_customers_completed_orders() {
    const CUSTOMERS: usize = 150;
    let sandbox = sandbox(CUSTOMERS).await;
    let dir = folder("square-150");
    std::fs::create_dir_all(&dir).unwrap();
    let db = ShopDb::open(dir.join("jobs.sqlite3")).unwrap();
    let store = Store {
        id: "st_1".into(),
        shopify_domain: "acme.myshopify.com".parse().unwrap(),
        pos_location_id: Some("L-ACME".to_owned()),
        plan: Plan::Basic,
        sync_state: SyncState::Never,
    };
    db.put(&store).await.unwrap();
    db.set_square_token(&store.id, &Secret::new(TOKEN.to_owned())).unwrap();
    let out = jobctl(&dir, &["enqueue", "customer_sync", "--args", r#"{"store_id":"st_1"}"#])
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let url = sandbox.square_url();
    let mut run =
        jobctl(&dir, &["--json", "dev", "--no-schedules", "--until-idle", "--square-url", url.as_str()]);
    let out = tokio::time::timeout(HUNG, run.output()).await.expect("jobctl dev ends").unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    let sync = summary["jobs"].as_array().unwrap().iter().find(|t| t["job"] == "customer_sync").unwrap();
    assert_eq!(sync["succeeded"].as_u64(), Some(1), "{summary}\n{log}");

    let fixture = FixturePos { customers: CUSTOMERS };
    let (mut orders, mut with_orders) = (0, 0);
    for id in ids(CUSTOMERS) {
        let stored = db.get_customer(&store.id, &id.as_str().into()).await.unwrap();
        let stored = stored.unwrap_or_else(|| panic!("{id} synced"));
        let expected = fixture.completed_orders(&id);
        assert_eq!((stored.order_count, stored.total_spent_minor), expected, "{id}");
        orders += expected.0;
        with_orders += usize::from(expected.0 > 0);
    }
    // The check means something: most customers have completed orders to get right.
    assert!(orders > CUSTOMERS as u32 && with_orders > CUSTOMERS / 2, "{orders} orders, {with_orders}");
}
