//! Carts: one row per cart, indexed by (status, last activity) for the idle ones and by expiry.
//!
//! Invariant: abandoning a cart and giving its stock back is one transaction conditioned on the
//! cart still being active, so stock is released once.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use super::{
    ShopDb,
    db::{corrupt, unavailable},
    inventory,
};
use crate::{
    cart::{Cart, CartStatus, StockRelease},
    ids::{CartId, StoreId},
    ports::{CartRepository, RepoResult},
};

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS carts (
    id TEXT PRIMARY KEY, store_id TEXT NOT NULL, items TEXT NOT NULL, status TEXT NOT NULL,
    stock_reserved INTEGER NOT NULL, last_activity_ms INTEGER NOT NULL, expires_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS carts_by_activity ON carts (status, last_activity_ms);
CREATE INDEX IF NOT EXISTS carts_by_expiry ON carts (expires_ms);
";

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
            inventory::give_back(&tx, release)?;
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
