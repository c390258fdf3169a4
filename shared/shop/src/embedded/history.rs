//! The history: one row per (kind, id), the entry as JSON, indexed by (kind, time) for purges.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::params;

use super::{
    ShopDb,
    db::{corrupt, unavailable},
};
use crate::{
    history::{HistoryEntry, RecordKind},
    ports::{History, RepoResult},
};

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS history (
    kind TEXT NOT NULL, id TEXT NOT NULL, at_ms INTEGER NOT NULL, body TEXT NOT NULL, PRIMARY KEY (kind, id)
);
CREATE INDEX IF NOT EXISTS history_by_time ON history (kind, at_ms);
";

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
