//! Where the jobs other jobs enqueue are (chaining), for jobs that do not depend on their crates:
//! each one's name and the type of its arguments. The job's own crate takes these types as its
//! `Job::Args`, and its tests check its name against the address.

use jobkit::{JobRef, Lane, batch::BatchSummary};
use serde::{Deserialize, Serialize};

use crate::{StoreId, store::Plan};

/// `customer_sync`'s arguments: `{"store_id": "st_42"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerSyncArgs {
    /// The store whose POS customers to sync.
    pub store_id: StoreId,
}

/// `customer_sync`: a store's POS customers and their order totals.
pub const CUSTOMER_SYNC: JobRef<CustomerSyncArgs> = JobRef::new("customer_sync");

/// `store_sync`'s arguments: `{"store_id": "st_42"}`, `{"all_stores": true}` (the fan-out), or
/// `{"batch": {...}}` (the fan-out's batch completed: its callback, which jobkit fills in). The
/// fan-out adds each store's `plan`, which picks the sync's lane ([`StoreSyncArgs::lane`]).
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
    /// The store's plan when the fan-out enqueued its sync: a Basic store's recurring sync
    /// takes the low lane.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<Plan>,
}

impl StoreSyncArgs {
    /// Sync one store.
    pub fn store(id: impl Into<StoreId>) -> Self {
        Self { store_id: Some(id.into()), ..Self::default() }
    }

    /// The recurring sync of a store on `plan` (the fan-out's).
    pub fn recurring(id: impl Into<StoreId>, plan: Plan) -> Self {
        Self { store_id: Some(id.into()), plan: Some(plan), ..Self::default() }
    }

    /// The lane a sync takes: the low one for a Basic store's recurring sync (thousands of them
    /// every 15 minutes wait there with a concurrency of 2), the high one for everything else:
    /// a Pro store's syncs, a sync someone asked for (an installation, an operator), the
    /// fan-out and its callback.
    pub fn lane(&self) -> Lane {
        match self.plan {
            Some(Plan::Basic) => Lane::Low,
            _ => Lane::High,
        }
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
pub const STORE_SYNC: JobRef<StoreSyncArgs> =
    JobRef::new("store_sync").with_lanes(Lane::High, &[Lane::Low], StoreSyncArgs::lane);
