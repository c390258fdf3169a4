//! `jobctl dev --demo`: the whole system on one machine in under a minute, no AWS account.
//!
//! Three stores against the sandbox (two healthy; one whose Shopify is down and whose POS token
//! was revoked), their store and customer syncs through the fan-out, a webhook registration, a
//! product shared by SMS, the cart and database cleanups ticked as EventBridge would, one job
//! retried until it lands in the DLQ and one discarded there at once. Backoffs run on a virtual
//! clock that jumps to the next due message, so hours of retries take no real time. Ends with
//! what happened: per job, the DLQ with its reasons, the outbox.

use std::{
    path::{Path, PathBuf},
    time::Instant,
};

use chrono::{DateTime, Utc};
use jobkit::{
    clock::{Clock, ManualClock},
    dead_letter::DeadLetterError,
    message::{OutgoingMessage, SCHEDULE_KEY},
};
use serde_json::{Value, json};
use shop::{
    Cart, CartItem, CartStatus, CatalogRepository, History, Plan, RecordKind, Secret, Store, StoreRepository,
    SyncState, embedded::ShopDb,
};

use crate::{
    dev::{Dev, DevError, DevOptions, Tally},
    registry,
    sandbox::{Behaviour, FixturePos, FixtureShop, Fixtures, Sandbox},
};

/// What the demo did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DemoReport {
    /// Per job.
    pub jobs: Vec<Tally>,
    /// What sits in the DLQs: (job, error kind, reason, message).
    pub dead_letters: Vec<DeadLetterLine>,
    /// Error emails written to the outbox.
    pub emails: usize,
    /// Texts written to the outbox.
    pub texts: usize,
    /// Products in the catalog per store after the syncs.
    pub products: Vec<(String, u64)>,
    /// Sync runs recorded in the history (store and customer syncs that finished).
    pub sync_runs: usize,
    /// Carts the cleanup abandoned (their stock released).
    pub carts_abandoned: usize,
    /// Real seconds the demo took.
    pub seconds: f64,
    /// Hours the virtual clock moved through backoffs.
    pub virtual_hours: f64,
}

/// One DLQ message, summarised.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DeadLetterLine {
    /// The job.
    pub job: &'static str,
    /// The error kind.
    pub error_kind: String,
    /// `discarded` or `exhausted`.
    pub reason: String,
    /// The error.
    pub message: String,
}

fn fixtures() -> Fixtures {
    let shop =
        |token: &str, products, behaviour| FixtureShop { token: token.to_owned(), products, behaviour };
    Fixtures {
        shops: [
            ("acme", shop("shpat_acme", 120, Behaviour::Healthy)),
            ("globex", shop("shpat_globex", 35, Behaviour::Healthy)),
            ("initech", shop("shpat_initech", 10, Behaviour::Down)),
        ]
        .into_iter()
        .map(|(name, fixture)| (name.to_owned(), fixture))
        .collect(),
        pos: [("sq_acme", 240), ("sq_globex", 60)]
            .into_iter()
            .map(|(token, customers)| (token.to_owned(), FixturePos { customers }))
            .collect(),
    }
}

/// (store id, shop name, Shopify token, Square token; `sq_revoked` is refused by the POS).
const STORES: [(&str, &str, &str, &str); 3] = [
    ("st_acme", "acme", "shpat_acme", "sq_acme"),
    ("st_globex", "globex", "shpat_globex", "sq_globex"),
    ("st_initech", "initech", "shpat_initech", "sq_revoked"),
];

fn failed(e: impl std::fmt::Display) -> DevError {
    DevError::Shop(e.to_string())
}

async fn seed_stores(db: &ShopDb) -> Result<(), DevError> {
    for (id, shop, shopify_token, square_token) in STORES {
        let domain = format!("{shop}.myshopify.com").parse().map_err(failed)?;
        let store = Store {
            id: id.into(),
            shopify_domain: domain,
            pos_location_id: Some(format!("L-{}", shop.to_uppercase())),
            plan: Plan::Basic,
            sync_state: SyncState::Never,
        };
        db.put(&store).await.map_err(failed)?;
        db.set_shopify_token(&store.id, &Secret::new(shopify_token.to_owned())).map_err(failed)?;
        db.set_square_token(&store.id, &Secret::new(square_token.to_owned())).map_err(failed)?;
    }
    Ok(())
}

/// Two carts left idle for hours with stock held, one still being filled, as of `now`.
fn seed_carts(db: &ShopDb, now: DateTime<Utc>) -> Result<(), DevError> {
    for (id, idle_hours) in [("cart_1", 3), ("cart_2", 5), ("cart_3", 0)] {
        let last_activity_at = now - chrono::Duration::hours(idle_hours);
        db.put_cart(&Cart {
            id: id.into(),
            store_id: "st_acme".into(),
            items: vec![CartItem { variant_id: "gid://shopify/ProductVariant/acme-0-0".into(), quantity: 2 }],
            status: CartStatus::Active,
            stock_reserved: true,
            last_activity_at,
            expires_at: now + chrono::Duration::days(7),
        })
        .map_err(failed)?;
    }
    Ok(())
}

async fn send(dev: &Dev, job: &str, body: Value) -> Result<(), DevError> {
    let queue = registry::queue_name(job);
    let message = OutgoingMessage { body: body.to_string(), ..OutgoingMessage::default() };
    dev.backend().queue().send(&queue, message).await?;
    Ok(())
}

/// The tick EventBridge Scheduler would send for `job`'s schedule.
fn tick(job: &str, at: DateTime<Utc>) -> Result<Value, DevError> {
    let (_, schedule) = registry::schedules()?
        .into_iter()
        .find(|(name, _)| *name == job)
        .ok_or_else(|| failed(format!("{job} has no schedule")))?;
    let mut body: Value = serde_json::from_str(schedule.args).map_err(failed)?;
    body[SCHEDULE_KEY] =
        json!({"rule": schedule.rule, "time": at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)});
    Ok(body)
}

fn merge(into: &mut [Tally], more: &[Tally]) {
    for (a, b) in into.iter_mut().zip(more) {
        a.succeeded += b.succeeded;
        a.retried += b.retried;
        a.dead_lettered += b.dead_lettered;
        a.other += b.other;
    }
}

fn files_in(folder: &Path) -> usize {
    std::fs::read_dir(folder).map_or(0, |entries| entries.filter_map(Result::ok).count())
}

/// The demo's folder, `dir/demo`, emptied: each demo starts from nothing.
///
/// # Errors
/// The folder cannot be emptied or made.
pub fn fresh_folder(dir: &Path) -> Result<PathBuf, DevError> {
    let dir = dir.join("demo");
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(failed)?;
    }
    std::fs::create_dir_all(&dir).map_err(failed)?;
    Ok(dir)
}

/// Creates the file the demo's per-record logs go to, in its folder, unless `--verbose` asks
/// for them on stderr: the story and the summary are what a first run should show.
///
/// # Errors
/// The file cannot be created.
pub fn log_file(folder: &Path) -> Result<(PathBuf, std::fs::File), DevError> {
    let path = folder.join("demo.log");
    let file = std::fs::File::create(&path).map_err(failed)?;
    Ok((path, file))
}

/// Runs the demo in `dir` (a [`fresh_folder`]).
///
/// # Errors
/// The sandbox, the backend or the database failing.
pub async fn run(dir: &Path) -> Result<DemoReport, DevError> {
    let started = Instant::now();
    let dir = dir.to_path_buf();
    let sandbox = Sandbox::start(fixtures()).await.map_err(failed)?;
    let clock = ManualClock::new(Utc::now());
    let options = DevOptions {
        until_idle: true,
        shopify_url: Some(sandbox.shopify_url()),
        square_url: Some(sandbox.square_url()),
        schedules: false,
        client_tries: Some(1),
        virtual_clock: Some(clock.clone()),
        ..DevOptions::new(dir.clone())
    };
    let mut dev = Dev::open(&options).await?;
    let db = ShopDb::open(dir.join("jobs.sqlite3")).map_err(failed)?;
    let began = clock.now();
    seed_stores(&db).await?;

    eprintln!(
        "demo: 3 stores on the sandbox; the store-sync fan-out, customer syncs, an installation (webhooks, then its catalog and customers)"
    );
    send(&dev, "store_sync", tick("store_sync", began)?).await?;
    for (store, ..) in STORES {
        send(&dev, "customer_sync", json!({"store_id": store})).await?;
    }
    // An installation: the webhook job enqueues the store's first catalog and customer syncs,
    // which run in their own jobs' workers (customer_sync shares the webhook job's lane).
    send(&dev, "create_shopify_webhook", json!({"store_id": "st_acme", "install": true})).await?;
    let mut jobs = dev.run(true).await?;

    eprintln!("demo: a product shared by SMS; the cart and database cleanups ticked");
    seed_carts(&db, clock.now())?;
    let share = json!({"share_id": "sh_demo_1", "store_id": "st_acme",
        "product_id": "gid://shopify/Product/acme-0", "phone": "+14155550123"});
    send(&dev, "share_product_text_message", share).await?;
    send(&dev, "clean_active_carts", tick("clean_active_carts", clock.now())?).await?;
    send(&dev, "clean_database", tick("clean_database", clock.now())?).await?;
    merge(&mut jobs, &dev.run(true).await?);

    let mut dead_letters = Vec::new();
    for job in registry::JOB_NAMES {
        let dlq = dev.backend().dlq_id(job).await?;
        for message in dev.backend().list(&dlq, 100).await? {
            // The demo's failures are all the runner's; one SQS moved would record none.
            let line = match DeadLetterError::read(&message.attributes) {
                Some(error) => DeadLetterLine {
                    job,
                    error_kind: error.kind,
                    reason: error.reason,
                    message: error.message,
                },
                None => DeadLetterLine {
                    job,
                    error_kind: "unknown".to_owned(),
                    reason: "moved by SQS".to_owned(),
                    message: "no reason recorded".to_owned(),
                },
            };
            dead_letters.push(line);
        }
    }
    let mut products = Vec::new();
    for (store, ..) in STORES {
        products.push((store.to_owned(), db.count_products(&store.into()).await.map_err(failed)?));
    }
    let sync_runs = db.recent(RecordKind::SyncRun, 100).await.map_err(failed)?.len();
    let mut carts_abandoned = 0;
    for id in ["cart_1", "cart_2", "cart_3"] {
        let cart = db.cart(&id.into()).map_err(failed)?;
        carts_abandoned += usize::from(cart.is_some_and(|c| c.status == CartStatus::Abandoned));
    }
    let outbox = crate::dev::outbox(&dir);
    Ok(DemoReport {
        products,
        sync_runs,
        carts_abandoned,
        jobs,
        dead_letters,
        emails: files_in(&outbox.join("mail")),
        texts: files_in(&outbox.join("sms")),
        seconds: started.elapsed().as_secs_f64(),
        virtual_hours: (clock.now() - began).num_seconds() as f64 / 3600.0,
    })
}
