//! The shop's embedded adapters on SQLite (a file for `jobctl dev`, `:memory:` in tests).
//!
//! Invariant: a product is one row per (store, product id), so an upsert repeated by a retry or a
//! second delivery stores it once.

use std::{
    path::Path,
    sync::{Arc, Mutex, MutexGuard},
};

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};

use crate::{
    catalog::Product,
    ids::{ProductId, StoreId},
    ports::{CatalogRepository, Credentials, RepoError, RepoResult, StoreRepository},
    secret::Secret,
    store::{Store, SyncState},
};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS stores (id TEXT PRIMARY KEY, body TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS products (
    store_id TEXT NOT NULL, id TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (store_id, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS credentials (store_id TEXT PRIMARY KEY, shopify_token TEXT) WITHOUT ROWID;
";

/// The shop's data in one SQLite database; implements every shop port.
#[derive(Clone)]
pub struct ShopDb {
    conn: Arc<Mutex<Connection>>,
}

impl std::fmt::Debug for ShopDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShopDb").finish_non_exhaustive()
    }
}

fn unavailable(e: rusqlite::Error) -> RepoError {
    RepoError::Unavailable(format!("sqlite: {e}"))
}

fn corrupt(e: serde_json::Error) -> RepoError {
    RepoError::Corrupt(e.to_string())
}

impl ShopDb {
    /// Opens (creating) the database at `path`.
    ///
    /// # Errors
    /// If it cannot be opened.
    pub fn open(path: impl AsRef<Path>) -> RepoResult<Self> {
        let conn = Connection::open(path).map_err(unavailable)?;
        conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(unavailable)?;
        Self::with_schema(conn)
    }

    /// A private in-memory database.
    ///
    /// # Errors
    /// If SQLite cannot allocate it.
    pub fn in_memory() -> RepoResult<Self> {
        Self::with_schema(Connection::open_in_memory().map_err(unavailable)?)
    }

    fn with_schema(conn: Connection) -> RepoResult<Self> {
        conn.execute_batch(SCHEMA).map_err(unavailable)?;
        Ok(Self { conn: Arc::new(Mutex::new(conn)) })
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets a store's Shopify token (seeding, tests).
    ///
    /// # Errors
    /// If the database fails.
    pub fn set_shopify_token(&self, store: &StoreId, token: &Secret) -> RepoResult {
        self.lock()
            .execute(
                "INSERT INTO credentials (store_id, shopify_token) VALUES (?1, ?2)
                 ON CONFLICT (store_id) DO UPDATE SET shopify_token = excluded.shopify_token",
                params![store.as_str(), token.expose()],
            )
            .map_err(unavailable)?;
        Ok(())
    }
}

#[async_trait]
impl StoreRepository for ShopDb {
    async fn get(&self, id: &StoreId) -> RepoResult<Option<Store>> {
        let body: Option<String> = self
            .lock()
            .query_row("SELECT body FROM stores WHERE id = ?1", params![id.as_str()], |row| row.get(0))
            .optional()
            .map_err(unavailable)?;
        body.map(|b| serde_json::from_str(&b).map_err(corrupt)).transpose()
    }

    async fn put(&self, store: &Store) -> RepoResult {
        let body = serde_json::to_string(store).map_err(corrupt)?;
        self.lock()
            .execute(
                "INSERT INTO stores (id, body) VALUES (?1, ?2) ON CONFLICT (id) DO UPDATE SET body = excluded.body",
                params![store.id.as_str(), body],
            )
            .map_err(unavailable)?;
        Ok(())
    }

    async fn set_sync_state(&self, id: &StoreId, state: &SyncState) -> RepoResult {
        let Some(mut store) = self.get(id).await? else { return Ok(()) };
        store.sync_state = state.clone();
        self.put(&store).await
    }

    async fn syncable(&self) -> RepoResult<Vec<StoreId>> {
        let conn = self.lock();
        let mut stmt = conn.prepare("SELECT body FROM stores ORDER BY id").map_err(unavailable)?;
        let bodies = stmt.query_map([], |row| row.get::<_, String>(0)).map_err(unavailable)?;
        let mut ids = Vec::new();
        for body in bodies {
            let store: Store = serde_json::from_str(&body.map_err(unavailable)?).map_err(corrupt)?;
            if store.is_syncable() {
                ids.push(store.id);
            }
        }
        Ok(ids)
    }
}

#[async_trait]
impl CatalogRepository for ShopDb {
    async fn upsert_products(&self, products: &[Product]) -> RepoResult<usize> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(unavailable)?;
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO products (store_id, id, body) VALUES (?1, ?2, ?3)
                     ON CONFLICT (store_id, id) DO UPDATE SET body = excluded.body",
                )
                .map_err(unavailable)?;
            for product in products {
                let body = serde_json::to_string(product).map_err(corrupt)?;
                stmt.execute(params![product.store_id.as_str(), product.id.as_str(), body])
                    .map_err(unavailable)?;
            }
        }
        tx.commit().map_err(unavailable)?;
        Ok(products.len())
    }

    async fn get_product(&self, store: &StoreId, id: &ProductId) -> RepoResult<Option<Product>> {
        let body: Option<String> = self
            .lock()
            .query_row(
                "SELECT body FROM products WHERE store_id = ?1 AND id = ?2",
                params![store.as_str(), id.as_str()],
                |row| row.get(0),
            )
            .optional()
            .map_err(unavailable)?;
        body.map(|b| serde_json::from_str(&b).map_err(corrupt)).transpose()
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

#[async_trait]
impl Credentials for ShopDb {
    async fn shopify_token(&self, store: &StoreId) -> RepoResult<Option<Secret>> {
        let token: Option<Option<String>> = self
            .lock()
            .query_row(
                "SELECT shopify_token FROM credentials WHERE store_id = ?1",
                params![store.as_str()],
                |row| row.get(0),
            )
            .optional()
            .map_err(unavailable)?;
        Ok(token.flatten().map(Secret::new))
    }
}
