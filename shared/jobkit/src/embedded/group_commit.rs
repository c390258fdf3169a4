//! Group commit for the embedded store's writes: the writes that arrive together (a batch's
//! records entering and ending their runs, eight at a time) share one SQLite transaction.
//!
//! Why: a commit, not the statement, is what a write costs here. Profiling the idempotent
//! no-op benchmark showed the time in the kernel (WAL page writes, the file locks SQLite takes
//! per transaction, checkpoint writeback), not in SQLite's statements. One commit for eight
//! writes pays that once.
//!
//! How: a write joins the pending group. The first to join leads: it yields once, so the other
//! records of the batch (polled by the same task) reach their writes, then runs the whole group
//! in one `BEGIN IMMEDIATE` transaction, each write in a savepoint of its own, and answers each
//! writer after the commit. Invariants: a writer is answered only once its write is committed
//! (or with an error); a write that fails rolls back its own savepoint only; a leader dropped
//! before running the group (a timeout around the write) runs it as it is dropped, so no
//! follower waits for ever; the connection's lock is held only while the group runs.

use std::sync::{
    Mutex,
    atomic::{AtomicU64, Ordering},
};

use futures::channel::oneshot;
use rusqlite::Connection;

use super::sqlite_db::EmbeddedDb;
use crate::error::{PortError, PortResult};

/// A write's answer, sent once the group's transaction has ended: `Some(error)` when it did
/// not commit (the write did not happen, whatever it answered).
type Answer = Box<dyn FnOnce(Option<&str>) + Send>;
/// A write waiting for its group: runs against the connection (or, given why it cannot run,
/// does not), and says whether it succeeded (a failed one is rolled back to its savepoint) and
/// how to answer its writer.
type Write = Box<dyn FnOnce(Result<&Connection, &str>) -> (bool, Answer) + Send>;

/// The writes waiting for a group, and whether one of their writers is leading it.
#[derive(Default)]
pub(crate) struct Group {
    pending: Mutex<Pending>,
    /// Transactions the groups have committed (or tried to): writes divided by this is the
    /// group size.
    transactions: AtomicU64,
}

#[derive(Default)]
struct Pending {
    writes: Vec<Write>,
    leader: bool,
}

impl Group {
    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        // A panic while holding this lock leaves a vector of boxed closures: still usable.
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Transactions run so far.
    #[cfg(test)]
    pub(crate) fn transactions(&self) -> u64 {
        self.transactions.load(Ordering::Relaxed)
    }
}

impl EmbeddedDb {
    /// Runs `write` in the next group transaction and answers its result once committed.
    /// `what` names the operation in errors.
    pub(crate) async fn write<T: Send + 'static>(
        &self,
        what: &'static str,
        write: impl FnOnce(&Connection) -> PortResult<T> + Send + 'static,
    ) -> PortResult<T> {
        let (sender, answer) = oneshot::channel();
        let boxed: Write = Box::new(move |conn| {
            let result = match conn {
                Ok(conn) => write(conn),
                Err(why) => Err(PortError::Unavailable(format!("sqlite {what}: {why}"))),
            };
            let succeeded = result.is_ok();
            let answer: Answer = Box::new(move |not_committed| {
                let result = match not_committed {
                    Some(error) => Err(PortError::Unavailable(format!("sqlite {what}: {error}"))),
                    None => result,
                };
                // The writer may have stopped waiting (a timeout): its write stands or not, as
                // an answer lost on the way would leave it.
                let _ = sender.send(result);
            });
            (succeeded, answer)
        });
        let leads = {
            let mut pending = self.group().pending();
            pending.writes.push(boxed);
            !std::mem::replace(&mut pending.leader, true)
        };
        if leads {
            let lead = Lead { db: self, done: false };
            tokio::task::yield_now().await;
            lead.run();
        }
        answer
            .await
            .unwrap_or_else(|_| Err(PortError::Unavailable(format!("sqlite {what}: the write was dropped"))))
    }

    /// Runs every pending write in one transaction, each in a savepoint of its own when there
    /// are several, and answers them after it ends.
    fn run_group(&self) {
        let writes = {
            let mut pending = self.group().pending();
            pending.leader = false;
            std::mem::take(&mut pending.writes)
        };
        if writes.is_empty() {
            return;
        }
        self.group().transactions.fetch_add(1, Ordering::Relaxed);
        let conn = self.lock();
        if !conn.is_autocommit() {
            // A transaction left open by a write that panicked mid-group: nothing else holds
            // one between two holds of the lock, so it is rolled back rather than block every
            // group after it.
            let _ = run(&conn, "ROLLBACK");
        }
        if let Err(e) = run(&conn, "BEGIN IMMEDIATE") {
            drop(conn);
            let why = e.to_string();
            for write in writes {
                let (_, answer) = write(Err(&why));
                answer(None);
            }
            return;
        }
        let shared = writes.len() > 1;
        let mut answers = Vec::with_capacity(writes.len());
        // Set when the transaction can no longer be trusted (a failed write could not be
        // undone alone): the rest are not run and nothing is committed.
        let mut broken: Option<String> = None;
        let mut lone_failure = false;
        for write in writes {
            if let Some(why) = &broken {
                answers.push(write(Err(why)).1);
                continue;
            }
            if !shared {
                let (succeeded, answer) = write(Ok(&conn));
                lone_failure = !succeeded;
                answers.push(answer);
                continue;
            }
            if let Err(e) = run(&conn, "SAVEPOINT write") {
                broken = Some(e.to_string());
                answers.push(write(Err(&e.to_string())).1);
                continue;
            }
            let (succeeded, answer) = write(Ok(&conn));
            let undone = if succeeded { Ok(()) } else { run(&conn, "ROLLBACK TO write") };
            if let Err(e) = undone.and_then(|()| run(&conn, "RELEASE write")) {
                broken = Some(e.to_string());
            }
            answers.push(answer);
        }
        let end = if broken.is_some() || lone_failure { "ROLLBACK" } else { "COMMIT" };
        let not_committed = match run(&conn, end) {
            Ok(()) => broken,
            Err(e) => {
                let _ = run(&conn, "ROLLBACK");
                Some(e.to_string())
            }
        };
        drop(conn);
        for answer in answers {
            answer(not_committed.as_deref());
        }
    }
}

/// Runs a transaction's control statement, prepared once per connection: parsing them anew
/// for every group showed in the profile.
fn run(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
}

/// The leader's duty to run the group, done even if its writer is dropped first.
struct Lead<'a> {
    db: &'a EmbeddedDb,
    done: bool,
}

impl Lead<'_> {
    fn run(mut self) {
        self.done = true;
        self.db.run_group();
    }
}

impl Drop for Lead<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.db.run_group();
        }
    }
}

#[cfg(test)]
mod tests {
    use futures::{FutureExt, future::join_all};
    use rusqlite::params;

    use super::*;

    fn db() -> EmbeddedDb {
        EmbeddedDb::in_memory().unwrap()
    }

    /// A write of `key`; fails after writing when `fail`.
    async fn put(db: &EmbeddedDb, key: &'static str, fail: bool) -> PortResult {
        db.write("test", move |conn| {
            conn.execute("INSERT INTO records (key, value, expires_at_ms) VALUES (?1, 'v', 1)", params![key])
                .map_err(|e| PortError::Unavailable(e.to_string()))?;
            if fail {
                return Err(PortError::Invalid(format!("{key} refused after writing")));
            }
            Ok(())
        })
        .await
    }

    fn keys(db: &EmbeddedDb) -> Vec<String> {
        let conn = db.lock();
        let mut stmt = conn.prepare("SELECT key FROM records ORDER BY key").unwrap();
        stmt.query_map([], |row| row.get(0)).unwrap().map(Result::unwrap).collect()
    }

    #[tokio::test]
    async fn writes_that_arrive_together_share_one_transaction() {
        let db = db();
        let names = ["a", "b", "c", "d", "e", "f", "g", "h"];
        let answers = join_all(names.map(|key| put(&db, key, false))).await;
        assert!(answers.iter().all(Result::is_ok), "{answers:?}");
        assert_eq!(db.group().transactions(), 1);
        assert_eq!(keys(&db), names);
        // One after the other, each is its own transaction.
        put(&db, "i", false).await.unwrap();
        put(&db, "j", false).await.unwrap();
        assert_eq!(db.group().transactions(), 3);
    }

    #[tokio::test]
    async fn a_failed_write_is_undone_alone_and_answered_its_own_error() {
        let db = db();
        let answers = join_all([put(&db, "a", false), put(&db, "b", true), put(&db, "c", false)]).await;
        assert!(answers[0].is_ok() && answers[2].is_ok(), "{answers:?}");
        assert!(matches!(&answers[1], Err(PortError::Invalid(m)) if m.contains("b refused")), "{answers:?}");
        assert_eq!(db.group().transactions(), 1);
        assert_eq!(keys(&db), ["a", "c"]);
        // Alone, too: its transaction is rolled back.
        assert!(put(&db, "d", true).await.is_err());
        assert_eq!(keys(&db), ["a", "c"]);
    }

    #[tokio::test]
    async fn a_write_that_panics_mid_transaction_leaves_the_next_group_working() {
        let db = db();
        let panics = db.write("test", |conn| -> PortResult<()> {
            conn.execute("INSERT INTO records (key, value, expires_at_ms) VALUES ('half', 'v', 1)", [])
                .unwrap();
            panic!("a bug in a write");
        });
        assert!(std::panic::AssertUnwindSafe(panics).catch_unwind().await.is_err());
        put(&db, "after", false).await.unwrap();
        // The half-done write was rolled back with its transaction.
        assert_eq!(keys(&db), ["after"]);
    }

    #[tokio::test]
    async fn a_leader_dropped_before_running_the_group_still_runs_it() {
        let db = db();
        let mut leader = Box::pin(put(&db, "leader", false));
        assert!((&mut leader).now_or_never().is_none(), "the leader yields before running the group");
        let mut follower = Box::pin(put(&db, "follower", false));
        assert!((&mut follower).now_or_never().is_none(), "the follower waits for the group");
        // A timeout around the leader's write drops it here.
        drop(leader);
        follower.await.unwrap();
        // The leader's write ran with the group, as a write whose answer was lost.
        assert_eq!(keys(&db), ["follower", "leader"]);
    }
}
