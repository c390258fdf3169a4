//! The outside world on loopback, for `jobctl dev --demo` and the tests: fixture shops over the
//! Shopify Admin GraphQL shape and a POS over Square's, so the real HTTP clients run against
//! something that refuses what the providers refuse.
//!
//! Shopify: `POST /shopify/{shop}/admin/api/{version}/graphql.json` with `X-Shopify-Access-Token`
//! answers the products, webhook subscriptions (a page at a time) and `webhookSubscriptionCreate`
//! documents the client sends, each with its cost by Shopify's rules, refusing what Shopify
//! refuses before running a document (over 1,000 points, a page or an input array over 250) in
//! Shopify's shape (`shop::shopify::cost`).
//! Square: `GET /square/v2/customers` and `POST /square/v2/orders/search` with a
//! bearer token, refusing what Square refuses (`square.rs`). A shop or token can be made to fail
//! (503 or 401) to show retries and the DLQ.
//! Tests can pause it to catch a job in the middle of a request.

#![warn(missing_docs)]

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
};

use http_body_util::{BodyExt, Full};
use hyper::{
    Method, Request, Response, StatusCode,
    body::{Bytes, Incoming},
    server::conn::http1,
    service::service_fn,
};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::{
    net::TcpListener,
    sync::{Notify, watch},
};

mod square;

/// How a fixture answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Normally.
    Healthy,
    /// 503 to everything (an outage: retried, then the DLQ).
    Down,
}

/// A shop of the sandbox.
#[derive(Debug, Clone)]
pub struct FixtureShop {
    /// The token the shop accepts.
    pub token: String,
    /// How many products it sells (each with two variants).
    pub products: usize,
    /// How it answers.
    pub behaviour: Behaviour,
}

/// A POS account of the sandbox, by its token.
#[derive(Debug, Clone)]
pub struct FixturePos {
    /// How many customers it has (most with a few orders, most of those completed: what a
    /// customer's add up to is [`FixturePos::completed_orders`]).
    pub customers: usize,
}

/// What the sandbox serves.
#[derive(Debug, Clone, Default)]
pub struct Fixtures {
    /// Shops by name (`acme` for `acme.myshopify.com`).
    pub shops: HashMap<String, FixtureShop>,
    /// POS accounts by access token; any other token is refused with 401.
    pub pos: HashMap<String, FixturePos>,
}

/// A webhook subscription created on a sandbox shop.
struct Subscription {
    id: String,
    topic: String,
    uri: String,
}

struct State {
    fixtures: Fixtures,
    /// Webhook subscriptions created, per shop.
    webhooks: Mutex<HashMap<String, Vec<Subscription>>>,
    /// Requests answered.
    answered: AtomicUsize,
    /// While true, requests wait before being answered.
    paused: watch::Sender<bool>,
    /// Wakes [`Sandbox::holding`] when a request starts waiting.
    held: Notify,
}

/// The running sandbox; it stops when dropped.
pub struct Sandbox {
    addr: SocketAddr,
    state: Arc<State>,
    server: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Sandbox {
    /// Serves `fixtures` on a free loopback port.
    ///
    /// # Errors
    /// If no port can be bound.
    pub async fn start(fixtures: Fixtures) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            fixtures,
            webhooks: Mutex::default(),
            answered: AtomicUsize::new(0),
            paused: watch::channel(false).0,
            held: Notify::new(),
        });
        let served = state.clone();
        let server = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = served.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request| answer(state.clone(), request));
                    // A client that hangs up mid-request ends only its own connection.
                    let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                });
            }
        });
        Ok(Self { addr, state, server })
    }

    /// The base URL the Shopify client takes (`{shop}` stands for the shop's name).
    pub fn shopify_url(&self) -> String {
        format!("http://{}/shopify/{{shop}}", self.addr)
    }

    /// The topics of the webhook subscriptions created on `shop` (its name), in order.
    pub fn webhook_topics(&self, shop: &str) -> Vec<String> {
        let webhooks = self.state.webhooks.lock().unwrap_or_else(|p| p.into_inner());
        webhooks.get(shop).into_iter().flatten().map(|s| s.topic.clone()).collect()
    }

    /// The base URL the Square client takes.
    pub fn square_url(&self) -> String {
        format!("http://{}/square", self.addr)
    }

    /// How many requests were answered so far.
    pub fn answered(&self) -> usize {
        self.state.answered.load(Ordering::SeqCst)
    }

    /// Holds every request from now on, unanswered, until [`Self::resume`].
    pub fn pause(&self) {
        self.state.paused.send_replace(true);
    }

    /// Answers the held requests and every one after.
    pub fn resume(&self) {
        self.state.paused.send_replace(false);
    }

    /// Returns once a request is held (at once if one was held since the last call).
    pub async fn holding(&self) {
        self.state.held.notified().await;
    }
}

type Answer = Result<Response<Full<Bytes>>, std::convert::Infallible>;

fn reply(status: StatusCode, body: &Value) -> Answer {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("application/json"));
    Ok(response)
}

async fn answer(state: Arc<State>, request: Request<Incoming>) -> Answer {
    let mut paused = state.paused.subscribe();
    if *paused.borrow_and_update() {
        state.held.notify_one();
        // Err only when the sender is gone, that is with the sandbox itself.
        let _ = paused.wait_for(|paused| !*paused).await;
    }
    let answer = route(&state, request).await;
    state.answered.fetch_add(1, Ordering::SeqCst);
    answer
}

async fn route(state: &State, request: Request<Incoming>) -> Answer {
    let (parts, body) = request.into_parts();
    let body: Value = match body.collect().await {
        Ok(collected) => serde_json::from_slice(&collected.to_bytes()).unwrap_or(Value::Null),
        Err(_) => Value::Null,
    };
    let header =
        |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let path = parts.uri.path().to_owned();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (parts.method, segments.as_slice()) {
        (Method::POST, ["shopify", shop, "admin", "api", _, "graphql.json"]) => {
            shopify(state, shop, &header("x-shopify-access-token"), &body)
        }
        (method, ["square", rest @ ..]) => square::answer(
            state,
            &square::SquareRequest {
                method: &method,
                path: rest,
                query: parts.uri.query(),
                headers: &parts.headers,
                body: &body,
            },
        ),
        _ => reply(StatusCode::NOT_FOUND, &json!({"error": format!("the sandbox has no {path}")})),
    }
}

/// The bucket the sandbox's Shopify answers with: 2,000 points restoring 100 a second (what a
/// current Standard shop answers in `throttleStatus`), full before every request. The sandbox
/// prices each document by Shopify's rules and refuses what Shopify refuses before running one
/// (`shop::shopify::cost`, which names each rule's source), but does not throttle: the client's
/// pacing is tested against throttling stubs (shop's tests, store_sync's bench).
const BUCKET: f64 = 2000.0;
const RESTORE_RATE: f64 = 100.0;

/// Shopify's cost extension: what the document requested, what its answer cost, and the
/// bucket once that is spent.
fn cost(requested: u64, actual: u64) -> Value {
    json!({"cost": {"requestedQueryCost": requested, "actualQueryCost": actual, "throttleStatus": {
        "maximumAvailable": BUCKET, "currentlyAvailable": BUCKET - actual as f64, "restoreRate": RESTORE_RATE}}})
}

fn shopify(state: &State, shop: &str, token: &str, body: &Value) -> Answer {
    let Some(fixture) = state.fixtures.shops.get(shop) else {
        return reply(StatusCode::NOT_FOUND, &json!({"errors": "Not Found"}));
    };
    if fixture.behaviour == Behaviour::Down {
        return reply(StatusCode::SERVICE_UNAVAILABLE, &json!({"errors": "Service Unavailable"}));
    }
    if token != fixture.token {
        return reply(StatusCode::UNAUTHORIZED, &json!({"errors": "[API] Invalid API key or access token"}));
    }
    let query = body["query"].as_str().unwrap_or_default();
    let variables = &body["variables"];
    // What Shopify refuses before running a document, answered as Shopify does (HTTP 200).
    let analysis = match shop::shopify::cost::analyze(query, body["operationName"].as_str(), variables) {
        Ok(analysis) => analysis,
        Err(refusal) => return reply(StatusCode::OK, &refusal.answer()),
    };
    let data = if query.contains("webhookSubscriptionCreate") {
        let mut webhooks = state.webhooks.lock().unwrap_or_else(|p| p.into_inner());
        let list = webhooks.entry(shop.to_owned()).or_default();
        let id = format!("gid://shopify/WebhookSubscription/{}", list.len() + 1);
        let (topic, uri) =
            (variables["topic"].as_str().unwrap_or_default(), variables["uri"].as_str().unwrap_or_default());
        list.push(Subscription { id: id.clone(), topic: topic.to_owned(), uri: uri.to_owned() });
        json!({"webhookSubscriptionCreate": {
            "webhookSubscription": {"id": id, "topic": topic, "uri": uri}, "userErrors": []}})
    } else if query.contains("webhookSubscriptions") {
        let page = analysis.page_size("webhookSubscriptions").unwrap_or(0);
        webhook_page(state, shop, page, variables)
    } else if query.contains("products(") {
        let page = (analysis.page_size("products").unwrap_or(0), analysis.page_size("variants").unwrap_or(0));
        products(shop, fixture.products, page, variables)
    } else {
        return reply(
            StatusCode::OK,
            &json!({"errors": [{"message": "the sandbox does not know this document"}],
                    "extensions": cost(analysis.requested_cost(), 0)}),
        );
    };
    let actual = analysis.actual_cost(&data);
    reply(StatusCode::OK, &json!({"data": data, "extensions": cost(analysis.requested_cost(), actual)}))
}

/// A page of the shop's webhook subscriptions: `first` of them after the cursor (an index).
fn webhook_page(state: &State, shop: &str, first: u64, variables: &Value) -> Value {
    let webhooks = state.webhooks.lock().unwrap_or_else(|p| p.into_inner());
    let all = webhooks.get(shop).map_or(&[][..], Vec::as_slice);
    let start = variables["after"].as_str().and_then(|c| c.parse::<usize>().ok()).unwrap_or(0).min(all.len());
    let end = (start + usize::try_from(first).unwrap_or(0)).min(all.len());
    let nodes: Vec<Value> =
        all[start..end].iter().map(|s| json!({"id": s.id, "topic": s.topic, "uri": s.uri})).collect();
    let end_cursor = (end > start).then(|| end.to_string());
    json!({"webhookSubscriptions": {
        "pageInfo": {"hasNextPage": end < all.len(), "endCursor": end_cursor}, "nodes": nodes}})
}

/// A page of `first` products after the cursor (an index), each with its first `variants` of
/// two variants.
fn products(shop: &str, total: usize, (first, variants): (u64, u64), variables: &Value) -> Value {
    let first = usize::try_from(first).unwrap_or(0);
    let shown = usize::try_from(variants).unwrap_or(0).min(2);
    let start = variables["after"].as_str().and_then(|c| c.parse::<usize>().ok()).unwrap_or(0);
    let end = (start + first).min(total);
    let nodes: Vec<Value> = (start..end)
        .map(|i| {
            let variants: Vec<Value> = (0..shown)
                .map(|v| {
                    json!({"id": format!("gid://shopify/ProductVariant/{shop}-{i}-{v}"),
                           "sku": format!("{}-{i:04}-{v}", shop.to_uppercase()),
                           "price": format!("{}.{:02}", 10 + i % 90, (i * 7 + v) % 100),
                           "inventoryQuantity": (i * 3 + v) % 25})
                })
                .collect();
            json!({"id": format!("gid://shopify/Product/{shop}-{i}"), "title": format!("{} #{i}", title(i)),
                   "handle": format!("product-{i}"), "variants": {
                       "pageInfo": {"hasNextPage": shown < 2, "endCursor": shown.to_string()}, "nodes": variants}})
        })
        .collect();
    json!({
        "shop": {"currencyCode": "USD"},
        "products": {"pageInfo": {"hasNextPage": end < total, "endCursor": end.to_string()}, "nodes": nodes},
    })
}

fn title(i: usize) -> &'static str {
    const TITLES: [&str; 6] =
        ["Red Shoe", "Blue Scarf", "Linen Shirt", "Wool Hat", "Canvas Bag", "Rain Jacket"];
    TITLES[i % TITLES.len()]
}
