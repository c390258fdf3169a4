//! The Shopify Admin GraphQL client: products with variants, prices and inventory (cursor
//! pagination), webhook subscriptions; cost-based throttling and 429/`THROTTLED` answered with
//! backoff.
//!
//! Invariants: the API version is pinned ([`API_VERSION`]); a request goes only to a validated
//! `*.myshopify.com` domain (the type says so) unless a test or the local sandbox overrides the
//! base URL; the access token is sent in its header and never logged; a redirect is not
//! followed (reqwest would carry the token's header to another host) but is a permanent error.

mod client;
mod pacer;
mod queries;

pub use client::{ProductPage, ShopifyClient, ShopifyConfig, ShopifyShop, WebhookSubscription};
pub use pacer::{Pacer, TokioPacer};

/// The Admin API version every request uses.
pub const API_VERSION: &str = "2025-10";
