//! Embedded adapters of the ports on SQLite: a file, or `:memory:` in tests.
//!
//! They keep SQS's semantics (visibility timeout, receive count, redrive after
//! `max_receive_count`, delays, FIFO groups) so that `jobctl dev` and the tests behave as AWS does.

mod group_commit;
mod mailbox;
mod sqlite_db;
mod sqlite_queue;
mod sqlite_store;

pub use mailbox::{InMemoryMailer, OutboxMailer};
pub use sqlite_db::EmbeddedDb;
pub use sqlite_queue::{EmbeddedQueue, QueueConfig, QueueStats};
pub use sqlite_store::EmbeddedStore;
