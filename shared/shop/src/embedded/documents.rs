//! JSON documents keyed by (store, id): the rows of the products and customers tables.

use rusqlite::{OptionalExtension, params};

use super::{
    ShopDb,
    db::{corrupt, unavailable},
};
use crate::{ids::StoreId, ports::RepoResult};

impl ShopDb {
    /// Inserts or replaces JSON documents keyed by (store, id) in `table` (products,
    /// customers), in one transaction; returns how many were written.
    pub(super) fn put_documents<'a, T: serde::Serialize + 'a>(
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
    pub(super) fn get_document<T: serde::de::DeserializeOwned>(
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
}
