//! shop: the store domain the jobs orchestrate.
//!
//! Models with newtype ids, and the validation that must happen before any outside request:
//! Shopify domains (`*.myshopify.com`), phone numbers (E.164), SMS texts within segment limits.
//! Repositories, the Shopify/POS/SMS clients and the services land on top of these.
//!
//! Architecture invariant: `shop` may use `jobkit`; `jobkit` never uses `shop`.
#![warn(missing_docs)]

pub mod aws;
mod cart;
mod catalog;
mod customer;
pub mod embedded;
pub mod history;
mod http;
mod ids;
pub mod jobs;
mod phone;
pub mod policy;
mod ports;
mod secret;
pub mod services;
mod shop_domain;
pub mod shopify;
mod sms;
pub mod sms_outbox;
pub mod square;
mod store;

pub use cart::{Cart, CartItem, CartStatus, StockRelease};
pub use catalog::{Money, Product, Variant};
pub use customer::{Customer, Preferences};
pub use history::{HistoryEntry, RecordKind};
pub use ids::{CartId, CustomerId, ProductId, ShareId, StoreId, VariantId};
pub use phone::{PhoneError, PhoneNumber};
pub use ports::{
    CartRepository, CatalogRepository, Credentials, CustomerRepository, History, RepoError, RepoResult,
    SmsSender, StoreRepository,
};
pub use secret::Secret;
pub use shop_domain::{ShopDomain, ShopDomainError};
pub use sms::{SmsEncoding, SmsText, SmsTextError};
pub use store::{Plan, Store, SyncState};
