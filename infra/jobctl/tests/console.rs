//! `jobctl console` as an operator uses it: the real binary, driven in headless Chromium
//! (Debian's `chromium` and `chromium-driver`, through WebDriver with fantoccini), on the demo's
//! embedded backend and on the stack as deployed on moto: the overview shows the backend's
//! numbers and refreshes by itself, a DLQ of two error kinds is grouped, redriving one kind
//! moves exactly those messages (checked through the queues, not the page), purge refuses a
//! wrong name, pause and resume take effect, a request without the token is refused. Plain
//! HTTP requests check the rest of the access rules.
//!
//! Set `JOBCTL_CONSOLE_SCREENSHOTS=docs` to write the README's screenshots (a path relative to
//! the repository's root, or absolute).

mod support;

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::Arc,
    time::Duration,
};

use fantoccini::{Client, ClientBuilder, Locator};
use futures::FutureExt;
use jobctl::{backend::Backend, commands::stats};
use jobkit::{
    clock::SystemClock,
    message::{OutgoingMessage, attr},
};
use serde_json::json;
use support::{folder, jobctl_command};
use system_tests::{moto, stack::Stack};

/// How long a page may take to show what a test waits for (the overview refreshes every 5 s).
const WAIT: Duration = Duration::from_secs(15);

/// A running `jobctl console`, stopped when dropped.
struct Console {
    child: Child,
    /// The printed URL, with the token.
    url: String,
    /// `http://127.0.0.1:PORT`.
    base: String,
}

impl Console {
    /// Starts `command` (a `jobctl ... console ...`) and reads the URL it prints.
    fn start(mut command: Command) -> Self {
        let mut child = command.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("jobctl runs");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("stdout is piped");
        BufReader::new(stdout).read_line(&mut line).expect("jobctl console prints its URL");
        let url = line.trim().to_owned();
        assert!(url.starts_with("http://127.0.0.1:") && url.contains("/?token="), "printed: {line:?}");
        let base = url.split("/?").next().unwrap_or_default().to_owned();
        Self { child, url, base }
    }

    fn embedded(dir: &Path, extra: &[&str]) -> Self {
        let mut args = vec!["console"];
        args.extend_from_slice(extra);
        Self::start(jobctl_command(dir, &args))
    }

    fn token(&self) -> &str {
        self.url.split("token=").nth(1).unwrap_or_default()
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// chromedriver, stopped when dropped.
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The first of `names` found on PATH or as an absolute path.
fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    names.iter().find_map(|name| {
        let candidate = Path::new(name);
        if candidate.is_absolute() {
            return candidate.exists().then(|| candidate.to_owned());
        }
        std::env::split_paths(&path).map(|dir| dir.join(name)).find(|p| p.exists())
    })
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}

/// Starts chromedriver and waits for its "started successfully" line. A machine without it
/// fails the test: CI installs it (`.ci/run`), and a skipped browser test proves nothing.
fn chromedriver() -> Driver {
    let program = find_program(&["chromedriver", "/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"])
        .unwrap_or_else(|| {
            panic!(
                "chromedriver is not installed: the console's browser tests need Chromium and its driver \
                 (apt-get install -y chromium chromium-driver; .ci/run installs them)"
            )
        });
    let port = free_port();
    let mut child = Command::new(&program)
        .arg(format!("--port={port}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut lines = BufReader::new(stdout).lines();
    loop {
        match lines.next() {
            Some(Ok(line)) if line.contains("started successfully") => break,
            Some(Ok(_)) => {}
            _ => panic!("{} did not start", program.display()),
        }
    }
    // chromedriver keeps writing to its stdout: drain it so it never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    Driver { child, port }
}

/// A headless Chromium session on `driver`.
async fn browser(driver: &Driver) -> Client {
    let chromium = find_program(&["chromium", "/usr/bin/chromium", "chromium-browser", "google-chrome"])
        .unwrap_or_else(|| panic!("chromium is not installed: apt-get install -y chromium chromium-driver"));
    let options = json!({
        "binary": chromium,
        // --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
        "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900"],
    });
    let mut capabilities = serde_json::Map::new();
    capabilities.insert("goog:chromeOptions".to_owned(), options);
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("a Chromium session")
}

/// Runs `test` with a browser, and closes the browser whether it passed or not.
async fn with_browser<F>(test: impl FnOnce(Client) -> F)
where
    F: std::future::Future<Output = ()>,
{
    let driver = chromedriver();
    let client = browser(&driver).await;
    let outcome = std::panic::AssertUnwindSafe(test(client.clone())).catch_unwind().await;
    let _ = client.close().await;
    drop(driver);
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// Waits until the element at `xpath` exists (fantoccini polls).
async fn wait_for(client: &Client, xpath: &str) {
    if let Err(e) = client.wait().at_most(WAIT).for_element(Locator::XPath(xpath)).await {
        panic!("{xpath} did not appear: {e}\n{}", page_text(client).await);
    }
}

async fn page_text(client: &Client) -> String {
    match client.find(Locator::Css("body")).await {
        Ok(body) => body.text().await.unwrap_or_default(),
        Err(e) => format!("(no body: {e})"),
    }
}

async fn text_of(client: &Client, css: &str) -> String {
    let element = client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}"));
    element.text().await.unwrap_or_default().trim().to_owned()
}

async fn screenshot(client: &Client, name: &str) {
    let Some(dir) = std::env::var_os("JOBCTL_CONSOLE_SCREENSHOTS") else { return };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = root.join(dir);
    std::fs::create_dir_all(&dir).unwrap();
    let png = client.screenshot().await.unwrap();
    std::fs::write(dir.join(name), png).unwrap();
}

/// A DLQ message as the runner writes it (the one `error` attribute).
fn dead_letter(
    job: &str,
    job_id: &str,
    kind: &str,
    message: &str,
    body: serde_json::Value,
) -> OutgoingMessage {
    let error = jobkit::dead_letter::DeadLetterError {
        kind: kind.to_owned(),
        message: message.to_owned(),
        reason: "exhausted".to_owned(),
        attempts: 5,
        first_failed_at: Some(chrono::Utc::now() - chrono::Duration::minutes(40)),
        last_failed_at: Some(chrono::Utc::now() - chrono::Duration::minutes(2)),
        original_message_id: String::new(),
        dropped_attributes: Vec::new(),
    };
    let attributes = [(attr::JOB, job), (attr::JOB_ID, job_id), (attr::ERROR, &error.to_attribute())]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    OutgoingMessage { body: body.to_string(), attributes, ..OutgoingMessage::default() }
}

/// The bodies of the messages in the queue `id`, sorted (read through the backend, left there).
async fn bodies(backend: &Backend, id: &str) -> Vec<String> {
    let mut bodies: Vec<String> = backend.list(id, 100).await.unwrap().into_iter().map(|m| m.body).collect();
    bodies.sort();
    bodies
}

/// `jobctl dev --demo` in `dir`: the demo's data is left in `dir/demo`.
fn demo(dir: &Path) -> PathBuf {
    let out = jobctl_command(dir, &["dev", "--demo"]).output().expect("jobctl runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    dir.join("demo")
}

/// The overview row of `job`, its DLQ cell showing `depth`.
fn dlq_cell(job: &str, depth: u64) -> String {
    format!("//tr[@id='job-{job}']/td[contains(@class,'dlq')][normalize-space()='{depth}']")
}

#[tokio::test]
async fn on_the_demo_an_operator_sees_the_numbers_browses_the_dlq_by_kind_redrives_one_kind_and_purges() {
    let demo = demo(&folder("console-demo"));
    let backend = Backend::open_embedded(&demo, Arc::new(SystemClock)).unwrap();
    let queue = backend.queue();
    // Two store syncs waiting, one of them delayed, beside what the demo left.
    let store_sync_queue = backend.queue_id("store_sync").await.unwrap();
    queue
        .send(
            &store_sync_queue,
            OutgoingMessage { body: r#"{"store_id":"st_acme"}"#.into(), ..Default::default() },
        )
        .await
        .unwrap();
    let later = OutgoingMessage {
        body: r#"{"store_id":"st_globex"}"#.into(),
        delay_seconds: 600,
        ..Default::default()
    };
    queue.send(&store_sync_queue, later).await.unwrap();
    let console = Console::embedded(&demo, &[]);

    with_browser(|client| async move {
        // Without the token: refused.
        client.goto(&format!("{}/", console.base)).await.unwrap();
        wait_for(&client, "//h1[contains(., '401')]").await;
        // The printed URL: the token becomes a cookie and leaves the address bar.
        client.goto(&console.url).await.unwrap();
        wait_for(&client, "//table[@id='overview']").await;
        let address = client.current_url().await.unwrap();
        assert!(!address.as_str().contains("token"), "{address}");

        // The overview's numbers are the backend's: the demo's two DLQ messages and our two syncs.
        let numbers = stats::collect(&backend).await.unwrap();
        for job in &numbers.jobs {
            let row = format!("#job-{}", job.job);
            assert_eq!(
                text_of(&client, &format!("{row} .queued")).await,
                job.queue.visible.to_string(),
                "{row}"
            );
            assert_eq!(
                text_of(&client, &format!("{row} .delayed")).await,
                job.queue.delayed.to_string(),
                "{row}"
            );
            assert_eq!(text_of(&client, &format!("{row} .dlq")).await, job.dlq.total().to_string(), "{row}");
        }
        assert_eq!(text_of(&client, "#job-store_sync .queued").await, "1");
        assert_eq!(text_of(&client, "#job-store_sync .delayed").await, "1");
        assert_eq!(text_of(&client, "#job-store_sync .dlq").await, "1", "the demo's exhausted store sync");
        assert_eq!(text_of(&client, "#job-customer_sync .dlq").await, "1", "the demo's revoked POS token");
        assert_eq!(text_of(&client, "#job-clean_database .schedule").await, "every day at 3am");
        assert!(text_of(&client, "#job-clean_database .next").await.ends_with("03:00"));
        // The demo's fan-out was a batch of three syncs: done, one failed, called back.
        assert_eq!(text_of(&client, "tr.batch .count").await, "3/3");
        assert_eq!(text_of(&client, "tr.batch .failed").await, "1");
        assert_eq!(text_of(&client, "tr.batch .state").await, "called back");
        screenshot(&client, "console-overview.png").await;

        // Two throttled customer syncs land in its DLQ: the overview shows them by itself.
        let dlq = backend.dlq_id("customer_sync").await.unwrap();
        for store in ["st_acme", "st_globex"] {
            let letter = dead_letter(
                "customer_sync",
                &format!("cs-throttled-{store}"),
                "throttled",
                "square: 429 too many requests",
                json!({"store_id": store}),
            );
            queue.send(&dlq, letter).await.unwrap();
        }
        let share = dead_letter(
            "share_product_text_message",
            "share-opted-out",
            "opted_out",
            "sns: +14155550123 opted out (ana@example.com)",
            json!({"share_id": "sh_7", "store_id": "st_acme", "product_id": "p1", "phone": "+14155550123"}),
        );
        queue.send(&backend.dlq_id("share_product_text_message").await.unwrap(), share).await.unwrap();
        wait_for(&client, &dlq_cell("customer_sync", 3)).await;

        // The DLQ browser groups them by job and kind.
        client.find(Locator::LinkText("Dead letters")).await.unwrap().click().await.unwrap();
        let group = |job: &str, kind: &str| format!("tr.group[data-job='{job}'][data-kind='{kind}'] .count");
        wait_for(&client, "//section[@id='dlq-customer_sync']").await;
        assert_eq!(text_of(&client, &group("customer_sync", "throttled")).await, "2");
        assert_eq!(text_of(&client, &group("customer_sync", "unauthorized")).await, "1");
        assert_eq!(text_of(&client, &group("store_sync", "unavailable")).await, "1");
        let groups = client.find_all(Locator::Css("#dlq-customer_sync tr.group")).await.unwrap();
        assert_eq!(groups.len(), 2, "one row per kind");
        screenshot(&client, "console-dlq.png").await;

        // A message's page: its error and arguments, masked as logs are.
        client.find(Locator::LinkText("share-opted-out")).await.unwrap().click().await.unwrap();
        wait_for(&client, "//pre[@id='arguments']").await;
        let arguments = text_of(&client, "#arguments").await;
        assert!(arguments.contains("\"share_id\": \"sh_7\""), "formatted JSON: {arguments}");
        assert!(arguments.contains("+*********23"), "{arguments}");
        assert_eq!(text_of(&client, "#error-kind").await, "opted_out");
        assert_eq!(text_of(&client, "#attempts").await, "5");
        let page = client.source().await.unwrap();
        for secret in ["+14155550123", "ana@example.com", console.token()] {
            assert!(!page.contains(secret), "{secret} in the page");
        }

        // Redrive the throttled ones only.
        client.goto(&format!("{}/dlq", console.base)).await.unwrap();
        let button = "tr.group[data-job='customer_sync'][data-kind='throttled'] form.redrive button";
        client.wait().at_most(WAIT).for_element(Locator::Css(button)).await.unwrap().click().await.unwrap();
        wait_for(&client, "//strong[@id='moved-count']").await;
        assert_eq!(text_of(&client, "#moved-count").await, "2");
        assert_eq!(text_of(&client, "#left-count").await, "1");
        let queue_id = backend.queue_id("customer_sync").await.unwrap();
        assert_eq!(
            bodies(&backend, &queue_id).await,
            [r#"{"store_id":"st_acme"}"#, r#"{"store_id":"st_globex"}"#],
            "exactly the throttled ones are back in customer_sync's queue"
        );
        let left = jobctl::commands::dlq::read(&backend, Some("customer_sync"), None, 100).await.unwrap();
        let kinds: Vec<&str> = left.iter().map(|l| l.error_kind()).collect();
        assert_eq!(kinds, ["unauthorized"], "the other kind stays in the DLQ");

        // Purge asks for the job's name and refuses another.
        client.goto(&format!("{}/jobs/store_sync", console.base)).await.unwrap();
        let purge = |answer: &'static str| {
            let client = client.clone();
            async move {
                let form = client.wait().at_most(WAIT).for_element(Locator::Css("form.purge")).await.unwrap();
                form.find(Locator::Css("input[name='confirm']"))
                    .await
                    .unwrap()
                    .send_keys(answer)
                    .await
                    .unwrap();
                form.find(Locator::Css("button")).await.unwrap().click().await.unwrap();
            }
        };
        purge("customer_sync").await;
        wait_for(&client, "//h1[contains(., '400')]").await;
        assert!(text_of(&client, "#error-detail").await.contains("nothing purged"));
        let store_dlq = backend.dlq_id("store_sync").await.unwrap();
        assert_eq!(backend.counts(&store_dlq).await.unwrap().total(), 1, "a wrong name purges nothing");
        client.goto(&format!("{}/jobs/store_sync", console.base)).await.unwrap();
        purge("store_sync").await;
        wait_for(&client, "//strong[@id='purged-count']").await;
        assert_eq!(text_of(&client, "#purged-count").await, "1");
        assert_eq!(backend.counts(&store_dlq).await.unwrap().total(), 0);

        // Pause and resume from the job's page.
        client.goto(&format!("{}/jobs/store_sync", console.base)).await.unwrap();
        let pause = client.wait().at_most(WAIT).for_element(Locator::Css("#pause button")).await.unwrap();
        pause.click().await.unwrap();
        wait_for(&client, "//form[@id='pause']/button[starts-with(normalize-space(), 'Resume')]").await;
        assert!(backend.is_paused("store_sync").await.unwrap(), "paused on the backend");
        client.find(Locator::Css("#pause button")).await.unwrap().click().await.unwrap();
        wait_for(&client, "//form[@id='pause']/button[starts-with(normalize-space(), 'Pause')]").await;
        assert!(!backend.is_paused("store_sync").await.unwrap(), "resumed on the backend");

        // The retry plan is drawn: store_sync retries unavailable 10 times.
        let row = client.find_all(Locator::Css("svg.timeline circle.attempt")).await.unwrap();
        assert!(row.len() >= 10, "an attempt mark per attempt: {}", row.len());
    })
    .await;
}

#[tokio::test]
async fn on_the_deployed_stack_the_dlq_is_grouped_one_kind_is_redriven_and_a_wrong_purge_is_refused() {
    let deployed = Stack::deploy().await.unwrap();
    let sqs = deployed.sqs();
    let customer_sync = deployed.deployment("customer_sync").await.unwrap();
    let string = |value: &str| {
        aws_sdk_sqs::types::MessageAttributeValue::builder()
            .data_type("String")
            .string_value(value)
            .build()
            .unwrap()
    };
    for (store, kind) in [("st_1", "throttled"), ("st_2", "not_found"), ("st_3", "throttled")] {
        let letter = dead_letter(
            "customer_sync",
            &format!("job-{store}"),
            kind,
            "square said no",
            json!({"store_id": store}),
        );
        let mut send = sqs.send_message().queue_url(&customer_sync.dlq_url).message_body(letter.body);
        for (name, value) in &letter.attributes {
            send = send.message_attributes(name, string(value));
        }
        send.send().await.unwrap();
    }
    let mut command = Command::new(env!("CARGO_BIN_EXE_jobctl"));
    command
        .args(["--aws", "--stack", &deployed.name, "console"])
        .envs(moto::function_env())
        .env_remove("AWS_PROFILE")
        .stdin(Stdio::null());
    let console = Console::start(command);

    with_browser(|client| async move {
        client.goto(&console.url).await.unwrap();
        wait_for(&client, "//table[@id='overview']").await;
        assert_eq!(text_of(&client, "#job-customer_sync .dlq").await, "3");
        assert_eq!(text_of(&client, "#job-store_sync .dlq").await, "0");

        client.goto(&format!("{}/dlq?job=customer_sync", console.base)).await.unwrap();
        wait_for(&client, "//section[@id='dlq-customer_sync']").await;
        let group = |kind: &str| format!("tr.group[data-job='customer_sync'][data-kind='{kind}']");
        assert_eq!(text_of(&client, &format!("{} .count", group("throttled"))).await, "2");
        assert_eq!(text_of(&client, &format!("{} .count", group("not_found"))).await, "1");

        let button = format!("{} form.redrive button", group("throttled"));
        client.find(Locator::Css(&button)).await.unwrap().click().await.unwrap();
        wait_for(&client, "//strong[@id='moved-count']").await;
        assert_eq!(text_of(&client, "#moved-count").await, "2");
        // Through SQS, not the page: the two throttled ones are on customer_sync's queue, without
        // the DLQ's error; the not_found one is still in the DLQ.
        let received = sqs
            .receive_message()
            .queue_url(&customer_sync.queue_url)
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .send()
            .await
            .unwrap();
        let mut back: Vec<&str> = received.messages().iter().map(|m| m.body().unwrap_or_default()).collect();
        back.sort_unstable();
        assert_eq!(back, [r#"{"store_id":"st_1"}"#, r#"{"store_id":"st_3"}"#]);
        assert!(
            received
                .messages()
                .iter()
                .all(|m| !m.message_attributes().is_some_and(|a| a.contains_key("error")))
        );
        let left = sqs
            .receive_message()
            .queue_url(&customer_sync.dlq_url)
            .max_number_of_messages(10)
            .visibility_timeout(0)
            .send()
            .await
            .unwrap();
        let left: Vec<&str> = left.messages().iter().map(|m| m.body().unwrap_or_default()).collect();
        assert_eq!(left, [r#"{"store_id":"st_2"}"#]);

        client.goto(&format!("{}/jobs/customer_sync", console.base)).await.unwrap();
        let form = client.wait().at_most(WAIT).for_element(Locator::Css("form.purge")).await.unwrap();
        form.find(Locator::Css("input[name='confirm']"))
            .await
            .unwrap()
            .send_keys("store_sync")
            .await
            .unwrap();
        form.find(Locator::Css("button")).await.unwrap().click().await.unwrap();
        wait_for(&client, "//h1[contains(., '400')]").await;
        let attributes = sqs
            .get_queue_attributes()
            .queue_url(&customer_sync.dlq_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .unwrap();
        let depth = attributes.attributes().and_then(|a| {
            a.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages).cloned()
        });
        assert_eq!(depth.as_deref(), Some("1"), "a wrong name purges nothing");
    })
    .await;
}

/// An HTTP client that shows redirects instead of following them.
fn http() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// The access cookie the printed URL trades its token for.
async fn cookie_of(console: &Console) -> String {
    let first = http().get(&console.url).send().await.unwrap();
    assert_eq!(first.status(), 303);
    assert_eq!(first.headers()["location"], "/");
    let cookie = first.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    cookie.split(';').next().unwrap().to_owned()
}

/// The CSRF token in a page's forms.
fn csrf_in(page: &str) -> String {
    let start = page.find(r#"name="csrf" value=""#).expect("a form with the CSRF token") + 19;
    page[start..].split('"').next().unwrap().to_owned()
}

async fn post(console: &Console, cookie: &str, path: &str, form: &str) -> (u16, String) {
    let response = http()
        .post(format!("{}{path}", console.base))
        .header("cookie", cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form.to_owned())
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

async fn get(console: &Console, cookie: &str, path: &str) -> (u16, String) {
    let response =
        http().get(format!("{}{path}", console.base)).header("cookie", cookie).send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// What a page must never show: a Rust panic or backtrace, the access token.
fn assert_clean(page: &str, token: &str) {
    for leak in ["panicked", "RUST_BACKTRACE", "stack backtrace", "src/", token] {
        assert!(!page.contains(leak), "{leak:?} in {page}");
    }
}

#[tokio::test]
async fn without_the_token_without_the_csrf_token_or_read_only_a_request_is_refused() {
    let dir = folder("console-http");
    let console = Console::embedded(&dir, &[]);
    let backend = Backend::open_embedded(&dir, Arc::new(SystemClock)).unwrap();

    for path in ["/", "/jobs/store_sync", "/dlq", "/assets/htmx.min.js"] {
        let (status, page) = get(&console, "", path).await;
        assert_eq!(status, 401, "{path}");
        assert_clean(&page, console.token());
    }
    let (status, _) = get(&console, "jobctl_console_1=nope", "/?token=nope").await;
    assert_eq!(status, 401, "a wrong token");
    let (status, _) = post(&console, "", "/jobs/store_sync/pause", "").await;
    assert_eq!(status, 401);

    let cookie = cookie_of(&console).await;
    let (status, page) = get(&console, &cookie, "/").await;
    assert_eq!(status, 200);
    assert_clean(&page, console.token());
    let csrf = csrf_in(&get(&console, &cookie, "/jobs/store_sync").await.1);

    // A POST without the CSRF token, or with another, changes nothing.
    for form in [String::new(), "csrf=0123".to_owned(), format!("csrf={}x", csrf)] {
        let (status, page) = post(&console, &cookie, "/jobs/store_sync/pause", &form).await;
        assert_eq!(status, 403, "{form}");
        assert_clean(&page, console.token());
    }
    assert!(!backend.is_paused("store_sync").await.unwrap());
    let (status, _) = post(&console, &cookie, "/jobs/store_sync/pause", &format!("csrf={csrf}")).await;
    assert_eq!(status, 303, "with the token: done, then back to the job's page");
    assert!(backend.is_paused("store_sync").await.unwrap());
    let (status, _) = post(&console, &cookie, "/jobs/store_sync/resume", &format!("csrf={csrf}")).await;
    assert_eq!(status, 303);
    assert!(!backend.is_paused("store_sync").await.unwrap());

    // Bad input: a clear page, never a 500.
    let cases = [
        ("/jobs/no_such_job", 404, "no job is named"),
        ("/dlq/no_such_job/messages/abc", 404, "no job is named"),
        ("/dlq/store_sync/messages/%01abc", 400, "control characters"),
        ("/dlq/store_sync/messages/not-there", 404, "no DLQ message has the id"),
        ("/dlq?job=nope", 404, "no job is named"),
        ("/no/such/page", 404, "no such page"),
    ];
    for (path, code, says) in cases {
        let (status, page) = get(&console, &cookie, path).await;
        assert_eq!(status, code, "{path}: {page}");
        assert!(page.contains(says), "{path}: {page}");
        assert_clean(&page, console.token());
    }
    let (status, page) =
        post(&console, &cookie, "/dlq/store_sync/redrive", &format!("csrf={csrf}&limit=lots")).await;
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("limit must be a whole number"), "{page}");
    let (status, _) = post(&console, &cookie, "/dlq/nope/purge", &format!("csrf={csrf}&confirm=nope")).await;
    assert_eq!(status, 404);

    // Read-only: no forms, and every POST refused (its pages carry no CSRF token to send).
    let read_only = Console::embedded(&dir, &["--read-only"]);
    let cookie = cookie_of(&read_only).await;
    let (status, page) = get(&read_only, &cookie, "/jobs/store_sync").await;
    assert_eq!(status, 200);
    assert!(!page.contains("method=\"post\""), "no buttons: {page}");
    assert!(page.contains("read-only"));
    let (status, page) = post(&read_only, &cookie, "/jobs/store_sync/pause", &format!("csrf={csrf}")).await;
    assert_eq!(status, 403);
    assert!(page.contains("--read-only"), "{page}");
    assert!(!backend.is_paused("store_sync").await.unwrap());
}
