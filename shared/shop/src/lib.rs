//! shop: the store domain the jobs orchestrate.
//!
//! - Models with newtype ids (`ids`): [`Store`] with its [`SyncState`], [`Product`] with its
//!   [`Variant`]s and [`Money`], [`Customer`], [`Cart`] (its abandon releases reserved stock
//!   once), [`HistoryEntry`] ([`history`]: sync runs, audit entries, temporary records and their
//!   retention).
//! - Validation before any outside request: [`ShopDomain`] (`<name>.myshopify.com` only),
//!   [`PhoneNumber`] (E.164, masked when shown), [`SmsText`] (within its segments), [`Secret`]
//!   (never printed).
//! - Ports (`ports`): [`StoreRepository`], [`CatalogRepository`], [`CustomerRepository`],
//!   [`CartRepository`], [`History`], [`Credentials`], [`SmsSender`]; their adapters in
//!   [`embedded`] (SQLite) and [`sms_outbox`] (texts to files), and in [`aws`] (DynamoDB,
//!   Secrets Manager, SNS).
//! - Clients of outside systems: [`shopify`] (Admin GraphQL) and [`square`] (Customers and
//!   Orders), sharing `http` (no redirects).
//! - [`services`], what the jobs call, and [`policy`], how they treat outside failures.
//! - A job of the store declares itself ([`declaration`]: [`declaration::ShopJob`], what it
//!   uses of the stack, its schedule, its deployment) and is built from [`ShopPorts`], on AWS
//!   or embedded; its `main.rs` is [`run_on_lambda`].
//!
//! Architecture invariant: `shop` may use `jobkit`; `jobkit` never uses `shop`.
#![warn(missing_docs)]

mod cart;
mod catalog;
mod customer;
mod http;
mod ids;
pub mod jobs;
mod phone;
mod ports;
mod secret;
mod shop_domain;
mod shop_ports;
mod sms;
mod store;

pub mod aws;
pub mod declaration;
#[cfg(feature = "embedded")]
pub mod embedded;
pub mod history;
pub mod policy;
pub mod services;
pub mod shopify;
pub mod sms_outbox;
pub mod square;

pub use cart::{Cart, CartItem, CartStatus, StockRelease};
pub use catalog::{Money, Product, Variant};
pub use customer::{Customer, Preferences};
pub use history::{HistoryEntry, RecordKind};
pub use ids::{CartId, CustomerId, ProductId, ShareId, StoreId, VariantId};
pub use phone::{PhoneError, PhoneNumber};
pub use ports::{
    CartRepository, CatalogRepository, Credentials, CustomerRepository, History, Removed, RepoError,
    RepoResult, SmsSender, StoreRepository,
};
pub use secret::Secret;
pub use shop_domain::{ShopDomain, ShopDomainError};
#[cfg(feature = "embedded")]
pub use shop_ports::EmbeddedPorts;
pub use shop_ports::{BuildError, SANDBOX_SETTING, ShopPorts, TOKEN_KEY_SETTING, run_on_lambda};
pub use sms::{SmsEncoding, SmsText, SmsTextError};
pub use store::{Plan, Store, SyncState};
