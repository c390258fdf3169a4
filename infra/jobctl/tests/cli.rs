//! The real `jobctl` binary on the embedded backend: enqueue -> processed by `jobctl dev`; a
//! poisoned job -> `dlq list` with its reason -> `dlq redrive --error` brings back only those ->
//! processed after the fix; bad arguments refused before anything is sent.

mod support;

use std::{
    path::{Path, PathBuf},
    process::Output,
};

use jobkit::{
    clock::SystemClock,
    embedded::EmbeddedQueue,
    message::{OutgoingMessage, attr},
    ports::Queue,
};
use serde_json::{Value, json};
use shop::{
    CatalogRepository, Money, Plan, Product, Store, StoreRepository, SyncState, Variant, embedded::ShopDb,
};
use support::{folder, jobctl_command};

const SHARE: &str = "share_product_text_message";

fn jobctl(dir: &Path, args: &[&str]) -> Output {
    jobctl_command(dir, args).output().expect("jobctl runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs jobctl, expects exit code `code`, returns stdout.
fn expect(dir: &Path, args: &[&str], code: i32) -> String {
    let out = jobctl(dir, args);
    assert_eq!(
        out.status.code(),
        Some(code),
        "jobctl {args:?}\nstdout: {}\nstderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn json_of(dir: &Path, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let stdout = expect(dir, &all, 0);
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{args:?} printed no JSON ({e}): {stdout}"))
}

fn queued(dir: &Path, job: &str) -> (u64, u64) {
    let stats = json_of(dir, &["stats"]);
    let entry = stats.as_array().unwrap().iter().find(|e| e["job"] == job).unwrap().clone();
    let q = &entry["queue"];
    (
        q["visible"].as_u64().unwrap() + q["in_flight"].as_u64().unwrap() + q["delayed"].as_u64().unwrap(),
        entry["dlq_depth"].as_u64().unwrap(),
    )
}

fn dev(dir: &Path) -> Value {
    let summary = json_of(dir, &["dev", "--until-idle", "--no-schedules"]);
    summary["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["job"].as_str().unwrap().to_owned(), t.clone()))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

#[test]
fn versions_shows_each_pinned_api_version_and_when_its_support_ends() {
    let dir = folder("versions");
    let apis = json_of(&dir, &["versions"]);
    let shopify = &apis[0];
    assert_eq!(shopify["version"], shop::shopify::API_VERSION, "{apis}");
    assert_eq!(shopify["supported_until"], shop::shopify::API_VERSION_SUPPORTED_UNTIL, "{apis}");
    // Shopify supports a version for 12 months: a pin past its end is served another version.
    assert!(shopify["days_left"].as_i64().unwrap() >= 0, "the pinned Shopify version is supported: {apis}");
    assert_eq!(apis[1]["version"], shop::square::SQUARE_VERSION, "{apis}");
    let table = expect(&dir, &["versions"], 0);
    assert!(table.contains("SUPPORTED UNTIL") && table.contains(shop::shopify::API_VERSION), "{table}");
}

#[test]
fn bad_arguments_are_refused_before_anything_is_sent() {
    let dir = folder("refused");
    let cases: [(&[&str], &str); 5] = [
        (&["enqueue", "store_sync", "--args", r#"{"store":"st_1"}"#], "unknown argument field"),
        (&["enqueue", "customer_sync", "--arg", "store_id=42"], "store_id"),
        (&["enqueue", SHARE, "--arg", "share_id=sh_1"], "missing field"),
        (&["enqueue", "store_synk", "--args", "{}"], "the jobs are store_sync"),
        (&["enqueue", "store_sync", "--args", "[1, 2]"], "must be a JSON object"),
    ];
    for (args, says) in cases {
        let out = jobctl(&dir, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out.stderr));
        assert!(text(&out.stderr).contains(says), "{args:?}: {}", text(&out.stderr));
    }
    // Unreadable delays are refused by the parser with the same exit code.
    assert_eq!(jobctl(&dir, &["enqueue", "clean_database", "--delay", "3 weeks"]).status.code(), Some(2));
    for job in ["store_sync", "customer_sync", SHARE] {
        assert_eq!(queued(&dir, job), (0, 0), "{job}: nothing was sent");
    }
}

#[test]
fn a_job_further_ahead_than_the_schedule_limit_is_refused_without_a_panic() {
    let dir = folder("overflow");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("carts.jsonl");
    std::fs::write(&file, "{}\n").unwrap();
    let file = file.to_str().unwrap();
    // 100000000d overflows the clock's date; 200000000000d overflows chrono's TimeDelta, which
    // used to drop the delay and send the job to run at once.
    for delay in ["100000000d", "200000000000d", "213503982334601d"] {
        for args in [
            &["enqueue", "clean_active_carts", "--delay", delay][..],
            &["enqueue", "clean_active_carts", "--file", file, "--delay", delay][..],
        ] {
            let out = jobctl(&dir, args);
            let stderr = text(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
            assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
            assert!(stderr.contains("365 days"), "{args:?} says the limit: {stderr}");
        }
    }
    // A job in the year 9999 would hop every 15 minutes for ever: refused, as a day too far.
    for args in [
        &["enqueue", "clean_active_carts", "--at", "9999-12-31T00:00:00Z"][..],
        &["enqueue", "clean_active_carts", "--file", file, "--at", "9999-12-31T00:00:00Z"][..],
        &["enqueue", "clean_active_carts", "--delay", "366d"][..],
    ] {
        let out = jobctl(&dir, args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("365 days"), "{args:?} says the limit: {stderr}");
    }
    assert_eq!(queued(&dir, "clean_active_carts"), (0, 0), "nothing was sent");
    let furthest = json_of(&dir, &["enqueue", "clean_active_carts", "--delay", "364d"]);
    assert!(furthest["runs_at"].is_string(), "{furthest}");
}

#[test]
fn more_firings_than_jobctl_shows_are_refused_without_a_panic() {
    let dir = folder("firings");
    for count in ["100000", "18446744073709551615"] {
        let out = jobctl(&dir, &["schedules", "--count", count]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "--count {count}: {stderr}");
        assert!(!stderr.contains("panicked") && stderr.contains("--count"), "--count {count}: {stderr}");
    }
    let most = expect(&dir, &["schedules", "--count", "1000"], 0);
    assert_eq!(most.lines().count(), 4, "a header and three schedules: {}", &most[..200.min(most.len())]);
}

#[test]
fn an_enqueued_job_is_processed_by_jobctl_dev() {
    let dir = folder("processed");
    let stdout = expect(&dir, &["enqueue", "clean_database"], 0);
    assert!(stdout.starts_with("enqueued clean_database job "), "{stdout}");
    let delayed = json_of(&dir, &["enqueue", "clean_active_carts", "--delay", "1s"]);
    assert!(delayed["runs_at"].is_string(), "{delayed}");
    assert_eq!(queued(&dir, "clean_database"), (1, 0));

    let tally = dev(&dir);
    assert_eq!(tally["clean_database"]["succeeded"], 1, "{tally}");
    assert_eq!(tally["clean_active_carts"]["succeeded"], 1, "the delayed one waited, then ran: {tally}");
    assert_eq!(queued(&dir, "clean_database"), (0, 0));
    assert_eq!(queued(&dir, "clean_active_carts"), (0, 0));
}

/// Lanes under `jobctl`: a Basic store's recurring sync picks `store_sync`'s low lane, `--lane`
/// chooses another of the job's lanes and refuses one it does not have, `stats` counts each lane
/// under the job, and `jobctl dev` polls every lane.
#[test]
fn a_job_enqueued_on_another_lane_is_counted_there_and_processed_by_jobctl_dev() {
    let dir = folder("lanes");
    let lanes = |dir: &Path| {
        let stats = json_of(dir, &["stats"]);
        let entry = stats.as_array().unwrap().iter().find(|e| e["job"] == "store_sync").unwrap().clone();
        let total = |q: &Value| q["visible"].as_u64().unwrap() + q["delayed"].as_u64().unwrap();
        (total(&entry["queue"]), total(&entry["lanes"]["high"]), total(&entry["lanes"]["low"]))
    };
    expect(&dir, &["enqueue", "store_sync", "--args", r#"{"store_id":"st_basic","plan":"basic"}"#], 0);
    assert_eq!(lanes(&dir), (1, 0, 1), "a Basic store's recurring sync waits on the low lane");
    expect(&dir, &["enqueue", "store_sync", "--arg", "store_id=st_urgent"], 0);
    expect(&dir, &["enqueue", "store_sync", "--arg", "store_id=st_later", "--lane", "low"], 0);
    assert_eq!(lanes(&dir), (3, 1, 2));
    let out = jobctl(&dir, &["enqueue", "store_sync", "--arg", "store_id=st_x", "--lane", "default"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("store_sync has no default lane (its lanes: high, low)"),
        "{}",
        text(&out.stderr)
    );
    let out = jobctl(&dir, &["enqueue", "store_sync", "--arg", "store_id=st_x", "--lane", "fast"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("no lane is named \"fast\""), "{}", text(&out.stderr));
    let table = expect(&dir, &["stats"], 0);
    assert!(table.contains("  low lane"), "{table}");

    // Unknown stores: each discarded to the DLQ, from whichever lane it waited on.
    let tally = dev(&dir);
    assert_eq!(tally["store_sync"]["dead_lettered"], 3, "{tally}");
    assert_eq!(lanes(&dir), (0, 0, 0));
    assert_eq!(queued(&dir, "store_sync"), (0, 3));
}

#[test]
fn a_file_of_jobs_is_checked_whole_then_enqueued_in_bulk_and_processed() {
    let dir = folder("bulk");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("syncs.jsonl");
    let good: String = (0..250).map(|n| format!("{{\"store_id\":\"st_{n}\"}}\n")).collect();
    let bad = format!("{good}\n{{\"store\":\"st_x\"}}\nnot json\n");
    std::fs::write(&file, &bad).unwrap();
    let out = jobctl(&dir, &["enqueue", "customer_sync", "--file", file.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("2 of 252 lines")
            && stderr.contains("line 252")
            && stderr.contains("line 253: not JSON"),
        "{stderr}"
    );
    assert_eq!(queued(&dir, "customer_sync"), (0, 0), "a bad file sends nothing");

    std::fs::write(&file, &good).unwrap();
    let sent = json_of(&dir, &["enqueue", "customer_sync", "--file", file.to_str().unwrap()]);
    assert_eq!(sent["enqueued"], 250, "{sent}");
    assert_eq!(sent["jobs"].as_array().unwrap().len(), 250);
    assert_eq!(sent["jobs"][249]["line"], 250, "{sent}");
    assert_eq!(queued(&dir, "customer_sync"), (250, 0));
    // Unknown stores: each discarded to the DLQ by the job, none lost.
    let tally = dev(&dir);
    assert_eq!(tally["customer_sync"]["dead_lettered"], 250, "{tally}");
    assert_eq!(queued(&dir, "customer_sync"), (0, 250));
}

async fn seed_store_and_product(dir: &Path) {
    let db = ShopDb::open(dir.join("jobs.sqlite3")).unwrap();
    db.put(&Store {
        id: "st_1".into(),
        shopify_domain: "acme.myshopify.com".parse().unwrap(),
        pos_location_id: None,
        plan: Plan::Basic,
        sync_state: SyncState::Never,
    })
    .await
    .unwrap();
    db.upsert_products(&[Product {
        id: "gid://shopify/Product/1".into(),
        store_id: "st_1".into(),
        title: "Red Shoe".into(),
        handle: "red-shoe".into(),
        variants: vec![Variant {
            id: "gid://shopify/ProductVariant/1".into(),
            sku: None,
            price: Money { minor: 4990, currency: "USD".into() },
            inventory: 3,
        }],
    }])
    .await
    .unwrap();
}

/// A DLQ message of another kind, as the runner writes it after a throttled job exhausted.
async fn throttled_dead_letter(dir: &Path) {
    let db = jobkit::embedded::EmbeddedDb::open(dir.join("jobs.sqlite3")).unwrap();
    let queue = EmbeddedQueue::new(db, std::sync::Arc::new(SystemClock));
    let attributes = [
        (attr::JOB, SHARE),
        (attr::JOB_ID, "job-throttled"),
        (attr::ERROR_KIND, "throttled"),
        (attr::ERROR_MESSAGE, "sns: rate exceeded"),
        (attr::ATTEMPTS, "5"),
        (attr::DLQ_REASON, "exhausted"),
    ];
    let message = OutgoingMessage {
        body: json!({"share_id": "sh_9", "store_id": "st_1", "product_id": "p9", "phone": "+14155550199"})
            .to_string(),
        attributes: attributes.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        ..OutgoingMessage::default()
    };
    queue.send("share-product-text-message-dlq", message).await.unwrap();
}

#[tokio::test]
async fn a_poisoned_job_is_listed_redriven_by_error_kind_and_processed_after_the_fix() {
    let dir = folder("poisoned");
    for share in ["sh_1", "sh_2"] {
        let args = json!({"share_id": share, "store_id": "st_1", "product_id": "gid://shopify/Product/1", "phone": "+14155550123"});
        expect(&dir, &["enqueue", SHARE, "--args", &args.to_string()], 0);
    }
    // The store is not there yet: both are discarded to the DLQ with the reason.
    let tally = dev(&dir);
    assert_eq!(tally[SHARE]["dead_lettered"], 2, "{tally}");
    throttled_dead_letter(&dir).await;

    let listed = json_of(&dir, &["dlq", "list", SHARE]);
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 3, "{listed:?}");
    let not_found: Vec<&Value> = listed.iter().filter(|l| l["error_kind"] == "not_found").collect();
    assert_eq!(not_found.len(), 2, "{listed:?}");
    for letter in &not_found {
        assert_eq!(letter["reason"], "discarded");
        assert!(letter["error_message"].as_str().unwrap().contains("st_1"), "{letter}");
    }
    let table = expect(&dir, &["dlq", "list", "--error", "throttled"], 0);
    assert!(table.contains("job-throttled") && !table.contains("not_found"), "{table}");

    let id = not_found[0]["id"].as_str().unwrap();
    let shown = json_of(&dir, &["dlq", "show", id]);
    assert_eq!(shown["arguments"]["share_id"].as_str().map(|s| s.starts_with("sh_")), Some(true), "{shown}");
    assert_eq!(jobctl(&dir, &["dlq", "show", "no-such-id"]).status.code(), Some(4));

    // The fix: the store and its product arrive.
    seed_store_and_product(&dir).await;
    let dry = json_of(&dir, &["dlq", "redrive", SHARE, "--error", "not_found", "--dry-run"]);
    assert_eq!(dry["would_redrive"].as_array().unwrap().len(), 2, "{dry}");
    assert_eq!(queued(&dir, SHARE), (0, 3), "a dry run changes nothing");

    let redriven = json_of(&dir, &["dlq", "redrive", SHARE, "--error", "not_found"]);
    assert_eq!(
        (redriven["redriven"].as_u64(), redriven["skipped"].as_u64()),
        (Some(2), Some(1)),
        "{redriven}"
    );
    assert_eq!(queued(&dir, SHARE), (2, 1), "only the not_found ones came back");

    let tally = dev(&dir);
    assert_eq!(
        (tally[SHARE]["succeeded"].as_u64(), tally[SHARE]["dead_lettered"].as_u64()),
        (Some(2), Some(0)),
        "{tally}"
    );
    let texts: Vec<String> = std::fs::read_dir(dir.join("outbox/sms"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert!(texts.iter().all(|t| t.contains("Red Shoe") && !t.contains("+14155550123")), "{texts:?}");

    // Purging asks first; without a terminal to ask on, --yes is required.
    let declined = jobctl(&dir, &["dlq", "purge", SHARE]);
    assert_eq!(declined.status.code(), Some(3), "{}", text(&declined.stderr));
    assert!(text(&declined.stderr).contains("--yes"));
    assert_eq!(queued(&dir, SHARE), (0, 1));
    let purged = json_of(&dir, &["dlq", "purge", SHARE, "--yes"]);
    assert_eq!(purged["purged"], 1);
    assert_eq!(queued(&dir, SHARE), (0, 0));
}

#[test]
fn schedules_cron_and_retry_plans_are_read_off_the_registry() {
    let dir = folder("info");
    assert_eq!(expect(&dir, &["cron", "every day at 3am"], 0).lines().next(), Some("cron(0 3 * * ? *)"));
    let refused = jobctl(&dir, &["cron", "whenever it suits"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(text(&refused.stderr).contains("every day at 3am"), "the error shows what works");

    let schedules = json_of(&dir, &["schedules"]);
    let schedules = schedules.as_array().unwrap();
    assert_eq!(schedules.len(), 3);
    for schedule in schedules {
        assert_eq!(schedule["timezone"], "UTC");
        assert_eq!(schedule["next"].as_array().unwrap().len(), 3, "{schedule}");
    }

    let plan = expect(&dir, &["retry-plan", "store_sync"], 0);
    assert!(plan.contains("on throttled") && plan.contains("-> DLQ"), "{plan}");
    let plan = json_of(&dir, &["retry-plan", "store_sync"]);
    let throttled =
        plan["plans"].as_array().unwrap().iter().find(|p| p["error_kind"] == "throttled").unwrap();
    assert_eq!(throttled["attempts"].as_array().unwrap().len(), 10, "{throttled}");
    assert_eq!(jobctl(&dir, &["retry-plan", "nope"]).status.code(), Some(2));

    let jobs = json_of(&dir, &["jobs"]);
    assert_eq!(jobs.as_array().unwrap().len(), 6);
}

#[test]
fn cron_reads_schedules_as_people_write_them_with_their_time_zone() {
    let dir = folder("cron-zones");
    for (text, expression) in [
        ("at 3am every day", "cron(0 3 * * ? *)"),
        ("on the 1st of every month at 6am", "cron(0 6 1 * ? *)"),
        ("every weekday at 6pm", "cron(0 18 ? * MON-FRI *)"),
        ("every monday at 9:30", "cron(30 9 ? * MON *)"),
    ] {
        assert_eq!(expect(&dir, &["cron", text], 0).lines().next(), Some(expression), "{text}");
    }
    let berlin = json_of(&dir, &["cron", "every day at 3am Europe/Berlin"]);
    assert_eq!(berlin["expression"], "cron(0 3 * * ? *)");
    assert_eq!(berlin["timezone"], "Europe/Berlin");
    let next: Vec<&str> =
        berlin["next_local"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    assert_eq!(next.len(), 3);
    for (local, utc) in next.iter().zip(berlin["next"].as_array().unwrap()) {
        // 03:00 in Berlin is 01:00 UTC in summer (+02:00) and 02:00 UTC in winter (+01:00).
        let utc = utc.as_str().unwrap();
        let summer = local.ends_with("T03:00:00+02:00") && utc.ends_with("T01:00:00Z");
        let winter = local.ends_with("T03:00:00+01:00") && utc.ends_with("T02:00:00Z");
        assert!(summer || winter, "{local} = {utc}");
    }
    let printed = expect(&dir, &["cron", "every day at 3am Europe/Berlin"], 0);
    assert!(printed.contains("zone: Europe/Berlin") && printed.contains(" 03:00 CE"), "{printed}");
    let misspelt = jobctl(&dir, &["cron", "every day at 3am Europe/Berln"]);
    assert_eq!(misspelt.status.code(), Some(2));
    assert!(text(&misspelt.stderr).contains("not a time zone"), "{}", text(&misspelt.stderr));
}

#[test]
fn schedules_show_local_and_utc_firings_in_the_zone_a_deployment_gives_the_stack() {
    let dir = folder("schedules-zones");
    let schedules = json_of(&dir, &["schedules", "--schedule-time-zone", "Europe/Berlin"]);
    let by_job = |job: &str| {
        schedules
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["job"] == job)
            .unwrap_or_else(|| panic!("{job}"))
            .clone()
    };
    let database = by_job("clean_database");
    assert_eq!(database["every"], "every day at 3am");
    assert_eq!(database["declared_zone"], "stack");
    assert_eq!(database["timezone"], "Europe/Berlin");
    for local in database["next_local"].as_array().unwrap() {
        assert!(local.as_str().unwrap().contains("T03:00:00+0"), "{local}");
    }
    let fan_out = by_job("store_sync");
    assert_eq!(fan_out["timezone"], "UTC", "declared in UTC, whatever the stack's zone");
    let table = expect(&dir, &["schedules", "--schedule-time-zone", "Europe/Berlin"], 0);
    assert!(table.contains("Europe/Berlin (ScheduleTimeZone)") && table.contains(" 03:00 CE"), "{table}");
    assert_eq!(jobctl(&dir, &["schedules", "--schedule-time-zone", "Mars/Olympus"]).status.code(), Some(2));
}

#[test]
fn the_demo_runs_every_job_and_ends_with_retries_in_the_dlq_and_mail_and_a_text_in_the_outbox() {
    let dir = folder("demo");
    let report = json_of(&dir, &["dev", "--demo"]);
    let jobs: serde_json::Map<String, Value> = report["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["job"].as_str().unwrap().to_owned(), t.clone()))
        .collect();
    let count = |job: &str, what: &str| jobs[job][what].as_u64().unwrap();
    // The fan-out and two healthy stores; the third store's Shopify is down: retried, then the DLQ.
    // The installation's chained catalog sync of st_acme is the fourth success, the fan-out's
    // batch callback (its three syncs finished) the fifth.
    assert_eq!((count("store_sync", "succeeded"), count("store_sync", "dead_lettered")), (5, 1), "{report}");
    let batches = json_of(&dir.join("demo"), &["batches"]);
    let fan_out = &batches.as_array().unwrap()[0];
    let n = |field: &str| fan_out[field].as_u64().unwrap();
    assert_eq!((n("total"), n("succeeded"), n("failed")), (3, 2, 1), "{batches}");
    assert_eq!(fan_out["callbacks_sent"], true, "{batches}");
    assert!(count("store_sync", "retried") >= 5, "{report}");
    // The revoked POS token is discarded at once; the installation's chained sync ran in
    // customer_sync's own worker (both jobs are on the default lane: routing is by job).
    assert_eq!((count("customer_sync", "succeeded"), count("customer_sync", "dead_lettered")), (3, 1));
    for job in
        ["create_shopify_webhook", "share_product_text_message", "clean_active_carts", "clean_database"]
    {
        assert_eq!((count(job, "succeeded"), count(job, "dead_lettered")), (1, 0), "{job}: {report}");
    }
    let kinds: Vec<(&str, &str)> = report["dead_letters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["error_kind"].as_str().unwrap(), l["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(kinds, [("unavailable", "exhausted"), ("unauthorized", "discarded")]);
    assert_eq!(report["products"], json!([["st_acme", 120], ["st_globex", 35], ["st_initech", 0]]));
    assert_eq!(report["carts_abandoned"], 2);
    assert_eq!(report["texts"], 1);
    assert!(report["emails"].as_u64().unwrap() >= 2, "an email for each job in the DLQ: {report}");
    // The DLQ is there to inspect afterwards.
    let listed = json_of(&dir.join("demo"), &["dlq", "list"]);
    assert_eq!(listed.as_array().unwrap().len(), 2);
}

#[test]
fn the_demo_shows_its_story_and_summary_and_keeps_every_records_log_in_a_file() {
    let dir = folder("demo-quiet");
    let out = jobctl_command(&dir, &["dev", "--demo"]).env("RUST_LOG", "info").output().expect("jobctl runs");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (stderr, stdout) = (text(&out.stderr), text(&out.stdout));
    assert!(!stderr.contains("record handled"), "no record's log on the terminal: {stderr}");
    assert!(stderr.lines().count() <= 5, "the story only: {stderr}");
    assert!(stdout.contains("SUCCEEDED") && stdout.contains("in the DLQs (2)"), "the summary: {stdout}");
    assert!(stdout.contains("demo.log"), "the summary names the log file: {stdout}");
    let log = std::fs::read_to_string(dir.join("demo/demo.log")).expect("the demo's log file");
    assert!(
        log.lines().filter(|l| l.contains("record handled")).count() >= 5,
        "the retries and the DLQ: {log}"
    );

    let verbose = jobctl_command(&dir, &["dev", "--demo", "--verbose"])
        .env("RUST_LOG", "info")
        .output()
        .expect("jobctl runs");
    assert!(text(&verbose.stderr).contains("record handled"), "--verbose logs every record on stderr");
    assert!(!dir.join("demo/demo.log").exists(), "and writes no log file");
}

/// Every file under `dir`, read as text.
fn texts_under(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(texts_under(&path));
        } else if let Ok(text) = std::fs::read_to_string(&path) {
            found.push((path, text));
        }
    }
    found
}

#[test]
fn tokens_emails_and_phone_numbers_never_reach_logs_or_the_outbox() {
    let dir = folder("secrets");
    let out = jobctl_command(&dir, &["dev", "--demo", "--json-logs"])
        .env("RUST_LOG", "debug")
        .output()
        .expect("jobctl runs");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let log_file = std::fs::read_to_string(dir.join("demo/demo.log")).expect("the demo's log file");
    let logs = text(&out.stderr) + &text(&out.stdout) + &log_file;
    assert!(log_file.lines().count() > 50, "debug logs were written: {logs}");
    let outbox = texts_under(&dir.join("demo/outbox"));
    assert!(outbox.len() >= 3, "emails and a text were written: {outbox:?}");
    // The text went out, to a number shown masked.
    assert!(outbox.iter().any(|(_, text)| text.contains("To: +*********23")), "{outbox:?}");
    // The demo's tokens, its customers' addresses and numbers, and the number a product was texted to.
    let secrets = [
        "shpat_acme",
        "shpat_initech",
        "sq_acme",
        "sq_revoked",
        "customer12@example.com",
        "+14155550123",
        "+14155550012",
    ];
    for secret in secrets {
        assert!(!logs.contains(secret), "{secret} in the logs");
        for (path, text) in &outbox {
            assert!(!text.contains(secret), "{secret} in {}", path.display());
        }
    }
}

const CUSTOMER_DLQ: &str = "customer-sync-dlq";

fn attributes(pairs: &[(&str, &str)]) -> std::collections::BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

/// customer_sync's DLQ as each writer leaves it: the runner's `error` attribute, the older
/// one-attribute-per-field form, and two messages SQS's redrive moved (the embedded queue's,
/// after `maxReceiveCount` receives), one whose last error the runner recorded. Returns the
/// receives after which the queue moved them and the SQS-moved message without a `job_id`.
async fn three_kinds_of_dead_letters(dir: &Path) -> (u32, String) {
    let backend = jobctl::backend::Backend::open_embedded(dir, std::sync::Arc::new(SystemClock)).unwrap();
    let queue = backend.queue();
    let at =
        chrono::DateTime::parse_from_rfc3339("2026-12-01T10:00:00Z").unwrap().with_timezone(&chrono::Utc);
    let error = jobkit::dead_letter::DeadLetterError {
        kind: "throttled".into(),
        message: "square: 429 too many requests".into(),
        reason: "exhausted".into(),
        attempts: 8,
        first_failed_at: Some(at),
        last_failed_at: Some(at),
        original_message_id: "m-original".into(),
        dropped_attributes: Vec::new(),
    };
    let folded = OutgoingMessage {
        body: json!({"store_id": "st_1"}).to_string(),
        attributes: attributes(&[
            (attr::JOB, "customer_sync"),
            (attr::JOB_ID, "job-folded"),
            (attr::ERROR, &error.to_attribute()),
            (attr::IDEMPOTENCY_KEY, "idem-st_1"),
            (attr::CONTINUATION, r#"{"completed":["customers"],"current":null,"resumptions":1}"#),
            ("tenant", "acme"),
        ]),
        ..OutgoingMessage::default()
    };
    queue.send(CUSTOMER_DLQ, folded).await.unwrap();
    let older = OutgoingMessage {
        body: json!({"store_id": "st_2"}).to_string(),
        attributes: attributes(&[
            (attr::JOB, "customer_sync"),
            (attr::JOB_ID, "job-older"),
            (attr::ERROR_KIND, "not_found"),
            (attr::ERROR_MESSAGE, "store st_2 not found"),
            (attr::ATTEMPTS, "1"),
            (attr::FIRST_FAILED_AT, "2026-12-01T09:00:00+00:00"),
            (attr::LAST_FAILED_AT, "2026-12-01T09:00:00+00:00"),
            (attr::ORIGINAL_MESSAGE_ID, "m-older"),
            (attr::DLQ_REASON, "discarded"),
            (attr::IDEMPOTENCY_KEY, "idem-st_2"),
        ]),
        ..OutgoingMessage::default()
    };
    queue.send(CUSTOMER_DLQ, older).await.unwrap();

    // A crash loop: received until the queue's redrive moves them (no job_id on the first: its
    // job id is its message id).
    let crashed =
        OutgoingMessage { body: json!({"store_id": "st_3"}).to_string(), ..OutgoingMessage::default() };
    let crashed_id = queue.send("customer-sync", crashed).await.unwrap();
    let quiet = OutgoingMessage {
        body: json!({"store_id": "st_4"}).to_string(),
        attributes: attributes(&[(attr::JOB, "customer_sync"), (attr::JOB_ID, "job-quiet")]),
        ..OutgoingMessage::default()
    };
    queue.send("customer-sync", quiet).await.unwrap();
    let mut receives = 0;
    loop {
        let batch = queue.receive("customer-sync", 10, std::time::Duration::ZERO).await.unwrap();
        if batch.is_empty() {
            break;
        }
        receives += 1;
        assert_eq!(batch.len(), 2, "both crash together");
        for message in batch {
            queue
                .change_visibility("customer-sync", &message.receipt_handle, std::time::Duration::ZERO)
                .await
                .unwrap();
        }
    }
    let spec = jobctl::registry::spec("customer_sync").unwrap();
    assert_eq!(receives, spec.policy.max_attempts() + jobctl::registry::RECEIVE_MARGIN);
    let last = jobkit::dead_letter::LastError {
        kind: "timeout".into(),
        message: "ran past its 300s timeout".into(),
        attempt: receives,
        at,
    };
    let store = backend.store();
    jobkit::dead_letter::save_last_error(
        store.as_ref(),
        "customer_sync",
        &crashed_id,
        &last,
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    (receives, crashed_id)
}

fn by_id(listed: &Value) -> serde_json::Map<String, Value> {
    listed.as_array().unwrap().iter().map(|l| (l["id"].as_str().unwrap().to_owned(), l.clone())).collect()
}

#[tokio::test]
async fn the_dlq_reads_the_error_attribute_the_older_form_and_what_sqs_moved() {
    let dir = folder("accounts");
    let (receives, crashed) = three_kinds_of_dead_letters(&dir).await;
    let moved = format!("moved by SQS after {receives} receives, no reason recorded");

    let listed = by_id(&json_of(&dir, &["dlq", "list", "customer_sync"]));
    assert_eq!(listed.len(), 4, "{listed:?}");
    let folded = &listed["job-folded"];
    assert_eq!(folded["recorded_by"], "runner", "{folded}");
    assert_eq!(folded["error_kind"], "throttled", "{folded}");
    assert_eq!(folded["error_message"], "square: 429 too many requests", "{folded}");
    assert_eq!((folded["reason"].as_str(), folded["attempts"].as_u64()), (Some("exhausted"), Some(8)));
    let older = &listed["job-older"];
    assert_eq!(older["recorded_by"], "runner", "{older}");
    assert_eq!(
        (older["error_kind"].as_str(), older["reason"].as_str()),
        (Some("not_found"), Some("discarded"))
    );
    assert_eq!(older["error_message"], "store st_2 not found", "{older}");
    let sqs = &listed[&crashed];
    assert_eq!(sqs["recorded_by"], "sqs", "{sqs}");
    assert_eq!(sqs["error_message"], moved.as_str(), "{sqs}");
    assert_eq!(sqs["receives"], receives, "{sqs}");
    assert_eq!(sqs["last_error"]["kind"], "timeout", "{sqs}");
    assert_eq!(sqs["last_error"]["message"], "ran past its 300s timeout", "{sqs}");
    let quiet = &listed["job-quiet"];
    assert_eq!(
        (quiet["recorded_by"].as_str(), quiet["last_error"].is_null()),
        (Some("sqs"), true),
        "{quiet}"
    );

    let table = expect(&dir, &["dlq", "list", "customer_sync"], 0);
    assert!(table.contains(&moved) && table.contains("timeout"), "{table}");
    assert!(table.contains("square: 429") && table.contains("store st_2 not found"), "{table}");

    let kinds = |kind: &str| -> Vec<String> {
        let mut ids: Vec<String> =
            by_id(&json_of(&dir, &["dlq", "list", "--error", kind])).keys().cloned().collect();
        ids.sort();
        ids
    };
    assert_eq!(kinds("throttled"), ["job-folded"]);
    assert_eq!(kinds("not_found"), ["job-older"]);
    let mut unknown = vec![crashed.clone(), "job-quiet".to_owned()];
    unknown.sort();
    assert_eq!(kinds("unknown"), unknown, "no account: kind unknown");

    let shown = expect(&dir, &["dlq", "show", &crashed], 0);
    assert!(shown.contains(&moved), "{shown}");
    assert!(shown.contains("timeout") && shown.contains("ran past its 300s timeout"), "{shown}");
    let shown = expect(&dir, &["dlq", "show", "job-quiet"], 0);
    assert!(shown.contains(&moved) && shown.contains("no last error recorded"), "{shown}");
    let shown = expect(&dir, &["dlq", "show", "job-folded"], 0);
    assert!(shown.contains("throttled") && shown.contains("square: 429 too many requests"), "{shown}");
    let shown = json_of(&dir, &["dlq", "show", "job-older"]);
    assert_eq!(
        (shown["recorded_by"].as_str(), shown["error"]["kind"].as_str()),
        (Some("runner"), Some("not_found"))
    );
    let shown = json_of(&dir, &["dlq", "show", &crashed]);
    assert_eq!((shown["recorded_by"].as_str(), shown["error"].is_null()), (Some("sqs"), true), "{shown}");
    assert_eq!(shown["last_error"]["attempt"], receives, "{shown}");
}

#[tokio::test]
async fn a_redriven_copy_leaves_the_error_behind_and_keeps_what_the_job_needs() {
    let dir = folder("redrive-attributes");
    three_kinds_of_dead_letters(&dir).await;
    let error_attributes = [
        attr::ERROR,
        attr::ERROR_KIND,
        attr::ERROR_MESSAGE,
        attr::ATTEMPTS,
        attr::FIRST_FAILED_AT,
        attr::LAST_FAILED_AT,
        attr::ORIGINAL_MESSAGE_ID,
        attr::DLQ_REASON,
    ];
    let queue = || {
        let db = jobkit::embedded::EmbeddedDb::open(dir.join("jobs.sqlite3")).unwrap();
        EmbeddedQueue::new(db, std::sync::Arc::new(SystemClock)).peek("customer-sync", 10).unwrap()
    };

    let redriven = json_of(&dir, &["dlq", "redrive", "customer_sync", "--error", "throttled"]);
    assert_eq!(redriven["redriven"], 1, "{redriven}");
    let back = queue();
    assert_eq!(back.len(), 1);
    let names: Vec<&str> = back[0].attributes.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [attr::CONTINUATION, attr::IDEMPOTENCY_KEY, attr::JOB, attr::JOB_ID, "tenant"],
        "{back:?}"
    );
    assert_eq!(back[0].attributes[attr::JOB_ID], "job-folded");
    assert_eq!(back[0].attributes[attr::IDEMPOTENCY_KEY], "idem-st_1");
    assert_eq!(back[0].attributes["tenant"], "acme");

    let redriven = json_of(&dir, &["dlq", "redrive", "customer_sync"]);
    assert_eq!(
        (redriven["redriven"].as_u64(), redriven["skipped"].as_u64()),
        (Some(3), Some(0)),
        "{redriven}"
    );
    let back = queue();
    assert_eq!(back.len(), 4);
    for copy in &back {
        for name in error_attributes {
            assert!(!copy.attributes.contains_key(name), "{name} went back: {copy:?}");
        }
    }
    let older = back
        .iter()
        .find(|m| m.attributes.get(attr::JOB_ID).map(String::as_str) == Some("job-older"))
        .unwrap();
    assert_eq!(
        older.attributes.get(attr::IDEMPOTENCY_KEY).map(String::as_str),
        Some("idem-st_2"),
        "{older:?}"
    );
}

#[test]
fn a_cancelled_job_is_acknowledged_by_jobctl_dev_without_running_and_bad_input_is_refused() {
    let dir = folder("cancel");
    let cancelled = json_of(&dir, &["enqueue", "clean_database", "--delay", "1s"]);
    json_of(&dir, &["enqueue", "clean_database", "--delay", "1s"]);
    let id = cancelled["job_id"].as_str().unwrap();
    let stdout = expect(&dir, &["cancel", "clean_database", id], 0);
    assert!(stdout.starts_with(&format!("cancelled clean_database job {id}")), "{stdout}");
    expect(&dir, &["cancel", "no_such_job", id], 2);
    expect(&dir, &["cancel", "clean_database", ""], 2);

    let tally = dev(&dir);
    assert_eq!(tally["clean_database"]["succeeded"], 1, "the other one ran: {tally}");
    assert_eq!(queued(&dir, "clean_database"), (0, 0), "the cancelled one is gone, not in the DLQ");
}

#[test]
fn a_paused_job_waits_in_its_queue_under_jobctl_dev_until_resumed() {
    let dir = folder("pause");
    json_of(&dir, &["enqueue", "clean_database"]);
    json_of(&dir, &["enqueue", "clean_active_carts"]);
    let paused = json_of(&dir, &["pause", "clean_database"]);
    assert_eq!(paused, serde_json::json!({"job": "clean_database", "paused": true}));
    let stats = json_of(&dir, &["stats"]);
    let paused_jobs: Vec<&str> = stats
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["paused"] == true)
        .map(|s| s["job"].as_str().unwrap())
        .collect();
    assert_eq!(paused_jobs, ["clean_database"], "stats says which jobs are paused");
    expect(&dir, &["pause", "no_such_job"], 2);

    // --until-idle ends: a paused job's queue does not keep it waiting.
    let tally = dev(&dir);
    assert_eq!(tally["clean_active_carts"]["succeeded"], 1, "{tally}");
    assert_eq!(tally["clean_database"]["succeeded"], 0, "{tally}");
    assert_eq!(queued(&dir, "clean_database"), (1, 0), "it waits in its queue");

    let resumed = json_of(&dir, &["resume", "clean_database"]);
    assert_eq!(resumed["paused"], false);
    assert_eq!(dev(&dir)["clean_database"]["succeeded"], 1);
    assert_eq!(queued(&dir, "clean_database"), (0, 0));
}

#[tokio::test]
async fn the_dlq_summary_groups_by_error_kind_and_a_short_listing_says_how_many_it_left_out() {
    let dir = folder("summary");
    three_kinds_of_dead_letters(&dir).await;
    let summary = json_of(&dir, &["dlq", "summary", "customer_sync"]);
    let groups: Vec<(String, u64)> = summary["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (g["error_kind"].as_str().unwrap().to_owned(), g["count"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        groups,
        [("not_found".to_owned(), 1), ("throttled".to_owned(), 1), ("unknown".to_owned(), 2)],
        "{summary}"
    );
    assert_eq!((summary["read"].as_u64(), summary["depth"].as_u64()), (Some(4), Some(4)));
    let text = expect(&dir, &["dlq", "summary"], 0);
    assert!(text.contains("4 of 4 messages read"), "{text}");

    let listed = expect(&dir, &["dlq", "list", "customer_sync", "--limit", "1"], 0);
    assert!(listed.contains("showing 1 of 4 messages"), "{listed}");
    let all = json_of(&dir, &["dlq", "list", "customer_sync", "--all"]);
    assert_eq!(all.as_array().unwrap().len(), 4);
    expect(&dir, &["dlq", "redrive", "customer_sync", "--rate", "0"], 2);
    // --rate paces the moves: four at four a second cannot take less than a second (a bound
    // the pacing sets, not a measurement; without it they take milliseconds).
    let started = std::time::Instant::now();
    let paced = json_of(&dir, &["dlq", "redrive", "customer_sync", "--rate", "4"]);
    assert!(started.elapsed() >= std::time::Duration::from_millis(950), "{:?}", started.elapsed());
    assert_eq!(paced["redriven"], 4, "{paced}");
    expect(&dir, &["dlq", "list", "--all", "--limit", "3"], 2);
    expect(&dir, &["dlq", "summary", "no_such_job"], 2);
}

/// `jobctl cost`: one job's row priced from the embedded counts, a month at --jobs-per-day as
/// that many jobs a day for 30 days, x86_64 dearer than arm64, and an unknown job refused.
#[test]
fn cost_prices_a_job_per_million_and_per_month_and_refuses_an_unknown_job() {
    let dir = folder("cost");
    let table = expect(&dir, &["cost", "store_sync"], 0);
    let mut lines = table.lines();
    let header = lines.next().unwrap_or_default();
    for column in ["JOB", "SQS", "LAMBDA", "DYNAMODB", "PER 1M JOBS", "PER 1M RETRIES", "LAMBDAKIQ 1M"] {
        assert!(header.contains(column), "{column} in {header}");
    }
    let row = lines.next().unwrap_or_default();
    assert!(row.starts_with("store_sync "), "{table}");
    assert!(row.contains('$'), "{row}");
    assert!(!table.contains("customer_sync "), "only the job asked for: {table}");
    assert!(!header.contains("PER MONTH"), "no month without --jobs-per-day");

    let priced = json_of(&dir, &["cost", "store_sync", "--jobs-per-day", "50000"]);
    let job = &priced["jobs"][0];
    assert_eq!(job["job"], "store_sync");
    let per_million = job["jobkit"]["dollars_per_million_jobs"].as_f64().expect("per million");
    let per_month = job["jobkit"]["dollars_per_month"].as_f64().expect("per month");
    assert!(per_million > 0.0, "{job}");
    assert!((per_month - per_million / 1e6 * 50_000.0 * 30.0).abs() < 1e-9 * per_month.max(1.0), "{job}");
    let by_service = &job["jobkit"]["by_service_per_million_jobs"];
    let sum: f64 = ["sqs", "lambda", "dynamodb", "ses", "logs", "secrets_manager"]
        .iter()
        .map(|s| by_service[s].as_f64().expect("a service"))
        .sum();
    assert!((sum - per_million).abs() < 1e-9 * per_million, "the services add up: {by_service}");
    let month = expect(&dir, &["cost", "store_sync", "--jobs-per-day", "50000"], 0);
    assert!(month.lines().next().unwrap_or_default().contains("PER MONTH"), "{month}");

    let x86 = json_of(&dir, &["cost", "store_sync", "--architecture", "x86_64"]);
    let x86_lambda = x86["jobs"][0]["jobkit"]["by_service_per_million_jobs"]["lambda"].as_f64().unwrap();
    assert!(x86_lambda > by_service["lambda"].as_f64().unwrap(), "x86_64's GB-seconds cost more");

    let out = jobctl(&dir, &["cost", "store_synk"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("the jobs are"), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty(), "nothing priced: {}", text(&out.stdout));
}
