//! The shop's history: records kept for a while and then deleted by `clean_database` under a
//! retention per kind. Sync runs say when each store/customer sync ran and what it did; audit
//! entries say what a job did to the outside world (a webhook created, a text sent); temporary
//! records are scratch data a job writes for itself (kept a day).
//!
//! Invariant: an entry's id is chosen by its writer so that a second delivery of the same job
//! writes the same id, and the repository keeps one entry per (kind, id).

use chrono::{DateTime, Duration, Utc};

use crate::ids::StoreId;

/// The kinds of record the history holds, each with its own retention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    /// One per finished store or customer sync.
    SyncRun,
    /// One per action on an outside system.
    AuditLog,
    /// Scratch data.
    Temporary,
}

impl RecordKind {
    /// Every kind, in the order `clean_database` purges them.
    pub const ALL: [RecordKind; 3] = [RecordKind::Temporary, RecordKind::SyncRun, RecordKind::AuditLog];

    /// The kind as stored and as named in settings (`sync_run`, `audit_log`, `temporary`).
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::SyncRun => "sync_run",
            RecordKind::AuditLog => "audit_log",
            RecordKind::Temporary => "temporary",
        }
    }

    /// The kind named `name`, if any.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// How long records of this kind are kept unless configured otherwise: sync runs 30 days,
    /// audit entries 365 days (a year of answers to "who texted this customer?"), temporary 1 day.
    pub fn default_retention(self) -> Duration {
        match self {
            RecordKind::SyncRun => Duration::days(30),
            RecordKind::AuditLog => Duration::days(365),
            RecordKind::Temporary => Duration::days(1),
        }
    }
}

impl std::fmt::Display for RecordKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The store id of history records about every store (a fan-out's run).
pub const ALL_STORES: &str = "*";

/// One history record.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HistoryEntry {
    /// Its kind.
    pub kind: RecordKind,
    /// Its id, unique within the kind, stable across redeliveries.
    pub id: String,
    /// The store it is about.
    pub store_id: StoreId,
    /// When it happened (retention counts from here).
    pub at: DateTime<Utc>,
    /// What happened, as JSON (no personal data: phones masked, no tokens).
    pub detail: serde_json::Value,
}

impl HistoryEntry {
    /// A finished sync run of `job` for `store`; `run_id` is the job id, so a redelivered job
    /// records its run once.
    pub fn sync_run(
        job: &str,
        run_id: &str,
        store: &StoreId,
        started_at: DateTime<Utc>,
        finished_at: DateTime<Utc>,
        counts: serde_json::Value,
    ) -> Self {
        Self {
            kind: RecordKind::SyncRun,
            id: format!("{job}:{run_id}"),
            store_id: store.clone(),
            at: finished_at,
            detail: serde_json::json!({
                "job": job,
                "started_at": started_at,
                "finished_at": finished_at,
                "counts": counts,
            }),
        }
    }

    /// A fan-out of `job` whose syncs all finished (its batch `batch_id` completed at `at`): how
    /// many stores, how many synced, how many failed. About every store: its store id is
    /// [`ALL_STORES`].
    pub fn fan_out_run(
        job: &str,
        batch_id: &str,
        started_at: DateTime<Utc>,
        at: DateTime<Utc>,
        counts: serde_json::Value,
    ) -> Self {
        Self {
            kind: RecordKind::SyncRun,
            id: format!("{job}:{batch_id}"),
            store_id: StoreId::from(ALL_STORES),
            at,
            detail: serde_json::json!({
                "job": job,
                "started_at": started_at,
                "finished_at": at,
                "counts": counts,
            }),
        }
    }

    /// A sync run of `job` that landed in the DLQ at `at`, and why (redacted).
    pub fn sync_failed(job: &str, run_id: &str, store: &StoreId, at: DateTime<Utc>, reason: &str) -> Self {
        Self {
            kind: RecordKind::SyncRun,
            id: format!("{job}:{run_id}"),
            store_id: store.clone(),
            at,
            detail: serde_json::json!({ "job": job, "failed_at": at, "reason": reason }),
        }
    }

    /// An audit entry: `action` done for `store`, identified by `id` (a share id, a webhook id).
    pub fn audit(
        action: &str,
        id: &str,
        store: &StoreId,
        at: DateTime<Utc>,
        detail: serde_json::Value,
    ) -> Self {
        Self {
            kind: RecordKind::AuditLog,
            id: format!("{action}:{id}"),
            store_id: store.clone(),
            at,
            detail: serde_json::json!({ "action": action, "detail": detail }),
        }
    }
}

/// Records `entry` about an action that already happened outside (a text sent, a webhook
/// created). A storage failure is logged at warn and not returned: failing the job would have it
/// retried, and a retry could repeat the action, which matters more than a missing record.
pub async fn record_done(history: &dyn crate::ports::History, entry: &HistoryEntry) {
    if let Err(e) = history.append(entry).await {
        tracing::warn!(kind = %entry.kind, id = %entry.id, error = %e, "history entry not recorded");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_their_names() {
        for kind in RecordKind::ALL {
            assert_eq!(RecordKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(RecordKind::parse("job_state"), None);
    }

    #[test]
    fn a_redelivered_run_gets_the_same_id() {
        let at = Utc::now();
        let store = StoreId::from("st_1");
        let a = HistoryEntry::sync_run("store_sync", "j1", &store, at, at, serde_json::json!({}));
        let b = HistoryEntry::sync_run(
            "store_sync",
            "j1",
            &store,
            at,
            at + Duration::minutes(3),
            serde_json::json!({}),
        );
        assert_eq!(a.id, b.id);
    }
}
