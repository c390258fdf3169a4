//! The client itself: one GraphQL call at a time per shop, paced by Shopify's cost budget.

use std::{
    collections::HashMap,
    io::Write,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use jobkit::{IntegrationError, IntegrationErrorKind, SetAside};
use serde::de::DeserializeOwned;

use super::{
    API_VERSION, Pacer, TokioPacer,
    queries::{self, Document, GraphqlResponse, ThrottleStatus},
};
use crate::{
    catalog::{Money, Product, Variant},
    http::RetryAfter,
    ids::{ProductId, StoreId, VariantId},
    secret::Secret,
    shop_domain::ShopDomain,
};

const SOURCE: &str = "shopify";

/// How the client reaches Shopify.
#[derive(Debug, Clone)]
pub struct ShopifyConfig {
    /// `None` for `https://{shop}`; tests and the local sandbox give `http://127.0.0.1:PORT/{shop}`
    /// (`{shop}` is replaced by the shop's name).
    pub base_url: Option<String>,
    /// Tries of one request when throttled or unavailable before giving up. Defaults to 4.
    pub max_tries: u32,
    /// The request timeout. Defaults to 30 s.
    pub timeout: Duration,
}

impl Default for ShopifyConfig {
    fn default() -> Self {
        Self { base_url: None, max_tries: 4, timeout: Duration::from_secs(30) }
    }
}

/// A shop to talk to: its domain and its Admin API access token.
#[derive(Debug, Clone)]
pub struct ShopifyShop {
    /// The validated domain.
    pub domain: ShopDomain,
    /// The access token (`shpat_...`).
    pub token: Secret,
}

/// One page of products.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductPage {
    /// The products, with variants, prices and inventory.
    pub products: Vec<Product>,
    /// The page's products that could not be read (a node without an id, title or handle, a
    /// variant without an id or with a price that is not a plain decimal...), by product id,
    /// with why: the page's other products stand.
    pub set_aside: Vec<SetAside>,
    /// The cursor of the next page, if any.
    pub next_cursor: Option<String>,
}

/// A webhook subscription of a shop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSubscription {
    /// Shopify's id.
    pub id: String,
    /// The topic (`ORDERS_CREATE`).
    pub topic: String,
    /// Where it delivers.
    pub uri: Option<String>,
}

/// The Shopify Admin GraphQL client.
#[derive(Debug, Clone)]
pub struct ShopifyClient {
    http: reqwest::Client,
    config: ShopifyConfig,
    pacer: Arc<dyn Pacer>,
    /// The last throttle status seen per shop, to wait before spending more than is left.
    /// Per shop: its bucket as last answered.
    budgets: Arc<Mutex<HashMap<String, ThrottleStatus>>>,
    /// Per shop and document: what it cost last time (a sync's pages cost alike).
    costs: Arc<Mutex<HashMap<(String, &'static str), f64>>>,
    /// Answers served by another API version than [`API_VERSION`].
    versions: VersionWatch,
}

fn error(kind: IntegrationErrorKind, message: impl Into<String>) -> IntegrationError {
    IntegrationError::new(SOURCE, kind, message)
}

impl ShopifyClient {
    /// A client with `config`, waiting with tokio's timer.
    ///
    /// # Errors
    /// If the HTTP client cannot be built (no TLS roots).
    pub fn new(config: ShopifyConfig) -> Result<Self, IntegrationError> {
        Self::with_pacer(config, Arc::new(TokioPacer))
    }

    /// A client that waits through `pacer` (tests record the waits instead).
    ///
    /// # Errors
    /// If the HTTP client cannot be built.
    pub fn with_pacer(config: ShopifyConfig, pacer: Arc<dyn Pacer>) -> Result<Self, IntegrationError> {
        let http = crate::http::client(SOURCE, config.timeout)?;
        let versions = VersionWatch { mismatches: Arc::default(), emf: EmfOut::from_env() };
        Ok(Self { http, config, pacer, budgets: Arc::default(), costs: Arc::default(), versions })
    }

    /// This client, writing the version-mismatch metric's EMF lines (see
    /// [`ShopifyClient::api_version_mismatches`]) into `writer` in namespace `namespace`: tests
    /// read them. By default they go to stdout in a Lambda function and nowhere elsewhere.
    #[must_use]
    pub fn with_metrics_writer(mut self, namespace: &str, writer: Box<dyn Write + Send>) -> Self {
        self.versions.emf =
            Some(EmfOut { namespace: namespace.into(), writer: Arc::new(Mutex::new(writer)) });
        self
    }

    /// How many answers, since this client was made (clones share the count), Shopify served
    /// with another API version than [`API_VERSION`] (its `X-Shopify-Api-Version` header): it
    /// falls forward so when the pinned version is no longer supported. Each one is also logged
    /// (a warning naming both versions) and, in a Lambda function, written as the CloudWatch
    /// EMF metric `shopify_api_version_mismatch` (Count, no dimension) in the namespace of
    /// jobkit's metrics (`JOBKIT_METRICS_NAMESPACE`, default `Jobs`).
    pub fn api_version_mismatches(&self) -> u64 {
        self.versions.mismatches.load(Ordering::Relaxed)
    }

    /// One page of products after `cursor`, `page_size` at a time (at most
    /// [`MAX_PRODUCTS_PAGE`](super::MAX_PRODUCTS_PAGE), which keeps the document's requested
    /// cost under Shopify's single-query maximum).
    ///
    /// A product node that cannot be mapped to a [`Product`] is not an error: it is returned in
    /// [`ProductPage::set_aside`] with its id (or, without one, `handle:<handle>`) and why.
    ///
    /// # Errors
    /// A classified [`IntegrationError`]: throttled past the tries (retryable), revoked token
    /// (permanent), Shopify unavailable (retryable), an answer that cannot be read as a page
    /// (its shape, not one product's).
    pub async fn products_page(
        &self,
        store_id: &StoreId,
        shop: &ShopifyShop,
        cursor: Option<&str>,
        page_size: u32,
    ) -> Result<ProductPage, IntegrationError> {
        let first = page_size.clamp(1, queries::MAX_PRODUCTS_PAGE);
        let variables = serde_json::json!({ "first": first, "after": cursor });
        let data: queries::ProductsData = self.graphql(shop, queries::PRODUCTS, variables).await?;
        let currency = data.shop.currency_code;
        let mut products = Vec::with_capacity(data.products.nodes.len());
        let mut set_aside = Vec::new();
        for value in data.products.nodes {
            let id = node_id(&value);
            let mut node = match serde_json::from_value::<queries::ProductNode>(value) {
                Ok(node) if !node.id.trim().is_empty() => node,
                Ok(_) => {
                    set_aside.push(SetAside::new(id, "unreadable product: an empty id"));
                    continue;
                }
                Err(e) => {
                    set_aside.push(SetAside::new(id, format_args!("unreadable product: {e}")));
                    continue;
                }
            };
            self.rest_of_variants(shop, &mut node).await?;
            let id = node.id.clone();
            match product(store_id, node, &currency) {
                Ok(product) => products.push(product),
                Err(reason) => set_aside.push(SetAside::new(id, reason)),
            }
        }
        if !set_aside.is_empty() {
            tracing::warn!(shop = %shop.domain, count = set_aside.len(), "products that could not be read set aside");
        }
        let next_cursor = data.products.page_info.filter(|p| p.has_next_page).and_then(|p| p.end_cursor);
        Ok(ProductPage { products, set_aside, next_cursor })
    }

    /// Adds to `node` the variants past the page the products query brought (Shopify allows
    /// up to 2,048 a product; the products query asks 16 to keep its cost down, this 250 a page).
    async fn rest_of_variants(
        &self,
        shop: &ShopifyShop,
        node: &mut queries::ProductNode,
    ) -> Result<(), IntegrationError> {
        let mut next = node.variants.page_info.take().filter(|p| p.has_next_page).and_then(|p| p.end_cursor);
        while let Some(after) = next {
            let variables = serde_json::json!({ "id": node.id, "after": after });
            let data: queries::ProductVariantsData =
                self.graphql(shop, queries::PRODUCT_VARIANTS, variables).await?;
            // A product deleted since the page was read: what was read stands.
            let Some(more) = data.product else { break };
            next = more.variants.page_info.filter(|p| p.has_next_page).and_then(|p| p.end_cursor);
            node.variants.nodes.extend(more.variants.nodes);
        }
        Ok(())
    }

    /// The shop's webhook subscriptions, every page of them.
    ///
    /// # Errors
    /// As [`ShopifyClient::products_page`]; `Unexpected` when Shopify says there is a next page
    /// but gives no new cursor to it.
    pub async fn webhook_subscriptions(
        &self,
        shop: &ShopifyShop,
    ) -> Result<Vec<WebhookSubscription>, IntegrationError> {
        let mut subscriptions = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let variables = serde_json::json!({ "after": after });
            let data: queries::WebhooksData = self.graphql(shop, queries::WEBHOOKS, variables).await?;
            let connection = data.webhook_subscriptions;
            subscriptions.extend(connection.nodes.into_iter().map(subscription));
            let next = connection.page_info.filter(|p| p.has_next_page).map(|p| p.end_cursor);
            match next {
                None => return Ok(subscriptions),
                Some(Some(cursor)) if after.as_deref() != Some(cursor.as_str()) => after = Some(cursor),
                Some(_) => {
                    return Err(error(
                        IntegrationErrorKind::Unexpected,
                        "webhookSubscriptions has a next page but no new cursor to it",
                    ));
                }
            }
        }
    }

    /// Subscribes `uri` to `topic`.
    ///
    /// # Errors
    /// `InvalidInput` (permanent) with Shopify's user errors, or as [`ShopifyClient::products_page`].
    pub async fn create_webhook_subscription(
        &self,
        shop: &ShopifyShop,
        topic: &str,
        uri: &str,
    ) -> Result<WebhookSubscription, IntegrationError> {
        let variables = serde_json::json!({ "topic": topic, "uri": uri });
        let data: queries::CreateWebhookData = self.graphql(shop, queries::CREATE_WEBHOOK, variables).await?;
        let payload = data.webhook_subscription_create.ok_or_else(|| {
            error(IntegrationErrorKind::Unexpected, "webhookSubscriptionCreate returned nothing")
        })?;
        if !payload.user_errors.is_empty() {
            let messages: Vec<String> = payload
                .user_errors
                .iter()
                .map(|e| match &e.field {
                    Some(field) => format!("{}: {}", field.join("."), e.message),
                    None => e.message.clone(),
                })
                .collect();
            return Err(error(IntegrationErrorKind::InvalidInput, messages.join("; ")));
        }
        payload.webhook_subscription.map(subscription).ok_or_else(|| {
            error(IntegrationErrorKind::Unexpected, "webhookSubscriptionCreate returned no subscription")
        })
    }

    fn endpoint(&self, shop: &ShopifyShop) -> String {
        let base = match &self.config.base_url {
            Some(base) => base.replace("{shop}", shop.domain.shop_name()),
            None => format!("https://{}", shop.domain),
        };
        format!("{}/admin/api/{API_VERSION}/graphql.json", base.trim_end_matches('/'))
    }

    /// Sends one GraphQL document, pacing by the shop's cost budget and retrying throttles and
    /// outages up to `max_tries`.
    async fn graphql<T: DeserializeOwned>(
        &self,
        shop: &ShopifyShop,
        document: Document,
        variables: serde_json::Value,
    ) -> Result<T, IntegrationError> {
        let body = serde_json::json!({ "query": document.source(), "variables": variables });
        let mut tries = 0;
        loop {
            tries += 1;
            // A retry has just waited for its own reason; the budget seen before that is stale.
            if tries == 1
                && let Some(wait) = self.budget_wait(shop, document)
            {
                self.pacer.wait(wait).await;
            }
            match self.send_once::<T>(shop, document, &body).await {
                Ok(data) => return Ok(data),
                Err(Failure::Retry { error, wait }) if tries < self.config.max_tries => {
                    tracing::info!(shop = %shop.domain, tries, wait_ms = wait.as_millis() as u64, error = %error, "shopify asked to wait");
                    self.pacer.wait(wait).await;
                }
                Err(Failure::Retry { error, .. } | Failure::Final(error)) => return Err(error),
            }
        }
    }

    async fn send_once<T: DeserializeOwned>(
        &self,
        shop: &ShopifyShop,
        document: Document,
        body: &serde_json::Value,
    ) -> Result<T, Failure> {
        let response = self
            .http
            .post(self.endpoint(shop))
            .header("X-Shopify-Access-Token", shop.token.expose())
            .json(body)
            .send()
            .await
            .map_err(|e| {
                let kind = if e.is_timeout() {
                    IntegrationErrorKind::Timeout
                } else {
                    IntegrationErrorKind::Unavailable
                };
                Failure::Retry {
                    error: error(kind, format!("request failed: {e}")),
                    wait: Duration::from_secs(1),
                }
            })?;
        if let Some(redirect) = crate::http::redirect_error(SOURCE, &response) {
            return Err(Failure::Final(redirect));
        }
        let status = response.status();
        let retry_after = crate::http::retry_after(response.headers());
        if let Some(served) = response.headers().get("x-shopify-api-version") {
            self.versions.check(shop, document, served);
        }
        let text = response.text().await.map_err(|e| Failure::Retry {
            error: error(IntegrationErrorKind::Unavailable, format!("reading the answer: {e}")),
            wait: Duration::from_secs(1),
        })?;
        check_status(status, retry_after, &text)?;
        let answer: GraphqlResponse<T> = serde_json::from_str(&text).map_err(|e| {
            Failure::Final(error(IntegrationErrorKind::Unexpected, format!("unreadable GraphQL answer: {e}")))
        })?;
        let throttle = answer.extensions.as_ref().and_then(|x| x.cost).map(|c| c.throttle_status);
        if let Some(status) = throttle {
            self.budgets.lock().unwrap_or_else(|p| p.into_inner()).insert(shop.domain.to_string(), status);
            let asked = answer_cost(&answer);
            self.costs.lock().unwrap_or_else(|p| p.into_inner()).insert(cost_key(shop, document), asked);
        }
        if let Some(throttled) = answer
            .errors
            .iter()
            .find(|e| e.extensions.as_ref().and_then(|x| x.code.as_deref()) == Some("THROTTLED"))
        {
            let wait = throttle.map_or(Duration::from_secs(1), |s| refill_wait(&s, answer_cost(&answer)));
            return Err(Failure::Retry {
                error: error(IntegrationErrorKind::RateLimited, throttled.message.clone()),
                wait,
            });
        }
        if !answer.errors.is_empty() {
            let messages: Vec<&str> = answer.errors.iter().map(|e| e.message.as_str()).collect();
            return Err(Failure::Final(error(IntegrationErrorKind::InvalidInput, messages.join("; "))));
        }
        answer.data.ok_or_else(|| {
            Failure::Final(error(IntegrationErrorKind::Unexpected, "a GraphQL answer without data"))
        })
    }

    /// How long to wait so that `document`, at what it cost last time, fits the shop's budget.
    fn budget_wait(&self, shop: &ShopifyShop, document: Document) -> Option<Duration> {
        let budgets = self.budgets.lock().unwrap_or_else(|p| p.into_inner());
        let status = budgets.get(shop.domain.as_str())?;
        let asked =
            self.costs.lock().unwrap_or_else(|p| p.into_inner()).get(&cost_key(shop, document)).copied();
        let asked = asked.unwrap_or(0.0);
        // Room for this document at its last cost (a sync's pages cost about alike), plus a
        // tenth of the bucket: a margin for a page that costs a little more and for other
        // clients of the same shop. Sending with less only earns a THROTTLED answer
        // (measured: 399 of a 100,000-product sync's 400 product pages were throttled once
        // while the client waited for a tenth only; BENCHMARKS.md, "store_sync at scale").
        let wanted = (asked + status.maximum_available / 10.0).min(status.maximum_available);
        (status.currently_available < wanted).then(|| refill_wait(status, wanted))
    }
}

/// A document's key among a shop's costs: its operation's name, unique among [`queries::DOCUMENTS`].
fn cost_key(shop: &ShopifyShop, document: Document) -> (String, &'static str) {
    (shop.domain.to_string(), document.name())
}

/// Answers served by another API version than the one asked for: counted, logged, and written
/// as an EMF metric line where one is wanted.
#[derive(Debug, Clone)]
struct VersionWatch {
    /// Since the client was made; its clones share it.
    mismatches: Arc<AtomicU64>,
    /// Where the metric's lines go: stdout in a Lambda function, none elsewhere.
    emf: Option<EmfOut>,
}

impl VersionWatch {
    /// Compares the `X-Shopify-Api-Version` an answer carries with [`API_VERSION`].
    fn check(&self, shop: &ShopifyShop, document: Document, served: &reqwest::header::HeaderValue) {
        let served = String::from_utf8_lossy(served.as_bytes());
        let served = served.trim();
        if served == API_VERSION {
            return;
        }
        let count = self.mismatches.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::warn!(
            shop = %shop.domain,
            document = document.name(),
            requested_version = API_VERSION,
            served_version = served,
            mismatches = count,
            "shopify served another API version than the pinned one (falling forward from an unsupported one)"
        );
        if let Some(emf) = &self.emf {
            emf.emit(served, chrono::Utc::now().timestamp_millis());
        }
    }
}

/// An EMF line per mismatched answer, in the namespace of jobkit's batch metrics.
#[derive(Clone)]
struct EmfOut {
    namespace: Arc<str>,
    writer: Arc<Mutex<Box<dyn Write + Send>>>,
}

impl std::fmt::Debug for EmfOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmfOut").field("namespace", &self.namespace).finish_non_exhaustive()
    }
}

impl EmfOut {
    /// Stdout in a Lambda function (`AWS_LAMBDA_FUNCTION_NAME` set), where CloudWatch reads
    /// EMF lines from the log stream as it does jobkit's; nothing elsewhere (`jobctl`, tests).
    fn from_env() -> Option<Self> {
        std::env::var_os("AWS_LAMBDA_FUNCTION_NAME")?;
        let namespace = std::env::var("JOBKIT_METRICS_NAMESPACE").unwrap_or_else(|_| "Jobs".to_owned());
        Some(Self { namespace: namespace.into(), writer: Arc::new(Mutex::new(Box::new(std::io::stdout()))) })
    }

    fn emit(&self, served: &str, timestamp_ms: i64) {
        let line = serde_json::json!({
            "_aws": {
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": &*self.namespace,
                    "Dimensions": [[]],
                    "Metrics": [{"Name": "shopify_api_version_mismatch", "Unit": "Count"}]
                }]
            },
            "shopify_api_version_mismatch": 1,
            "requested_version": API_VERSION,
            "served_version": served,
        });
        let mut writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        // A metric never fails a request: a broken pipe loses a line.
        let _ = writeln!(writer, "{line}");
    }
}

fn answer_cost<T>(answer: &GraphqlResponse<T>) -> f64 {
    answer.extensions.as_ref().and_then(|x| x.cost).and_then(|c| c.requested_query_cost).unwrap_or(50.0)
}

/// Time for the bucket to refill from what is left to `wanted` points.
fn refill_wait(status: &ThrottleStatus, wanted: f64) -> Duration {
    let missing = (wanted - status.currently_available).max(0.0);
    let rate = if status.restore_rate > 0.0 { status.restore_rate } else { 50.0 };
    Duration::from_secs_f64((missing / rate).clamp(0.0, 60.0))
}

/// A failed try: worth another after a wait, or the last one here (the error may still be
/// recoverable, for the job's retry policy).
enum Failure {
    Retry { error: IntegrationError, wait: Duration },
    Final(IntegrationError),
}

/// Another try after the server's `Retry-After` (2 s when it gave none); a wait past the cap
/// ends the tries here and leaves the recoverable `error` to the job's retry policy.
fn retry(error: IntegrationError, retry_after: RetryAfter) -> Failure {
    match retry_after.wait_or(Duration::from_secs(2)) {
        Some(wait) => Failure::Retry { error, wait },
        None => Failure::Final(error.with_detail("retry_after", "past the cap, left to the job's policy")),
    }
}

fn check_status(status: reqwest::StatusCode, retry_after: RetryAfter, text: &str) -> Result<(), Failure> {
    let snippet: String = text.chars().take(200).collect();
    let with_status = |kind, message: &str| {
        error(kind, format!("HTTP {}: {message}", status.as_u16())).with_detail("status", status.as_u16())
    };
    match status.as_u16() {
        200..=299 => Ok(()),
        401 | 403 => Err(Failure::Final(with_status(
            IntegrationErrorKind::Unauthorized,
            "the access token was refused",
        ))),
        402 | 423 => Err(Failure::Final(with_status(
            IntegrationErrorKind::Unauthorized,
            "the shop is frozen or locked",
        ))),
        404 => Err(Failure::Final(with_status(IntegrationErrorKind::NotFound, "no such shop"))),
        429 => Err(retry(with_status(IntegrationErrorKind::RateLimited, "too many requests"), retry_after)),
        500..=599 => Err(retry(with_status(IntegrationErrorKind::Unavailable, &snippet), retry_after)),
        _ => Err(Failure::Final(with_status(IntegrationErrorKind::InvalidInput, &snippet))),
    }
}

/// The id a product node is reported by when it cannot be read: its `id`, else `handle:<handle>`,
/// else `(no id)`.
fn node_id(value: &serde_json::Value) -> String {
    let text =
        |key: &str| value.get(key).and_then(serde_json::Value::as_str).filter(|s| !s.trim().is_empty());
    match (text("id"), text("handle")) {
        (Some(id), _) => id.to_owned(),
        (None, Some(handle)) => format!("handle:{handle}"),
        (None, None) => "(no id)".to_owned(),
    }
}

/// The product of a node, or why it cannot be one: a variant that does not read, without an
/// id, or with a price that is not a plain decimal.
fn product(store_id: &StoreId, node: queries::ProductNode, currency: &str) -> Result<Product, String> {
    let variants = node
        .variants
        .nodes
        .into_iter()
        .map(|value| {
            let v = serde_json::from_value::<queries::VariantNode>(value)
                .map_err(|e| format!("unreadable variant: {e}"))?;
            if v.id.trim().is_empty() {
                return Err("a variant with an empty id".to_owned());
            }
            let price = Money::parse_decimal(&v.price, currency)
                .ok_or_else(|| format!("variant {} has an unreadable price {:?}", v.id, v.price))?;
            Ok(Variant {
                id: VariantId::from(v.id),
                sku: v.sku.filter(|s| !s.is_empty()),
                price,
                inventory: v.inventory_quantity.unwrap_or(0),
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(Product {
        id: ProductId::from(node.id),
        store_id: store_id.clone(),
        title: node.title,
        handle: node.handle,
        variants,
    })
}

fn subscription(node: queries::WebhookNode) -> WebhookSubscription {
    WebhookSubscription { id: node.id, topic: node.topic, uri: node.uri }
}
