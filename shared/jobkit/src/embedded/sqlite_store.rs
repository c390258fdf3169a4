//! The state store on SQLite: a `records` table with an expiry per key.
//!
//! Invariants: an expired row reads as absent everywhere; every write is atomic (a savepoint
//! of the transaction the writes arriving together share: `group_commit.rs`); a key or an item DynamoDB would refuse (the limits of
//! [`crate::limits`]) is refused here too, as the DynamoDB adapter reports it.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use super::sqlite_db::{EmbeddedDb, sql_error};
use crate::{
    error::PortResult,
    limits::{self, LimitError, MAX_ITEM_BYTES, number_attribute_size, string_attribute_size},
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

    /// Up to `limit` live keys starting with `prefix`, in order: for operators' listings
    /// (`jobctl batches`), not for jobs.
    ///
    /// # Errors
    /// The database failing.
    pub fn keys_with_prefix(
        &self,
        prefix: &str,
        now: DateTime<Utc>,
        limit: usize,
    ) -> PortResult<Vec<String>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        // `substr` rather than LIKE: a prefix may hold `_` and `%`, LIKE's wildcards.
        let conn = self.db.lock();
        conn.prepare_cached(
            "SELECT key FROM records WHERE substr(key, 1, length(?1)) = ?1 AND expires_at_ms > ?2 ORDER BY key LIMIT ?3",
        )
        .and_then(|mut stmt| {
            stmt.query_map(params![prefix, now.timestamp_millis(), limit], |row| row.get(0))?.collect()
        })
        .map_err(sql_error("keys_with_prefix"))
    }
}

/// The size of the item `DynamoStore` writes for this record (`pk`, `value`, `expires_at_ms`,
/// `ttl` in seconds rounded up, `count` 0), as DynamoDB counts it against its item limit.
fn item_size(key: &str, value: &str, expires_at: DateTime<Utc>) -> usize {
    let expires_at_ms = expires_at.timestamp_millis();
    string_attribute_size("pk", key)
        + string_attribute_size("value", value)
        + number_attribute_size("expires_at_ms", expires_at_ms)
        + number_attribute_size("ttl", (expires_at_ms + 999).div_euclid(1000))
        + number_attribute_size("count", 0)
}

/// Checks a write of `value` at `key` against DynamoDB's key and item limits.
fn check_write(key: &str, value: &str, expires_at: DateTime<Utc>) -> Result<(), LimitError> {
    limits::check_key(key)?;
    let bytes = item_size(key, value, expires_at);
    if bytes > MAX_ITEM_BYTES {
        return Err(LimitError::ItemTooLarge { bytes });
    }
    Ok(())
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

/// Writes `value` under `key` unless a live record holds it (an expired one is taken over);
/// true when written.
fn take_if_vacant(
    conn: &rusqlite::Connection,
    op: &'static str,
    key: &str,
    value: &str,
    expires_at_ms: i64,
    now_ms: i64,
) -> PortResult<bool> {
    let written = execute(
        conn,
        op,
        "INSERT INTO records (key, value, expires_at_ms, count) VALUES (?1, ?2, ?3, 0)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at_ms = excluded.expires_at_ms, count = 0
         WHERE records.expires_at_ms <= ?4",
        params![key, value, expires_at_ms, now_ms],
    )?;
    Ok(written == 1)
}

/// Adds one to the counter at `key` (restarting an expired one at 1) and returns its count.
fn bump(
    conn: &rusqlite::Connection,
    op: &'static str,
    key: &str,
    expires_at_ms: i64,
    now_ms: i64,
) -> PortResult<i64> {
    conn.prepare_cached(
        "INSERT INTO records (key, value, expires_at_ms, count) VALUES (?1, '', ?2, 1)
         ON CONFLICT (key) DO UPDATE SET
             count = CASE WHEN records.expires_at_ms > ?3 THEN records.count + 1 ELSE 1 END,
             expires_at_ms = excluded.expires_at_ms
         RETURNING count",
    )
    .and_then(|mut stmt| stmt.query_row(params![key, expires_at_ms, now_ms], |row| row.get(0)))
    .map_err(sql_error(op))
}

fn read_record(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredRecord> {
    Ok(StoredRecord { value: row.get(0)?, expires_at: to_time(row.get(1)?) })
}

#[async_trait]
impl StateStore for EmbeddedStore {
    async fn get(&self, key: &str, now: DateTime<Utc>) -> PortResult<Option<StoredRecord>> {
        limits::check_key(key)?;
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
        check_write(key, value, expires_at)?;
        let (key, value) = (key.to_owned(), value.to_owned());
        let (expires, at) = (expires_at.timestamp_millis(), now.timestamp_millis());
        self.db
            .write("put_if_vacant", move |conn| {
                if take_if_vacant(conn, "put_if_vacant", &key, &value, expires, at)? {
                    return Ok(PutOutcome::Written);
                }
                let existing = conn
                    .prepare_cached("SELECT value, expires_at_ms FROM records WHERE key = ?1")
                    .and_then(|mut stmt| stmt.query_row(params![key], read_record))
                    .map_err(sql_error("put_if_vacant"))?;
                Ok(PutOutcome::Taken(existing))
            })
            .await
    }

    async fn put(&self, key: &str, value: &str, expires_at: DateTime<Utc>) -> PortResult {
        check_write(key, value, expires_at)?;
        let (key, value, expires) = (key.to_owned(), value.to_owned(), expires_at.timestamp_millis());
        self.db
            .write("put", move |conn| {
                execute(
                    conn,
                    "put",
                    "INSERT INTO records (key, value, expires_at_ms, count) VALUES (?1, ?2, ?3, 0)
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at_ms = excluded.expires_at_ms",
                    params![key, value, expires],
                )
                .map(drop)
            })
            .await
    }

    async fn replace(
        &self,
        key: &str,
        expected: &str,
        value: &str,
        expires_at: DateTime<Utc>,
    ) -> PortResult<bool> {
        check_write(key, value, expires_at)?;
        let (key, expected, value) = (key.to_owned(), expected.to_owned(), value.to_owned());
        let expires = expires_at.timestamp_millis();
        self.db
            .write("replace", move |conn| {
                let written = execute(
                    conn,
                    "replace",
                    "UPDATE records SET value = ?3, expires_at_ms = ?4 WHERE key = ?1 AND value = ?2",
                    params![key, expected, value, expires],
                )?;
                Ok(written == 1)
            })
            .await
    }

    async fn delete(&self, key: &str) -> PortResult {
        limits::check_key(key)?;
        let key = key.to_owned();
        self.db
            .write("delete", move |conn| {
                execute(conn, "delete", "DELETE FROM records WHERE key = ?1", params![key]).map(drop)
            })
            .await
    }

    async fn increment(&self, key: &str, expires_at: DateTime<Utc>, now: DateTime<Utc>) -> PortResult<i64> {
        // The counter's item has an empty value: only its key can break a limit.
        limits::check_key(key)?;
        let key = key.to_owned();
        let (expires, at) = (expires_at.timestamp_millis(), now.timestamp_millis());
        self.db.write("increment", move |conn| bump(conn, "increment", &key, expires, at)).await
    }

    async fn increment_once(
        &self,
        marker: &str,
        value: &str,
        counter: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> PortResult<bool> {
        check_write(marker, value, expires_at)?;
        limits::check_key(counter)?;
        let (marker, value, counter) = (marker.to_owned(), value.to_owned(), counter.to_owned());
        let (expires, at) = (expires_at.timestamp_millis(), now.timestamp_millis());
        // Both writes or neither, as DynamoDB's TransactWriteItems: a group write is one
        // transaction (or one savepoint of it) and a failed one is undone whole.
        self.db
            .write("increment_once", move |conn| {
                let taken = take_if_vacant(conn, "increment_once", &marker, &value, expires, at)?;
                if taken {
                    bump(conn, "increment_once", &counter, expires, at)?;
                }
                Ok(taken)
            })
            .await
    }

    async fn count(&self, key: &str, now: DateTime<Utc>) -> PortResult<i64> {
        limits::check_key(key)?;
        let conn = self.db.lock();
        conn.prepare_cached("SELECT count FROM records WHERE key = ?1 AND expires_at_ms > ?2")
            .and_then(|mut stmt| {
                stmt.query_row(params![key, now.timestamp_millis()], |row| row.get(0)).optional()
            })
            .map(Option::unwrap_or_default)
            .map_err(sql_error("count"))
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

    fn invalid_naming<T: std::fmt::Debug>(result: &PortResult<T>, limit: &str) {
        match result {
            Err(crate::error::PortError::Invalid(text)) => assert!(text.contains(limit), "{text}"),
            other => panic!("expected an invalid request naming {limit}, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn keys_of_2048_bytes_are_taken_and_longer_ones_refused_as_dynamodb_does() {
        let s = store();
        let now = Utc::now();
        let until = now + Duration::seconds(60);
        let at = "k".repeat(2048);
        assert_eq!(s.put_if_vacant(&at, "v", until, now).await.unwrap(), PutOutcome::Written);
        s.put(&at, "w", until).await.unwrap();
        assert_eq!(s.get(&at, now).await.unwrap().unwrap().value, "w");
        s.delete(&at).await.unwrap();
        assert_eq!(s.increment(&at, until, now).await.unwrap(), 1);

        // 2,049 bytes; 1,025 two-byte characters are over too: DynamoDB counts UTF-8 bytes.
        for over in ["k".repeat(2049), "é".repeat(1025)] {
            invalid_naming(&s.put_if_vacant(&over, "v", until, now).await, "limit of 2048");
            invalid_naming(&s.put(&over, "v", until).await, "limit of 2048");
            invalid_naming(&s.get(&over, now).await, "limit of 2048");
            invalid_naming(&s.delete(&over).await, "limit of 2048");
            invalid_naming(&s.increment(&over, until, now).await, "limit of 2048");
        }
        invalid_naming(&s.put("", "v", until).await, "at least 1 byte");
        invalid_naming(&s.get("", now).await, "at least 1 byte");
    }

    #[tokio::test]
    async fn items_of_400_kb_are_taken_and_larger_ones_refused_as_dynamodb_does() {
        let s = store();
        let now = DateTime::from_timestamp_millis(1_600_000_000_000).unwrap();
        let until = DateTime::from_timestamp_millis(1_700_000_000_000).unwrap();
        // DynamoStore's item: pk "k" (2 + 1), value (5 + n), expires_at_ms 1.7e12 (13 + 1 + 1),
        // ttl 1.7e9 (3 + 1 + 1) and count 0 (5 + 1 + 1): 35 bytes besides the value.
        let at = "v".repeat(400 * 1024 - 35);
        let over = "v".repeat(400 * 1024 - 34);
        assert_eq!(s.put_if_vacant("k", &at, until, now).await.unwrap(), PutOutcome::Written);
        s.put("k", &at, until).await.unwrap();
        invalid_naming(&s.put("k", &over, until).await, "limit of 409600");
        invalid_naming(&s.put_if_vacant("j", &over, until, now).await, "limit of 409600");
        assert_eq!(s.get("k", now).await.unwrap().unwrap().value, at, "the refused write changed nothing");
        assert_eq!(s.get("j", now).await.unwrap(), None);
    }

    #[tokio::test]
    async fn replace_writes_only_over_the_value_it_expects() {
        let s = store();
        let now = Utc::now();
        let later = now + Duration::minutes(5);
        assert!(!s.replace("r", "a", "b", later).await.unwrap(), "nothing there to replace");
        s.put("r", "a", later).await.unwrap();
        assert!(!s.replace("r", "x", "b", later).await.unwrap(), "another value is left alone");
        assert!(s.replace("r", "a", "b", later).await.unwrap());
        assert_eq!(s.get("r", now).await.unwrap().unwrap().value, "b");
        assert!(!s.replace("r", "a", "c", later).await.unwrap(), "a second swap from the old value loses");
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

    #[tokio::test]
    async fn increment_once_counts_each_marker_once_and_reads_back() {
        let s = store();
        let now = Utc::now();
        let until = now + Duration::seconds(60);
        assert_eq!(s.count("n", now).await.unwrap(), 0, "absent counts zero");
        assert!(s.increment_once("m:a", "ok", "n", until, now).await.unwrap());
        assert!(!s.increment_once("m:a", "ok", "n", until, now).await.unwrap(), "a marker counts once");
        assert!(s.increment_once("m:b", "ok", "n", until, now).await.unwrap());
        assert_eq!(s.count("n", now).await.unwrap(), 2);
        assert_eq!(s.get("m:a", now).await.unwrap().unwrap().value, "ok");
        assert_eq!(s.count("n", until).await.unwrap(), 0, "expired counts zero");
        // A refused marker (over DynamoDB's key limit) changes nothing.
        assert!(s.increment_once(&"k".repeat(2049), "ok", "n", until, now).await.is_err());
        assert_eq!(s.count("n", now).await.unwrap(), 2);
    }
}
