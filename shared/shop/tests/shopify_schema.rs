//! Every GraphQL document the Shopify client sends, validated against Shopify's Admin schema of
//! the pinned API version with a GraphQL compiler (apollo-compiler): fields, arguments, the
//! variables' types, and the variables' values the client really sends; and none of what they
//! use deprecated (Shopify removes deprecated fields in a later version).
//!
//! The schema is `tests/schema/admin_{API_VERSION}.graphql`, made from Shopify's own package by
//! `scripts/shopify-schema` (its header names the package, its version and the API version): a
//! bump of `API_VERSION` without it fails here.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::LazyLock,
};

use apollo_compiler::{
    ExecutableDocument, Node, Schema,
    ast::Value as GraphqlValue,
    executable::{Field, Operation, Selection, SelectionSet},
    request::coerce_variable_values,
    response::JsonMap,
    schema::ExtendedType,
    validation::Valid,
};
use serde_json::{Value, json};
use shop::{
    Secret, StoreId,
    shopify::{
        API_VERSION, API_VERSION_SUPPORTED_UNTIL, DOCUMENTS, Document, ShopifyClient, ShopifyConfig,
        ShopifyShop, cost,
    },
};
use wiremock::{Mock, MockServer, Request, ResponseTemplate, matchers::method};

fn schema_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/schema/admin_{API_VERSION}.graphql"))
}

fn schema_text() -> String {
    let path = schema_path();
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!("{}: {e}; make it with scripts/shopify-schema {API_VERSION}", path.display())
    })
}

/// The Admin schema, parsed and validated once for the whole file.
static SCHEMA: LazyLock<Valid<Schema>> = LazyLock::new(|| {
    Schema::parse_and_validate(schema_text(), schema_path())
        .unwrap_or_else(|e| panic!("the committed Admin schema is not valid GraphQL: {}", e.errors))
});

/// `source`, validated against the schema, and its one operation.
fn validate(name: &str, source: &str) -> Result<Valid<ExecutableDocument>, String> {
    let document = ExecutableDocument::parse_and_validate(&SCHEMA, source, format!("{name}.graphql"))
        .map_err(|e| e.errors.to_string())?;
    let operation = document.operations.get(Some(name)).map_err(|_| format!("no operation named {name}"))?;
    let deprecated = deprecated_uses(operation);
    if deprecated.is_empty() { Ok(document) } else { Err(format!("uses deprecated {deprecated:?}")) }
}

fn operation(document: &Valid<ExecutableDocument>) -> &Node<Operation> {
    document.operations.iter().next().expect("one operation")
}

#[test]
fn the_schema_is_the_pinned_versions_and_names_its_source() {
    let text = schema_text();
    let header: Vec<&str> = text.lines().take_while(|l| l.starts_with('#')).collect();
    let header = header.join("\n");
    assert!(header.contains(&format!("Shopify Admin GraphQL API {API_VERSION}")), "{header}");
    assert!(header.contains("Source: npm package @shopify/dev-mcp@"), "{header}");
    assert!(header.contains(&format!("admin_{API_VERSION}.json.gz")), "{header}");
    // The schema parses and validates as a whole (SCHEMA panics otherwise) and is Shopify's.
    assert!(SCHEMA.types.contains_key("QueryRoot") && SCHEMA.types.contains_key("WebhookSubscription"));
}

#[test]
fn the_pinned_version_is_supported_for_a_year_from_its_release() {
    let released = chrono::NaiveDate::parse_from_str(&format!("{API_VERSION}-01"), "%Y-%m-%d").unwrap();
    let until = chrono::NaiveDate::parse_from_str(API_VERSION_SUPPORTED_UNTIL, "%Y-%m-%d").unwrap();
    assert_eq!(until, released.checked_add_months(chrono::Months::new(12)).unwrap());
}

#[test]
fn every_document_the_client_sends_is_valid_against_the_admin_schema() {
    assert!(!DOCUMENTS.is_empty());
    let mut names = BTreeSet::new();
    for document in DOCUMENTS {
        assert!(names.insert(document.name()), "{} is listed twice", document.name());
        let valid = validate(document.name(), document.source())
            .unwrap_or_else(|e| panic!("{} is not valid in Admin API {API_VERSION}:\n{e}", document.name()));
        assert_eq!(valid.operations.len(), 1, "{}: one operation a document", document.name());
    }
}

/// The validation really rejects: a field the schema lacks, a variable of the wrong type, an
/// argument that does not exist, a field that exists but is deprecated.
#[test]
fn a_document_the_schema_does_not_allow_fails_validation() {
    let products = DOCUMENTS.iter().find(|d| d.name() == "Products").unwrap().source();
    assert!(validate("Products", products).is_ok());
    let cases = [
        (
            "a field that does not exist",
            products.replace("inventoryQuantity", "inventoryQty"),
            "inventoryQty",
        ),
        ("a variable of the wrong type", products.replace("$first: Int!", "$first: String!"), "first"),
        (
            "an argument that does not exist",
            products.replace("variants(first: 16)", "variants(size: 16)"),
            "size",
        ),
    ];
    for (what, source, named) in cases {
        assert_ne!(source, products, "{what}: the replacement must change the document");
        let err = validate("Products", &source).expect_err(what);
        assert!(err.contains(named), "{what}: {err}");
    }
    let webhooks = "query Webhooks { webhookSubscriptions(first: 100) { nodes { id topic callbackUrl } } }";
    let err = validate("Webhooks", webhooks).expect_err("callbackUrl is deprecated for uri");
    assert!(err.contains("WebhookSubscription.callbackUrl"), "{err}");
    let create = "mutation CreateWebhook($topic: WebhookSubscriptionTopic!, $uri: URL!) {
      webhookSubscriptionCreate(topic: $topic, webhookSubscription: { callbackUrl: $uri }) {
        userErrors { message }
      }
    }";
    let err = validate("CreateWebhook", create).expect_err("callbackUrl as input is deprecated too");
    assert!(err.contains("WebhookSubscriptionInput.callbackUrl"), "{err}");
}

fn shop() -> ShopifyShop {
    ShopifyShop { domain: "acme.myshopify.com".parse().unwrap(), token: Secret::new("shpat_test") }
}

/// Answers each document with a plausible page (a product with more variants than its first
/// page, to make the client ask for the rest).
fn answer(request: &Request) -> ResponseTemplate {
    let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
    let query = body["query"].as_str().unwrap_or_default();
    let page = |next: Option<&str>| json!({"hasNextPage": next.is_some(), "endCursor": next});
    let variant =
        json!({"id": "gid://shopify/ProductVariant/1", "sku": "S", "price": "1.00", "inventoryQuantity": 1});
    let data = if query.starts_with("query Products") {
        json!({"shop": {"currencyCode": "EUR"}, "products": {"pageInfo": page(None), "nodes": [
            {"id": "gid://shopify/Product/1", "title": "T", "handle": "t",
             "variants": {"pageInfo": page(Some("v1")), "nodes": [variant]}}]}})
    } else if query.starts_with("query ProductVariants") {
        json!({"product": {"variants": {"pageInfo": page(None), "nodes": [variant]}}})
    } else if query.starts_with("query Webhooks") {
        json!({"webhookSubscriptions": {"nodes": []}})
    } else {
        json!({"webhookSubscriptionCreate": {"webhookSubscription":
            {"id": "gid://shopify/WebhookSubscription/1", "topic": "PRODUCTS_UPDATE",
             "uri": "https://h.example/p"},
            "userErrors": []}})
    };
    ResponseTemplate::new(200).set_body_json(json!({"data": data}))
}

/// What goes on the wire: each request's document is one of [`DOCUMENTS`], valid, and its
/// variables' values coerce to the types the operation declares (as Shopify's server does
/// before running it); every listed document is sent by some call.
#[tokio::test]
async fn what_the_client_sends_is_a_listed_document_with_variables_of_its_types() {
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(answer).mount(&server).await;
    let config =
        ShopifyConfig { base_url: Some(format!("{}/{{shop}}", server.uri())), ..ShopifyConfig::default() };
    let client = ShopifyClient::new(config).unwrap();
    client.products_page(&StoreId::from("st_1"), &shop(), None, 250).await.unwrap();
    client.products_page(&StoreId::from("st_1"), &shop(), Some("c1"), 1000).await.unwrap();
    client.webhook_subscriptions(&shop()).await.unwrap();
    client.create_webhook_subscription(&shop(), "PRODUCTS_UPDATE", "https://h.example/p").await.unwrap();

    let mut sent = BTreeSet::new();
    for request in server.received_requests().await.unwrap() {
        assert!(
            request.url.path().contains(&format!("/admin/api/{API_VERSION}/graphql.json")),
            "{}",
            request.url
        );
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        let query = body["query"].as_str().unwrap();
        let document: &Document = DOCUMENTS
            .iter()
            .find(|d| d.source() == query)
            .unwrap_or_else(|| panic!("a document that is not in DOCUMENTS was sent: {query}"));
        let valid = validate(document.name(), query).unwrap();
        let variables: JsonMap = serde_json::from_value(body["variables"].clone()).unwrap();
        coerce_variable_values(&SCHEMA, operation(&valid), &variables).unwrap_or_else(|e| {
            panic!("{}: variables {} do not fit: {}", document.name(), body["variables"], e.message())
        });
        sent.insert(document.name());
    }
    let listed: BTreeSet<&str> = DOCUMENTS.iter().map(Document::name).collect();
    assert_eq!(sent, listed, "every document is exercised here");
}

/// Every document the client sends, priced by Shopify's published rules (`shop::shopify::cost`,
/// each rule naming its source) with the variables the client really sends, at the largest page
/// a caller can ask for: each requests at most Shopify's single-query maximum of 1,000 points,
/// which Shopify checks before running a document (and refuses with `MAX_COST_EXCEEDED`).
#[tokio::test]
async fn every_document_the_client_sends_requests_at_most_shopifys_single_query_maximum() {
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(answer).mount(&server).await;
    let config =
        ShopifyConfig { base_url: Some(format!("{}/{{shop}}", server.uri())), ..ShopifyConfig::default() };
    let client = ShopifyClient::new(config).unwrap();
    // The client caps the page a caller asks for.
    client.products_page(&StoreId::from("st_1"), &shop(), None, u32::MAX).await.unwrap();
    client.webhook_subscriptions(&shop()).await.unwrap();
    client.create_webhook_subscription(&shop(), "PRODUCTS_UPDATE", "https://h.example/p").await.unwrap();

    let mut priced = BTreeMap::new();
    for request in server.received_requests().await.unwrap() {
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        let query = body["query"].as_str().unwrap();
        let document = DOCUMENTS.iter().find(|d| d.source() == query).expect("a listed document");
        let requested = match cost::analyze(query, None, &body["variables"]) {
            Ok(analysis) => analysis.requested_cost(),
            Err(refusal) => panic!("Shopify refuses {}: {}", document.name(), refusal.answer()),
        };
        assert!(requested <= cost::SINGLE_QUERY_MAX_COST, "{}: {requested}", document.name());
        priced.insert(document.name(), requested);
    }
    // By hand: an object 1, a scalar 0, a connection 2 and its page times a node (an object and
    // what it selects), a mutation 10.
    let expected = BTreeMap::from([
        ("Products", 1 + 2 + 50 * (1 + 2 + 16)),
        ("ProductVariants", 1 + 2 + 250),
        ("Webhooks", 2 + 100),
        ("CreateWebhook", 10),
    ]);
    assert_eq!(priced, expected);
    let listed: BTreeSet<&str> = DOCUMENTS.iter().map(Document::name).collect();
    assert_eq!(priced.keys().copied().collect::<BTreeSet<_>>(), listed, "every document is priced");
}

/// The variables' values are checked, not only their declarations: a topic Shopify does not
/// have, a missing required variable, a string for an `Int!`.
#[test]
fn variables_of_the_wrong_type_fail_coercion() {
    let create = DOCUMENTS.iter().find(|d| d.name() == "CreateWebhook").unwrap();
    let valid = validate(create.name(), create.source()).unwrap();
    let good = json!({"topic": "PRODUCTS_UPDATE", "uri": "https://h.example/p"});
    let fits =
        |v: Value| coerce_variable_values(&SCHEMA, operation(&valid), &serde_json::from_value(v).unwrap());
    assert!(fits(good).is_ok());
    assert!(fits(json!({"topic": "NOT_A_TOPIC", "uri": "https://h.example/p"})).is_err());
    assert!(fits(json!({"topic": "PRODUCTS_UPDATE"})).is_err());
    let products = DOCUMENTS.iter().find(|d| d.name() == "Products").unwrap();
    let valid = validate(products.name(), products.source()).unwrap();
    let fits =
        |v: Value| coerce_variable_values(&SCHEMA, operation(&valid), &serde_json::from_value(v).unwrap());
    assert!(fits(json!({"first": 50, "after": null})).is_ok());
    assert!(fits(json!({"first": "50"})).is_err());
}

/// Fields, arguments, input fields and enum values the operation uses that the schema marks
/// `@deprecated` (Shopify removes them in a later version), as `Type.member`.
fn deprecated_uses(operation: &Operation) -> Vec<String> {
    let mut found = Vec::new();
    selection_set(&operation.selection_set, &mut found);
    found
}

fn selection_set(set: &SelectionSet, found: &mut Vec<String>) {
    for selection in &set.selections {
        match selection {
            Selection::Field(field) => self::field(&set.ty, field, found),
            Selection::InlineFragment(fragment) => selection_set(&fragment.selection_set, found),
            Selection::FragmentSpread(spread) => {
                found.push(format!("(fragment {} not checked: the client uses none)", spread.fragment_name))
            }
        }
    }
}

fn field(parent: &apollo_compiler::Name, field: &Node<Field>, found: &mut Vec<String>) {
    let definition = &field.definition;
    if definition.directives.has("deprecated") {
        found.push(format!("{parent}.{}", field.name));
    }
    for argument in &field.arguments {
        let Some(declared) = definition.arguments.iter().find(|a| a.name == argument.name) else { continue };
        if declared.directives.has("deprecated") {
            found.push(format!("{parent}.{}({}:)", field.name, argument.name));
        }
        value(declared.ty.inner_named_type(), &argument.value, found);
    }
    selection_set(&field.selection_set, found);
}

/// Input object fields and enum values in a literal argument.
fn value(ty: &apollo_compiler::Name, literal: &GraphqlValue, found: &mut Vec<String>) {
    match (SCHEMA.types.get(ty), literal) {
        (Some(ExtendedType::InputObject(input)), GraphqlValue::Object(fields)) => {
            for (name, inner) in fields {
                let Some(declared) = input.fields.get(name) else { continue };
                if declared.directives.has("deprecated") {
                    found.push(format!("{ty}.{name}"));
                }
                value(declared.ty.inner_named_type(), inner, found);
            }
        }
        (Some(ExtendedType::Enum(enumeration)), GraphqlValue::Enum(name))
            if enumeration.values.get(name).is_some_and(|v| v.directives.has("deprecated")) =>
        {
            found.push(format!("{ty}.{name}"));
        }
        (_, GraphqlValue::List(items)) => items.iter().for_each(|item| value(ty, item, found)),
        _ => {}
    }
}
