//! Inventory: units of each variant given back by abandoned carts.

use rusqlite::{OptionalExtension, Transaction, params};

use super::{ShopDb, db::unavailable};
use crate::{cart::StockRelease, ids::VariantId, ports::RepoResult};

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS inventory (variant_id TEXT PRIMARY KEY, available INTEGER NOT NULL) WITHOUT ROWID;
";

/// Adds `release`'s units to its variant, inside the caller's transaction (the cart's abandon).
pub(super) fn give_back(tx: &Transaction<'_>, release: &StockRelease) -> RepoResult {
    tx.execute(
        "INSERT INTO inventory (variant_id, available) VALUES (?1, ?2)
         ON CONFLICT (variant_id) DO UPDATE SET available = available + excluded.available",
        params![release.variant_id.as_str(), release.quantity],
    )
    .map_err(unavailable)?;
    Ok(())
}

impl ShopDb {
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
