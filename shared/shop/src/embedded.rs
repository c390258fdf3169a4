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

use chrono::{DateTime, Utc};

use crate::{
    cart::{Cart, CartStatus, StockRelease},
    catalog::Product,
    customer::Customer,
    history::{HistoryEntry, RecordKind},
    ids::{CartId, CustomerId, ProductId, StoreId, VariantId},
    ports::{
        CartRepository, CatalogRepository, Credentials, CustomerRepository, History, RepoError, RepoResult,
        StoreRepository,
    },
    secret::Secret,
    store::{Store, SyncState},
};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS stores (id TEXT PRIMARY KEY, body TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS products (
    store_id TEXT NOT NULL, id TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (store_id, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS credentials (store_id TEXT PRIMARY KEY, shopify_token TEXT, square_token TEXT) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS customers (
    store_id TEXT NOT NULL, id TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (store_id, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS carts (
    id TEXT PRIMARY KEY, store_id TEXT NOT NULL, items TEXT NOT NULL, status TEXT NOT NULL,
    stock_reserved INTEGER NOT NULL, last_activity_ms INTEGER NOT NULL, expires_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS carts_by_activity ON carts (status, last_activity_ms);
CREATE INDEX IF NOT EXISTS carts_by_expiry ON carts (expires_ms);
CREATE TABLE IF NOT EXISTS inventory (variant_id TEXT PRIMARY KEY, available INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS history (
    kind TEXT NOT NULL, id TEXT NOT NULL, at_ms INTEGER NOT NULL, body TEXT NOT NULL, PRIMARY KEY (kind, id)
);
CREATE INDEX IF NOT EXISTS history_by_time ON history (kind, at_ms);
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

    /// Inserts or replaces JSON documents keyed by (store, id) in `table` (products,
    /// customers), in one transaction; returns how many were written.
    fn put_documents<'a, T: serde::Serialize + 'a>(
        &self,
        table: &'static str,
        documents: impl Iterator<Item = (&'a str, &'a str, &'a T)>,
    ) -> RepoResult<usize> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(unavailable)?;
        let mut written = 0;
        {
            let mut stmt = tx
                .prepare_cached(&format!(
                    "INSERT INTO {table} (store_id, id, body) VALUES (?1, ?2, ?3)
                     ON CONFLICT (store_id, id) DO UPDATE SET body = excluded.body"
                ))
                .map_err(unavailable)?;
            for (store, id, document) in documents {
                let body = serde_json::to_string(document).map_err(corrupt)?;
                stmt.execute(params![store, id, body]).map_err(unavailable)?;
                written += 1;
            }
        }
        tx.commit().map_err(unavailable)?;
        Ok(written)
    }

    /// The JSON document (store, id) of `table`, if any.
    fn get_document<T: serde::de::DeserializeOwned>(
        &self,
        table: &'static str,
        store: &StoreId,
        id: &str,
    ) -> RepoResult<Option<T>> {
        let body: Option<String> = self
            .lock()
            .query_row(
                &format!("SELECT body FROM {table} WHERE store_id = ?1 AND id = ?2"),
                params![store.as_str(), id],
                |row| row.get(0),
            )
            .optional()
            .map_err(unavailable)?;
        body.map(|b| serde_json::from_str(&b).map_err(corrupt)).transpose()
    }

    /// Sets a store's Square token (seeding, tests).
    ///
    /// # Errors
    /// If the database fails.
    pub fn set_square_token(&self, store: &StoreId, token: &Secret) -> RepoResult {
        self.lock()
            .execute(
                "INSERT INTO credentials (store_id, square_token) VALUES (?1, ?2)
                 ON CONFLICT (store_id) DO UPDATE SET square_token = excluded.square_token",
                params![store.as_str(), token.expose()],
            )
            .map_err(unavailable)?;
        Ok(())
    }

    fn token(&self, store: &StoreId, column: &str) -> RepoResult<Option<Secret>> {
        let token: Option<Option<String>> = self
            .lock()
            .query_row(
                &format!("SELECT {column} FROM credentials WHERE store_id = ?1"),
                params![store.as_str()],
                |row| row.get(0),
            )
            .optional()
            .map_err(unavailable)?;
        Ok(token.flatten().map(Secret::new))
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

/// A cart's status as stored.
fn status_text(status: CartStatus) -> &'static str {
    match status {
        CartStatus::Active => "active",
        CartStatus::Abandoned => "abandoned",
        CartStatus::CheckedOut => "checked_out",
    }
}

fn status_from(text: &str) -> rusqlite::Result<CartStatus> {
    match text {
        "active" => Ok(CartStatus::Active),
        "abandoned" => Ok(CartStatus::Abandoned),
        "checked_out" => Ok(CartStatus::CheckedOut),
        other => {
            Err(rusqlite::Error::InvalidColumnType(3, format!("status {other}"), rusqlite::types::Type::Text))
        }
    }
}

fn time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

fn read_cart(row: &rusqlite::Row<'_>) -> rusqlite::Result<Cart> {
    let items: String = row.get(2)?;
    Ok(Cart {
        id: CartId::from(row.get::<_, String>(0)?),
        store_id: StoreId::from(row.get::<_, String>(1)?),
        items: serde_json::from_str(&items).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Text, Box::new(e))
        })?,
        status: status_from(&row.get::<_, String>(3)?)?,
        stock_reserved: row.get(4)?,
        last_activity_at: time(row.get(5)?),
        expires_at: time(row.get(6)?),
    })
}

impl ShopDb {
    /// Creates or replaces a cart (seeding, tests, the storefront's side).
    ///
    /// # Errors
    /// If the database fails.
    pub fn put_cart(&self, cart: &Cart) -> RepoResult {
        let items = serde_json::to_string(&cart.items).map_err(corrupt)?;
        self.lock()
            .execute(
                "INSERT OR REPLACE INTO carts (id, store_id, items, status, stock_reserved, last_activity_ms, expires_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    cart.id.as_str(),
                    cart.store_id.as_str(),
                    items,
                    status_text(cart.status),
                    cart.stock_reserved,
                    cart.last_activity_at.timestamp_millis(),
                    cart.expires_at.timestamp_millis()
                ],
            )
            .map_err(unavailable)?;
        Ok(())
    }

    /// A cart, if it exists.
    ///
    /// # Errors
    /// If the database fails.
    pub fn cart(&self, id: &CartId) -> RepoResult<Option<Cart>> {
        self.lock()
            .query_row(
                "SELECT id, store_id, items, status, stock_reserved, last_activity_ms, expires_ms FROM carts WHERE id = ?1",
                params![id.as_str()],
                read_cart,
            )
            .optional()
            .map_err(unavailable)
    }

    /// Units of a variant given back to inventory so far.
    ///
    /// # Errors
    /// If the database fails.
    pub fn available(&self, variant: &VariantId) -> RepoResult<i64> {
        let available: Option<i64> = self
            .lock()
            .query_row(
                "SELECT available FROM inventory WHERE variant_id = ?1",
                params![variant.as_str()],
                |row| row.get(0),
            )
            .optional()
            .map_err(unavailable)?;
        Ok(available.unwrap_or(0))
    }
}

#[async_trait]
impl CartRepository for ShopDb {
    async fn idle_active(&self, idle_since: DateTime<Utc>, limit: usize) -> RepoResult<Vec<Cart>> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT id, store_id, items, status, stock_reserved, last_activity_ms, expires_ms FROM carts
                 WHERE status = 'active' AND last_activity_ms <= ?1 ORDER BY last_activity_ms LIMIT ?2",
            )
            .map_err(unavailable)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let carts =
            stmt.query_map(params![idle_since.timestamp_millis(), limit], read_cart).map_err(unavailable)?;
        carts.collect::<Result<_, _>>().map_err(unavailable)
    }

    async fn abandon(&self, cart: &CartId, releases: &[StockRelease]) -> RepoResult<bool> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(unavailable)?;
        let changed = tx
            .execute(
                "UPDATE carts SET status = 'abandoned', stock_reserved = 0 WHERE id = ?1 AND status = 'active'",
                params![cart.as_str()],
            )
            .map_err(unavailable)?;
        if changed == 0 {
            return Ok(false);
        }
        for release in releases {
            tx.execute(
                "INSERT INTO inventory (variant_id, available) VALUES (?1, ?2)
                 ON CONFLICT (variant_id) DO UPDATE SET available = available + excluded.available",
                params![release.variant_id.as_str(), release.quantity],
            )
            .map_err(unavailable)?;
        }
        tx.commit().map_err(unavailable)?;
        Ok(true)
    }

    async fn expired(&self, now: DateTime<Utc>, limit: usize) -> RepoResult<Vec<CartId>> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached("SELECT id FROM carts WHERE expires_ms <= ?1 ORDER BY expires_ms LIMIT ?2")
            .map_err(unavailable)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let ids = stmt
            .query_map(params![now.timestamp_millis(), limit], |row| {
                row.get::<_, String>(0).map(CartId::from)
            })
            .map_err(unavailable)?;
        ids.collect::<Result<_, _>>().map_err(unavailable)
    }

    async fn delete(&self, carts: &[CartId]) -> RepoResult<usize> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(unavailable)?;
        let mut deleted = 0;
        for id in carts {
            deleted +=
                tx.execute("DELETE FROM carts WHERE id = ?1", params![id.as_str()]).map_err(unavailable)?;
        }
        tx.commit().map_err(unavailable)?;
        Ok(deleted)
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

#[async_trait]
impl Credentials for ShopDb {
    async fn shopify_token(&self, store: &StoreId) -> RepoResult<Option<Secret>> {
        self.token(store, "shopify_token")
    }

    async fn square_token(&self, store: &StoreId) -> RepoResult<Option<Secret>> {
        self.token(store, "square_token")
    }
}

#[async_trait]
impl CustomerRepository for ShopDb {
    async fn upsert_customers(&self, customers: &[Customer]) -> RepoResult<usize> {
        self.put_documents("customers", customers.iter().map(|c| (c.store_id.as_str(), c.id.as_str(), c)))
    }

    async fn get_customer(&self, store: &StoreId, id: &CustomerId) -> RepoResult<Option<Customer>> {
        self.get_document("customers", store, id.as_str())
    }
}

#[async_trait]
impl History for ShopDb {
    async fn append(&self, entry: &HistoryEntry) -> RepoResult {
        let body = serde_json::to_string(entry).map_err(corrupt)?;
        self.lock()
            .execute(
                "INSERT OR REPLACE INTO history (kind, id, at_ms, body) VALUES (?1, ?2, ?3, ?4)",
                params![entry.kind.as_str(), entry.id, entry.at.timestamp_millis(), body],
            )
            .map_err(unavailable)?;
        Ok(())
    }

    async fn purge_before(&self, kind: RecordKind, cutoff: DateTime<Utc>, limit: usize) -> RepoResult<usize> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.lock()
            .execute(
                "DELETE FROM history WHERE rowid IN (
                     SELECT rowid FROM history WHERE kind = ?1 AND at_ms < ?2 ORDER BY at_ms LIMIT ?3)",
                params![kind.as_str(), cutoff.timestamp_millis(), limit],
            )
            .map_err(unavailable)
    }

    async fn recent(&self, kind: RecordKind, limit: usize) -> RepoResult<Vec<HistoryEntry>> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached("SELECT body FROM history WHERE kind = ?1 ORDER BY at_ms DESC LIMIT ?2")
            .map_err(unavailable)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let bodies = stmt
            .query_map(params![kind.as_str(), limit], |row| row.get::<_, String>(0))
            .map_err(unavailable)?;
        bodies.map(|body| serde_json::from_str(&body.map_err(unavailable)?).map_err(corrupt)).collect()
    }
}
