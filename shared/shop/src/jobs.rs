//! Where the jobs other jobs enqueue are (chaining), for jobs that do not depend on their crates:
//! each one's name and the type of its arguments. The job's own crate takes these types as its
//! `Job::Args`, and its tests check its name against the address.

use jobkit::{JobRef, batch::BatchSummary};
use serde::{Deserialize, Serialize};

use crate::StoreId;

/// `customer_sync`'s arguments: `{"store_id": "st_42"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerSyncArgs {
    /// The store whose POS customers to sync.
    pub store_id: StoreId,
}

/// `customer_sync`: a store's POS customers and their order totals.
pub const CUSTOMER_SYNC: JobRef<CustomerSyncArgs> = JobRef::new("customer_sync");

/// `store_sync`'s arguments: `{"store_id": "st_42"}`, `{"all_stores": true}` (the fan-out), or
/// `{"batch": {...}}` (the fan-out's batch completed: its callback, which jobkit fills in).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreSyncArgs {
    /// The store to sync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_id: Option<StoreId>,
    /// Fan out: enqueue a sync of every syncable store.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub all_stores: bool,
    /// The fan-out's syncs all finished: record how many succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<BatchSummary>,
}

impl StoreSyncArgs {
    /// Sync one store.
    pub fn store(id: impl Into<StoreId>) -> Self {
        Self { store_id: Some(id.into()), ..Self::default() }
    }

    /// Sync every store.
    pub fn all_stores() -> Self {
        Self { all_stores: true, ..Self::default() }
    }

    /// The fan-out's callback, before jobkit adds the batch's summary.
    pub fn fan_out_finished() -> Self {
        Self::default()
    }
}

/// `store_sync`: a store's Shopify catalog (or, with `all_stores`, the fan-out to every store).
pub const STORE_SYNC: JobRef<StoreSyncArgs> = JobRef::new("store_sync");
