//! The sandbox's Shopify refuses what Shopify refuses before running a document, each limit
//! just over it in Shopify's shape (HTTP 200, `errors[]` with the code) and takes a document at
//! it; every answer carries its cost by Shopify's rules (`shop::shopify::cost`, which names each
//! rule's source); and the webhook registrar, on the real client, reads every page of a shop's
//! subscriptions through it.

use std::{collections::HashMap, sync::Arc};

use serde_json::{Value, json};
use shop::{
    Plan, Secret, Store, StoreRepository, SyncState,
    embedded::ShopDb,
    services::WebhookRegistrar,
    shopify::{API_VERSION, ShopifyClient, ShopifyConfig, ShopifyShop},
};
use shop_sandbox::{Behaviour, FixtureShop, Fixtures, Sandbox};

const TOKEN: &str = "shpat_acme";
const URI: &str = "https://hooks.example.com/shopify";

async fn sandbox() -> Sandbox {
    let shop = FixtureShop { token: TOKEN.into(), products: 300, behaviour: Behaviour::Healthy };
    let fixtures = Fixtures { shops: HashMap::from([("acme".to_owned(), shop)]), pos: HashMap::new() };
    Sandbox::start(fixtures).await.expect("the sandbox starts")
}

/// Sends a document to the sandbox's `acme` as the client does; the status and the body.
async fn graphql(sandbox: &Sandbox, query: &str, variables: Value) -> (u16, Value) {
    let url =
        format!("{}/admin/api/{API_VERSION}/graphql.json", sandbox.shopify_url().replace("{shop}", "acme"));
    let response = reqwest::Client::new()
        .post(url)
        .header("X-Shopify-Access-Token", TOKEN)
        .json(&json!({"query": query, "variables": variables}))
        .send()
        .await
        .expect("the sandbox answers");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON body"))
}

/// Shopify's refusal before running a document: HTTP 200, one error with this code, no data.
#[track_caller]
fn assert_refused((status, body): &(u16, Value), code: &str) -> Value {
    assert_eq!(*status, 200, "{body}");
    assert!(body.get("data").is_none(), "{body}");
    let errors = body["errors"].as_array().unwrap_or_else(|| panic!("no errors[]: {body}"));
    assert_eq!(errors.len(), 1, "{body}");
    assert_eq!(errors[0]["extensions"]["code"], code, "{body}");
    errors[0].clone()
}

/// Not refused for a limit: whatever the sandbox answers, no error with one of Shopify's
/// limits' codes, and the requested cost in `extensions`.
#[track_caller]
fn assert_not_refused((status, body): &(u16, Value), requested: u64) {
    assert_eq!(*status, 200, "{body}");
    let codes: Vec<&Value> =
        body["errors"].as_array().into_iter().flatten().map(|e| &e["extensions"]["code"]).collect();
    for code in ["MAX_COST_EXCEEDED", "BAD_REQUEST", "MAX_INPUT_SIZE_EXCEEDED"] {
        assert!(!codes.iter().any(|c| *c == code), "{body}");
    }
    assert_eq!(body["extensions"]["cost"]["requestedQueryCost"], requested, "{body}");
}

/// 1 (the shop) + 1 (its primary domain) + 2 + 4 × (1 + 2 + 246): exactly 1,000 points.
const AT_THE_MAXIMUM: &str = "query AtTheMaximum {
  shop { primaryDomain { id } }
  products(first: 4) { nodes { variants(first: 246) { nodes { id } } } }
}";

/// The same and one object more (the shop's address): 1,001 points.
const JUST_OVER: &str = "query JustOver {
  shop { primaryDomain { id } shopAddress { id } }
  products(first: 4) { nodes { variants(first: 246) { nodes { id } } } }
}";

#[tokio::test]
async fn a_document_requesting_1001_points_is_refused_with_max_cost_exceeded_and_one_of_1000_is_run() {
    let sandbox = sandbox().await;
    let error = assert_refused(&graphql(&sandbox, JUST_OVER, json!({})).await, "MAX_COST_EXCEEDED");
    assert_eq!(error["extensions"]["cost"], 1001, "{error}");
    assert_eq!(error["extensions"]["maxCost"], 1000, "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.starts_with("Query cost is 1001, which exceeds the single query max cost limit (1000).\n\n"),
        "{message}"
    );

    let answer = graphql(&sandbox, AT_THE_MAXIMUM, json!({})).await;
    assert_not_refused(&answer, 1000);
    assert_eq!(answer.1["data"]["products"]["nodes"].as_array().map(Vec::len), Some(4), "{}", answer.1);
}

#[tokio::test]
async fn a_page_of_251_is_refused_and_one_of_250_is_served() {
    let sandbox = sandbox().await;
    let page = "query Page($first: Int!) { products(first: $first) { nodes { id } } }";
    let error = assert_refused(&graphql(&sandbox, page, json!({"first": 251})).await, "BAD_REQUEST");
    assert_eq!(
        error["message"],
        "first cannot exceed 250. To query larger amounts of data with fewer limits, bulk operations should \
         be used instead."
    );
    assert_eq!(error["path"], json!(["products"]), "{error}");
    assert_eq!(error["locations"], json!([{"line": 1, "column": 28}]), "{error}");
    let last = "query Page { products(last: 251) { nodes { id } } }";
    let error = assert_refused(&graphql(&sandbox, last, json!({})).await, "BAD_REQUEST");
    assert!(error["message"].as_str().unwrap().starts_with("last cannot exceed 250."), "{error}");

    let answer = graphql(&sandbox, page, json!({"first": 250})).await;
    assert_not_refused(&answer, 2 + 250);
    assert_eq!(answer.1["data"]["products"]["nodes"].as_array().map(Vec::len), Some(250));
    assert_eq!(answer.1["extensions"]["cost"]["actualQueryCost"], 2 + 250, "{}", answer.1);
}

#[tokio::test]
async fn an_input_array_of_251_items_is_refused_and_one_of_250_is_not() {
    let sandbox = sandbox().await;
    let add = "mutation Tag($id: ID!, $tags: [String!]!) { tagsAdd(id: $id, tags: $tags) { userErrors { message } } }";
    let tags = |n: usize| json!({"id": "gid://shopify/Product/1", "tags": (0..n).map(|i| format!("t{i}")).collect::<Vec<_>>()});
    let error = assert_refused(&graphql(&sandbox, add, tags(251)).await, "MAX_INPUT_SIZE_EXCEEDED");
    assert_eq!(error["message"], "The input array size of 251 is greater than the maximum allowed of 250.");
    assert_eq!(error["path"], json!(["tagsAdd", "tags"]), "{error}");
    // A mutation requests 10 points; the sandbox does not know this one, but does not refuse it.
    assert_not_refused(&graphql(&sandbox, add, tags(250)).await, 10);
}

/// The client's products page is answered with what Shopify's rules charge it: 953 points
/// requested (50 products with 16 variants each), 3 + 50 × (1 + 2 + 2) spent on the fixture's
/// two variants a product.
#[tokio::test]
async fn the_clients_products_page_is_charged_by_shopifys_rules() {
    let sandbox = sandbox().await;
    let products = shop::shopify::DOCUMENTS.iter().find(|d| d.name() == "Products").unwrap();
    let answer = graphql(&sandbox, products.source(), json!({"first": 50, "after": null})).await;
    assert_not_refused(&answer, 953);
    let cost = &answer.1["extensions"]["cost"];
    assert_eq!(cost["actualQueryCost"], 3 + 50 * 5, "{cost}");
    assert_eq!(cost["throttleStatus"]["currentlyAvailable"], 2000.0 - 253.0, "{cost}");
    let webhooks = shop::shopify::DOCUMENTS.iter().find(|d| d.name() == "Webhooks").unwrap();
    assert_not_refused(&graphql(&sandbox, webhooks.source(), json!({"after": null})).await, 102);
}

/// A shop of 120 subscriptions (the sandbox lists 100 a page), ours for ORDERS_CREATE the
/// 111th: the registrar, on the real client, reads both pages, creates only PRODUCTS_UPDATE, and
/// nothing the second time.
#[tokio::test]
async fn the_registrar_reads_every_page_of_a_shops_subscriptions() {
    let sandbox = sandbox().await;
    let config = ShopifyConfig { base_url: Some(sandbox.shopify_url()), ..ShopifyConfig::default() };
    let client = ShopifyClient::new(config).unwrap();
    let shop = ShopifyShop { domain: "acme.myshopify.com".parse().unwrap(), token: Secret::new(TOKEN) };
    for i in 0..120 {
        let (topic, uri) = match i {
            110 => ("ORDERS_CREATE", URI.to_owned()),
            _ => ("ORDERS_UPDATED", format!("https://other-app.example.com/{i}")),
        };
        client.create_webhook_subscription(&shop, topic, &uri).await.unwrap();
    }
    assert_eq!(client.webhook_subscriptions(&shop).await.unwrap().len(), 120, "both pages read");

    let db = ShopDb::in_memory().unwrap();
    let store = Store {
        id: "st_1".into(),
        shopify_domain: "acme.myshopify.com".parse().unwrap(),
        pos_location_id: None,
        plan: Plan::Basic,
        sync_state: SyncState::Never,
    };
    db.put(&store).await.unwrap();
    db.set_shopify_token(&store.id, &Secret::new(TOKEN)).unwrap();
    let registrar = WebhookRegistrar::new(client, Arc::new(db));
    let topics = ["ORDERS_CREATE".to_owned(), "PRODUCTS_UPDATE".to_owned()];
    let first = registrar.ensure(&store, &topics, URI).await.unwrap();
    assert_eq!(
        (first.created, first.existing),
        (vec!["PRODUCTS_UPDATE".to_owned()], vec!["ORDERS_CREATE".to_owned()])
    );
    let second = registrar.ensure(&store, &topics, URI).await.unwrap();
    assert!(second.created.is_empty(), "{second:?}");
    assert_eq!(sandbox.webhook_topics("acme").len(), 121);
}
