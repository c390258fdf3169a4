//! Queues on SQLite with SQS's semantics: visibility timeout, receive count, redrive to the DLQ
//! after `max_receive_count` receives, delays, FIFO groups and deduplication.
//!
//! Invariants: every time comes from the clock port (tests turn it by hand); a receive is one
//! transaction, so two workers never receive the same message while it is invisible; a receipt
//! handle is valid only until the message is received again; what SQS refuses (the limits of
//! [`crate::limits`]) is refused here too, as the SQS adapter reports it.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, Transaction, params};
use tokio::sync::Notify;

use super::sqlite_db::{EmbeddedDb, sql_error};
use crate::{
    clock::SharedClock,
    error::{PortError, PortResult},
    limits::{self, MAX_BATCH_ENTRIES, MAX_VISIBILITY},
    message::{OutgoingMessage, ReceivedMessage},
    ports::Queue,
};

/// How long a FIFO deduplication id is remembered.
const DEDUP_WINDOW_MS: i64 = 5 * 60 * 1000;

/// A queue's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueConfig {
    /// How long a received message stays invisible. Defaults to 30 s (SQS's default).
    pub visibility_timeout: Duration,
    /// Receives after which the next receive moves the message to the DLQ.
    pub max_receive_count: Option<u32>,
    /// The DLQ's name.
    pub dead_letter_queue: Option<String>,
    /// In order per message group; deduplication ids honoured.
    pub fifo: bool,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            visibility_timeout: Duration::from_secs(30),
            max_receive_count: None,
            dead_letter_queue: None,
            fifo: false,
        }
    }
}

/// A queue's counts, for the operator CLI.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Ready to receive.
    pub visible: u64,
    /// Received and not yet deleted or visible again.
    pub in_flight: u64,
    /// Sent with a delay that has not passed.
    pub delayed: u64,
    /// When the oldest message was sent.
    pub oldest_sent_at: Option<DateTime<Utc>>,
}

/// [`Queue`] on the embedded database.
#[derive(Clone)]
pub struct EmbeddedQueue {
    db: EmbeddedDb,
    clock: SharedClock,
    sent: Arc<Notify>,
}

impl std::fmt::Debug for EmbeddedQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedQueue").finish_non_exhaustive()
    }
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn to_time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl EmbeddedQueue {
    /// Queues on `db`, timed by `clock`.
    pub fn new(db: EmbeddedDb, clock: SharedClock) -> Self {
        Self { db, clock, sent: Arc::new(Notify::new()) }
    }

    /// Waits until a message is sent to any queue through this process's queue, or `at_most`:
    /// a worker idle between polls wakes on an enqueue in its own process at once (another
    /// process's enqueue is seen at its next poll). SQLite has no LISTEN/NOTIFY to do better.
    pub async fn wait_for_send(&self, at_most: Duration) {
        let _ = tokio::time::timeout(at_most, self.sent.notified()).await;
    }

    /// Creates `name` or updates its settings.
    ///
    /// # Errors
    /// `Invalid` for a visibility timeout over SQS's 12 hours; else if the database fails.
    pub fn create_queue(&self, name: &str, config: QueueConfig) -> PortResult {
        if config.visibility_timeout > MAX_VISIBILITY {
            return Err(PortError::Invalid(format!(
                "visibility timeout of {:?} is over SQS's limit of {}s",
                config.visibility_timeout,
                MAX_VISIBILITY.as_secs()
            )));
        }
        let conn = self.db.lock();
        conn.execute(
            "INSERT INTO queues (name, visibility_timeout_ms, max_receive_count, dead_letter_queue, fifo)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (name) DO UPDATE SET visibility_timeout_ms = excluded.visibility_timeout_ms,
                 max_receive_count = excluded.max_receive_count, dead_letter_queue = excluded.dead_letter_queue,
                 fifo = excluded.fifo",
            params![
                name,
                duration_ms(config.visibility_timeout),
                config.max_receive_count,
                config.dead_letter_queue,
                config.fifo
            ],
        )
        .map_err(sql_error("create queue"))?;
        Ok(())
    }

    /// The names of all queues.
    ///
    /// # Errors
    /// If the database fails.
    pub fn queue_names(&self) -> PortResult<Vec<String>> {
        let conn = self.db.lock();
        let mut stmt = conn.prepare("SELECT name FROM queues ORDER BY name").map_err(sql_error("queues"))?;
        let names = stmt.query_map([], |row| row.get(0)).map_err(sql_error("queues"))?;
        names.collect::<Result<_, _>>().map_err(sql_error("queues"))
    }

    /// Counts of `queue`.
    ///
    /// # Errors
    /// If the database fails.
    pub fn stats(&self, queue: &str) -> PortResult<QueueStats> {
        let now = ms(self.clock.now());
        let conn = self.db.lock();
        conn.query_row(
            "SELECT
                COALESCE(SUM(visible_at_ms <= ?2), 0),
                COALESCE(SUM(visible_at_ms > ?2 AND receipt IS NOT NULL), 0),
                COALESCE(SUM(visible_at_ms > ?2 AND receipt IS NULL), 0),
                MIN(sent_at_ms)
             FROM messages WHERE queue = ?1",
            params![queue, now],
            |row| {
                Ok(QueueStats {
                    visible: row.get::<_, i64>(0)?.unsigned_abs(),
                    in_flight: row.get::<_, i64>(1)?.unsigned_abs(),
                    delayed: row.get::<_, i64>(2)?.unsigned_abs(),
                    oldest_sent_at: row.get::<_, Option<i64>>(3)?.map(to_time),
                })
            },
        )
        .map_err(sql_error("stats"))
    }

    /// Lists up to `limit` messages of `queue` without receiving them (all states, oldest first).
    ///
    /// # Errors
    /// If the database fails.
    pub fn peek(&self, queue: &str, limit: usize) -> PortResult<Vec<ReceivedMessage>> {
        let conn = self.db.lock();
        let mut stmt = conn
            .prepare(
                "SELECT id, body, attributes, receive_count, sent_at_ms, group_id FROM messages
                 WHERE queue = ?1 ORDER BY seq LIMIT ?2",
            )
            .map_err(sql_error("peek"))?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt
            .query_map(params![queue, limit], |row| {
                Ok(ReceivedMessage {
                    message_id: row.get(0)?,
                    receipt_handle: String::new(),
                    body: row.get(1)?,
                    attributes: serde_json::from_str(&row.get::<_, String>(2)?).unwrap_or_default(),
                    receive_count: row.get(3)?,
                    sent_at: Some(to_time(row.get(4)?)),
                    group_id: row.get(5)?,
                    aws_trace_header: None,
                    unreadable_attributes: Vec::new(),
                })
            })
            .map_err(sql_error("peek"))?;
        rows.collect::<Result<_, _>>().map_err(sql_error("peek"))
    }

    /// When the next message of `queue` becomes visible, if any is waiting (in flight or delayed).
    ///
    /// # Errors
    /// If the database fails.
    pub fn next_visible_at(&self, queue: &str) -> PortResult<Option<DateTime<Utc>>> {
        let conn = self.db.lock();
        let next: Option<i64> = conn
            .query_row("SELECT MIN(visible_at_ms) FROM messages WHERE queue = ?1", params![queue], |row| {
                row.get(0)
            })
            .map_err(sql_error("next visible"))?;
        Ok(next.map(to_time))
    }

    /// Deletes every message of `queue`; returns how many.
    ///
    /// # Errors
    /// If the database fails.
    pub fn purge(&self, queue: &str) -> PortResult<u64> {
        let conn = self.db.lock();
        let n = conn
            .execute("DELETE FROM messages WHERE queue = ?1", params![queue])
            .map_err(sql_error("purge"))?;
        Ok(n as u64)
    }

    fn config(tx: &Transaction<'_>, queue: &str) -> PortResult<QueueConfig> {
        tx.prepare_cached(
            "SELECT visibility_timeout_ms, max_receive_count, dead_letter_queue, fifo FROM queues WHERE name = ?1",
        )
        .and_then(|mut stmt| {
            stmt.query_row(params![queue], |row| {
                Ok(QueueConfig {
                    visibility_timeout: Duration::from_millis(row.get::<_, i64>(0)?.unsigned_abs()),
                    max_receive_count: row.get(1)?,
                    dead_letter_queue: row.get(2)?,
                    fifo: row.get(3)?,
                })
            })
        })
        .optional()
        .map_err(sql_error("queue config"))?
        .ok_or_else(|| PortError::NotFound(format!("queue {queue} does not exist")))
    }

    fn insert(tx: &Transaction<'_>, queue: &str, message: &OutgoingMessage, now: i64) -> PortResult<String> {
        limits::check_message(message)?;
        let config = Self::config(tx, queue)?;
        if config.fifo
            && let Some(dedup) = &message.dedup_id
        {
            let existing: Option<String> = tx
                .query_row(
                    "SELECT message_id FROM dedup WHERE queue = ?1 AND dedup_id = ?2 AND expires_at_ms > ?3",
                    params![queue, dedup, now],
                    |row| row.get(0),
                )
                .optional()
                .map_err(sql_error("dedup"))?;
            if let Some(id) = existing {
                return Ok(id);
            }
        }
        // Time-ordered (UUIDv7), as receipts below: their unique indexes then grow at one end
        // instead of taking a write on a random page per message.
        let id = uuid::Uuid::now_v7().to_string();
        let attributes = serde_json::to_string(&message.attributes).unwrap_or_else(|_| "{}".to_owned());
        let visible_at = now + i64::from(message.delay_seconds) * 1000;
        tx.prepare_cached(
            "INSERT INTO messages (id, queue, body, attributes, group_id, dedup_id, sent_at_ms, visible_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .and_then(|mut stmt| {
            stmt.execute(params![id, queue, message.body, attributes, message.group_id, message.dedup_id, now, visible_at])
        })
        .map_err(sql_error("send"))?;
        if let (true, Some(dedup)) = (config.fifo, &message.dedup_id) {
            tx.execute(
                "INSERT OR REPLACE INTO dedup (queue, dedup_id, message_id, expires_at_ms) VALUES (?1, ?2, ?3, ?4)",
                params![queue, dedup, id, now + DEDUP_WINDOW_MS],
            )
            .map_err(sql_error("dedup"))?;
        }
        Ok(id)
    }

    fn receive_now(&self, queue: &str, max: usize) -> PortResult<Vec<ReceivedMessage>> {
        let now = ms(self.clock.now());
        let mut conn = self.db.lock();
        let tx = conn.transaction().map_err(sql_error("receive"))?;
        let config = Self::config(&tx, queue)?;
        let candidates = Self::candidates(&tx, queue, now, config.fifo)?;
        let mut received = Vec::new();
        for (seq, receive_count) in candidates {
            if received.len() >= max {
                break;
            }
            if let (Some(limit), Some(dlq)) = (config.max_receive_count, &config.dead_letter_queue)
                && receive_count >= limit
            {
                // SQS's redrive: the receive that would pass the limit moves it instead.
                tx.execute(
                    "UPDATE messages SET queue = ?1, receipt = NULL, received_at_ms = NULL, receive_count = 0,
                         visible_at_ms = ?2
                     WHERE seq = ?3",
                    params![dlq, now, seq],
                )
                .map_err(sql_error("redrive"))?;
                continue;
            }
            received.push(Self::take(&tx, seq, now, now + duration_ms(config.visibility_timeout))?);
        }
        tx.commit().map_err(sql_error("receive"))?;
        Ok(received)
    }

    /// Visible messages in order; on FIFO queues none of a group with a message in flight.
    fn candidates(tx: &Transaction<'_>, queue: &str, now: i64, fifo: bool) -> PortResult<Vec<(i64, u32)>> {
        let sql = if fifo {
            "SELECT seq, receive_count FROM messages m WHERE queue = ?1 AND visible_at_ms <= ?2
               AND NOT EXISTS (SELECT 1 FROM messages o WHERE o.queue = m.queue AND o.group_id IS m.group_id
                               AND o.receipt IS NOT NULL AND o.visible_at_ms > ?2)
             ORDER BY seq LIMIT 100"
        } else {
            // Earliest visible first, in the index's own order: `ORDER BY seq` alone made SQLite
            // sort every visible message on each receive (2 ms a receive at 10,000 queued).
            "SELECT seq, receive_count FROM messages WHERE queue = ?1 AND visible_at_ms <= ?2
             ORDER BY visible_at_ms, seq LIMIT 100"
        };
        let mut stmt = tx.prepare_cached(sql).map_err(sql_error("receive"))?;
        let rows = stmt
            .query_map(params![queue, now], |row| Ok((row.get(0)?, row.get(1)?)))
            .map_err(sql_error("receive"))?;
        rows.collect::<Result<_, _>>().map_err(sql_error("receive"))
    }

    /// Receives message `seq` at `now`: a new receipt, whose receive time bounds the visibility.
    fn take(tx: &Transaction<'_>, seq: i64, now: i64, invisible_until: i64) -> PortResult<ReceivedMessage> {
        let receipt = uuid::Uuid::now_v7().to_string();
        let mut stmt = tx
            .prepare_cached(
                "UPDATE messages SET receive_count = receive_count + 1, receipt = ?1, received_at_ms = ?2,
                     visible_at_ms = ?3
                 WHERE seq = ?4
                 RETURNING id, body, attributes, receive_count, sent_at_ms, group_id",
            )
            .map_err(sql_error("receive"))?;
        stmt.query_row(params![receipt, now, invisible_until, seq], |row| {
            let attributes: BTreeMap<String, String> =
                serde_json::from_str(&row.get::<_, String>(2)?).unwrap_or_default();
            Ok(ReceivedMessage {
                message_id: row.get(0)?,
                receipt_handle: receipt.clone(),
                body: row.get(1)?,
                attributes,
                receive_count: row.get(3)?,
                sent_at: Some(to_time(row.get(4)?)),
                group_id: row.get(5)?,
                unreadable_attributes: Vec::new(),
                aws_trace_header: None,
            })
        })
        .map_err(sql_error("receive"))
    }
}

#[async_trait]
impl Queue for EmbeddedQueue {
    async fn send(&self, queue: &str, message: OutgoingMessage) -> PortResult<String> {
        let now = ms(self.clock.now());
        let id = {
            let mut conn = self.db.lock();
            let tx = conn.transaction().map_err(sql_error("send"))?;
            let id = Self::insert(&tx, queue, &message, now)?;
            tx.commit().map_err(sql_error("send"))?;
            id
        };
        self.sent.notify_waiters();
        Ok(id)
    }

    /// In requests of ten, as the SQS adapter sends them: a message over a limit fails alone, as
    /// in SQS's answer to `SendMessageBatch`; a request whose messages add up to more than SQS
    /// takes is refused whole, after the requests before it were sent.
    async fn send_batch(
        &self,
        queue: &str,
        messages: Vec<OutgoingMessage>,
    ) -> PortResult<Vec<PortResult<String>>> {
        let now = ms(self.clock.now());
        let (results, refused) = {
            let mut conn = self.db.lock();
            let tx = conn.transaction().map_err(sql_error("send"))?;
            let mut results = Vec::with_capacity(messages.len());
            let mut refused = None;
            for request in messages.chunks(MAX_BATCH_ENTRIES) {
                if let Err(e) = limits::check_batch(request) {
                    refused = Some(e);
                    break;
                }
                results.extend(request.iter().map(|m| Self::insert(&tx, queue, m, now)));
            }
            tx.commit().map_err(sql_error("send"))?;
            (results, refused)
        };
        self.sent.notify_waiters();
        match refused {
            Some(e) => Err(e.into()),
            None => Ok(results),
        }
    }

    async fn receive(&self, queue: &str, max: usize, wait: Duration) -> PortResult<Vec<ReceivedMessage>> {
        let notified = self.sent.notified();
        let received = self.receive_now(queue, max)?;
        if !received.is_empty() || wait.is_zero() {
            return Ok(received);
        }
        // Long poll: wake on the next send, or give up after `wait`.
        let _ = tokio::time::timeout(wait, notified).await;
        self.receive_now(queue, max)
    }

    async fn delete(&self, queue: &str, receipt_handle: &str) -> PortResult {
        let conn = self.db.lock();
        conn.prepare_cached("DELETE FROM messages WHERE queue = ?1 AND receipt = ?2")
            .and_then(|mut stmt| stmt.execute(params![queue, receipt_handle]))
            .map_err(sql_error("delete"))?;
        Ok(())
    }

    /// One transaction for the whole batch: a commit per message would cost more than the
    /// no-op jobs it acknowledges (BENCHMARKS.md).
    async fn delete_batch(&self, queue: &str, receipt_handles: &[String]) -> PortResult {
        let mut conn = self.db.lock();
        let tx = conn.transaction().map_err(sql_error("delete batch"))?;
        {
            let mut stmt = tx
                .prepare_cached("DELETE FROM messages WHERE queue = ?1 AND receipt = ?2")
                .map_err(sql_error("delete batch"))?;
            for handle in receipt_handles {
                stmt.execute(params![queue, handle]).map_err(sql_error("delete batch"))?;
            }
        }
        tx.commit().map_err(sql_error("delete batch"))?;
        Ok(())
    }

    /// SQS counts the 12 hours from the receive of `receipt_handle`, not from now.
    async fn change_visibility(&self, queue: &str, receipt_handle: &str, timeout: Duration) -> PortResult {
        let now = ms(self.clock.now());
        let conn = self.db.lock();
        let received_at: Option<Option<i64>> = conn
            .prepare_cached("SELECT received_at_ms FROM messages WHERE queue = ?1 AND receipt = ?2")
            .and_then(|mut stmt| stmt.query_row(params![queue, receipt_handle], |row| row.get(0)).optional())
            .map_err(sql_error("change visibility"))?;
        let Some(received_at) = received_at else {
            return Err(PortError::Invalid("receipt handle is no longer valid".to_owned()));
        };
        let since_receive =
            Duration::from_millis(now.saturating_sub(received_at.unwrap_or(now)).max(0).unsigned_abs());
        limits::check_visibility(since_receive, timeout)?;
        conn.prepare_cached("UPDATE messages SET visible_at_ms = ?1 WHERE queue = ?2 AND receipt = ?3")
            .and_then(|mut stmt| stmt.execute(params![now + duration_ms(timeout), queue, receipt_handle]))
            .map_err(sql_error("change visibility"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};

    fn setup(config: QueueConfig) -> (EmbeddedQueue, ManualClock) {
        let clock = ManualClock::default();
        let q = EmbeddedQueue::new(EmbeddedDb::in_memory().unwrap(), Arc::new(clock.clone()));
        q.create_queue("dlq", QueueConfig::default()).unwrap();
        q.create_queue("q", config).unwrap();
        (q, clock)
    }

    fn body(b: &str) -> OutgoingMessage {
        OutgoingMessage { body: b.to_owned(), ..Default::default() }
    }

    #[tokio::test]
    async fn visibility_timeout_hides_then_shows_again_with_a_higher_receive_count() {
        let (q, clock) = setup(QueueConfig::default());
        q.send("q", body("a")).await.unwrap();
        let first = q.receive("q", 10, Duration::ZERO).await.unwrap();
        assert_eq!(first[0].receive_count, 1);
        assert!(q.receive("q", 10, Duration::ZERO).await.unwrap().is_empty());
        clock.advance(chrono::Duration::seconds(30));
        let second = q.receive("q", 10, Duration::ZERO).await.unwrap();
        assert_eq!(second[0].receive_count, 2);
        assert!(
            q.change_visibility("q", &first[0].receipt_handle, Duration::ZERO).await.is_err(),
            "stale receipt"
        );
        q.change_visibility("q", &second[0].receipt_handle, Duration::ZERO).await.unwrap();
        let third = q.receive("q", 10, Duration::ZERO).await.unwrap();
        q.delete("q", &third[0].receipt_handle).await.unwrap();
        clock.advance(chrono::Duration::hours(1));
        assert!(q.receive("q", 10, Duration::ZERO).await.unwrap().is_empty(), "deleted");
    }

    #[tokio::test]
    async fn a_batch_delete_removes_exactly_the_received_messages_it_names() {
        let (q, clock) = setup(QueueConfig::default());
        for b in ["a", "b", "c"] {
            q.send("q", body(b)).await.unwrap();
        }
        let received = q.receive("q", 2, Duration::ZERO).await.unwrap();
        let handles: Vec<String> = received.iter().map(|m| m.receipt_handle.clone()).collect();
        q.delete_batch("q", &handles).await.unwrap();
        clock.advance(chrono::Duration::hours(1));
        let left = q.receive("q", 10, Duration::ZERO).await.unwrap();
        assert_eq!(left.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(), ["c"]);
        q.delete_batch("q", &[]).await.unwrap();
    }

    #[tokio::test]
    async fn after_max_receives_the_next_receive_moves_it_to_the_dlq() {
        let config = QueueConfig {
            max_receive_count: Some(2),
            dead_letter_queue: Some("dlq".into()),
            ..QueueConfig::default()
        };
        let (q, clock) = setup(config);
        let mut m = body("poison");
        m.attributes.insert("job".into(), "x".into());
        q.send("q", m).await.unwrap();
        for _ in 0..2 {
            assert_eq!(q.receive("q", 10, Duration::ZERO).await.unwrap().len(), 1);
            clock.advance(chrono::Duration::seconds(30));
        }
        assert!(q.receive("q", 10, Duration::ZERO).await.unwrap().is_empty());
        let dead = q.peek("dlq", 10).unwrap();
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].body, "poison");
        assert_eq!(dead[0].attributes["job"], "x");
        assert!(q.peek("q", 10).unwrap().is_empty());
    }

    #[tokio::test]
    async fn delays_hide_until_the_clock_passes_them() {
        let (q, clock) = setup(QueueConfig::default());
        q.send("q", OutgoingMessage { delay_seconds: 60, ..body("later") }).await.unwrap();
        assert_eq!(q.stats("q").unwrap().delayed, 1);
        clock.advance(chrono::Duration::seconds(59));
        assert!(q.receive("q", 10, Duration::ZERO).await.unwrap().is_empty());
        assert_eq!(q.next_visible_at("q").unwrap(), Some(clock.now() + chrono::Duration::seconds(1)));
        clock.advance(chrono::Duration::seconds(1));
        assert_eq!(q.receive("q", 10, Duration::ZERO).await.unwrap().len(), 1);
        assert!(q.send("q", OutgoingMessage { delay_seconds: 901, ..body("x") }).await.is_err());
    }

    #[tokio::test]
    async fn fifo_deduplicates_and_holds_a_group_while_one_is_in_flight() {
        let (q, _clock) = setup(QueueConfig { fifo: true, ..QueueConfig::default() });
        let m = |b: &str, d: &str| OutgoingMessage {
            group_id: Some("g".into()),
            dedup_id: Some(d.into()),
            ..body(b)
        };
        let first = q.send("q", m("1", "d1")).await.unwrap();
        assert_eq!(q.send("q", m("1", "d1")).await.unwrap(), first, "deduplicated");
        q.send("q", m("2", "d2")).await.unwrap();
        let got = q.receive("q", 1, Duration::ZERO).await.unwrap();
        assert_eq!(got[0].body, "1");
        assert!(q.receive("q", 10, Duration::ZERO).await.unwrap().is_empty(), "group held");
        q.delete("q", &got[0].receipt_handle).await.unwrap();
        assert_eq!(q.receive("q", 10, Duration::ZERO).await.unwrap()[0].body, "2");
    }

    #[tokio::test]
    async fn long_poll_wakes_on_a_send() {
        let (q, _clock) = setup(QueueConfig::default());
        let sender = q.clone();
        let (got, _) = tokio::join!(q.receive("q", 10, Duration::from_secs(5)), async move {
            tokio::task::yield_now().await;
            sender.send("q", body("hi")).await.unwrap();
        });
        assert_eq!(got.unwrap().len(), 1);
    }

    fn with_attributes(body: &str, count: usize) -> OutgoingMessage {
        OutgoingMessage {
            body: body.to_owned(),
            attributes: (0..count).map(|i| (format!("a{i}"), "v".to_owned())).collect(),
            ..OutgoingMessage::default()
        }
    }

    /// A body that makes the message exactly `bytes` long as SQS counts it, with `attributes`.
    fn sized(bytes: usize, attributes: &[(&str, &str)]) -> OutgoingMessage {
        let attributes: BTreeMap<String, String> =
            attributes.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        let overhead: usize = attributes.iter().map(|(k, v)| k.len() + "String".len() + v.len()).sum();
        OutgoingMessage { body: "x".repeat(bytes - overhead), attributes, ..OutgoingMessage::default() }
    }

    fn invalid_naming<T: std::fmt::Debug>(result: &PortResult<T>, limit: &str) {
        match result {
            Err(PortError::Invalid(text)) => assert!(text.contains(limit), "{text}"),
            other => panic!("expected an invalid request naming {limit}, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn send_takes_ten_attributes_and_refuses_eleven_as_sqs_does() {
        let (q, _clock) = setup(QueueConfig::default());
        q.send("q", with_attributes("{}", 10)).await.unwrap();
        invalid_naming(&q.send("q", with_attributes("{}", 11)).await, "limit of 10");
        assert_eq!(q.peek("q", 10).unwrap().len(), 1, "the refused message is not queued");
    }

    #[tokio::test]
    async fn send_takes_one_mib_with_the_attributes_counted_and_refuses_a_byte_more() {
        let (q, _clock) = setup(QueueConfig::default());
        let attributes = [("job", "store_sync"), ("job_id", "j-1")];
        q.send("q", sized(1_048_576, &attributes)).await.unwrap();
        invalid_naming(&q.send("q", sized(1_048_577, &attributes)).await, "limit of 1048576");
        // The body alone is under the limit: the attributes' names, types and values tip it over.
        let tipped = sized(1_048_577, &[("job", "x")]);
        assert!(tipped.body.len() < 1_048_576);
        invalid_naming(&q.send("q", tipped).await, "limit of 1048576");
        assert_eq!(q.peek("q", 10).unwrap().len(), 1);
    }

    #[tokio::test]
    async fn send_takes_a_900_second_delay_and_refuses_901() {
        let (q, _clock) = setup(QueueConfig::default());
        q.send("q", OutgoingMessage { delay_seconds: 900, ..body("a") }).await.unwrap();
        invalid_naming(
            &q.send("q", OutgoingMessage { delay_seconds: 901, ..body("b") }).await,
            "limit of 900s",
        );
    }

    #[tokio::test]
    async fn a_batch_entry_over_a_limit_fails_alone_and_the_others_are_sent() {
        let (q, _clock) = setup(QueueConfig::default());
        let results = q
            .send_batch(
                "q",
                vec![
                    body("first"),
                    with_attributes("eleven", 11),
                    OutgoingMessage { delay_seconds: 901, ..body("late") },
                    with_attributes("ten", 10),
                ],
            )
            .await
            .unwrap();
        assert!(results[0].is_ok() && results[3].is_ok(), "{results:?}");
        invalid_naming(&results[1], "limit of 10");
        invalid_naming(&results[2], "limit of 900s");
        let queued: Vec<String> = q.peek("q", 10).unwrap().into_iter().map(|m| m.body).collect();
        assert_eq!(queued, ["first", "ten"]);
    }

    #[tokio::test]
    async fn a_batch_of_ten_over_one_mib_in_all_is_refused_whole_as_sqs_does() {
        let (q, _clock) = setup(QueueConfig::default());
        let tenth = 1_048_576 / 10;
        let at_limit: Vec<_> =
            (0..10).map(|i| sized(if i == 0 { 1_048_576 - 9 * tenth } else { tenth }, &[])).collect();
        assert!(q.send_batch("q", at_limit).await.unwrap().iter().all(Result::is_ok));
        assert_eq!(q.purge("q").unwrap(), 10);

        // Each message is well under the limit; the ten of one request add up to a byte over it.
        let over: Vec<_> =
            (0..10).map(|i| sized(if i == 0 { 1_048_577 - 9 * tenth } else { tenth }, &[])).collect();
        invalid_naming(&q.send_batch("q", over).await, "limit of 1048576");
        assert!(q.peek("q", 10).unwrap().is_empty(), "nothing of the refused request is queued");
    }

    #[tokio::test]
    async fn a_batch_is_counted_per_request_of_ten_as_the_sqs_adapter_sends_it() {
        let (q, _clock) = setup(QueueConfig::default());
        // Twelve messages of 100 KB: 1.2 MB in all, but 1,000,000 and 200,000 bytes per request.
        let messages: Vec<_> = (0..12).map(|_| sized(100_000, &[])).collect();
        let results = q.send_batch("q", messages).await.unwrap();
        assert_eq!(results.len(), 12);
        assert!(results.iter().all(Result::is_ok));
        // A refused second request leaves the first one sent, as with SQS.
        let mut messages: Vec<_> = (0..10).map(|_| body("small")).collect();
        messages.extend((0..2).map(|_| sized(600_000, &[])));
        invalid_naming(&q.send_batch("q", messages).await, "limit of 1048576");
        assert_eq!(q.stats("q").unwrap().visible, 22);
    }

    #[tokio::test]
    async fn visibility_ends_at_most_twelve_hours_after_the_receive_not_after_now() {
        let (q, clock) = setup(QueueConfig::default());
        q.send("q", body("a")).await.unwrap();
        let got = q.receive("q", 1, Duration::ZERO).await.unwrap();
        let receipt = &got[0].receipt_handle;
        let hour = Duration::from_secs(3600);
        q.change_visibility("q", receipt, 12 * hour).await.unwrap();

        clock.advance(chrono::Duration::hours(1));
        // Twelve hours from now is thirteen from the receive.
        invalid_naming(&q.change_visibility("q", receipt, 12 * hour).await, "limit of 43200s");
        invalid_naming(
            &q.change_visibility("q", receipt, 11 * hour + Duration::from_secs(1)).await,
            "43200s",
        );
        q.change_visibility("q", receipt, 11 * hour).await.unwrap();
        assert_eq!(q.next_visible_at("q").unwrap(), Some(clock.now() + chrono::Duration::hours(11)));

        // The next receive starts a new twelve hours.
        clock.advance(chrono::Duration::hours(11));
        let again = q.receive("q", 1, Duration::ZERO).await.unwrap();
        q.change_visibility("q", &again[0].receipt_handle, 12 * hour).await.unwrap();
        invalid_naming(&q.change_visibility("q", receipt, Duration::ZERO).await, "no longer valid");
    }

    #[tokio::test]
    async fn a_queue_s_visibility_timeout_is_at_most_twelve_hours() {
        let (q, _clock) = setup(QueueConfig::default());
        let at = QueueConfig { visibility_timeout: Duration::from_secs(43_200), ..QueueConfig::default() };
        q.create_queue("slow", at).unwrap();
        let over = QueueConfig { visibility_timeout: Duration::from_secs(43_201), ..QueueConfig::default() };
        invalid_naming(&q.create_queue("slower", over), "43200s");
    }

    #[tokio::test]
    async fn a_file_from_before_receive_times_opens_and_its_messages_in_flight_count_from_now() {
        let path = std::env::temp_dir().join(format!("jobkit-{}.sqlite", uuid::Uuid::new_v4()));
        {
            let old = rusqlite::Connection::open(&path).unwrap();
            old.execute_batch(
                "CREATE TABLE queues (name TEXT PRIMARY KEY, visibility_timeout_ms INTEGER NOT NULL,
                     max_receive_count INTEGER, dead_letter_queue TEXT, fifo INTEGER NOT NULL DEFAULT 0);
                 CREATE TABLE messages (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,
                     queue TEXT NOT NULL, body TEXT NOT NULL, attributes TEXT NOT NULL, group_id TEXT,
                     dedup_id TEXT, sent_at_ms INTEGER NOT NULL, visible_at_ms INTEGER NOT NULL,
                     receive_count INTEGER NOT NULL DEFAULT 0, receipt TEXT);
                 INSERT INTO queues VALUES ('q', 30000, NULL, NULL, 0);
                 INSERT INTO messages (id, queue, body, attributes, sent_at_ms, visible_at_ms, receive_count, receipt)
                     VALUES ('m', 'q', 'old', '{}', 0, 30000, 1, 'r');",
            )
            .unwrap();
        }
        let clock = ManualClock::default();
        let q = EmbeddedQueue::new(EmbeddedDb::open(&path).unwrap(), Arc::new(clock.clone()));
        q.change_visibility("q", "r", MAX_VISIBILITY).await.unwrap();
        clock.advance(chrono::Duration::seconds(1));
        assert!(q.change_visibility("q", "r", MAX_VISIBILITY).await.is_ok(), "no receive time: from now");
        q.send("q", body("new")).await.unwrap();
        assert_eq!(q.receive("q", 10, Duration::ZERO).await.unwrap()[0].body, "new");
        drop(q);
        std::fs::remove_file(&path).ok();
    }

    #[tokio::test]
    async fn unknown_queues_are_not_found() {
        let (q, _clock) = setup(QueueConfig::default());
        assert!(matches!(q.send("nope", body("x")).await, Err(PortError::NotFound(_))));
    }
}
