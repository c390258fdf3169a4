//! The shop's ports: where stores, the catalog, customers, carts and the history live, where
//! credentials come from and how texts go out. Each has an embedded adapter (`embedded`: SQLite;
//! `sms_outbox`) and an AWS one (`aws`: DynamoDB, Secrets Manager, SNS).
//!
//! Invariants: a repository fails with [`RepoError::Throttled`] or [`RepoError::Unavailable`]
//! (the job retries), or with [`RepoError::Rejected`] (the backing store refused the request:
//! a missing table, index or permission, an invalid or oversized item) or
//! [`RepoError::Corrupt`] (a retry would read the same record), which send the job to the DLQ
//! at its first failure; writes are keyed so that a job delivered twice writes once (upserts by
//! id, history entries by (kind, id), a cart abandoned only while still active). A record that
//! cannot be processed as it stands (it does not read, or the store cannot take the write it
//! needs) is named by its id ([`jobkit::SetAside`], [`RepoError::Unprocessable`]) rather than
//! failing the whole read or walk, so the service can set it aside and go on.

use async_trait::async_trait;

use chrono::{DateTime, Utc};
use jobkit::SetAside;

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
    /// The backing store asked us to slow down (DynamoDB's throughput or request limits); try
    /// again later.
    #[error("storage throttled: {0}")]
    Throttled(String),
    /// The backing store could not be reached, failed (5xx), did not answer in time or was busy
    /// with a concurrent transaction; try again later.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// The backing store refused the request and will refuse it again: the table, index or
    /// secret does not exist, the caller lacks the permission, the request or item is invalid
    /// (an item over DynamoDB's 400 KB). Needs an operator (or a fix), not a retry.
    #[error("{service} refused {operation} on {resource}: {code}: {message}")]
    Rejected {
        /// The service (`DynamoDB`, `Secrets Manager`).
        service: &'static str,
        /// The operation (`PutItem`, `Query`, `GetSecretValue`).
        operation: String,
        /// What it was asked about: ``table `<name>` ``, ``tables `<a>` and `<b>` `` (a
        /// transaction) or ``secret `<name>` ``. Names are in backticks so that jobkit's
        /// redaction does not take a CloudFormation-generated name for a token.
        resource: String,
        /// The service's error code (`ResourceNotFoundException`, `AccessDeniedException`), or
        /// `HTTP <status>` when it gave none.
        code: String,
        /// The service's message.
        message: String,
    },
    /// A stored record could not be read (or a request to store one could not be built).
    #[error("corrupt record: {0}")]
    Corrupt(String),
    /// One record cannot be processed as it stands, and no retry will change that: the write
    /// it needs is more than the store takes at once (a cart giving stock back to more variants
    /// than one DynamoDB transaction holds). The caller sets the record aside and goes on.
    #[error("record {id} cannot be processed: {reason}")]
    Unprocessable {
        /// The record's id.
        id: String,
        /// Why.
        reason: String,
    },
}

impl RepoError {
    /// True when a later try may succeed (the job retries).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Throttled(_) | Self::Unavailable(_))
    }
}

/// Throttles retry as `throttled`, outages as `unavailable`; a refused request is permanent,
/// `not_found` when the service answered `ResourceNotFoundException` (a missing table) and
/// `invalid_input` otherwise (a missing index, an oversized item, access denied), as jobkit's
/// own AWS ports classify the same codes; a corrupt or unprocessable record is permanent
/// `corrupt_record` (a service that walks records sets such a record aside before it gets here).
/// Permanent errors go to the DLQ after one attempt under every job's policy (none retries
/// `not_found`, `invalid_input` or `corrupt_record`).
impl From<RepoError> for jobkit::JobError {
    fn from(e: RepoError) -> Self {
        use jobkit::{ErrorKind, JobError};
        let message = e.to_string();
        let error = match &e {
            RepoError::Throttled(_) => JobError::retryable(ErrorKind::THROTTLED, message),
            RepoError::Unavailable(_) => JobError::retryable(ErrorKind::UNAVAILABLE, message),
            RepoError::Rejected { code, .. } if code == "ResourceNotFoundException" => {
                JobError::permanent(ErrorKind::NOT_FOUND, message)
            }
            RepoError::Rejected { .. } => JobError::permanent(ErrorKind::INVALID_INPUT, message),
            RepoError::Corrupt(_) | RepoError::Unprocessable { .. } => {
                JobError::permanent(ErrorKind::CORRUPT_RECORD, message)
            }
        };
        error.with_source(e)
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

/// One batch of [`CatalogRepository::remove_unsynced`]: what it deleted, and where the next
/// batch starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removed {
    /// The products deleted, in id order.
    pub products: Vec<ProductId>,
    /// The next batch looks at ids after this one; `None` when every product of the store has
    /// been looked at.
    pub next: Option<ProductId>,
}

/// The catalog.
///
/// A full sync marks every product it writes with its run ([`Self::upsert_synced`]), then
/// removes the store's products it did not write ([`Self::remove_unsynced`]): those the shop
/// no longer has. A product written without a run ([`Self::upsert_products`]) carries no mark.
#[async_trait]
pub trait CatalogRepository: Send + Sync + std::fmt::Debug {
    /// Inserts or replaces products by (store, product id), unmarked; returns how many were
    /// written.
    async fn upsert_products(&self, products: &[Product]) -> RepoResult<usize>;
    /// Inserts or replaces products by (store, product id), each marked as written by the sync
    /// run `run`; returns how many were written.
    async fn upsert_synced(&self, products: &[Product], run: &str) -> RepoResult<usize>;
    /// Deletes up to `limit` of the store's products whose mark is not `run` (another run's, or
    /// none), looking at ids after `after` in id order; never another store's product.
    /// Deleting is by key, so a batch repeated after a crash deletes nothing twice.
    async fn remove_unsynced(
        &self,
        store: &StoreId,
        run: &str,
        after: Option<&ProductId>,
        limit: usize,
    ) -> RepoResult<Removed>;
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
    /// Active carts whose last activity is at or before `idle_since`, oldest first, at most
    /// `limit`: each cart that reads, or (`Err`) the id of one that does not and why, so that
    /// one unreadable cart neither fails the read nor hides the carts after it.
    async fn idle_active(
        &self,
        idle_since: DateTime<Utc>,
        limit: usize,
    ) -> RepoResult<Vec<Result<Cart, SetAside>>>;
    /// In one atomic write: marks the cart abandoned if it is still active, and gives its stock
    /// back (`releases`: one per variant). Returns `false` (and changes nothing) when someone
    /// else got there first, so stock is released exactly once.
    ///
    /// # Errors
    /// [`RepoError::Unprocessable`] when the write is more than the store takes at once (on
    /// DynamoDB, stock given back to more than 99 variants); a storage failure otherwise.
    async fn abandon(&self, cart: &CartId, releases: &[StockRelease]) -> RepoResult<bool>;
    /// Sets the cart aside ([`crate::CartStatus::SetAside`]) if it is still active, keeping
    /// `reason` and `at` with it: no later [`Self::idle_active`] returns it, and its stock stays
    /// reserved. Returns `false` (and changes nothing) when it is no longer active. Works on a
    /// cart that does not read: only its id and status are used.
    async fn set_aside(&self, cart: &CartId, reason: &str, at: DateTime<Utc>) -> RepoResult<bool>;
    /// Ids of carts whose session expired at or before `now`, at most `limit`; carts set aside
    /// are kept for the operator, expired or not.
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

/// Per-store API credentials (Secrets Manager in AWS: a secret per store and platform, so a job
/// reads only the platforms its role allows), cached by the adapter, never logged.
#[async_trait]
pub trait Credentials: Send + Sync + std::fmt::Debug {
    /// The store's Shopify Admin API token, or `None` when it has none (uninstalled).
    async fn shopify_token(&self, store: &StoreId) -> RepoResult<Option<Secret>>;
    /// The store's Square (POS) access token, or `None` when it has none.
    async fn square_token(&self, store: &StoreId) -> RepoResult<Option<Secret>>;
    /// The store's token for `platform` read again from the source of truth, past any copy or
    /// cache: called once when the provider refused the token (401), which a rotated secret
    /// explains. Defaults to reading it as usual.
    async fn refresh_token(
        &self,
        store: &StoreId,
        platform: crate::declaration::Platform,
    ) -> RepoResult<Option<Secret>> {
        match platform {
            crate::declaration::Platform::Shopify => self.shopify_token(store).await,
            crate::declaration::Platform::Square => self.square_token(store).await,
        }
    }
}

/// The history: sync runs, audit entries and temporary records, each kind purged after its
/// retention by `clean_database`.
#[async_trait]
pub trait History: Send + Sync + std::fmt::Debug {
    /// Records an entry; an entry with the same (kind, id) is replaced, so a redelivered job
    /// leaves one record.
    async fn append(&self, entry: &HistoryEntry) -> RepoResult;
    /// Deletes up to `limit` entries of `kind` that happened before `cutoff`, oldest first;
    /// returns how many it deleted (fewer than `limit` means none are left). Goes by kind and
    /// time alone, never reading an entry's body: an entry that does not decode is deleted like
    /// any other, and cannot stop the purge.
    async fn purge_before(&self, kind: RecordKind, cutoff: DateTime<Utc>, limit: usize) -> RepoResult<usize>;
    /// Entries of `kind`, newest first, at most `limit`.
    async fn recent(&self, kind: RecordKind, limit: usize) -> RepoResult<Vec<HistoryEntry>>;
}
