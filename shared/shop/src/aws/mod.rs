//! The shop's AWS adapters: stores, the catalog, customers, carts and the history on DynamoDB,
//! credentials in Secrets Manager, SMS through SNS.
//!
//! Table and secret names come from the environment the template sets: `SHOP_STORES_TABLE`,
//! `SHOP_PRODUCTS_TABLE`, `SHOP_CUSTOMERS_TABLE`, `SHOP_CARTS_TABLE`, `SHOP_INVENTORY_TABLE`,
//! `SHOP_HISTORY_TABLE`, `SHOP_SECRET_PREFIX`.
//!
//! Invariant: items hold native attributes (maps, lists, numbers; `attributes`), never JSON in a
//! string, so the console, PartiQL and filter expressions read them; keys and index attributes
//! are the template's.

mod attributes;
mod batch;
mod carts;
mod catalog;
mod customers;
mod history;
mod secrets;
mod sms;
mod stores;

pub use carts::{BY_STATUS_ACTIVITY, DynamoCarts};
pub use catalog::DynamoCatalog;
pub use customers::DynamoCustomers;
pub use history::{BY_KIND_TIME, DynamoHistory};
pub use secrets::SecretsManagerCredentials;
pub use sms::SnsSms;
pub use stores::DynamoStores;

use crate::ports::RepoError;

/// An SDK failure as a repository error (transient from the caller's view: the job retries).
pub(crate) fn sdk_error(operation: &str, e: impl std::error::Error) -> RepoError {
    RepoError::Unavailable(format!("{operation}: {}", aws_sdk_dynamodb::error::DisplayErrorContext(e)))
}
