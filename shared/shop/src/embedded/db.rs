//! The database: one SQLite connection behind a mutex, each repository's tables created on open.

use std::{
    path::Path,
    sync::{Arc, Mutex, MutexGuard},
};

use rusqlite::Connection;

use super::{carts, catalog, credentials, customers, history, inventory, stores};
use crate::ports::{RepoError, RepoResult};

/// The shop's data in one SQLite database; implements every shop port.
#[derive(Clone)]
pub struct ShopDb {
    conn: Arc<Mutex<Connection>>,
}

impl std::fmt::Debug for ShopDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShopDb").finish_non_exhaustive()
    }
}

pub(super) fn unavailable(e: rusqlite::Error) -> RepoError {
    RepoError::Unavailable(format!("sqlite: {e}"))
}

pub(super) fn corrupt(e: serde_json::Error) -> RepoError {
    RepoError::Corrupt(e.to_string())
}

impl ShopDb {
    /// Opens (creating) the database at `path`.
    ///
    /// # Errors
    /// If it cannot be opened.
    pub fn open(path: impl AsRef<Path>) -> RepoResult<Self> {
        let conn = Connection::open(path).map_err(unavailable)?;
        conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(unavailable)?;
        Self::with_schema(conn)
    }

    /// A private in-memory database.
    ///
    /// # Errors
    /// If SQLite cannot allocate it.
    pub fn in_memory() -> RepoResult<Self> {
        Self::with_schema(Connection::open_in_memory().map_err(unavailable)?)
    }

    fn with_schema(conn: Connection) -> RepoResult<Self> {
        for schema in [
            stores::SCHEMA,
            catalog::SCHEMA,
            credentials::SCHEMA,
            customers::SCHEMA,
            carts::SCHEMA,
            inventory::SCHEMA,
            history::SCHEMA,
        ] {
            conn.execute_batch(schema).map_err(unavailable)?;
        }
        Ok(Self { conn: Arc::new(Mutex::new(conn)) })
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}
