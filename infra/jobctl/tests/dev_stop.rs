//! Ctrl-C on the real `jobctl dev` while a store sync is in the middle of a Shopify request:
//! the first stops it at its next checkpoint, and the sync continues from there in the next run;
//! a second one stops at once and leaves the message in flight, not lost.

mod support;

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use serde_json::Value;
use shop::{CatalogRepository, Plan, Secret, Store, StoreRepository, SyncState, embedded::ShopDb};
use shop_sandbox::{Behaviour, FixtureShop, Fixtures, Sandbox};
use support::{folder, jobctl_command};
use tokio::{
    io::{AsyncBufReadExt, BufReader, Lines},
    process::{Child, ChildStderr, Command},
};

const PRODUCTS: usize = 1000;
/// The products a sync's page brings.
const PAGE: usize = shop::shopify::MAX_PRODUCTS_PAGE as usize;
/// How long a step of these tests may take before it counts as hung.
const HUNG: Duration = Duration::from_secs(60);

async fn sandbox() -> Sandbox {
    let shop = FixtureShop { token: "shpat_acme".into(), products: PRODUCTS, behaviour: Behaviour::Healthy };
    let fixtures = Fixtures { shops: HashMap::from([("acme".to_owned(), shop)]), pos: HashMap::new() };
    Sandbox::start(fixtures).await.expect("the sandbox starts")
}

/// A backend folder with the store `st_1` (`acme.myshopify.com`) and a sync of it enqueued.
async fn backend_with_a_sync(name: &str) -> PathBuf {
    let dir = folder(name);
    std::fs::create_dir_all(&dir).unwrap();
    let db = ShopDb::open(dir.join("jobs.sqlite3")).unwrap();
    let store = Store {
        id: "st_1".into(),
        shopify_domain: "acme.myshopify.com".parse().unwrap(),
        pos_location_id: None,
        plan: Plan::Basic,
        sync_state: SyncState::Never,
    };
    db.put(&store).await.unwrap();
    db.set_shopify_token(&store.id, &Secret::new("shpat_acme".to_owned())).unwrap();
    let out =
        jobctl(&dir, &["enqueue", "store_sync", "--args", r#"{"store_id":"st_1"}"#]).output().await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    dir
}

fn jobctl(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::from(jobctl_command(dir, args));
    command.stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    command
}

/// `jobctl dev` against the sandbox, without schedules.
fn dev(dir: &Path, sandbox: &Sandbox, extra: &[&str]) -> Command {
    let url = sandbox.shopify_url();
    let mut args = vec!["--json", "dev", "--no-schedules", "--shopify-url", url.as_str()];
    args.extend_from_slice(extra);
    jobctl(dir, &args)
}

fn interrupt(child: &Child) {
    let pid = child.id().expect("the child runs");
    let status = std::process::Command::new("sh").args(["-c", &format!("kill -INT {pid}")]).status().unwrap();
    assert!(status.success());
}

/// Reads the child's log lines until one contains `text`.
async fn read_until(lines: &mut Lines<BufReader<ChildStderr>>, text: &str) {
    let mut seen = String::new();
    let found = tokio::time::timeout(HUNG, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            seen.push_str(&line);
            seen.push('\n');
            if line.contains(text) {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(found, Ok(true), "no log line with {text:?}; the log:\n{seen}");
}

/// Starts `jobctl dev` with the sandbox paused and returns once the sync's first Shopify
/// request is being held: the job is mid-run.
async fn dev_caught_mid_request(dir: &Path, sandbox: &Sandbox) -> (Child, Lines<BufReader<ChildStderr>>) {
    sandbox.pause();
    let mut child = dev(dir, sandbox, &[]).spawn().expect("jobctl dev starts");
    let lines = BufReader::new(child.stderr.take().unwrap()).lines();
    tokio::time::timeout(HUNG, sandbox.holding()).await.expect("the sync asks Shopify for its first page");
    (child, lines)
}

async fn queued(dir: &Path) -> Value {
    let out = jobctl(dir, &["--json", "stats"]).output().await.unwrap();
    let stats: Value = serde_json::from_slice(&out.stdout).unwrap();
    stats.as_array().unwrap().iter().find(|e| e["job"] == "store_sync").unwrap()["queue"].clone()
}

#[tokio::test]
async fn ctrl_c_stops_a_sync_at_its_next_checkpoint_and_the_next_run_continues_it() {
    let sandbox = sandbox().await;
    let dir = backend_with_a_sync("graceful").await;
    let (child, mut lines) = dev_caught_mid_request(&dir, &sandbox).await;

    interrupt(&child);
    read_until(&mut lines, "stopping").await;
    sandbox.resume();
    let out = tokio::time::timeout(HUNG, child.wait_with_output()).await.expect("jobctl dev stops").unwrap();
    assert!(out.status.success(), "{out:?}");
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    let sync = summary["jobs"].as_array().unwrap().iter().find(|t| t["job"] == "store_sync").unwrap();
    assert_eq!((sync["succeeded"].as_u64(), sync["other"].as_u64()), (Some(0), Some(1)), "{summary}");

    let db = ShopDb::open(dir.join("jobs.sqlite3")).unwrap();
    assert_eq!(db.count_products(&"st_1".into()).await.unwrap(), PAGE as u64, "the page in hand was stored");
    let queue = queued(&dir).await;
    assert_eq!((queue["visible"].as_u64(), queue["in_flight"].as_u64()), (Some(1), Some(0)), "{queue}");

    let out = tokio::time::timeout(HUNG, dev(&dir, &sandbox, &["--until-idle"]).output())
        .await
        .expect("the next run ends")
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(db.count_products(&"st_1".into()).await.unwrap(), PRODUCTS as u64);
    let store = db.get(&"st_1".into()).await.unwrap().unwrap();
    assert!(
        matches!(store.sync_state, SyncState::Succeeded { products, .. } if products == PRODUCTS as u64),
        "{:?}",
        store.sync_state
    );
    assert_eq!(sandbox.answered(), PRODUCTS / PAGE, "each page fetched once: the sync resumed at its cursor");
}

#[tokio::test]
async fn a_second_ctrl_c_stops_at_once_and_the_message_stays_in_flight() {
    let sandbox = sandbox().await;
    let dir = backend_with_a_sync("hard").await;
    let (child, mut lines) = dev_caught_mid_request(&dir, &sandbox).await;

    interrupt(&child);
    read_until(&mut lines, "stopping").await;
    interrupt(&child);
    read_until(&mut lines, "stopped now").await;
    let out = tokio::time::timeout(HUNG, child.wait_with_output()).await.expect("jobctl dev stops").unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(sandbox.answered(), 0, "it stopped while Shopify was still holding the first page");

    let queue = queued(&dir).await;
    assert_eq!((queue["visible"].as_u64(), queue["in_flight"].as_u64()), (Some(0), Some(1)), "{queue}");
}
