//! `store_sync` at scale: the real job, through the batch runner, syncs a sandbox shop of
//! `--products` products (default 100,000; every `--wide-every`th has 250 variants, the others 2)
//! from a loopback Shopify that charges cost points and throttles like the GraphQL Admin API,
//! and prints what it took: pages, queries (and how many were throttled), invocations and
//! executions (continuations), cost points, and the time Shopify's throttle made it last.
//!
//! The shop's time is the harness's clock: the Shopify client's waits (its pacer) move it, and
//! the bucket refills by it, so a sync that Shopify's throttle stretches over hours runs in
//! seconds of real time, and the runner continues it near each invocation's deadline as it
//! would on Lambda (a 600 s function, the job's 300 s executions).
//!
//! Cost model: Shopify's published rules (`shop::shopify::cost`, each rule naming its source):
//! a scalar 0, an object 1, a connection 2 and its `first` times a node, a mutation 10. A
//! document requesting over 1,000 points is refused (`MAX_COST_EXCEEDED`) as a page or an input
//! array over 250 is; the bucket must hold the requested cost, and is charged the actual cost
//! (what was returned). The bucket holds 2,000 points and restores 100 a second (what a current
//! shop answers in `throttleStatus`; the older documented Standard limit is 1,000 and 50).
//!
//! `cargo bench -p store_sync --bench sync_at_scale -- [--products N] [--wide-every N]`

// The benches' option reader (`--name value`), shared with jobkit's.
#[path = "../../../shared/jobkit/benches/support/mod.rs"]
mod support;

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use jobkit::{
    Job,
    clock::{Clock, ManualClock},
    runner::RecordStatus,
    testing::TestHarness,
};
use serde_json::{Value, json};
use shop::{
    CatalogRepository, Plan, Secret, Store, StoreId, StoreRepository, SyncState,
    embedded::ShopDb,
    services::CatalogSync,
    shopify::{Pacer, ShopifyClient, ShopifyConfig, cost},
};
use store_sync::{StoreSync, StoreSyncArgs};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate, matchers::method};

/// The bucket's size and its restore rate, points a second.
const BUCKET: f64 = 2000.0;
const RESTORE_PER_SECOND: f64 = 100.0;
/// Lambda: the function's timeout (the template's for store_sync).
const INVOCATION: chrono::Duration = chrono::Duration::seconds(600);

/// The Shopify client's waits move the harness's clock instead of sleeping.
#[derive(Debug)]
struct ClockPacer(ManualClock);

impl Pacer for ClockPacer {
    fn wait(&self, duration: Duration) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        self.0.advance(chrono::Duration::from_std(duration).unwrap_or_default());
        Box::pin(async {})
    }
}

#[derive(Debug, Default)]
struct Counters {
    product_pages: u64,
    variant_pages: u64,
    throttled: u64,
    cost_points: f64,
}

/// The shop: its catalog, its bucket on the harness's clock, what it answered.
struct ThrottledShop {
    products: usize,
    wide_every: usize,
    clock: ManualClock,
    bucket: Mutex<(f64, DateTime<Utc>)>,
    counters: Arc<Mutex<Counters>>,
}

impl ThrottledShop {
    fn variants_of(&self, product: usize) -> usize {
        if product.is_multiple_of(self.wide_every) { 250 } else { 2 }
    }

    fn variant(product: usize, v: usize) -> Value {
        json!({"id": format!("gid://shopify/ProductVariant/{product}-{v}"), "sku": format!("SKU-{product}-{v}"),
               "price": format!("{}.{:02}", 10 + product % 90, v % 100), "inventoryQuantity": (product + v) % 25})
    }

    fn variants(product: usize, from: usize, to: usize, total: usize) -> Value {
        json!({"pageInfo": {"hasNextPage": to < total, "endCursor": to.to_string()},
               "nodes": (from..to).map(|v| Self::variant(product, v)).collect::<Vec<_>>()})
    }

    /// A page of `first` products, each with its first `shown` variants (the pages the
    /// document asks for).
    fn products_page(&self, variables: &Value, (first, shown): (usize, usize)) -> Value {
        let start = variables["after"].as_str().and_then(|c| c.parse().ok()).unwrap_or(0);
        let end = (start + first).min(self.products);
        let nodes: Vec<Value> = (start..end)
            .map(|i| {
                let total = self.variants_of(i);
                json!({"id": format!("gid://shopify/Product/{i}"), "title": format!("Product {i}"),
                       "handle": format!("product-{i}"), "variants": Self::variants(i, 0, shown.min(total), total)})
            })
            .collect();
        json!({"shop": {"currencyCode": "USD"},
            "products": {"pageInfo": {"hasNextPage": end < self.products, "endCursor": end.to_string()}, "nodes": nodes}})
    }

    /// A product's variants after a cursor, `first` of them.
    fn variants_page(&self, variables: &Value, first: usize) -> Value {
        let product: usize = variables["id"]
            .as_str()
            .and_then(|id| id.rsplit('/').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let from = variables["after"].as_str().and_then(|c| c.parse().ok()).unwrap_or(0);
        let total = self.variants_of(product);
        let to = (from + first).min(total);
        json!({"product": {"variants": Self::variants(product, from, to, total)}})
    }

    fn throttle_status(available: f64) -> Value {
        json!({"maximumAvailable": BUCKET, "currentlyAvailable": available, "restoreRate": RESTORE_PER_SECOND})
    }
}

impl Respond for ThrottledShop {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&request.body).unwrap_or_default();
        let query = body["query"].as_str().unwrap_or_default();
        // Refused before running, as Shopify refuses it (a page, an array, the cost over its limit).
        let analysis = match cost::analyze(query, None, &body["variables"]) {
            Ok(analysis) => analysis,
            Err(refusal) => return ResponseTemplate::new(200).set_body_json(refusal.answer()),
        };
        let page = |key| analysis.page_size(key).unwrap_or(0) as usize;
        let data = if query.contains("products(") {
            self.products_page(&body["variables"], (page("products"), page("variants")))
        } else {
            self.variants_page(&body["variables"], page("variants"))
        };
        let (requested, actual) = (analysis.requested_cost() as f64, analysis.actual_cost(&data) as f64);
        let now = self.clock.now();
        let mut bucket = self.bucket.lock().unwrap_or_else(|p| p.into_inner());
        let refilled = (now - bucket.1).num_milliseconds().max(0) as f64 / 1000.0 * RESTORE_PER_SECOND;
        let available = (bucket.0 + refilled).min(BUCKET);
        *bucket = (available, now);
        let mut counters = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        // The bucket must hold the requested cost; it is charged the actual one.
        if available < requested {
            counters.throttled += 1;
            return ResponseTemplate::new(200).set_body_json(json!({
                "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
                "extensions": {"cost": {"requestedQueryCost": requested, "actualQueryCost": null,
                                        "throttleStatus": Self::throttle_status(available)}}}));
        }
        bucket.0 = available - actual;
        counters.cost_points += actual;
        if query.contains("products(") {
            counters.product_pages += 1;
        } else {
            counters.variant_pages += 1;
        }
        ResponseTemplate::new(200).set_body_json(json!({"data": data,
            "extensions": {"cost": {"requestedQueryCost": requested, "actualQueryCost": actual,
                                    "throttleStatus": Self::throttle_status(bucket.0)}}}))
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let products = support::option("--products", 100_000_usize);
    let wide_every = support::option("--wide-every", 100_usize).max(1);
    let t = TestHarness::new();
    let counters = Arc::new(Mutex::new(Counters::default()));
    let shopify = MockServer::start().await;
    let shop = ThrottledShop {
        products,
        wide_every,
        clock: t.clock().clone(),
        bucket: Mutex::new((BUCKET, t.clock().now())),
        counters: counters.clone(),
    };
    Mock::given(method("POST")).respond_with(shop).mount(&shopify).await;

    let db = ShopDb::in_memory()?;
    let store = StoreId::from("st_big");
    db.put(&Store {
        id: store.clone(),
        shopify_domain: "big-shop.myshopify.com".parse()?,
        pos_location_id: None,
        plan: Plan::Pro,
        sync_state: SyncState::Never,
    })
    .await?;
    db.set_shopify_token(&store, &Secret::new("shpat_big"))?;
    let config =
        ShopifyConfig { base_url: Some(format!("{}/{{shop}}", shopify.uri())), ..ShopifyConfig::default() };
    let client = ShopifyClient::with_pacer(config, Arc::new(ClockPacer(t.clock().clone())))?;
    let catalog = CatalogSync::new(client, Arc::new(db.clone()), Arc::new(db.clone()));
    let job = StoreSync::new(Arc::new(db.clone()), catalog, Arc::new(db.clone()));
    let runner = t.runner(job);
    t.enqueuer().perform_later::<StoreSync>(&StoreSyncArgs::store(store.clone())).await?;

    let (started, real) = (t.clock().now(), Instant::now());
    let (mut invocations, mut executions, mut succeeded) = (0_u64, 0_u64, 0_u64);
    loop {
        let records = t.run_once_with_deadline(&runner, t.clock().now() + INVOCATION).await;
        if records.is_empty() {
            match t.queue().next_visible_at(&TestHarness::queue_name::<StoreSync>())? {
                Some(at) => t.clock().set(at.max(t.clock().now())),
                None => break,
            }
            continue;
        }
        invocations += 1;
        for record in &records {
            match &record.status {
                RecordStatus::Continued => executions += 1,
                RecordStatus::Succeeded => {
                    executions += 1;
                    succeeded += 1;
                }
                other => eprintln!("record: {other:?}"),
            }
        }
        eprint!("\r{invocations} invocations, {} products", db.count_products(&store).await?);
    }
    eprintln!();
    let synced = db.count_products(&store).await?;
    anyhow::ensure!(succeeded == 1 && synced == products as u64, "the sync ended with {synced} products");
    let counters = counters.lock().unwrap_or_else(|p| p.into_inner());
    let shop_time = t.clock().now() - started;
    println!(
        "{}",
        json!({
            "job": StoreSync::NAME, "products": products, "wide_products": products.div_ceil(wide_every),
            "product_pages": counters.product_pages, "variant_pages": counters.variant_pages,
            "throttled_answers": counters.throttled, "cost_points": counters.cost_points,
            "invocations": invocations, "executions": executions,
            "shopify_time_seconds": shop_time.num_seconds(), "real_seconds": real.elapsed().as_secs_f64(),
            "bucket": BUCKET, "restore_per_second": RESTORE_PER_SECOND,
        })
    );
    Ok(())
}
