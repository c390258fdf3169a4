//! A store of the platform: its Shopify shop, its POS location, its plan and sync state.

use chrono::{DateTime, Utc};

use crate::{ids::StoreId, shop_domain::ShopDomain};

/// The store's subscription plan (it bounds how often it is synced).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Plan {
    /// Synced on demand and every 15 minutes.
    Basic,
    /// Same, with priority.
    Pro,
    /// Not synced (uninstalled or unpaid).
    Paused,
}

/// Where the catalog sync of a store stands.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum SyncState {
    /// Never synced.
    Never,
    /// A sync is running (or was interrupted and will continue).
    Running {
        /// When it started.
        started_at: DateTime<Utc>,
        /// Pages done so far.
        pages: u32,
        /// Products upserted so far.
        products: u64,
    },
    /// The last sync finished.
    Succeeded {
        /// When it finished.
        finished_at: DateTime<Utc>,
        /// Products upserted.
        products: u64,
        /// Products removed: the catalog had them, the shop no longer did (0 in a state
        /// recorded before syncs removed products).
        #[serde(default)]
        removed: u64,
    },
    /// The last sync failed for good.
    Failed {
        /// When.
        failed_at: DateTime<Utc>,
        /// Why (redacted).
        reason: String,
    },
}

/// A store.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Store {
    /// Its id.
    pub id: StoreId,
    /// Its Shopify shop (validated).
    pub shopify_domain: ShopDomain,
    /// Its location in the POS (Square location id).
    pub pos_location_id: Option<String>,
    /// Its plan.
    pub plan: Plan,
    /// Its catalog sync.
    pub sync_state: SyncState,
}

impl Store {
    /// Whether the recurring sync should include this store.
    pub fn is_syncable(&self) -> bool {
        self.plan != Plan::Paused
    }
}
