//! The Shopify Admin GraphQL client: products with variants, prices and inventory (cursor
//! pagination), webhook subscriptions (every page); cost-based throttling and 429/`THROTTLED`
//! answered with backoff. Every document's requested cost stays under Shopify's single-query
//! maximum of 1,000 points (`tests/shopify_schema.rs` prices each by Shopify's rules: `cost`,
//! with the `shopify-cost` feature).
//!
//! Invariants: the API version is pinned ([`API_VERSION`]) and every document the client sends
//! is one of [`DOCUMENTS`], validated against that version's schema by the tests; an answer
//! served by another version is logged and counted; a request goes only to a validated
//! `*.myshopify.com` domain (the type says so) unless a test or the local sandbox overrides the
//! base URL; the access token is sent in its header and never logged; a redirect is not
//! followed (reqwest would carry the token's header to another host) but is a permanent error.

mod client;
#[cfg(feature = "shopify-cost")]
pub mod cost;
mod pacer;
mod queries;

pub use client::{ProductPage, ShopifyClient, ShopifyConfig, ShopifyShop, WebhookSubscription};
pub use pacer::{Pacer, TokioPacer};
pub use queries::{DOCUMENTS, Document, MAX_PRODUCTS_PAGE};

/// The Admin API version every request uses (in the path). Every document in [`DOCUMENTS`] is
/// validated against this version's schema, `tests/schema/admin_{API_VERSION}.graphql`
/// (`scripts/shopify-schema` makes it).
pub const API_VERSION: &str = "2026-10";

/// The day Shopify stops supporting [`API_VERSION`] (ISO 8601): each stable version is supported
/// for at least 12 months from its release (2026-10 from 2026-10-01). After it Shopify falls
/// forward and serves the oldest supported version instead, which the client logs and counts
/// (`X-Shopify-Api-Version`, [`ShopifyClient::api_version_mismatches`]).
pub const API_VERSION_SUPPORTED_UNTIL: &str = "2027-10-01";
