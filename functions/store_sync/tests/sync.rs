//! store_sync on the embedded backend against a stub Shopify shop of 1,000 products, which
//! prices each document by Shopify's rules and refuses what Shopify refuses before running one
//! (`shop::shopify::cost`): store_sync's pages must fit Shopify's single-query cost maximum.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use jobkit::{
    ErrorKind,
    clock::ManualClock,
    runner::{DlqReason, RecordStatus},
    testing::TestHarness,
};
use serde_json::{Value, json};
use shop::{
    CatalogRepository, History, Plan, Product, ProductId, RecordKind, Removed, RepoResult, Secret, Store,
    StoreId, StoreRepository, SyncState,
    embedded::ShopDb,
    services::CatalogSync,
    shopify::{ShopifyClient, ShopifyConfig, cost},
};
use store_sync::{StoreSync, StoreSyncArgs};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate, matchers::method};

const PRODUCTS: u32 = 1_000;
/// store_sync's pages of 50 products (the most a products page asks within Shopify's cost maximum).
const PAGES: u32 = PRODUCTS / 50;

/// A shop of `PRODUCTS` products served a page of the `first` asked by cursor (`p<page>`), each
/// answer with its requested and actual cost by Shopify's rules, and Shopify's refusal of a
/// document over its limits.
struct StubShop;

impl Respond for StubShop {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        answer(request, &(0..PRODUCTS).collect::<Vec<_>>(), &[])
    }
}

/// The page a request asks for (its cursor `p<page>`; 0 without one).
fn page_of(body: &Value) -> u32 {
    body["variables"]["after"].as_str().map_or(0, |c| c[1..].parse().expect("cursor"))
}

/// Shopify's answer to `request` in a shop of `products` (by number, in Shopify's order), of
/// which those in `poison` have a price that is not a decimal.
fn answer(request: &Request, products: &[u32], poison: &[u32]) -> ResponseTemplate {
    let body: Value = serde_json::from_slice(&request.body).expect("JSON request");
    let query = body["query"].as_str().expect("query");
    let analysis = match cost::analyze(query, None, &body["variables"]) {
        Ok(analysis) => analysis,
        Err(refusal) => return ResponseTemplate::new(200).set_body_json(refusal.answer()),
    };
    let first = body["variables"]["first"].as_u64().expect("first") as usize;
    let page = page_of(&body);
    let start = (page as usize * first).min(products.len());
    let end = (start + first).min(products.len());
    let nodes: Vec<Value> = products[start..end]
        .iter()
        .map(|n| {
            let price = if poison.contains(n) { "ten dollars" } else { "10.00" };
            json!({"id": format!("gid://shopify/Product/{n}"), "title": format!("Product {n}"), "handle": format!("p-{n}"),
                   "variants": {"nodes": [{"id": format!("gid://shopify/ProductVariant/{n}"), "sku": format!("SKU{n}"),
                                           "price": price, "inventoryQuantity": 3}]}})
        })
        .collect();
    let next = (end < products.len()).then(|| format!("p{}", page + 1));
    let data = json!({"shop": {"currencyCode": "USD"},
                      "products": {"pageInfo": {"hasNextPage": next.is_some(), "endCursor": next}, "nodes": nodes}});
    let (requested, actual) = (analysis.requested_cost(), analysis.actual_cost(&data));
    ResponseTemplate::new(200).set_body_json(json!({
        "data": data,
        "extensions": {"cost": {"requestedQueryCost": requested, "actualQueryCost": actual, "throttleStatus":
            {"maximumAvailable": 20000.0, "currentlyAvailable": 20000.0 - actual as f64, "restoreRate": 1000.0}}}
    }))
}

/// A shop whose products the test deletes between syncs, and whose answer to one page it can
/// replace with a failure, as `StubShop` otherwise.
#[derive(Clone)]
struct LiveShop(Arc<Mutex<Live>>);

struct Live {
    products: Vec<u32>,
    /// Products whose price does not read.
    poison: Vec<u32>,
    /// (page, answer, how many more times).
    failure: Option<(u32, ResponseTemplate, usize)>,
}

impl LiveShop {
    /// `PRODUCTS` products.
    fn new() -> Self {
        Self::of(PRODUCTS)
    }

    /// `count` products.
    fn of(count: u32) -> Self {
        Self(Arc::new(Mutex::new(Live { products: (0..count).collect(), poison: vec![], failure: None })))
    }

    /// From now on, the price of these products does not read.
    fn poison(&self, products: &[u32]) {
        self.0.lock().unwrap().poison = products.to_vec();
    }

    /// The shop deletes these products.
    fn delete(&self, gone: &[u32]) {
        self.0.lock().unwrap().products.retain(|n| !gone.contains(n));
    }

    /// The next `times` requests for `page` get `answer`.
    fn fail_page(&self, page: u32, answer: ResponseTemplate, times: usize) {
        self.0.lock().unwrap().failure = Some((page, answer, times));
    }

    /// The products it has, as the catalog's ids.
    fn ids(&self) -> Vec<ProductId> {
        let live = self.0.lock().unwrap();
        live.products.iter().map(|n| product_id(*n)).collect()
    }
}

impl Respond for LiveShop {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut live = self.0.lock().unwrap();
        let body: Value = serde_json::from_slice(&request.body).expect("JSON request");
        if let Some((page, failure, times)) = &mut live.failure
            && *page == page_of(&body)
            && *times > 0
        {
            *times -= 1;
            return failure.clone();
        }
        answer(request, &live.products, &live.poison)
    }
}

fn product_id(n: u32) -> ProductId {
    ProductId::from(format!("gid://shopify/Product/{n}"))
}

/// The catalog, with each write taking 40 s of the test clock (a slow page), so that a 20-page
/// sync (`PAGES`) cannot finish in one 300 s execution.
#[derive(Debug)]
struct SlowCatalog {
    db: ShopDb,
    clock: ManualClock,
}

#[async_trait]
impl CatalogRepository for SlowCatalog {
    async fn upsert_products(&self, products: &[Product]) -> RepoResult<usize> {
        self.clock.advance(chrono::Duration::seconds(40));
        self.db.upsert_products(products).await
    }

    async fn upsert_synced(&self, products: &[Product], run: &str) -> RepoResult<usize> {
        self.clock.advance(chrono::Duration::seconds(40));
        self.db.upsert_synced(products, run).await
    }

    async fn remove_unsynced(
        &self,
        store: &StoreId,
        run: &str,
        after: Option<&ProductId>,
        limit: usize,
    ) -> RepoResult<Removed> {
        self.db.remove_unsynced(store, run, after, limit).await
    }

    async fn count_products(&self, store: &StoreId) -> RepoResult<u64> {
        self.db.count_products(store).await
    }

    async fn get_product(&self, store: &StoreId, id: &ProductId) -> RepoResult<Option<Product>> {
        self.db.get_product(store, id).await
    }
}

struct World {
    t: TestHarness,
    db: ShopDb,
    shopify: MockServer,
    store: StoreId,
}

async fn world() -> World {
    let t = TestHarness::new();
    let db = ShopDb::in_memory().unwrap();
    let store = StoreId::from("st_42");
    db.put(&Store {
        id: store.clone(),
        shopify_domain: "acme.myshopify.com".parse().unwrap(),
        pos_location_id: None,
        plan: Plan::Basic,
        sync_state: SyncState::Never,
    })
    .await
    .unwrap();
    db.set_shopify_token(&store, &Secret::new("shpat_test")).unwrap();
    World { t, db, shopify: MockServer::start().await, store }
}

fn job(w: &World) -> StoreSync {
    let config =
        ShopifyConfig { base_url: Some(format!("{}/{{shop}}", w.shopify.uri())), ..ShopifyConfig::default() };
    let catalog = Arc::new(SlowCatalog { db: w.db.clone(), clock: w.t.clock().clone() });
    let sync = CatalogSync::new(ShopifyClient::new(config).unwrap(), catalog, Arc::new(w.db.clone()));
    StoreSync::new(Arc::new(w.db.clone()), sync, Arc::new(w.db.clone()))
}

#[tokio::test]
async fn a_1000_product_shop_syncs_across_continuations_with_every_product_once() {
    let w = world().await;
    Mock::given(method("POST")).respond_with(StubShop).expect(u64::from(PAGES)).mount(&w.shopify).await;
    let runner = w.t.runner(job(&w));
    w.t.enqueuer().perform_later::<StoreSync>(&StoreSyncArgs::store(w.store.clone())).await.unwrap();

    let report = w.t.drain(&runner).await;
    let continued = report.count(|s| *s == RecordStatus::Continued);
    assert!(continued >= 2, "20 pages of 40 s in 300 s executions continue at least twice, got {continued}");
    assert_eq!(report.succeeded(), 1);
    assert_eq!(w.db.count_products(&w.store).await.unwrap(), u64::from(PRODUCTS));
    let store = w.db.get(&w.store).await.unwrap().unwrap();
    assert!(
        matches!(store.sync_state, SyncState::Succeeded { products, .. } if products == u64::from(PRODUCTS)),
        "progress complete: {:?}",
        store.sync_state
    );
    let runs = w.db.recent(RecordKind::SyncRun, 10).await.unwrap();
    assert_eq!(runs.len(), 1, "one run recorded across its continuations");
    assert_eq!(
        runs[0].detail["counts"],
        serde_json::json!({ "pages": PAGES, "products": PRODUCTS, "removed": 0 })
    );
    // `expect(PAGES)` is checked when the stub drops: each page was fetched exactly once.
}

#[tokio::test]
async fn an_unknown_store_is_discarded_to_the_dlq() {
    let w = world().await;
    let runner = w.t.runner(job(&w));
    w.t.enqueuer().perform_later::<StoreSync>(&StoreSyncArgs::store("st_missing")).await.unwrap();
    let outcome = w.t.run_once(&runner).await;
    assert_eq!(outcome[0].status, RecordStatus::DeadLettered(DlqReason::Discarded, ErrorKind::NOT_FOUND));
    let dead = w.t.dead_letter_errors::<StoreSync>();
    assert!(dead[0].as_ref().is_some_and(|e| e.message.contains("st_missing")), "{dead:?}");
}

#[tokio::test]
async fn a_refused_token_is_discarded_and_an_outage_is_retried_with_backoff() {
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
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503).insert_header("Retry-After", "0"))
        .mount(&w.shopify)
        .await;
    let runner = w.t.runner(job(&w));
    let args = StoreSyncArgs::store(w.store.clone());
    w.t.enqueuer().perform_later::<StoreSync>(&args).await.unwrap();
    let refused = w.t.run_once(&runner).await;
    assert_eq!(refused[0].status, RecordStatus::DeadLettered(DlqReason::Discarded, ErrorKind::UNAUTHORIZED));
    // after_discard: the store says its sync failed, and why (without the token).
    let state = w.db.get(&w.store).await.unwrap().unwrap().sync_state;
    let SyncState::Failed { reason, .. } = &state else { panic!("{state:?}") };
    assert!(reason.starts_with("unauthorized: "), "{reason}");
    assert!(!reason.contains("shpat_test"), "{reason}");

    w.t.enqueuer().perform_later::<StoreSync>(&args).await.unwrap();
    let outage = w.t.run_once(&runner).await;
    let RecordStatus::Retrying(wait) = outage[0].status else { panic!("{:?}", outage[0].status) };
    assert!((3.0..=3.2).contains(&wait.as_secs_f64()), "first polynomial wait, got {wait:?}");
}

#[tokio::test]
async fn a_second_delivery_changes_nothing() {
    let w = world().await;
    Mock::given(method("POST")).respond_with(StubShop).expect(u64::from(PAGES)).mount(&w.shopify).await;
    let runner = w.t.runner(job(&w));
    let id = w.t.enqueuer().perform_later::<StoreSync>(&StoreSyncArgs::store(w.store.clone())).await.unwrap();
    w.t.drain(&runner).await;
    let before = w.db.get(&w.store).await.unwrap();

    let again = jobkit::EnqueueOptions { job_id: Some(id), ..Default::default() };
    w.t.enqueuer()
        .perform_later_with::<StoreSync>(&StoreSyncArgs::store(w.store.clone()), again)
        .await
        .unwrap();
    let report = w.t.drain(&runner).await;
    assert_eq!(report.count(|s| *s == RecordStatus::Duplicate), 1);
    assert_eq!(w.db.get(&w.store).await.unwrap(), before, "no new sync ran");
}

#[tokio::test]
async fn the_fan_out_tick_enqueues_one_sync_per_syncable_store() {
    let w = world().await;
    for (id, plan) in [("st_a", Plan::Basic), ("st_b", Plan::Pro), ("st_paused", Plan::Paused)] {
        let mut store = w.db.get(&w.store).await.unwrap().unwrap();
        store.id = id.into();
        store.plan = plan;
        w.db.put(&store).await.unwrap();
    }
    let runner = w.t.runner(job(&w));
    let tick =
        r#"{"all_stores":true,"$schedule":{"rule":"store-sync-every-15-min","time":"2026-01-01T00:00:00Z"}}"#;
    let message = jobkit::message::OutgoingMessage { body: tick.into(), ..Default::default() };
    jobkit::ports::Queue::send(w.t.queue().as_ref(), &TestHarness::queue_name::<StoreSync>(), message)
        .await
        .unwrap();
    assert_eq!(w.t.run_once(&runner).await[0].status, RecordStatus::Succeeded);

    let mut enqueued: Vec<_> =
        w.t.enqueued::<StoreSync>().await.into_iter().map(|a| a.store_id.expect("one store each")).collect();
    enqueued.sort();
    assert_eq!(enqueued, [StoreId::from("st_42"), StoreId::from("st_a"), StoreId::from("st_b")]);

    // The three syncs are one batch: when the last has finished (st_b has no token: it fails
    // for good), its callback records the fan-out's run, once.
    w.db.set_shopify_token(&StoreId::from("st_a"), &Secret::new("shpat_a")).unwrap();
    Mock::given(method("POST")).respond_with(StubShop).mount(&w.shopify).await;
    let report = w.t.drain(&runner).await;
    assert_eq!(report.succeeded(), 3, "two syncs and the callback: {:?}", report.records);
    let runs = w.db.recent(RecordKind::SyncRun, 10).await.unwrap();
    let fan_outs: Vec<_> = runs.iter().filter(|e| e.store_id.as_str() == shop::history::ALL_STORES).collect();
    assert_eq!(fan_outs.len(), 1, "{runs:?}");
    assert_eq!(fan_outs[0].detail["counts"], json!({"stores": 3, "synced": 2, "failed": 1}));
}

#[tokio::test]
async fn arguments_naming_neither_or_both_are_refused() {
    let w = world().await;
    let runner = w.t.runner(job(&w));
    for args in
        [StoreSyncArgs::default(), StoreSyncArgs { all_stores: true, ..StoreSyncArgs::store("st_42") }]
    {
        w.t.enqueuer().perform_later::<StoreSync>(&args).await.unwrap();
    }
    let outcomes = w.t.run_once(&runner).await;
    assert_eq!(outcomes.len(), 2);
    let refused = RecordStatus::DeadLettered(DlqReason::Discarded, ErrorKind::INVALID_ARGUMENTS);
    assert!(outcomes.iter().all(|o| o.status == refused), "{outcomes:?}");
}

#[tokio::test]
async fn a_redirect_elsewhere_is_not_followed_and_the_job_is_discarded_to_the_dlq() {
    let w = world().await;
    let elsewhere = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(302).insert_header("Location", format!("{}/steal", elsewhere.uri())),
        )
        .mount(&w.shopify)
        .await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": null})))
        .mount(&elsewhere)
        .await;
    let runner = w.t.runner(job(&w));
    w.t.enqueuer().perform_later::<StoreSync>(&StoreSyncArgs::store(w.store.clone())).await.unwrap();

    let outcome = w.t.run_once(&runner).await;
    assert!(elsewhere.received_requests().await.unwrap().is_empty(), "the token went to another host");
    assert_eq!(
        outcome[0].status,
        RecordStatus::DeadLettered(DlqReason::Discarded, ErrorKind::UNEXPECTED_RESPONSE)
    );
    let message = &w.t.dead_letter_errors::<StoreSync>()[0].clone().expect("the error is recorded").message;
    assert!(message.contains("302") && message.contains(&elsewhere.address().to_string()), "{message}");
}

#[tokio::test]
async fn two_syncs_of_one_store_never_overlap_the_second_waits_without_spending_an_attempt() {
    let w = world().await;
    Mock::given(method("POST")).respond_with(StubShop).expect(u64::from(2 * PAGES)).mount(&w.shopify).await;
    let runner = w.t.runner(job(&w));
    // An operator's sync and the fan-out's, two jobs for one store, in one batch.
    for _ in 0..2 {
        w.t.enqueuer().perform_later::<StoreSync>(&StoreSyncArgs::store(w.store.clone())).await.unwrap();
    }
    let report = w.t.drain(&runner).await;
    assert!(report.count(|s| *s == RecordStatus::Limited) >= 1, "the second waited for the first");
    assert_eq!(report.succeeded(), 2, "then ran: {:?}", report.records);
    assert_eq!(report.retried(), 0, "waiting is not a failure");
    let runs = w.db.recent(RecordKind::SyncRun, 10).await.unwrap();
    assert_eq!(runs.len(), 2);
    // `expect(2 * PAGES)`: each sync fetched its pages once.
}

#[tokio::test]
async fn a_fan_out_while_a_stores_sync_is_still_pending_adds_none_for_that_store() {
    let w = world().await;
    Mock::given(method("POST")).respond_with(StubShop).mount(&w.shopify).await;
    let runner = w.t.runner(job(&w));
    let fan_out = |time: &str| {
        let tick = format!(
            r#"{{"all_stores":true,"$schedule":{{"rule":"store-sync-every-15-min","time":"{time}"}}}}"#
        );
        jobkit::message::OutgoingMessage { body: tick, ..Default::default() }
    };
    let queue = TestHarness::queue_name::<StoreSync>();
    let send = |m| jobkit::ports::Queue::send(w.t.queue().as_ref(), &queue, m);
    send(fan_out("2025-12-31T23:00:00Z")).await.unwrap();
    assert_eq!(w.t.run_once(&runner).await[0].status, RecordStatus::Succeeded);
    // The next tick while st_42's sync waits in the queue: nothing added.
    send(fan_out("2025-12-31T23:15:00Z")).await.unwrap();
    let second = w.t.run_once(&runner).await;
    assert!(second.iter().any(|r| r.status == RecordStatus::Succeeded), "{second:?}");
    // One sync of st_42, not two, and each fan-out's callback (the second's batch is empty).
    let first = w.t.drain(&runner).await;
    assert_eq!(first.succeeded(), 3, "{:?}", first.records);
    let st_42_runs =
        |runs: Vec<shop::HistoryEntry>| runs.iter().filter(|e| e.store_id.as_str() == "st_42").count();
    assert_eq!(st_42_runs(w.db.recent(RecordKind::SyncRun, 10).await.unwrap()), 1);
    // Once it is done, the next fan-out enqueues the store again.
    send(fan_out("2025-12-31T23:30:00Z")).await.unwrap();
    let report = w.t.drain(&runner).await;
    assert_eq!(report.succeeded(), 3, "the fan-out, st_42's next sync, the callback: {:?}", report.records);
    assert_eq!(st_42_runs(w.db.recent(RecordKind::SyncRun, 10).await.unwrap()), 2);
}

/// The catalog's product ids of the store, sorted (every product of the stub's numbering).
async fn catalog_ids(w: &World) -> Vec<ProductId> {
    let mut ids = Vec::new();
    for n in 0..PRODUCTS {
        if w.db.get_product(&w.store, &product_id(n)).await.unwrap().is_some() {
            ids.push(product_id(n));
        }
    }
    ids
}

/// Syncs the store once, to the end (across its continuations); returns the store's sync state.
/// `shop` served to the world's store, and the store synced once from it: the runner, for the
/// syncs a test runs next.
async fn synced_from(w: &World, shop: &LiveShop) -> jobkit::runner::BatchRunner<StoreSync> {
    Mock::given(method("POST")).respond_with(shop.clone()).mount(&w.shopify).await;
    let runner = w.t.runner(job(w));
    sync_to_the_end(w, &runner).await;
    runner
}

async fn sync_to_the_end(w: &World, runner: &jobkit::runner::BatchRunner<StoreSync>) -> SyncState {
    w.t.enqueuer().perform_later::<StoreSync>(&StoreSyncArgs::store(w.store.clone())).await.unwrap();
    let report = w.t.drain(runner).await;
    assert_eq!(report.succeeded(), 1, "{:?}", report.records);
    w.db.get(&w.store).await.unwrap().unwrap().sync_state
}

fn removed_by(state: &SyncState) -> u64 {
    match state {
        SyncState::Succeeded { removed, .. } => *removed,
        other => panic!("not a finished sync: {other:?}"),
    }
}

#[tokio::test]
async fn products_deleted_in_the_shop_between_two_syncs_are_gone_after_the_second() {
    let w = world().await;
    let shop = LiveShop::new();
    Mock::given(method("POST")).respond_with(shop.clone()).mount(&w.shopify).await;
    // A product of this store the shop does not have, written unmarked (as before syncs marked
    // products), goes with the first full sync; another store's product (same id) stays.
    let product = |store: &str, n: u32| Product {
        id: product_id(n),
        store_id: StoreId::from(store),
        title: format!("Product {n}"),
        handle: format!("p-{n}"),
        variants: vec![],
    };
    let (stray, foreign) = (product("st_42", 5_000), product("st_other", 7));
    w.db.upsert_products(&[stray.clone(), foreign.clone()]).await.unwrap();
    let runner = w.t.runner(job(&w));

    let first = sync_to_the_end(&w, &runner).await;
    assert_eq!(removed_by(&first), 1, "the stray product");
    assert_eq!(w.db.get_product(&w.store, &stray.id).await.unwrap(), None);
    assert_eq!(w.db.count_products(&w.store).await.unwrap(), u64::from(PRODUCTS));

    // On the first page, in the middle and the last product.
    shop.delete(&[0, 517, 999]);
    let second = sync_to_the_end(&w, &runner).await;
    assert_eq!(removed_by(&second), 3);
    assert_eq!(catalog_ids(&w).await, shop.ids(), "exactly the three deleted are gone");
    assert_eq!(w.db.count_products(&w.store).await.unwrap(), u64::from(PRODUCTS) - 3);
    assert_eq!(
        w.db.get_product(&foreign.store_id, &foreign.id).await.unwrap(),
        Some(foreign),
        "another store's"
    );
    let runs = w.db.recent(RecordKind::SyncRun, 10).await.unwrap();
    assert_eq!(runs[0].detail["counts"]["removed"], json!(3), "{runs:?}");

    // A third sync of an unchanged shop removes nothing.
    assert_eq!(removed_by(&sync_to_the_end(&w, &runner).await), 0);
    assert_eq!(catalog_ids(&w).await, shop.ids());
}

#[tokio::test]
async fn a_shop_that_deleted_most_of_its_products_loses_them_in_several_checkpointed_batches() {
    let w = world().await;
    let shop = LiveShop::new();
    let runner = synced_from(&w, &shop).await;

    let gone: Vec<u32> = (100..900).collect();
    shop.delete(&gone);
    let state = sync_to_the_end(&w, &runner).await;
    assert_eq!(
        removed_by(&state),
        800,
        "{} batches of {}",
        800 / shop::services::REMOVE_BATCH,
        shop::services::REMOVE_BATCH
    );
    assert_eq!(catalog_ids(&w).await, shop.ids());
}

#[tokio::test]
async fn a_sync_that_fails_for_good_part_way_removes_nothing() {
    let w = world().await;
    let shop = LiveShop::new();
    let runner = synced_from(&w, &shop).await;
    let before = catalog_ids(&w).await;

    // The shop deletes three products, then refuses the token on page 2 of the next sync.
    shop.delete(&[0, 517, 999]);
    let refused =
        ResponseTemplate::new(401).set_body_json(json!({"errors": "[API] Invalid API key or access token"}));
    shop.fail_page(2, refused, 1);
    w.t.enqueuer().perform_later::<StoreSync>(&StoreSyncArgs::store(w.store.clone())).await.unwrap();
    let report = w.t.drain(&runner).await;
    assert_eq!(report.succeeded(), 0, "{:?}", report.records);
    assert_eq!(
        report.count(|s| *s == RecordStatus::DeadLettered(DlqReason::Discarded, ErrorKind::UNAUTHORIZED)),
        1
    );
    assert_eq!(catalog_ids(&w).await, before, "nothing removed, not even what the shop deleted");
    assert!(matches!(w.db.get(&w.store).await.unwrap().unwrap().sync_state, SyncState::Failed { .. }));

    // The next sync, on a shop that answers again, removes them.
    assert_eq!(removed_by(&sync_to_the_end(&w, &runner).await), 3);
    assert_eq!(catalog_ids(&w).await, shop.ids());
}

#[tokio::test]
async fn a_sync_stopped_at_the_deadline_removes_nothing_until_its_continuation_has_every_page() {
    let w = world().await;
    let shop = LiveShop::new();
    let runner = synced_from(&w, &shop).await;
    let before = catalog_ids(&w).await;

    shop.delete(&[0, 517, 999]);
    w.t.enqueuer().perform_later::<StoreSync>(&StoreSyncArgs::store(w.store.clone())).await.unwrap();
    // 40 s a page in a 300 s execution: it stops after a few pages and continues later.
    let stopped = w.t.run_once(&runner).await;
    assert_eq!(stopped[0].status, RecordStatus::Continued);
    assert_eq!(catalog_ids(&w).await, before, "a run part-way removes nothing");
    assert!(matches!(w.db.get(&w.store).await.unwrap().unwrap().sync_state, SyncState::Running { .. }));

    // Its continuations (the same run) write the rest, then remove exactly the three; a page
    // that fails on the way (an outage outlasting the client's own tries) is retried within
    // the run, whose earlier pages keep its mark.
    let outage = ResponseTemplate::new(503).insert_header("Retry-After", "0");
    shop.fail_page(12, outage, ShopifyConfig::default().max_tries as usize);
    let report = w.t.drain(&runner).await;
    assert_eq!(report.succeeded(), 1, "{:?}", report.records);
    assert_eq!(report.retried(), 1, "{:?}", report.records);
    let state = w.db.get(&w.store).await.unwrap().unwrap().sync_state;
    assert_eq!(removed_by(&state), 3);
    assert_eq!(catalog_ids(&w).await, shop.ids());
}

#[tokio::test]
async fn one_poison_product_among_500_is_set_aside_and_reported_once_and_the_rest_synced() {
    let w = world().await;
    let shop = LiveShop::of(500);
    shop.poison(&[250]);
    Mock::given(method("POST")).respond_with(shop.clone()).mount(&w.shopify).await;
    let runner = w.t.runner(job(&w));

    let first = sync_to_the_end(&w, &runner).await;
    assert!(matches!(first, SyncState::Succeeded { products: 499, removed: 0, .. }), "{first:?}");
    assert_eq!(w.db.count_products(&w.store).await.unwrap(), 499);
    assert_eq!(w.db.get_product(&w.store, &product_id(250)).await.unwrap(), None, "not written");
    let emails = w.t.sent_emails();
    assert_eq!(emails.len(), 1, "{emails:?}");
    assert!(emails[0].subject.contains("store_sync"), "{}", emails[0].subject);
    assert!(
        emails[0].subject.contains("gid://shopify/Product/250")
            || emails[0].text.contains("gid://shopify/Product/250"),
        "names the product: {:?}",
        emails[0]
    );
    assert!(emails[0].text.contains("price"), "says why: {}", emails[0].text);

    // The next run meets it again: counted, not emailed again.
    let second = sync_to_the_end(&w, &runner).await;
    assert!(matches!(second, SyncState::Succeeded { products: 499, removed: 0, .. }), "{second:?}");
    assert_eq!(w.t.sent_emails().len(), 1, "reported once: {:?}", w.t.sent_emails());
}

#[tokio::test]
async fn a_product_set_aside_keeps_its_stored_copy_until_the_shop_deletes_it() {
    let w = world().await;
    let shop = LiveShop::of(500);
    let runner = synced_from(&w, &shop).await;
    let stored = w.db.get_product(&w.store, &product_id(250)).await.unwrap().expect("synced");

    // The shop still has it, but its price no longer reads: the last copy read stays.
    shop.poison(&[250]);
    let poisoned = sync_to_the_end(&w, &runner).await;
    assert_eq!(removed_by(&poisoned), 0, "the sweep keeps a product the shop still has");
    assert_eq!(w.db.get_product(&w.store, &product_id(250)).await.unwrap(), Some(stored));
    assert_eq!(w.db.count_products(&w.store).await.unwrap(), 500);
    assert_eq!(w.t.sent_emails().len(), 1, "{:?}", w.t.sent_emails());

    // Once the shop deletes it, the sweep removes it.
    shop.delete(&[250]);
    let deleted = sync_to_the_end(&w, &runner).await;
    assert_eq!(removed_by(&deleted), 1);
    assert_eq!(w.db.get_product(&w.store, &product_id(250)).await.unwrap(), None);
    assert_eq!(w.db.count_products(&w.store).await.unwrap(), 499);
}
