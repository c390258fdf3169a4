//! The catalog: one row per (store, product id), the product as JSON; the sync run that last
//! wrote a product in `product_marks` (a table of its own, so that `jobctl dev`'s database files
//! created before runs marked their products gain it with `CREATE TABLE IF NOT EXISTS`).

use async_trait::async_trait;
use rusqlite::params;

use super::{
    ShopDb,
    db::{corrupt, unavailable},
};
use crate::{
    catalog::Product,
    ids::{ProductId, StoreId},
    ports::{CatalogRepository, Removed, RepoResult},
};

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS products (
    store_id TEXT NOT NULL, id TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (store_id, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS product_marks (
    store_id TEXT NOT NULL, id TEXT NOT NULL, synced_by TEXT NOT NULL, PRIMARY KEY (store_id, id)
) WITHOUT ROWID;
";

impl ShopDb {
    /// Writes products and their marks (`run`, or none) in one transaction.
    fn put_products(&self, products: &[Product], run: Option<&str>) -> RepoResult<usize> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(unavailable)?;
        {
            let mut put = tx
                .prepare_cached(
                    "INSERT INTO products (store_id, id, body) VALUES (?1, ?2, ?3)
                     ON CONFLICT (store_id, id) DO UPDATE SET body = excluded.body",
                )
                .map_err(unavailable)?;
            let mut mark = tx
                .prepare_cached(
                    "INSERT INTO product_marks (store_id, id, synced_by) VALUES (?1, ?2, ?3)
                     ON CONFLICT (store_id, id) DO UPDATE SET synced_by = excluded.synced_by",
                )
                .map_err(unavailable)?;
            let mut unmark = tx
                .prepare_cached("DELETE FROM product_marks WHERE store_id = ?1 AND id = ?2")
                .map_err(unavailable)?;
            for p in products {
                let body = serde_json::to_string(p).map_err(corrupt)?;
                let (store, id) = (p.store_id.as_str(), p.id.as_str());
                put.execute(params![store, id, body]).map_err(unavailable)?;
                match run {
                    Some(run) => mark.execute(params![store, id, run]),
                    None => unmark.execute(params![store, id]),
                }
                .map_err(unavailable)?;
            }
        }
        tx.commit().map_err(unavailable)?;
        Ok(products.len())
    }
}

#[async_trait]
impl CatalogRepository for ShopDb {
    async fn upsert_products(&self, products: &[Product]) -> RepoResult<usize> {
        self.put_products(products, None)
    }

    async fn upsert_synced(&self, products: &[Product], run: &str) -> RepoResult<usize> {
        self.put_products(products, Some(run))
    }

    async fn remove_unsynced(
        &self,
        store: &StoreId,
        run: &str,
        after: Option<&ProductId>,
        limit: usize,
    ) -> RepoResult<Removed> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(unavailable)?;
        let ids: Vec<String> = {
            let mut select = tx
                .prepare_cached(
                    "SELECT p.id FROM products p
                     LEFT JOIN product_marks m ON m.store_id = p.store_id AND m.id = p.id
                     WHERE p.store_id = ?1 AND p.id > ?2 AND (m.synced_by IS NULL OR m.synced_by <> ?3)
                     ORDER BY p.id LIMIT ?4",
                )
                .map_err(unavailable)?;
            let after = after.map_or("", |id| id.as_str());
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            select
                .query_map(params![store.as_str(), after, run, limit], |row| row.get(0))
                .map_err(unavailable)?
                .collect::<Result<_, _>>()
                .map_err(unavailable)?
        };
        for table in ["products", "product_marks"] {
            let mut delete = tx
                .prepare_cached(&format!("DELETE FROM {table} WHERE store_id = ?1 AND id = ?2"))
                .map_err(unavailable)?;
            for id in &ids {
                delete.execute(params![store.as_str(), id]).map_err(unavailable)?;
            }
        }
        tx.commit().map_err(unavailable)?;
        let next = (ids.len() >= limit).then(|| ids.last().map(|id| ProductId::from(id.as_str()))).flatten();
        Ok(Removed { products: ids.into_iter().map(ProductId::from).collect(), next })
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
