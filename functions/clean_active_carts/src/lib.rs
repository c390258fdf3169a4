//! The `clean_active_carts` job (low lane, hourly EventBridge tick): carts idle past a
//! threshold become abandoned and give their reserved stock back exactly once (a conditional
//! write does both), then expired cart sessions are deleted. Work goes in batches of 100 with a
//! checkpoint after each, so a large backlog continues in a new invocation near the deadline.
//!
//! Arguments: `{}` (the tick adds `$schedule`, which makes a tick delivered twice run once).
//! Settings: `SHOP_CARTS_TABLE`, `SHOP_INVENTORY_TABLE`, `CART_IDLE_AFTER_MINUTES` (default 120).

use std::{sync::Arc, time::Duration};

use jobkit::{ErrorKind, Job, JobContext, JobError, Lane, RetryPolicy, Wait};
use serde::{Deserialize, Serialize};
use shop::{
    BuildError, CartRepository, ShopPorts,
    declaration::{Declaration, Deployment, Schedule, Setting, ShopJob, Table, TableUse, Uses, Zone},
    services::CartJanitor,
};

/// Carts idle this long are abandoned unless `CART_IDLE_AFTER_MINUTES` says otherwise.
const DEFAULT_IDLE_AFTER_MINUTES: u32 = 120;

/// Carts handled between checkpoints.
const BATCH: usize = 100;
const ABANDON_STEP: &str = "abandon_idle";
const EXPIRE_STEP: &str = "delete_expired";

/// No arguments: `{}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CleanCartsArgs {}

/// Totals so far, the steps' cursor: the second step starts from the first's, so the totals
/// carry across steps and continuations.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
struct Totals {
    abandoned: u64,
    units_released: u64,
    deleted: u64,
}

/// The job.
#[derive(Debug, Clone)]
pub struct CleanActiveCarts {
    janitor: CartJanitor,
    idle_after: chrono::Duration,
}

impl CleanActiveCarts {
    /// The job on a cart repository; carts idle for `idle_after` are abandoned.
    pub fn new(carts: Arc<dyn CartRepository>, idle_after: chrono::Duration) -> Self {
        Self { janitor: CartJanitor::new(carts), idle_after }
    }
}

impl ShopJob for CleanActiveCarts {
    const DECLARATION: Declaration = Declaration {
        summary: "abandons idle carts, releasing their reserved stock once, and deletes expired ones",
        example: "{}",
        schedule: Some(Schedule {
            rule: "clean-active-carts-hourly",
            every: "every hour",
            zone: Zone::UTC,
            args: "{}",
            what: "abandons idle carts and deletes expired ones",
        }),
        deployment: Deployment::CLEANUP,
        uses: Uses {
            tables: &[
                TableUse {
                    table: Table::Carts,
                    index: None,
                    actions: &["dynamodb:UpdateItem", "dynamodb:DeleteItem"],
                    why: "the abandon transaction's conditional update, a cart set aside, deletes",
                },
                TableUse {
                    table: Table::Carts,
                    index: Some("by_status_activity"),
                    actions: &["dynamodb:Query"],
                    why: "idle active carts by last activity",
                },
                TableUse {
                    table: Table::Carts,
                    index: Some("by_status_expiry"),
                    actions: &["dynamodb:Query"],
                    why: "expired sessions by status and expiry",
                },
                TableUse {
                    table: Table::Inventory,
                    index: None,
                    actions: &["dynamodb:UpdateItem"],
                    why: "stock given back in the same transaction",
                },
            ],
            settings: &[Setting { env: "CART_IDLE_AFTER_MINUTES", parameter: "CartIdleAfterMinutes" }],
            ..Uses::NOTHING
        },
    };

    /// The carts (with the inventory their abandon gives stock back to); carts idle for
    /// `CART_IDLE_AFTER_MINUTES` (default 120) are abandoned.
    fn build(ports: &ShopPorts) -> Result<Self, BuildError> {
        let minutes = ports.positive_setting("CART_IDLE_AFTER_MINUTES", DEFAULT_IDLE_AFTER_MINUTES)?;
        Ok(Self::new(ports.carts()?, chrono::Duration::minutes(minutes.into())))
    }
}

impl Job for CleanActiveCarts {
    type Args = CleanCartsArgs;
    const NAME: &'static str = "clean_active_carts";
    const LANE: Lane = Lane::Low;

    /// Storage outages and throttles retry (5 attempts, polynomial waits); a corrupt record goes
    /// to the DLQ, and so does what the table refuses (a missing table or index, access denied:
    /// permanent, naming the table and the operation).
    fn retry_policy() -> RetryPolicy {
        RetryPolicy::new()
            .retry_on([ErrorKind::UNAVAILABLE, ErrorKind::THROTTLED, ErrorKind::TIMEOUT], Wait::Polynomial, 5)
            .discard_on([ErrorKind::CORRUPT_RECORD])
    }

    const TIMEOUT: Duration = Duration::from_secs(300);

    async fn perform(&self, _args: CleanCartsArgs, ctx: &mut JobContext) -> Result<(), JobError> {
        let now = ctx.now();
        let totals = ctx
            .step(ABANDON_STEP, Totals::default(), async |step| {
                loop {
                    let batch = self.janitor.abandon_idle(now, self.idle_after, BATCH).await?;
                    // Reported before the checkpoint: the janitor has already marked these carts,
                    // so the next batch and the next runs leave them out.
                    for record in &batch.set_aside {
                        step.context().set_aside(&record.id, &record.reason).await;
                    }
                    let totals = step.cursor_mut();
                    totals.abandoned += batch.abandoned as u64;
                    totals.units_released += batch.units_released;
                    if batch.examined < BATCH {
                        return Ok(());
                    }
                    step.checkpoint().await?;
                }
            })
            .await?;
        let totals = ctx
            .step(EXPIRE_STEP, totals, async |step| {
                loop {
                    let deleted = self.janitor.delete_expired(now, BATCH).await?;
                    step.cursor_mut().deleted += deleted as u64;
                    if deleted < BATCH {
                        return Ok(());
                    }
                    step.checkpoint().await?;
                }
            })
            .await?;
        tracing::info!(
            abandoned = totals.abandoned,
            units_released = totals.units_released,
            deleted = totals.deleted,
            "carts cleaned"
        );
        Ok(())
    }
}
