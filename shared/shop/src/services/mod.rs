//! The services the jobs call: each does one piece of work against the ports.

mod cart_janitor;
mod catalog_sync;
mod customer_sync;
mod product_sharer;
mod retention_cleaner;
mod tokens;
mod webhook_registrar;

pub use cart_janitor::{AbandonBatch, CartJanitor};
pub use catalog_sync::{CatalogSync, PageSynced, REMOVE_BATCH};
pub use customer_sync::CustomerSync;
pub use product_sharer::ProductSharer;
pub use retention_cleaner::{Retention, RetentionCleaner};
pub use webhook_registrar::{Registration, WebhookRegistrar};
