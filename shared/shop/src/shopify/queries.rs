//! The GraphQL documents, and the shapes of their answers.

use serde::Deserialize;

/// A GraphQL document the client sends: one named operation.
///
/// Only the `documents!` macro of this module makes one (the fields are private), and it lists
/// each in [`DOCUMENTS`]; the client's `graphql` takes a `Document`, so it sends nothing that is
/// not in the list, and `tests/shopify_schema.rs` validates the whole list against the Admin
/// schema of [`super::API_VERSION`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Document {
    name: &'static str,
    source: &'static str,
}

impl Document {
    /// The operation's name (`Products`).
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// The GraphQL text sent.
    pub const fn source(&self) -> &'static str {
        self.source
    }
}

/// Defines each document as a constant and lists them all in [`DOCUMENTS`].
macro_rules! documents {
    ($($(#[$meta:meta])* $constant:ident = $name:literal, $source:literal;)+) => {
        $(
            $(#[$meta])*
            pub(crate) const $constant: Document = Document { name: $name, source: $source };
        )+
        /// Every document the client sends, in the order they are defined.
        pub const DOCUMENTS: &[Document] = &[$($constant),+];
    };
}

/// The most products one [`PRODUCTS`] page asks for: its requested cost, 1 + 2 + 50 × 19 = 953,
/// stays under Shopify's single-query maximum of 1,000 points (53 would not).
pub const MAX_PRODUCTS_PAGE: u32 = 50;

documents! {
    /// A page of products with their first 16 variants, and the shop's currency. Its requested
    /// cost (Shopify's rules: an object 1, a connection 2 and `first` times a node) is
    /// 1 + 2 + `$first` × (1 + 2 + 16): 953 points at [`MAX_PRODUCTS_PAGE`], under Shopify's
    /// single-query maximum of 1,000 (250 products with 100 variants each would ask 25,753).
    PRODUCTS = "Products", "query Products($first: Int!, $after: String) {
  shop { currencyCode }
  products(first: $first, after: $after) {
    pageInfo { hasNextPage endCursor }
    nodes {
      id title handle
      variants(first: 16) { pageInfo { hasNextPage endCursor } nodes { id sku price inventoryQuantity } }
    }
  }
}";

    /// The variants of one product past the first page the products query brings, 250 at a
    /// time (requested cost 1 + 2 + 250 = 253).
    PRODUCT_VARIANTS = "ProductVariants", "query ProductVariants($id: ID!, $after: String) {
  product(id: $id) {
    variants(first: 250, after: $after) {
      pageInfo { hasNextPage endCursor }
      nodes { id sku price inventoryQuantity }
    }
  }
}";

    /// A page of the shop's webhook subscriptions (this app's), 100 at a time after `$after`,
    /// with where they deliver (`uri`: since 2025-10 the one field for HTTPS, Pub/Sub and
    /// EventBridge; `callbackUrl` and `endpoint` are deprecated). Requested cost 2 + 100 = 102.
    WEBHOOKS = "Webhooks", "query Webhooks($after: String) {
  webhookSubscriptions(first: 100, after: $after) {
    pageInfo { hasNextPage endCursor }
    nodes { id topic uri }
  }
}";

    /// Subscribes a `uri` to a topic, in JSON (a mutation: requested cost 10).
    CREATE_WEBHOOK = "CreateWebhook",
    "mutation CreateWebhook($topic: WebhookSubscriptionTopic!, $uri: String!) {
  webhookSubscriptionCreate(topic: $topic, webhookSubscription: { uri: $uri, format: JSON }) {
    webhookSubscription { id topic uri }
    userErrors { field message }
  }
}";
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ProductsData {
    pub shop: ShopData,
    /// Each node as it came: read one by one ([`ProductNode`]), so that one that does not read
    /// is set aside instead of failing the page.
    pub products: Connection<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ShopData {
    pub currency_code: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Connection<T> {
    #[serde(default)]
    pub page_info: Option<PageInfo>,
    pub nodes: Vec<T>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PageInfo {
    pub has_next_page: bool,
    pub end_cursor: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ProductNode {
    pub id: String,
    pub title: String,
    pub handle: String,
    /// Each variant as it came, read one by one ([`VariantNode`]).
    pub variants: Connection<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ProductVariantsData {
    pub product: Option<ProductVariants>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ProductVariants {
    /// Each variant as it came, read one by one ([`VariantNode`]).
    pub variants: Connection<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct VariantNode {
    pub id: String,
    pub sku: Option<String>,
    pub price: String,
    pub inventory_quantity: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WebhooksData {
    pub webhook_subscriptions: Connection<WebhookNode>,
}

#[derive(Debug, Deserialize, Clone)]
pub(crate) struct WebhookNode {
    pub id: String,
    pub topic: String,
    #[serde(default)]
    pub uri: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CreateWebhookData {
    /// Null when the mutation failed as a whole (the answer's `errors` then say why).
    pub webhook_subscription_create: Option<CreateWebhookPayload>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CreateWebhookPayload {
    pub webhook_subscription: Option<WebhookNode>,
    #[serde(default)]
    pub user_errors: Vec<UserError>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct UserError {
    #[serde(default)]
    pub field: Option<Vec<String>>,
    pub message: String,
}

/// The envelope of every GraphQL answer.
#[derive(Debug, Deserialize)]
pub(crate) struct GraphqlResponse<T> {
    pub data: Option<T>,
    #[serde(default)]
    pub errors: Vec<GraphqlError>,
    #[serde(default)]
    pub extensions: Option<Extensions>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct GraphqlError {
    pub message: String,
    #[serde(default)]
    pub extensions: Option<ErrorExtensions>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ErrorExtensions {
    #[serde(default)]
    pub code: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Extensions {
    pub cost: Option<Cost>,
}

#[derive(Debug, Deserialize, Clone, Copy)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Cost {
    pub requested_query_cost: Option<f64>,
    pub throttle_status: ThrottleStatus,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ThrottleStatus {
    pub maximum_available: f64,
    pub currently_available: f64,
    pub restore_rate: f64,
}
