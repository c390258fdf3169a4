//! Per-store API tokens: one row per store, a column per platform's token (`NULL` when the
//! store has none); asked per platform, as Secrets Manager's secret per platform is.

use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};

use super::{ShopDb, db::unavailable};
use crate::{
    ids::StoreId,
    ports::{Credentials, RepoResult},
    secret::Secret,
};

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS credentials (store_id TEXT PRIMARY KEY, shopify_token TEXT, square_token TEXT) WITHOUT ROWID;
";

impl ShopDb {
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

#[async_trait]
impl Credentials for ShopDb {
    async fn shopify_token(&self, store: &StoreId) -> RepoResult<Option<Secret>> {
        self.token(store, "shopify_token")
    }

    async fn square_token(&self, store: &StoreId) -> RepoResult<Option<Secret>> {
        self.token(store, "square_token")
    }
}
