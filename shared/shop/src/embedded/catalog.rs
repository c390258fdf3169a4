//! The catalog: one row per (store, product id), the product as JSON.

use async_trait::async_trait;
use rusqlite::params;

use super::{ShopDb, db::unavailable};
use crate::{
    catalog::Product,
    ids::{ProductId, StoreId},
    ports::{CatalogRepository, RepoResult},
};

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS products (
    store_id TEXT NOT NULL, id TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (store_id, id)
) WITHOUT ROWID;
";

#[async_trait]
impl CatalogRepository for ShopDb {
    async fn upsert_products(&self, products: &[Product]) -> RepoResult<usize> {
        self.put_documents("products", products.iter().map(|p| (p.store_id.as_str(), p.id.as_str(), p)))
    }

    async fn get_product(&self, store: &StoreId, id: &ProductId) -> RepoResult<Option<Product>> {
        self.get_document("products", store, id.as_str())
    }

    async fn count_products(&self, store: &StoreId) -> RepoResult<u64> {
        let count: i64 = self
            .lock()
            .query_row("SELECT COUNT(*) FROM products WHERE store_id = ?1", params![store.as_str()], |row| {
                row.get(0)
            })
            .map_err(unavailable)?;
        Ok(count.unsigned_abs())
    }
}
