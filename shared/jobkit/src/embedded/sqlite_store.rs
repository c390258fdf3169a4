//! The state store on SQLite: a `records` table with an expiry per key.
//!
//! Invariant: an expired row reads as absent everywhere; conditional writes are single
//! statements, so they are atomic.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use super::sqlite_db::{EmbeddedDb, sql_error};
use crate::{
    error::PortResult,
    ports::{PutOutcome, StateStore, StoredRecord},
};

/// [`StateStore`] on the embedded database.
#[derive(Debug, Clone)]
pub struct EmbeddedStore {
    db: EmbeddedDb,
}

impl EmbeddedStore {
    /// A store on `db`.
    pub fn new(db: EmbeddedDb) -> Self {
        Self { db }
    }
}

fn to_time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// Runs one cached statement (prepared once per connection: preparing costs more than running).
fn execute(
    conn: &rusqlite::Connection,
    op: &'static str,
    sql: &str,
    args: impl rusqlite::Params,
) -> PortResult<usize> {
    conn.prepare_cached(sql).and_then(|mut stmt| stmt.execute(args)).map_err(sql_error(op))
}

fn read_record(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredRecord> {
    Ok(StoredRecord { value: row.get(0)?, expires_at: to_time(row.get(1)?) })
}

#[async_trait]
impl StateStore for EmbeddedStore {
    async fn get(&self, key: &str, now: DateTime<Utc>) -> PortResult<Option<StoredRecord>> {
        let conn = self.db.lock();
        conn.prepare_cached("SELECT value, expires_at_ms FROM records WHERE key = ?1 AND expires_at_ms > ?2")
            .and_then(|mut stmt| stmt.query_row(params![key, now.timestamp_millis()], read_record).optional())
            .map_err(sql_error("get"))
    }

    async fn put_if_vacant(
        &self,
        key: &str,
        value: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> PortResult<PutOutcome> {
        let conn = self.db.lock();
        let written = execute(
            &conn,
            "put_if_vacant",
            "INSERT INTO records (key, value, expires_at_ms, count) VALUES (?1, ?2, ?3, 0)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at_ms = excluded.expires_at_ms, count = 0
             WHERE records.expires_at_ms <= ?4",
            params![key, value, expires_at.timestamp_millis(), now.timestamp_millis()],
        )?;
        if written == 1 {
            return Ok(PutOutcome::Written);
        }
        let existing = conn
            .prepare_cached("SELECT value, expires_at_ms FROM records WHERE key = ?1")
            .and_then(|mut stmt| stmt.query_row(params![key], read_record))
            .map_err(sql_error("put_if_vacant"))?;
        Ok(PutOutcome::Taken(existing))
    }

    async fn put(&self, key: &str, value: &str, expires_at: DateTime<Utc>) -> PortResult {
        let conn = self.db.lock();
        execute(
            &conn,
            "put",
            "INSERT INTO records (key, value, expires_at_ms, count) VALUES (?1, ?2, ?3, 0)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at_ms = excluded.expires_at_ms",
            params![key, value, expires_at.timestamp_millis()],
        )?;
        Ok(())
    }

    async fn replace(
        &self,
        key: &str,
        expected: &str,
        value: &str,
        expires_at: DateTime<Utc>,
    ) -> PortResult<bool> {
        let conn = self.db.lock();
        let written = execute(
            &conn,
            "replace",
            "UPDATE records SET value = ?3, expires_at_ms = ?4 WHERE key = ?1 AND value = ?2",
            params![key, expected, value, expires_at.timestamp_millis()],
        )?;
        Ok(written == 1)
    }

    async fn delete(&self, key: &str) -> PortResult {
        let conn = self.db.lock();
        execute(&conn, "delete", "DELETE FROM records WHERE key = ?1", params![key])?;
        Ok(())
    }

    async fn increment(&self, key: &str, expires_at: DateTime<Utc>, now: DateTime<Utc>) -> PortResult<i64> {
        let conn = self.db.lock();
        conn.prepare_cached(
            "INSERT INTO records (key, value, expires_at_ms, count) VALUES (?1, '', ?2, 1)
             ON CONFLICT (key) DO UPDATE SET
                 count = CASE WHEN records.expires_at_ms > ?3 THEN records.count + 1 ELSE 1 END,
                 expires_at_ms = excluded.expires_at_ms
             RETURNING count",
        )
        .and_then(|mut stmt| {
            stmt.query_row(params![key, expires_at.timestamp_millis(), now.timestamp_millis()], |row| {
                row.get(0)
            })
        })
        .map_err(sql_error("increment"))
    }

    async fn purge_expired(&self, now: DateTime<Utc>, limit: usize) -> PortResult<usize> {
        // No index on expiry: it would cost every idempotency write on the hot path, and a
        // scan of the embedded store by an hourly cleanup is cheap.
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        execute(
            &self.db.lock(),
            "purge_expired",
            "DELETE FROM records WHERE key IN (
                 SELECT key FROM records WHERE expires_at_ms <= ?1 LIMIT ?2)",
            params![now.timestamp_millis(), limit],
        )
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;

    fn store() -> EmbeddedStore {
        EmbeddedStore::new(EmbeddedDb::in_memory().unwrap())
    }

    #[tokio::test]
    async fn put_if_vacant_takes_free_and_expired_keys_only() {
        let s = store();
        let now = Utc::now();
        assert_eq!(
            s.put_if_vacant("k", "a", now + Duration::seconds(10), now).await.unwrap(),
            PutOutcome::Written
        );
        let taken = s.put_if_vacant("k", "b", now + Duration::seconds(10), now).await.unwrap();
        assert!(matches!(taken, PutOutcome::Taken(StoredRecord { ref value, .. }) if value == "a"));
        let later = now + Duration::seconds(10);
        assert_eq!(s.get("k", later).await.unwrap(), None, "expired reads as absent");
        assert_eq!(
            s.put_if_vacant("k", "c", later + Duration::seconds(5), later).await.unwrap(),
            PutOutcome::Written
        );
        assert_eq!(s.get("k", later).await.unwrap().unwrap().value, "c");
    }

    #[tokio::test]
    async fn increment_counts_and_restarts_after_expiry() {
        let s = store();
        let now = Utc::now();
        let until = now + Duration::seconds(60);
        assert_eq!(s.increment("c", until, now).await.unwrap(), 1);
        assert_eq!(s.increment("c", until, now).await.unwrap(), 2);
        let later = until + Duration::seconds(1);
        assert_eq!(s.increment("c", later + Duration::seconds(60), later).await.unwrap(), 1);
        s.delete("c").await.unwrap();
        assert_eq!(s.get("c", now).await.unwrap(), None);
    }
}
