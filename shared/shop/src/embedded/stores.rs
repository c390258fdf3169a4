//! Stores: one row per store id, the store as JSON.

use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};

use super::{
    ShopDb,
    db::{corrupt, unavailable},
};
use crate::{
    ids::StoreId,
    ports::{RepoResult, StoreRepository},
    store::{Plan, Store, SyncState},
};

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS stores (id TEXT PRIMARY KEY, body TEXT NOT NULL) WITHOUT ROWID;
";

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

    async fn syncable(&self) -> RepoResult<Vec<(StoreId, Plan)>> {
        let conn = self.lock();
        let mut stmt = conn.prepare("SELECT body FROM stores ORDER BY id").map_err(unavailable)?;
        let bodies = stmt.query_map([], |row| row.get::<_, String>(0)).map_err(unavailable)?;
        let mut ids = Vec::new();
        for body in bodies {
            let store: Store = serde_json::from_str(&body.map_err(unavailable)?).map_err(corrupt)?;
            if store.is_syncable() {
                ids.push((store.id, store.plan));
            }
        }
        Ok(ids)
    }
}
