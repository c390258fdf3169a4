//! Customer profiles: one row per (store, customer id), the profile as JSON.

use async_trait::async_trait;

use super::ShopDb;
use crate::{
    customer::Customer,
    ids::{CustomerId, StoreId},
    ports::{CustomerRepository, RepoResult},
};

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS customers (
    store_id TEXT NOT NULL, id TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (store_id, id)
) WITHOUT ROWID;
";

#[async_trait]
impl CustomerRepository for ShopDb {
    async fn upsert_customers(&self, customers: &[Customer]) -> RepoResult<usize> {
        self.put_documents("customers", customers.iter().map(|c| (c.store_id.as_str(), c.id.as_str(), c)))
    }

    async fn get_customer(&self, store: &StoreId, id: &CustomerId) -> RepoResult<Option<Customer>> {
        self.get_document("customers", store, id.as_str())
    }
}
