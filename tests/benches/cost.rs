//! What each job costs on AWS, counted on the stack as deployed: `template.yaml` created on
//! moto's CloudFormation (as the system tests deploy it), each function's binary run on its
//! queue with its deployed configuration by a metered Lambda (`system_tests::cost`), and every
//! call to SQS, DynamoDB, SES, SNS, Secrets Manager and KMS counted by moto's server per access
//! key (`scripts/lib/moto_server.py`). Per job: `COST_JOBS` jobs (default 20) that each succeed
//! the first time, then as many that each fail once (the first DynamoDB request of each to a
//! table other than jobkit's state table fails with a 500 on each of the SDK's three attempts, an
//! outage the job's policy retries) and succeed on their retry; the same for jobkit's no-op
//! example job, the framework's own share. The stores' tokens are sealed on their records before
//! the runs (`seal_tokens`), as each store's first job after onboarding leaves them: the runs
//! measure the steady state.
//!
//! Writes the counts to `infra/jobctl/src/commands/cost/measured.json` (or `COST_OUT`), which
//! `jobctl cost` turns into dollars. Run with `./scripts/bench-cost`.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context, bail};
use serde::Serialize;
use serde_json::json;
use shop_sandbox::{Behaviour, FixturePos, FixtureShop, Fixtures, Sandbox};
use system_tests::{
    cost::{Call, Meter, MeteredLambda, MeteredMapping, noop_function},
    function::{deployed_binary, test_build_binary},
    stack::{Stack, lambda_environment},
};

/// Products per store in store_sync's runs (two variants each), customers per POS account in
/// customer_sync's.
const PRODUCTS: usize = 20;
const CUSTOMERS: usize = 20;
/// Long enough for a run's jobs and their retries (the first retry waits about 3 s).
const RUN_LIMIT: Duration = Duration::from_secs(180);

/// A job of the stack and the arguments of its `n`th run.
struct Subject {
    job: &'static str,
    work: &'static str,
    body: fn(usize) -> String,
}

const SUBJECTS: [Subject; 6] = [
    Subject {
        job: "store_sync",
        work: "syncs a store of 20 products (40 variants) from the Shopify sandbox",
        body: |n| json!({"store_id": format!("cost{n}")}).to_string(),
    },
    Subject {
        job: "customer_sync",
        work: "syncs 20 customers and their orders from the Square sandbox",
        body: |n| json!({"store_id": format!("cost{n}")}).to_string(),
    },
    Subject {
        job: "clean_active_carts",
        work: "finds no idle cart and no expired session",
        body: |_| "{}".to_owned(),
    },
    Subject { job: "clean_database", work: "finds nothing past its retention", body: |_| "{}".to_owned() },
    Subject {
        job: "create_shopify_webhook",
        work: "lists a new store's webhooks and creates the template's topics",
        body: |n| json!({"store_id": format!("cost{n}")}).to_string(),
    },
    Subject {
        job: "share_product_text_message",
        work: "texts one product to one phone (one SMS)",
        body: |n| {
            json!({"share_id": format!("sh_{n}"), "store_id": "cost0",
                   "product_id": "gid://shopify/Product/1", "phone": "+14155550123"})
            .to_string()
        },
    },
];

/// One run of `jobs` jobs, as counted.
#[derive(Debug, Clone, Serialize)]
struct Scenario {
    jobs: usize,
    /// Executions that failed and were retried.
    failed_executions: usize,
    invocations: usize,
    records: usize,
    /// Each invocation's duration rounded up to the millisecond, summed (Lambda's billing).
    billed_ms: u64,
    /// Cold starts (exec -> first next), in ms.
    init_ms: Vec<f64>,
    log_bytes: u64,
    log_lines: u64,
    /// moto's counts, each resource named by the setting that points the function at it.
    calls: Vec<Call>,
}

#[derive(Debug, Serialize)]
struct Measured {
    job: String,
    work: String,
    memory_mb: i32,
    batch_size: usize,
    success: Scenario,
    retry: Scenario,
}

fn output_path() -> PathBuf {
    std::env::var_os("COST_OUT").map(PathBuf::from).unwrap_or_else(|| {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/jobctl/src/commands/cost/measured.json")
    })
}

/// `resource` named by the setting whose value it is (`JOBKIT_STATE_TABLE`, `JOBKIT_QUEUE_URL`),
/// so the counts read the same on every deployment: a queue by the setting holding its URL
/// (the function's own name is the queue's too), a table by the one holding its name.
fn role(service: &str, resource: &str, env: &BTreeMap<String, String>) -> String {
    if resource.is_empty() {
        return String::new();
    }
    let names = |value: &String| match service {
        "sqs" => value.starts_with("http") && value.rsplit('/').next() == Some(resource),
        _ => value == resource,
    };
    env.iter().find(|(_, value)| names(value)).map_or_else(|| "other".to_owned(), |(name, _)| name.clone())
}

async fn run(
    meter: &Meter,
    lambda: &mut MeteredLambda,
    bodies: Vec<String>,
    env: &BTreeMap<String, String>,
    queue_url: &str,
) -> anyhow::Result<Scenario> {
    let sqs = aws_sdk_sqs::Client::new(&meter.sdk_config().await);
    let jobs = bodies.len();
    for body in bodies {
        sqs.send_message().queue_url(queue_url).message_body(body).send().await.context("enqueueing")?;
    }
    lambda.run_until_deleted(jobs, RUN_LIMIT).await?;
    lambda.stop().await?;
    Ok(scenario(jobs, &[&*lambda], counted_calls(meter, env).await?))
}

/// What `meter` counted, each resource named by the setting that points the function at it.
async fn counted_calls(meter: &Meter, env: &BTreeMap<String, String>) -> anyhow::Result<Vec<Call>> {
    let calls = meter.calls().await?;
    Ok(calls
        .into_iter()
        .map(|call| Call { resource: role(&call.service, &call.resource, env), ..call })
        .collect())
}

/// `jobs` jobs as `lambdas` ran them and `calls` counted them.
fn scenario(jobs: usize, lambdas: &[&MeteredLambda], calls: Vec<Call>) -> Scenario {
    let invocations = || lambdas.iter().flat_map(|l| &l.invocations);
    Scenario {
        jobs,
        failed_executions: invocations().map(|i| i.failed).sum(),
        invocations: invocations().count(),
        records: invocations().map(|i| i.records).sum(),
        billed_ms: invocations().map(|i| billed_ms(i.duration)).sum(),
        init_ms: lambdas.iter().flat_map(|l| &l.inits).map(|d| d.as_secs_f64() * 1000.0).collect(),
        log_bytes: lambdas.iter().map(|l| l.log_bytes).sum(),
        log_lines: lambdas.iter().map(|l| l.log_lines).sum(),
        calls,
    }
}

/// Lambda bills each invocation's duration rounded up to the millisecond.
fn billed_ms(duration: Duration) -> u64 {
    let micros = u64::try_from(duration.as_micros()).unwrap_or(u64::MAX);
    micros.div_ceil(1000)
}

/// Attempts the AWS SDK makes of one request by default (standard retry mode).
const SDK_ATTEMPTS: usize = 3;

/// Runs `success` then `retry` bodies through a fresh metered function each; before the retry
/// run, `fail` arms the faults that make each of its jobs fail once.
async fn measure(
    meter: &Meter,
    binary: PathBuf,
    mapping: &MeteredMapping,
    env: &BTreeMap<String, String>,
    success: Vec<String>,
    retry: Vec<String>,
    state_table: Option<&str>,
) -> anyhow::Result<(Scenario, Scenario)> {
    let sqs = aws_sdk_sqs::Client::new(&meter.sdk_config().await);
    let pairs: Vec<(String, String)> = env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    meter.reset().await?;
    let mut lambda = MeteredLambda::new(sqs.clone(), mapping.clone(), binary.clone(), pairs.clone());
    let first = run(meter, &mut lambda, success, env, &mapping.queue_url).await?;
    meter.reset().await?;
    if let Some(table) = state_table {
        // The SDK makes 3 attempts of a request (its standard retry mode): three 500s fail one.
        meter.outage_dynamodb(retry.len() * SDK_ATTEMPTS, table).await?;
    }
    let mut lambda = MeteredLambda::new(sqs, mapping.clone(), binary, pairs);
    let second = run(meter, &mut lambda, retry, env, &mapping.queue_url).await?;
    if second.failed_executions == 0 {
        bail!("no job of the retry run failed: the faults were not hit");
    }
    Ok((first, second))
}

async fn sandbox(stores: usize) -> anyhow::Result<Sandbox> {
    let fixtures = Fixtures {
        shops: (0..stores)
            .map(|n| {
                let shop = FixtureShop {
                    token: format!("shpat_cost{n}"),
                    products: PRODUCTS,
                    behaviour: Behaviour::Healthy,
                };
                (format!("cost{n}"), shop)
            })
            .collect(),
        pos: (0..stores).map(|n| (format!("sq_cost{n}"), FixturePos { customers: CUSTOMERS })).collect(),
    };
    Ok(Sandbox::start(fixtures).await?)
}

async fn stack_jobs(meter: &Meter, jobs: usize) -> anyhow::Result<Vec<Measured>> {
    let stack = Stack::deploy().await?;
    eprintln!("stack {} deployed", stack.name);
    let shop = sandbox(2 * jobs).await?;
    for n in 0..2 * jobs {
        let secret =
            json!({"shopify_token": format!("shpat_cost{n}"), "square_token": format!("sq_cost{n}")});
        stack.add_store(&format!("cost{n}"), secret).await?;
    }
    let stores: Vec<String> = (0..2 * jobs).map(|n| format!("cost{n}")).collect();
    seal_tokens(meter, &stack.deployment("store_sync").await?, &stores).await?;
    let sandbox_settings = [("SHOPIFY_BASE_URL", shop.shopify_url()), ("SQUARE_BASE_URL", shop.square_url())];
    let state_table = stack.table("JOBKIT_STATE_TABLE")?;

    let mut measured = Vec::new();
    for subject in &SUBJECTS {
        if subject.job == "share_product_text_message" {
            // Added after the syncs, whose sweep removes what the shop does not sell.
            stack.add_shared_product("cost0", "Red Shoe").await?;
        }
        let deployment = stack.deployment(subject.job).await?;
        let env = lambda_environment(&deployment, meter.function_env(), &sandbox_settings)?;
        let mapping = MeteredMapping {
            queue_url: deployment.queue_url.clone(),
            queue_arn: deployment.queue_arn.clone(),
            batch_size: deployment.batch_size,
            batching_window: deployment.batching_window,
            timeout: deployment.timeout,
        };
        let binary = deployed_binary(subject.job, &deployment.logical_id)?;
        let success = (0..jobs).map(subject.body).collect();
        let retry = (jobs..2 * jobs).map(subject.body).collect();
        let (success, retry) =
            measure(meter, binary.clone(), &mapping, &env, success, retry, Some(&state_table)).await?;
        eprintln!(
            "{}: {} invocations, {} ms billed; retry run: {} failed executions",
            subject.job, success.invocations, success.billed_ms, retry.failed_executions
        );
        if subject.job == "store_sync" {
            let syncs = 2 * jobs;
            let fan_out = fan_out(meter, binary.clone(), &mapping, &env, syncs).await?;
            eprintln!("store_sync's fan-out: {} syncs in {} invocations", syncs, fan_out.invocations);
            measured.push(Measured {
                job: FAN_OUT.to_owned(),
                work: format!("the 15-minute fan-out over {syncs} stores of 20 products: one sync each, as batch members with unique locks, and the batch's callback"),
                memory_mb: deployment.memory_mb,
                batch_size: deployment.batch_size,
                success: fan_out,
                // A retry of a fan-out's sync is a retry of store_sync.
                retry: retry.clone(),
            });
        }
        measured.push(Measured {
            job: subject.job.to_owned(),
            work: subject.work.to_owned(),
            memory_mb: deployment.memory_mb,
            batch_size: deployment.batch_size,
            success,
            retry,
        });
    }
    Ok(measured)
}

/// The name of the row of store_sync's production path, its scheduled fan-out.
const FAN_OUT: &str = "store_sync (fan-out)";

/// store_sync as production runs it: the schedule's `{"all_stores": true}` on the job's queue,
/// which enqueues one sync per syncable store (`syncs` of them, every store on the Basic plan:
/// the low lane's queue, with its own mapping) as a batch with a unique lock each, then the
/// batch's callback on the job's queue. Counted per sync, the fan-out's own record and the
/// callback included.
async fn fan_out(
    meter: &Meter,
    binary: PathBuf,
    mapping: &MeteredMapping,
    env: &BTreeMap<String, String>,
    syncs: usize,
) -> anyhow::Result<Scenario> {
    let sqs = aws_sdk_sqs::Client::new(&meter.sdk_config().await);
    let pairs: Vec<(String, String)> = env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let low_url = env.get("JOBKIT_QUEUE_URL_STORE_SYNC__LOW").context("store_sync's low lane")?.clone();
    let low = MeteredMapping {
        queue_arn: system_tests::sqs::queue_arn(&sqs, &low_url).await?,
        queue_url: low_url,
        ..mapping.clone()
    };
    meter.reset().await?;
    let body = json!({"all_stores": true}).to_string();
    sqs.send_message().queue_url(&mapping.queue_url).message_body(body).send().await?;
    let mut own = MeteredLambda::new(sqs.clone(), mapping.clone(), binary.clone(), pairs.clone());
    own.run_until_deleted(1, RUN_LIMIT).await?;
    let mut lane = MeteredLambda::new(sqs, low, binary, pairs);
    lane.run_until_deleted(syncs, RUN_LIMIT).await?;
    lane.stop().await?;
    // The callback, once the last sync is counted.
    own.run_until_deleted(2, RUN_LIMIT).await?;
    own.stop().await?;
    Ok(scenario(syncs, &[&own, &lane], counted_calls(meter, env).await?))
}

/// Seals every store's tokens on its record, as the first job of each store after onboarding
/// does: the runs measure the steady state, where a job finds its token on its store.
async fn seal_tokens(
    meter: &Meter,
    deployment: &system_tests::stack::Deployment,
    stores: &[String],
) -> anyhow::Result<()> {
    use shop::{Credentials, StoreRepository, aws};
    let sdk = meter.sdk_config().await;
    let setting = |name: &str| deployment.env.get(name).cloned().with_context(|| format!("{name} not set"));
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
    let table = setting("SHOP_STORES_TABLE")?;
    let cache = std::sync::Arc::new(aws::SealedTokenCache::default());
    let prefix = setting("SHOP_SECRET_PREFIX")?;
    let key = setting(shop::TOKEN_KEY_SETTING)?;
    let credentials =
        aws::SealedCredentials::new(sdk, prefix, key, dynamo.clone(), table.clone(), cache.clone());
    let repository = aws::DynamoStores::new(dynamo, table).noting_sealed_tokens(cache);
    for store in stores {
        let id = shop::StoreId::from(store.as_str());
        repository.get(&id).await?.with_context(|| format!("store {store} missing"))?;
        credentials.shopify_token(&id).await?.with_context(|| format!("{store} has no Shopify token"))?;
        credentials.square_token(&id).await?.with_context(|| format!("{store} has no Square token"))?;
    }
    Ok(())
}

/// jobkit's example job doing nothing (`{"name": ...}`; `"fail": "flaky"` fails its first
/// attempt), on a state table and queue of its own, as `system_tests::example_stack` deploys it.
async fn noop(meter: &Meter, jobs: usize) -> anyhow::Result<Measured> {
    let memory_mb = 128;
    let (env, mapping) = noop_function(meter, memory_mb, 10, Duration::ZERO).await?;
    let success = (0..jobs).map(|n| json!({"name": format!("Ada{n}")}).to_string()).collect();
    let retry = (0..jobs).map(|n| json!({"name": format!("Bob{n}"), "fail": "flaky"}).to_string()).collect();
    let binary = test_build_binary("example_job")?;
    let (success, retry) = measure(meter, binary, &mapping, &env, success, retry, None).await?;
    Ok(Measured {
        job: "noop".to_owned(),
        work: "jobkit's example job, doing nothing".to_owned(),
        memory_mb,
        batch_size: 10,
        success,
        retry,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let jobs: usize = std::env::var("COST_JOBS").ok().map(|n| n.parse()).transpose()?.unwrap_or(20);
    let meter = Meter::new();
    let measured = stack_jobs(&meter, jobs).await?;
    let noop = noop(&meter, jobs).await?;
    let binaries = if std::env::var_os("SYSTEM_TESTS_BOOTSTRAPS").is_some_and(|d| !d.is_empty()) {
        "release bootstraps (sam build)"
    } else {
        "the test build's debug binaries"
    };
    let out = json!({
        "measured_on": chrono::Utc::now().format("%Y-%m-%d").to_string(),
        "jobs_per_run": jobs,
        "binaries": binaries,
        "jobs": measured,
        "noop": noop,
    });
    let path = output_path();
    let mut text = serde_json::to_string_pretty(&out)?;
    text.push('\n');
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(())
}
