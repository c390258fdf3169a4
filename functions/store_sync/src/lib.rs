//! The `store_sync` job (high lane; a Basic store's recurring sync on the low lane): pulls a
//! store's products, variants,
//! prices and inventory from Shopify into the catalog, 50 a page. The page cursor is a
//! checkpointed step, so near the Lambda deadline the job continues in a new invocation, and a
//! retry resumes where the last page ended. Every product a run writes is marked with the run;
//! after the last page, the step `remove` deletes the store's products without that mark (those
//! the shop no longer has), a batch at a time with a checkpoint between batches. A run
//! interrupted before its last page (the DLQ, or still retrying) never gets there, so it removes
//! nothing; its retries and continuations resume under the same run, whose products keep its
//! mark. A product Shopify returns but that cannot be read (an unreadable price, a missing
//! field) is set aside: reported (`JobContext::set_aside`: logged, counted, emailed once) and
//! not written, while the page's others are; its stored copy, if any, is kept and marked with
//! the run, so the sweep removes only products the shop no longer has. Progress (pages, products, status) is recorded on the store, and each finished run in
//! the history (a sync run, kept 30 days) with the products it removed.
//!
//! Arguments: `{"store_id": "st_42"}` syncs one store; `{"all_stores": true}` (the 15-minute
//! EventBridge Scheduler tick) enqueues one sync per syncable store with `SendMessageBatch`,
//! each with the store's `plan`, which picks its lane.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use jobkit::{
    ConcurrencyLimit, Discarded, EnqueueError, EnqueueOptions, ErrorKind, Job, JobContext, JobError, Lane,
    RetryPolicy,
    batch::{BatchSummary, JobBatch},
};
use serde::{Deserialize, Serialize};
use shop::{
    BuildError, History, HistoryEntry, ProductId, ShopPorts, StoreId, StoreRepository, SyncState,
    declaration::{Declaration, Deployment, Schedule, ShopJob, Table, TableUse, Uses, Zone},
    services::CatalogSync,
};

/// The checkpointed step: the product pages.
const PRODUCTS_STEP: &str = "products";
/// The checkpointed step after the last page: the removal of the products the run did not write.
const REMOVE_STEP: &str = "remove";

/// Where a store's sync stands, the products step's cursor: the next page, and what the run has
/// done so far, carried across continuations.
#[derive(Debug, Serialize, Deserialize)]
struct Progress {
    /// The next page's cursor (`None` before the first page and after the last).
    page: Option<String>,
    /// Pages synced so far.
    pages: u32,
    /// Products upserted so far.
    products: u64,
    /// When the run's first execution started.
    started_at: DateTime<Utc>,
    /// The run's mark on every product it writes (`<job id>@<started_at>`: its continuations
    /// and retries share it, a later run of the same job id does not). `None` in a cursor saved
    /// before runs marked their products: such a run marks the rest but removes nothing, as
    /// the pages it wrote before carry no mark.
    #[serde(default)]
    run: Option<String>,
}

/// The remove step's cursor.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Removal {
    /// The next batch looks at product ids after this one.
    after: Option<ProductId>,
    /// Products removed so far.
    removed: u64,
}

impl Progress {
    /// The store's sync state while the run goes on.
    fn running(&self) -> SyncState {
        SyncState::Running { started_at: self.started_at, pages: self.pages, products: self.products }
    }
}

pub use shop::jobs::StoreSyncArgs;

/// At most one pending sync per store from the fan-out; a lock whose sync was lost frees
/// itself after six hours.
fn one_pending_per_store() -> EnqueueOptions {
    EnqueueOptions::unique_until_done(Duration::from_secs(6 * 60 * 60))
}

/// The job, on its ports.
#[derive(Debug, Clone)]
pub struct StoreSync {
    stores: Arc<dyn StoreRepository>,
    catalog: CatalogSync,
    history: Arc<dyn History>,
}

impl StoreSync {
    /// The job on a store repository, a catalog sync service and the history its runs go to.
    pub fn new(stores: Arc<dyn StoreRepository>, catalog: CatalogSync, history: Arc<dyn History>) -> Self {
        Self { stores, catalog, history }
    }
}

impl Job for StoreSync {
    type Args = StoreSyncArgs;
    const NAME: &'static str = "store_sync";
    const LANE: Lane = Lane::High;
    /// A Basic store's recurring sync waits on the low lane ([`StoreSyncArgs::lane`]).
    const OTHER_LANES: &'static [Lane] = &[Lane::Low];

    fn lane(args: &StoreSyncArgs) -> Lane {
        args.lane()
    }

    /// Throttling, timeouts and outages retry with polynomial waits (10 attempts, about four and
    /// a half hours in all); an unknown store, a refused token or a request Shopify rejects go to
    /// the DLQ.
    fn retry_policy() -> RetryPolicy {
        shop::policy::integration_policy(10)
    }

    /// Five minutes an execution; a longer sync continues in a new one.
    const TIMEOUT: Duration = Duration::from_secs(300);

    async fn perform(&self, args: StoreSyncArgs, ctx: &mut JobContext) -> Result<(), JobError> {
        match args {
            StoreSyncArgs { store_id: Some(id), all_stores: false, batch: None, .. } => {
                self.sync_store(&id, ctx).await
            }
            StoreSyncArgs { store_id: None, all_stores: true, batch: None, plan: None } => {
                self.fan_out(ctx).await
            }
            StoreSyncArgs { store_id: None, all_stores: false, batch: Some(done), plan: None } => {
                self.fan_out_finished(&done, ctx.now()).await
            }
            _ => Err(JobError::permanent(
                ErrorKind::INVALID_ARGUMENTS,
                "give either store_id or all_stores: true, not both and not neither",
            )),
        }
    }

    /// A store whose sync landed in the DLQ shows `Failed` with the reason, not `Running`
    /// (or the last success) for ever.
    async fn after_discard(&self, args: &StoreSyncArgs, discarded: &Discarded) -> Result<(), JobError> {
        let Some(store) = &args.store_id else { return Ok(()) };
        let reason = format!("{}: {}", discarded.kind, discarded.message);
        let failed = SyncState::Failed { failed_at: discarded.at, reason };
        self.stores.set_sync_state(store, &failed).await?;
        Ok(())
    }

    /// One sync of a store at a time (two would race on its products and its sync state); the
    /// fan-out is not limited.
    fn concurrency_limit(&self, args: &StoreSyncArgs) -> Option<ConcurrencyLimit> {
        args.store_id.as_ref().map(|store| ConcurrencyLimit::one_per(store.as_str()))
    }
}

impl StoreSync {
    /// Enqueues one sync per syncable store as one batch, unless one is still pending for that
    /// store (`unique_until_done`: a store whose last sync has not finished, a slow shop or one
    /// waiting for a retry, is not piled up hour after hour). When every sync of the batch has
    /// finished, its callback records the fan-out's run ([`Self::fan_out_finished`]). A partial
    /// failure retries the fan-out: the batch (named by the fan-out's job id) is the same, and
    /// the stores enqueued the first time are not enqueued again.
    async fn fan_out(&self, ctx: &mut JobContext) -> Result<(), JobError> {
        let stores = self.stores.syncable().await?;
        let count = stores.len();
        let batch = JobBatch::for_job("fan-out", &ctx.meta().job_id)
            .description("one sync per syncable store")
            .on_complete(&shop::jobs::STORE_SYNC, &StoreSyncArgs::fan_out_finished())?;
        let sent = ctx
            .enqueuer()
            .perform_later_batch::<StoreSync>(
                &batch,
                stores.into_iter().map(|(id, plan)| StoreSyncArgs::recurring(id, plan)),
                &one_pending_per_store(),
            )
            .await
            .map_err(|e| JobError::retryable(ErrorKind::UNAVAILABLE, format!("fan-out failed: {e}")))?;
        let pending = sent.iter().filter(|r| matches!(r, Err(EnqueueError::Duplicate { .. }))).count();
        let failed = sent.iter().filter(|r| r.is_err()).count() - pending;
        if failed > 0 {
            let message = format!("{failed} of {count} store syncs not enqueued");
            return Err(JobError::retryable(ErrorKind::UNAVAILABLE, message));
        }
        tracing::info!(
            stores = count,
            enqueued = count - pending,
            still_pending = pending,
            batch = batch.id(),
            "store syncs enqueued"
        );
        Ok(())
    }

    /// The fan-out's batch completed: records the run (how many stores synced, how many
    /// failed) in the history, once (its id is the batch's).
    async fn fan_out_finished(&self, done: &BatchSummary, now: DateTime<Utc>) -> Result<(), JobError> {
        let counts =
            serde_json::json!({ "stores": done.total, "synced": done.succeeded, "failed": done.failed });
        let at = now.max(done.created_at);
        let run = HistoryEntry::fan_out_run(Self::NAME, &done.id, done.created_at, at, counts);
        self.history.append(&run).await?;
        tracing::info!(batch = %done.id, stores = done.total, synced = done.succeeded, failed = done.failed, "all stores synced");
        Ok(())
    }

    async fn sync_store(&self, id: &StoreId, ctx: &mut JobContext) -> Result<(), JobError> {
        let Some(store) = self.stores.get(id).await? else {
            return Err(JobError::permanent(ErrorKind::NOT_FOUND, format!("unknown store {id}")));
        };
        if !store.is_syncable() {
            tracing::info!(store = %store.id, "store is paused: nothing to sync");
            return Ok(());
        }
        let started_at = ctx.now();
        let run = format!("{}@{}", ctx.meta().job_id.as_str(), started_at.to_rfc3339());
        let start = Progress { page: None, pages: 0, products: 0, started_at, run: Some(run) };
        // A cursor from before runs marked their products: the rest is marked with the job id.
        let unmarked_run = ctx.meta().job_id.as_str().to_owned();
        let Progress { pages, products, started_at, run, .. } = ctx
            .step(PRODUCTS_STEP, start, async |step| {
                loop {
                    let cursor = step.cursor();
                    let mark = cursor.run.as_deref().unwrap_or(&unmarked_run);
                    let page = self.catalog.sync_page(&store, cursor.page.as_deref(), mark).await?;
                    // A product that cannot be read is reported and gone past; its stored copy
                    // is kept (marked with the run), so the sweep does not remove it.
                    for record in &page.set_aside {
                        step.context().set_aside(&record.id, &record.reason).await;
                    }
                    let progress = step.cursor_mut();
                    progress.page = page.next_cursor;
                    progress.pages += 1;
                    progress.products += page.upserted as u64;
                    self.stores.set_sync_state(&store.id, &progress.running()).await?;
                    if progress.page.is_none() {
                        return Ok(());
                    }
                    step.checkpoint().await?;
                }
            })
            .await?;
        let removed = match &run {
            Some(run) => self.remove_unsynced(&store.id, run, ctx).await?,
            None => {
                tracing::warn!(store = %store.id, "run started before products were marked: none removed");
                0
            }
        };
        let finished_at = ctx.now();
        let counts = serde_json::json!({ "pages": pages, "products": products, "removed": removed });
        let run = HistoryEntry::sync_run(
            Self::NAME,
            ctx.meta().job_id.as_str(),
            &store.id,
            started_at,
            finished_at,
            counts,
        );
        self.history.append(&run).await?;
        let done = SyncState::Succeeded { finished_at, products, removed };
        self.stores.set_sync_state(&store.id, &done).await?;
        tracing::info!(store = %store.id, pages, products, removed, "catalog synced");
        Ok(())
    }

    /// The remove step: once every page is in, deletes the store's products the run `run` did
    /// not write, a batch at a time, checkpointing between batches (near the deadline the
    /// run continues in a new execution from the last batch). Returns how many it removed.
    async fn remove_unsynced(
        &self,
        store: &StoreId,
        run: &str,
        ctx: &mut JobContext,
    ) -> Result<u64, JobError> {
        let Removal { removed, .. } = ctx
            .step(REMOVE_STEP, Removal::default(), async |step| {
                loop {
                    let batch = self.catalog.remove_batch(store, run, step.cursor().after.as_ref()).await?;
                    if !batch.products.is_empty() {
                        let count = batch.products.len();
                        tracing::info!(store = %store, count, ids = ?batch.products, "products the shop no longer has removed");
                    }
                    let removal = step.cursor_mut();
                    removal.removed += batch.products.len() as u64;
                    removal.after = batch.next;
                    if removal.after.is_none() {
                        return Ok(());
                    }
                    step.checkpoint().await?;
                }
            })
            .await?;
        Ok(removed)
    }
}

impl ShopJob for StoreSync {
    const DECLARATION: Declaration = Declaration {
        summary: "pulls a store's products, variants, prices and inventory from Shopify into the catalog",
        example: r#"{"store_id":"st_42"}"#,
        // In UTC: in a zone with daylight saving, the hour the clocks repeat would fire its
        // quarters once (EventBridge Scheduler's rule), leaving stores an hour unsynced.
        schedule: Some(Schedule {
            rule: "store-sync-fan-out",
            every: "every 15 minutes",
            zone: Zone::UTC,
            args: r#"{"all_stores": true}"#,
            what: "one store_sync per syncable store",
        }),
        deployment: Deployment::SYNC,
        uses: Uses {
            tables: &[
                TableUse {
                    table: Table::Stores,
                    index: None,
                    actions: &["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:Scan"],
                    why: "read, sync state, the fan-out's list",
                },
                TableUse {
                    table: Table::Products,
                    index: None,
                    actions: &["dynamodb:BatchWriteItem", "dynamodb:Query", "dynamodb:GetItem"],
                    why: "upserts and removals, 25 at a time; a store's products to remove (Query); \
                          a set-aside product's stored copy, kept (GetItem)",
                },
                TableUse {
                    table: Table::History,
                    index: None,
                    actions: &["dynamodb:PutItem"],
                    why: "one sync run per finished sync",
                },
            ],
            tokens: &[shop::declaration::Platform::Shopify],
            ..Uses::NOTHING
        },
    };

    /// Stores, products and the history, tokens from the store's secret, Shopify
    /// (`SHOPIFY_BASE_URL` for a sandbox).
    fn build(ports: &ShopPorts) -> Result<Self, BuildError> {
        let sync = CatalogSync::new(ports.shopify()?, ports.catalog()?, ports.credentials()?);
        Ok(Self::new(ports.stores()?, sync, ports.history()?))
    }
}

#[cfg(test)]
mod tests {
    use jobkit::Job;

    use super::StoreSync;

    #[test]
    fn jobs_that_enqueue_this_one_find_it_by_its_name_and_lanes() {
        use jobkit::Lane;
        use shop::{Plan, jobs::StoreSyncArgs};

        let address = shop::jobs::STORE_SYNC;
        assert_eq!(address.name(), StoreSync::NAME);
        assert_eq!(address.lanes(), Some((StoreSync::LANE, StoreSync::OTHER_LANES)));
        for args in [
            StoreSyncArgs::store("st_1"),
            StoreSyncArgs::recurring("st_1", Plan::Basic),
            StoreSyncArgs::recurring("st_1", Plan::Pro),
            StoreSyncArgs::all_stores(),
        ] {
            assert_eq!(address.lane_of(&args), Some(StoreSync::lane(&args)), "{args:?}");
        }
        assert_eq!(StoreSync::lane(&StoreSyncArgs::recurring("st_1", Plan::Basic)), Lane::Low);
        assert_eq!(StoreSync::lane(&StoreSyncArgs::recurring("st_1", Plan::Pro)), Lane::High);
        assert_eq!(StoreSync::lane(&StoreSyncArgs::store("st_1")), Lane::High);
    }
}
