//! Where the jobs other jobs enqueue are (chaining), for jobs that do not depend on their crates:
//! each one's name and the type of its arguments. The job's own crate takes these types as its
//! `Job::Args`, and its tests check its name against the address.

use jobkit::JobRef;
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
