//! Carts: one row per cart, indexed by (status, last activity) for the idle ones and by expiry;
//! carts set aside keep their reason in `cart_set_aside`.
//!
//! Invariants: abandoning a cart and giving its stock back is one transaction conditioned on the
//! cart still being active, so stock is released once. A row that does not read is reported by
//! its id, never a failed query: the janitor sets it aside and goes on.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use jobkit::SetAside;
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
CREATE TABLE IF NOT EXISTS cart_set_aside (
    id TEXT PRIMARY KEY, reason TEXT NOT NULL, at_ms INTEGER NOT NULL
) WITHOUT ROWID;
";
// The reasons live in a table of their own rather than in columns of `carts`: `jobctl dev`'s
// database files were created before carts could be set aside, and `CREATE TABLE IF NOT
// EXISTS` adds a table to them where a column would need a migration.

/// A cart's status as stored.
fn status_text(status: CartStatus) -> &'static str {
    match status {
        CartStatus::Active => "active",
        CartStatus::Abandoned => "abandoned",
        CartStatus::CheckedOut => "checked_out",
        CartStatus::SetAside => "set_aside",
    }
}

fn status_from(text: &str) -> rusqlite::Result<CartStatus> {
    match text {
        "active" => Ok(CartStatus::Active),
        "abandoned" => Ok(CartStatus::Abandoned),
        "checked_out" => Ok(CartStatus::CheckedOut),
        "set_aside" => Ok(CartStatus::SetAside),
        other => {
            Err(rusqlite::Error::InvalidColumnType(3, format!("status {other}"), rusqlite::types::Type::Text))
        }
    }
}

fn time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// The row's cart, or its id and why it does not read. Only an id that does not read fails the
/// row (the primary key: not without a broken database).
fn read_cart_or_id(row: &rusqlite::Row<'_>) -> rusqlite::Result<Result<Cart, SetAside>> {
    let id: String = row.get(0)?;
    Ok(read_cart(row).map_err(|e| SetAside::new(id, format_args!("the cart does not read: {e}"))))
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
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(unavailable)?;
        tx.execute(
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
        // A cart written anew (an operator's fix, made active again) is no longer set aside.
        if cart.status != CartStatus::SetAside {
            tx.execute("DELETE FROM cart_set_aside WHERE id = ?1", params![cart.id.as_str()])
                .map_err(unavailable)?;
        }
        tx.commit().map_err(unavailable)?;
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

    /// Why a cart was set aside, if it was (the operator's view, and tests').
    ///
    /// # Errors
    /// If the database fails.
    pub fn set_aside_reason(&self, id: &CartId) -> RepoResult<Option<String>> {
        self.lock()
            .query_row("SELECT reason FROM cart_set_aside WHERE id = ?1", params![id.as_str()], |row| {
                row.get(0)
            })
            .optional()
            .map_err(unavailable)
    }
}

#[async_trait]
impl CartRepository for ShopDb {
    async fn idle_active(
        &self,
        idle_since: DateTime<Utc>,
        limit: usize,
    ) -> RepoResult<Vec<Result<Cart, SetAside>>> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT id, store_id, items, status, stock_reserved, last_activity_ms, expires_ms FROM carts
                 WHERE status = 'active' AND last_activity_ms <= ?1 ORDER BY last_activity_ms LIMIT ?2",
            )
            .map_err(unavailable)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let carts = stmt
            .query_map(params![idle_since.timestamp_millis(), limit], read_cart_or_id)
            .map_err(unavailable)?;
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

    async fn set_aside(&self, cart: &CartId, reason: &str, at: DateTime<Utc>) -> RepoResult<bool> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(unavailable)?;
        let changed = tx
            .execute(
                "UPDATE carts SET status = 'set_aside' WHERE id = ?1 AND status = 'active'",
                params![cart.as_str()],
            )
            .map_err(unavailable)?;
        if changed == 0 {
            return Ok(false);
        }
        tx.execute(
            "INSERT OR REPLACE INTO cart_set_aside (id, reason, at_ms) VALUES (?1, ?2, ?3)",
            params![cart.as_str(), reason, at.timestamp_millis()],
        )
        .map_err(unavailable)?;
        tx.commit().map_err(unavailable)?;
        Ok(true)
    }

    async fn expired(&self, now: DateTime<Utc>, limit: usize) -> RepoResult<Vec<CartId>> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT id FROM carts WHERE expires_ms <= ?1 AND status != 'set_aside'
                 ORDER BY expires_ms LIMIT ?2",
            )
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
            tx.execute("DELETE FROM cart_set_aside WHERE id = ?1", params![id.as_str()])
                .map_err(unavailable)?;
        }
        tx.commit().map_err(unavailable)?;
        Ok(deleted)
    }
}
