//! The SQLite database behind the embedded adapters: one file (or `:memory:`), one connection
//! behind a mutex, the schema created on open.
//!
//! Invariant: the lock is never held across an `.await`; every operation is one short
//! transaction (the store's writes: one savepoint in a transaction they share, see
//! `group_commit.rs`), so the embedded queue's receive and the store's conditional put are
//! atomic.

use std::{
    path::Path,
    sync::{Arc, Mutex, MutexGuard},
};

use rusqlite::Connection;

use super::group_commit::Group;
use crate::error::{PortError, PortResult};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS queues (
    name TEXT PRIMARY KEY,
    visibility_timeout_ms INTEGER NOT NULL,
    max_receive_count INTEGER,
    dead_letter_queue TEXT,
    fifo INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    queue TEXT NOT NULL,
    body TEXT NOT NULL,
    attributes TEXT NOT NULL,
    group_id TEXT,
    dedup_id TEXT,
    sent_at_ms INTEGER NOT NULL,
    visible_at_ms INTEGER NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    receipt TEXT,
    received_at_ms INTEGER
);
CREATE INDEX IF NOT EXISTS messages_by_queue ON messages (queue, visible_at_ms, seq);
CREATE INDEX IF NOT EXISTS messages_by_receipt ON messages (receipt);
CREATE TABLE IF NOT EXISTS dedup (
    queue TEXT NOT NULL,
    dedup_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    PRIMARY KEY (queue, dedup_id)
);
CREATE TABLE IF NOT EXISTS records (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    count INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
";

/// Adds `messages.received_at_ms` to a file made before it existed. A message in flight there
/// keeps a NULL receive time, and its visibility is then counted from now.
fn add_received_at(conn: &Connection) -> PortResult {
    let present: bool = conn
        .query_row(
            "SELECT COUNT(*) > 0 FROM pragma_table_info('messages') WHERE name = 'received_at_ms'",
            [],
            |row| row.get(0),
        )
        .map_err(sql_error("schema"))?;
    if !present {
        conn.execute_batch("ALTER TABLE messages ADD COLUMN received_at_ms INTEGER")
            .map_err(sql_error("schema"))?;
    }
    Ok(())
}

/// A handle on the embedded database; clones share the connection.
#[derive(Clone)]
pub struct EmbeddedDb {
    conn: Arc<Mutex<Connection>>,
    /// The state store's writes waiting to share a transaction (`group_commit.rs`).
    group: Arc<Group>,
}

impl std::fmt::Debug for EmbeddedDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedDb").finish_non_exhaustive()
    }
}

pub(crate) fn sql_error(context: &str) -> impl Fn(rusqlite::Error) -> PortError + '_ {
    move |e| PortError::Unavailable(format!("sqlite {context}: {e}"))
}

impl EmbeddedDb {
    /// Opens (creating if needed) the database file at `path`.
    ///
    /// # Errors
    /// If the folder or the file cannot be created or opened.
    pub fn open(path: impl AsRef<Path>) -> PortResult<Self> {
        let path = path.as_ref();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| PortError::Unavailable(format!("creating {}: {e}", parent.display())))?;
        }
        let conn = Connection::open(path).map_err(sql_error("open"))?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(sql_error("journal mode"))?;
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(sql_error("synchronous"))?;
        conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(sql_error("busy timeout"))?;
        Self::with_schema(conn)
    }

    /// A private in-memory database (tests, benchmarks).
    ///
    /// # Errors
    /// If SQLite cannot allocate it.
    pub fn in_memory() -> PortResult<Self> {
        Self::with_schema(Connection::open_in_memory().map_err(sql_error("open"))?)
    }

    fn with_schema(conn: Connection) -> PortResult<Self> {
        conn.execute_batch(SCHEMA).map_err(sql_error("schema"))?;
        add_received_at(&conn)?;
        Ok(Self { conn: Arc::new(Mutex::new(conn)), group: Arc::default() })
    }

    /// The group commit of the state store's writes.
    pub(crate) fn group(&self) -> &Group {
        &self.group
    }

    /// The connection, for one short operation.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (statements are atomic).
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}
