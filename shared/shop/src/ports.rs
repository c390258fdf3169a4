//! The shop's ports: where stores, the catalog, customers, carts and the history live, where
//! credentials come from and how texts go out. Each has an embedded adapter (`embedded`: SQLite;
//! `sms_outbox`) and an AWS one (`aws`: DynamoDB, Secrets Manager, SNS).
//!
//! Invariants: a repository fails with [`RepoError::Unavailable`] (the job retries) or
//! [`RepoError::Corrupt`] (a retry would read the same record: the job goes to the DLQ); writes
//! are keyed so that a job delivered twice writes once (upserts by id, history entries by (kind,
//! id), a cart abandoned only while still active).

use async_trait::async_trait;

use chrono::{DateTime, Utc};

use crate::{
    cart::{Cart, StockRelease},
    catalog::Product,
    customer::Customer,
    history::{HistoryEntry, RecordKind},
    ids::{CartId, CustomerId, ProductId, StoreId},
    phone::PhoneNumber,
    secret::Secret,
    sms::SmsText,
    store::Plan,
    store::{Store, SyncState},
};

/// A repository or credential store failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RepoError {
    /// The backing store could not be reached or failed; try again later.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// A stored record could not be read.
    #[error("corrupt record: {0}")]
    Corrupt(String),
}

impl From<RepoError> for jobkit::JobError {
    fn from(e: RepoError) -> Self {
        match e {
            RepoError::Unavailable(_) => {
                jobkit::JobError::retryable(jobkit::ErrorKind::UNAVAILABLE, e.to_string())
            }
            RepoError::Corrupt(_) => {
                jobkit::JobError::permanent(jobkit::ErrorKind::CORRUPT_RECORD, e.to_string())
            }
        }
    }
}

/// The repository result.
pub type RepoResult<T = ()> = Result<T, RepoError>;

/// Stores and their sync state.
#[async_trait]
pub trait StoreRepository: Send + Sync + std::fmt::Debug {
    /// The store, if it exists.
    async fn get(&self, id: &StoreId) -> RepoResult<Option<Store>>;
    /// Creates or replaces a store.
    async fn put(&self, store: &Store) -> RepoResult;
    /// Records a store's sync state.
    async fn set_sync_state(&self, id: &StoreId, state: &SyncState) -> RepoResult;
    /// Every store the recurring sync includes, by id, with its plan (it picks the sync's lane).
    async fn syncable(&self) -> RepoResult<Vec<(StoreId, Plan)>>;
}

/// The catalog.
#[async_trait]
pub trait CatalogRepository: Send + Sync + std::fmt::Debug {
    /// Inserts or replaces products by (store, product id); returns how many were written.
    async fn upsert_products(&self, products: &[Product]) -> RepoResult<usize>;
    /// How many products a store has.
    async fn count_products(&self, store: &StoreId) -> RepoResult<u64>;
    /// One product, if the store has it.
    async fn get_product(&self, store: &StoreId, id: &ProductId) -> RepoResult<Option<Product>>;
}

/// Customer profiles.
#[async_trait]
pub trait CustomerRepository: Send + Sync + std::fmt::Debug {
    /// Inserts or replaces profiles by (store, customer id); returns how many were written.
    async fn upsert_customers(&self, customers: &[Customer]) -> RepoResult<usize>;
    /// One profile.
    async fn get_customer(&self, store: &StoreId, id: &CustomerId) -> RepoResult<Option<Customer>>;
}

/// Carts and the stock they hold.
#[async_trait]
pub trait CartRepository: Send + Sync + std::fmt::Debug {
    /// Active carts whose last activity is at or before `idle_since`, oldest first, at most `limit`.
    async fn idle_active(&self, idle_since: DateTime<Utc>, limit: usize) -> RepoResult<Vec<Cart>>;
    /// In one atomic write: marks the cart abandoned if it is still active, and gives its stock
    /// back. Returns `false` (and changes nothing) when someone else got there first, so stock is
    /// released exactly once.
    async fn abandon(&self, cart: &CartId, releases: &[StockRelease]) -> RepoResult<bool>;
    /// Ids of carts whose session expired at or before `now`, at most `limit`.
    async fn expired(&self, now: DateTime<Utc>, limit: usize) -> RepoResult<Vec<CartId>>;
    /// Deletes carts; returns how many were there.
    async fn delete(&self, carts: &[CartId]) -> RepoResult<usize>;
}

/// Sends SMS (SNS in AWS, an outbox folder locally).
#[async_trait]
pub trait SmsSender: Send + Sync + std::fmt::Debug {
    /// Whether the number asked not to receive texts.
    async fn opted_out(&self, phone: &PhoneNumber) -> Result<bool, jobkit::IntegrationError>;
    /// Sends `text`; returns the provider's message id.
    async fn send(&self, phone: &PhoneNumber, text: &SmsText) -> Result<String, jobkit::IntegrationError>;
}

/// Per-store API credentials (Secrets Manager in AWS), cached by the adapter, never logged.
#[async_trait]
pub trait Credentials: Send + Sync + std::fmt::Debug {
    /// The store's Shopify Admin API token, or `None` when it has none (uninstalled).
    async fn shopify_token(&self, store: &StoreId) -> RepoResult<Option<Secret>>;
    /// The store's Square (POS) access token, or `None` when it has none.
    async fn square_token(&self, store: &StoreId) -> RepoResult<Option<Secret>>;
}

/// The history: sync runs, audit entries and temporary records, each kind purged after its
/// retention by `clean_database`.
#[async_trait]
pub trait History: Send + Sync + std::fmt::Debug {
    /// Records an entry; an entry with the same (kind, id) is replaced, so a redelivered job
    /// leaves one record.
    async fn append(&self, entry: &HistoryEntry) -> RepoResult;
    /// Deletes up to `limit` entries of `kind` that happened before `cutoff`, oldest first;
    /// returns how many it deleted (fewer than `limit` means none are left).
    async fn purge_before(&self, kind: RecordKind, cutoff: DateTime<Utc>, limit: usize) -> RepoResult<usize>;
    /// Entries of `kind`, newest first, at most `limit`.
    async fn recent(&self, kind: RecordKind, limit: usize) -> RepoResult<Vec<HistoryEntry>>;
}
