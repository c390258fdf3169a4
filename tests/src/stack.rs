//! The stack as deployed: `template.yaml` packaged with the SAM translator
//! (`scripts/lib/package_template.py`) and created on moto's CloudFormation, its functions run
//! by the local Lambda with the configuration Lambda holds for them.
//!
//! Nothing about the stack is written here. Tables, the secret prefix, queues and DLQs,
//! settings, timeouts, batch sizes and schedules are read back from moto: CloudFormation's
//! resources and outputs, Lambda's function configurations and event source mappings, SQS's
//! redrive policies, EventBridge Scheduler's schedules and their targets. A function's
//! environment is its deployed one plus what Lambda itself adds (region, credentials, the
//! function's name and memory; here also moto's endpoint), and at most the loopback sandboxes'
//! URLs for Shopify and Square, which the template leaves to the real services.
//!
//! moto runs event source mappings of its own on the stack's queues (every send is received once
//! by them); [`Stack::deploy`] disables them, so the local Lambda alone plays each mapping, with
//! the mapping's own batch size and batching window and the function's own timeout.

use std::{
    collections::{BTreeMap, HashMap},
    path::Path,
    time::{Duration, Instant},
};

use anyhow::{Context, bail, ensure};
use aws_sdk_cloudformation::{
    client::Waiters,
    types::{Capability, Parameter},
};
use aws_sdk_lambda::types::FunctionResponseType;
use aws_sdk_scheduler::operation::get_schedule::GetScheduleOutput;
use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::Value;
use shop::{
    CatalogRepository, Money, Plan, Product, Store, StoreRepository, SyncState, Variant,
    aws::{DynamoCatalog, DynamoStores, secret_name},
    declaration::Platform,
};

use crate::{
    function::deployed_binary,
    lambda::{LocalLambda, Mapping},
    moto,
    scheduler::{self, Firing},
};

/// Resource types moto's CloudFormation does not create (it lists each with an empty logical
/// id and type). Nothing the functions do depends on them here: alarms watch, and the sender's
/// SES identity is verified by [`Stack::deploy`] as an operator does (README, "Deploy", step 4).
/// (EventBridge Scheduler's schedules are created: `scripts/lib/moto_server.py` adds them.)
pub const NOT_CREATED_BY_MOTO: [&str; 2] = ["AWS::CloudWatch::Alarm", "AWS::SES::EmailIdentity"];

/// Settings a test may give a function on top of its deployed environment: where Shopify and
/// Square are (the loopback sandbox instead of the real services).
pub const SANDBOX_SETTINGS: [&str; 2] = ["SHOPIFY_BASE_URL", "SQUARE_BASE_URL"];

/// The template, from this crate's directory.
const TEMPLATE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml");
/// The packaging script (`sam package` and CloudFormation's SAM transform).
const PACKAGE_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/lib/package_template.py");
/// The interpreter of the SAM translator's venv, exported by `scripts/lib/sam-translator.sh`.
const TRANSLATOR_ENV: &str = "SAM_TRANSLATOR_PYTHON";
/// How long a stack may take to create (moto creates it in well under a second).
const CREATE_LIMIT: Duration = Duration::from_secs(120);

/// A resource as CloudFormation lists it.
#[derive(Debug, Clone)]
pub struct Resource {
    /// The template's name for it (empty for the ones moto did not create).
    pub logical_id: String,
    /// The name or id it was created with.
    pub physical_id: String,
    /// `AWS::SQS::Queue`... (empty for the ones moto did not create).
    pub kind: String,
}

/// The template deployed on moto.
pub struct Stack {
    /// The SDK config pointed at moto.
    pub sdk: aws_config::SdkConfig,
    /// The stack's name (the prefix of its queues' names).
    pub name: String,
    /// The parameters it was created with.
    pub parameters: BTreeMap<String, String>,
    /// The template as CloudFormation received it, translated by the SAM translator.
    pub template: Value,
    /// Its resources, as `ListStackResources` answers.
    pub resources: Vec<Resource>,
    /// Its outputs.
    pub outputs: BTreeMap<String, String>,
    /// How long packaging took (translation and upload).
    pub packaged_in: Duration,
    /// How long `CreateStack` took until `CREATE_COMPLETE`.
    pub created_in: Duration,
    /// Each function's environment as deployed, by function name.
    environments: BTreeMap<String, BTreeMap<String, String>>,
}

/// A function of the stack as Lambda holds it: its configuration and its event source mapping.
#[derive(Debug, Clone)]
pub struct Deployment {
    /// The crate (and binary) it runs, from the template's `BuildProperties`.
    pub binary: String,
    /// The template's logical id (`StoreSyncFunction`).
    pub logical_id: String,
    /// The function's name.
    pub function_name: String,
    /// Its environment variables.
    pub env: BTreeMap<String, String>,
    /// Its timeout.
    pub timeout: Duration,
    /// Its memory in MB.
    pub memory_mb: i32,
    /// Its log group, when it names one.
    pub log_group: Option<String>,
    /// The queue its event source mapping reads.
    pub queue_url: String,
    /// That queue's ARN.
    pub queue_arn: String,
    /// The DLQ of that queue's redrive policy.
    pub dlq_url: String,
    /// The mapping's `BatchSize`.
    pub batch_size: usize,
    /// The mapping's `MaximumBatchingWindowInSeconds`.
    pub batching_window: Duration,
    /// Whether the mapping reads `batchItemFailures` (`ReportBatchItemFailures`).
    pub report_batch_item_failures: bool,
    /// The job's other lanes: each a queue with a mapping of its own into the function.
    pub lanes: Vec<LaneDeployment>,
}

/// One of a job's other lanes as deployed: its queue and its mapping.
#[derive(Debug, Clone)]
pub struct LaneDeployment {
    /// The lane (`low`), from its `JOBKIT_QUEUE_URL_<JOB>__<LANE>` setting.
    pub lane: String,
    /// Its queue.
    pub queue_url: String,
    /// The mapping's `BatchSize`.
    pub batch_size: usize,
    /// The mapping's `MaximumBatchingWindowInSeconds`.
    pub batching_window: Duration,
    /// The mapping's `ScalingConfig.MaximumConcurrency`.
    pub max_concurrency: Option<i32>,
    /// Whether the mapping reads `batchItemFailures`.
    pub report_batch_item_failures: bool,
}

/// A function under the local Lambda, on its queue.
pub struct Function {
    /// The function under its event source mapping.
    pub lambda: LocalLambda,
    /// Its name.
    pub function_name: String,
    /// Its queue.
    pub queue_url: String,
    /// Its queue's ARN.
    pub queue_arn: String,
    /// Its DLQ.
    pub dlq_url: String,
    /// Its environment as deployed (without what Lambda and the test added).
    pub env: BTreeMap<String, String>,
}

impl Function {
    /// Sends `body` to the function's queue; returns the message id.
    ///
    /// # Errors
    /// If SQS refuses.
    pub async fn send(&self, sqs: &aws_sdk_sqs::Client, body: &str) -> anyhow::Result<String> {
        let out = sqs.send_message().queue_url(&self.queue_url).message_body(body).send().await?;
        out.message_id().map(str::to_owned).context("no message id")
    }

    /// The deployed setting `name`.
    ///
    /// # Errors
    /// If the function has no such setting.
    pub fn setting(&self, name: &str) -> anyhow::Result<&str> {
        self.env
            .get(name)
            .map(String::as_str)
            .with_context(|| format!("{} has no {name}", self.function_name))
    }
}

/// The parameters an operator gives `sam deploy --guided` for a stack named `stack`.
///
/// x86_64 because that is what this machine builds; the SES sender, recipients, alarm address and
/// webhook URL an operator must give; a recipient and a secret prefix of the stack's own, as two
/// stacks in one account would keep their error emails and stores' secrets apart (every test
/// deploys a stack of its own); `Sandbox=true`, as an operator says of a sandbox deployment: the
/// tests point the functions at loopback sandboxes over `http` ([`SANDBOX_SETTINGS`]), which a
/// stack that is not a sandbox refuses at start.
/// Everything else is the template's default.
pub fn operator_parameters(stack: &str) -> BTreeMap<String, String> {
    [
        ("Architecture", "x86_64".to_owned()),
        ("AlertSender", "jobs@store.example.com".to_owned()),
        ("AlertRecipients", format!("ops+{stack}@store.example.com")),
        ("AlarmEmail", "oncall@store.example.com".to_owned()),
        ("ShopifyWebhookUrl", "https://hooks.store.example.com/shopify".to_owned()),
        ("SecretPrefix", format!("{stack}/stores")),
        ("Sandbox", "true".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

impl Stack {
    /// Deploys the template with [`operator_parameters`].
    ///
    /// # Errors
    /// If packaging, creating or reading back the stack fails.
    pub async fn deploy() -> anyhow::Result<Self> {
        Self::deploy_with(&[]).await
    }

    /// Deploys the template with [`operator_parameters`] and `overrides`: packages it (SAM
    /// translator, code artifact in moto's S3), creates the stack, reads back its resources,
    /// outputs and functions' environments, verifies the alert sender in SES and disables
    /// moto's event source mappings.
    ///
    /// # Errors
    /// If packaging, creating or reading back the stack fails.
    pub async fn deploy_with(overrides: &[(&str, &str)]) -> anyhow::Result<Self> {
        let sdk = moto::sdk_config().await;
        // Short enough for every name built from it (function names: 64 characters at most).
        let name = format!("store-jobs-{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
        let mut parameters = operator_parameters(&name);
        parameters.extend(overrides.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));

        let started = Instant::now();
        let packaged = package(&name, &parameters).await?;
        let template = serde_json::from_str(&packaged).context("the packaged template is not JSON")?;
        let packaged_in = started.elapsed();

        let started = Instant::now();
        let cloudformation = aws_sdk_cloudformation::Client::new(&sdk);
        // The template as the translator wrote it: the order of its resources is moto's order
        // too, and moto's DescribeStackResource fails for any resource listed after one it did
        // not create (jobctl asks it for JobStateTable, which comes first).
        create(&cloudformation, &name, &packaged, &parameters).await?;
        let created_in = started.elapsed();

        let resources = list_resources(&cloudformation, &name).await?;
        let outputs = outputs(&cloudformation, &name).await?;
        let mut stack = Self {
            sdk,
            name,
            parameters,
            template,
            resources,
            outputs,
            packaged_in,
            created_in,
            environments: BTreeMap::new(),
        };
        stack.verify_alert_sender().await?;
        stack.disable_motos_mappings().await?;
        stack.write_settings_as_strings().await?;
        stack.environments = stack.read_environments().await?;
        Ok(stack)
    }

    /// The resources CloudFormation lists of type `kind`.
    pub fn resources_of(&self, kind: &str) -> impl Iterator<Item = &Resource> {
        self.resources.iter().filter(move |r| r.kind == kind)
    }

    /// The physical id of the resource `logical_id`.
    ///
    /// # Errors
    /// If the stack has no such resource.
    pub fn physical_id(&self, logical_id: &str) -> anyhow::Result<&str> {
        self.resources
            .iter()
            .find(|r| r.logical_id == logical_id)
            .map(|r| r.physical_id.as_str())
            .with_context(|| format!("stack {} has no resource {logical_id}", self.name))
    }

    /// The setting `name` (a table, the secret prefix...) as every deployed function that has it
    /// holds it.
    ///
    /// # Errors
    /// If no function has it, or two hold different values.
    pub fn setting(&self, name: &str) -> anyhow::Result<String> {
        let mut values = self
            .environments
            .iter()
            .filter_map(|(function, env)| Some((function.as_str(), env.get(name)?.as_str())));
        let Some((_, value)) = values.next() else { bail!("no function of stack {} has {name}", self.name) };
        let differing: Vec<_> = values.filter(|(_, v)| v != &value).collect();
        ensure!(differing.is_empty(), "functions disagree on {name}: {value:?} and {differing:?}");
        Ok(value.to_owned())
    }

    /// The table the functions find under `env_name` (`SHOP_STORES_TABLE`...).
    ///
    /// # Errors
    /// See [`Self::setting`].
    pub fn table(&self, env_name: &str) -> anyhow::Result<String> {
        self.setting(env_name)
    }

    /// A DynamoDB client on moto.
    pub fn dynamo(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&self.sdk)
    }

    /// An SQS client on moto.
    pub fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.sdk)
    }

    /// A Lambda client on moto.
    pub fn lambda(&self) -> aws_sdk_lambda::Client {
        aws_sdk_lambda::Client::new(&self.sdk)
    }

    /// Adds to the products table the product a text shares: `gid://shopify/Product/1` of store
    /// `store_id`, titled `title`, one variant at $49.00 with 3 in stock.
    ///
    /// # Errors
    /// If moto refuses.
    pub async fn add_shared_product(&self, store_id: &str, title: &str) -> anyhow::Result<()> {
        let product = Product {
            id: "gid://shopify/Product/1".into(),
            store_id: store_id.into(),
            title: title.to_owned(),
            handle: "red-shoe".to_owned(),
            variants: vec![Variant {
                id: "gid://shopify/ProductVariant/1".into(),
                sku: None,
                price: Money { minor: 4900, currency: "USD".into() },
                inventory: 3,
            }],
        };
        DynamoCatalog::new(self.dynamo(), self.table("SHOP_PRODUCTS_TABLE")?)
            .upsert_products(&[product])
            .await?;
        Ok(())
    }

    /// Adds the store `id` (shop `<id>.myshopify.com`, with `-` for `_`) to the stores table and
    /// its tokens, `tokens` = `{"shopify_token": ..., "square_token": ...}` (either may be left
    /// out), as an operator stores them (README, "Deploy"): one secret per platform under the
    /// functions' secret prefix, `<prefix>/<id>/shopify` and `<prefix>/<id>/square`, each
    /// `{"token": ...}`.
    ///
    /// # Errors
    /// If `tokens` names anything else, or moto refuses.
    pub async fn add_store(&self, id: &str, tokens: serde_json::Value) -> anyhow::Result<Store> {
        let Value::Object(tokens) = tokens else { bail!("a store's tokens are a JSON object, not {tokens}") };
        let mut secrets = Vec::new();
        for (key, token) in tokens {
            let platform = match key.as_str() {
                "shopify_token" => Platform::Shopify,
                "square_token" => Platform::Square,
                other => bail!("{other} is no platform's token (shopify_token, square_token)"),
            };
            secrets.push((platform, serde_json::json!({ "token": token })));
        }
        let store = Store {
            id: id.into(),
            shopify_domain: format!("{}.myshopify.com", id.replace('_', "-")).parse()?,
            pos_location_id: Some("L1".into()),
            plan: Plan::Basic,
            sync_state: SyncState::Never,
        };
        DynamoStores::new(self.dynamo(), self.table("SHOP_STORES_TABLE")?).put(&store).await?;
        let prefix = self.setting("SHOP_SECRET_PREFIX")?;
        let client = aws_sdk_secretsmanager::Client::new(&self.sdk);
        for (platform, secret) in secrets {
            client
                .create_secret()
                .name(secret_name(&prefix, &store.id, platform))
                .secret_string(secret.to_string())
                .send()
                .await
                .with_context(|| format!("creating the store's {} secret", platform.name()))?;
        }
        Ok(store)
    }

    /// Puts store `id` (added with [`Self::add_store`], on the Basic plan) on `plan`.
    ///
    /// # Errors
    /// If the store is not there, or DynamoDB fails.
    pub async fn set_plan(&self, id: &str, plan: Plan) -> anyhow::Result<()> {
        let stores = DynamoStores::new(self.dynamo(), self.table("SHOP_STORES_TABLE")?);
        let mut store = stores.get(&id.into()).await?.with_context(|| format!("no store {id}"))?;
        store.plan = plan;
        stores.put(&store).await?;
        Ok(())
    }

    /// The function that runs the binary `binary` (its template `BuildProperties`), as Lambda
    /// holds it now: configuration, event source mappings, queues and DLQ. Checks what Lambda
    /// would refuse or what would lose messages: SQS mappings only, one reading the queue
    /// `JOBKIT_QUEUE_URL` names, each other one reading a lane's queue that a
    /// `JOBKIT_QUEUE_URL_<JOB>__<LANE>` names, and every queue's redrive policy naming the DLQ
    /// `JOBKIT_DLQ_URL` names.
    ///
    /// # Errors
    /// If the stack has no such function, or its configuration is inconsistent.
    pub async fn deployment(&self, binary: &str) -> anyhow::Result<Deployment> {
        let logical_id = self.function_logical_id(binary)?;
        let function_name = self.physical_id(&logical_id)?.to_owned();
        let lambda = self.lambda();
        let config = lambda
            .get_function_configuration()
            .function_name(&function_name)
            .send()
            .await
            .with_context(|| format!("reading {function_name}'s configuration"))?;
        let env: BTreeMap<String, String> = config
            .environment()
            .and_then(|e| e.variables())
            .map(|vars| vars.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        let timeout = config.timeout().context("a function without a timeout")?;

        let mappings = lambda
            .list_event_source_mappings()
            .function_name(&function_name)
            .send()
            .await
            .with_context(|| format!("listing {function_name}'s event source mappings"))?;
        let named = |setting: &str| env.get(setting).map(|url| last_segment(url, '/'));
        let (own, others): (Vec<_>, Vec<_>) = mappings.event_source_mappings().iter().partition(|m| {
            m.event_source_arn().map(|arn| last_segment(arn, ':')) == named("JOBKIT_QUEUE_URL")
        });
        let [mapping] = own[..] else {
            bail!(
                "{function_name} has {} event source mappings on the queue JOBKIT_QUEUE_URL names ({:?}), not one",
                own.len(),
                env.get("JOBKIT_QUEUE_URL")
            );
        };
        let queue_arn = mapping.event_source_arn().context("a mapping without a source")?.to_owned();
        ensure!(queue_arn.contains(":sqs:"), "{function_name}'s mapping reads {queue_arn}, not an SQS queue");
        let sqs = self.sqs();
        let lane_prefix = format!("JOBKIT_QUEUE_URL_{}__", binary.to_uppercase());
        let mut lanes = Vec::new();
        for other in others {
            let arn = other.event_source_arn().context("a mapping without a source")?;
            let Some((setting, _)) = env
                .iter()
                .find(|(k, v)| k.starts_with(&lane_prefix) && last_segment(v, '/') == last_segment(arn, ':'))
            else {
                bail!(
                    "{function_name} has a mapping on {arn}, a queue none of its {lane_prefix}<LANE> settings names"
                );
            };
            let lane_url = queue_url_of(&sqs, arn).await?;
            let redrive = queue_attribute(&sqs, &lane_url, QueueAttributeName::RedrivePolicy).await?;
            let redrive: Value =
                serde_json::from_str(&redrive).context("a redrive policy that is not JSON")?;
            let target =
                redrive["deadLetterTargetArn"].as_str().context("a redrive policy without a target")?;
            ensure!(
                named("JOBKIT_DLQ_URL") == Some(last_segment(target, ':')),
                "{function_name}'s lane queue {arn} redrives to {target}, not the job's DLQ"
            );
            lanes.push(LaneDeployment {
                lane: setting[lane_prefix.len()..].to_lowercase(),
                queue_url: lane_url,
                batch_size: usize::try_from(other.batch_size().context("a mapping without a batch size")?)?,
                batching_window: Duration::from_secs(u64::try_from(
                    other.maximum_batching_window_in_seconds().unwrap_or(0),
                )?),
                max_concurrency: other.scaling_config().and_then(|c| c.maximum_concurrency()),
                report_batch_item_failures: other
                    .function_response_types()
                    .contains(&FunctionResponseType::ReportBatchItemFailures),
            });
        }
        let queue_url = queue_url_of(&sqs, &queue_arn).await?;
        let redrive = queue_attribute(&sqs, &queue_url, QueueAttributeName::RedrivePolicy).await?;
        let redrive: Value = serde_json::from_str(&redrive).context("a redrive policy that is not JSON")?;
        let dlq_arn = redrive["deadLetterTargetArn"].as_str().context("a redrive policy without a target")?;
        let dlq_url = queue_url_of(&sqs, dlq_arn).await?;

        ensure!(
            named("JOBKIT_QUEUE_URL") == Some(last_segment(&queue_arn, ':')),
            "{function_name}'s JOBKIT_QUEUE_URL ({:?}) is not the queue its event source mapping reads ({queue_arn})",
            env.get("JOBKIT_QUEUE_URL")
        );
        ensure!(
            named("JOBKIT_DLQ_URL") == Some(last_segment(dlq_arn, ':')),
            "{function_name}'s JOBKIT_DLQ_URL ({:?}) is not its queue's redrive target ({dlq_arn})",
            env.get("JOBKIT_DLQ_URL")
        );
        Ok(Deployment {
            binary: binary.to_owned(),
            logical_id,
            function_name,
            env,
            timeout: Duration::from_secs(u64::try_from(timeout)?),
            memory_mb: config.memory_size().unwrap_or(128),
            log_group: config.logging_config().and_then(|l| l.log_group()).map(str::to_owned),
            queue_url,
            queue_arn,
            dlq_url,
            batch_size: usize::try_from(mapping.batch_size().context("a mapping without a batch size")?)?,
            batching_window: Duration::from_secs(u64::try_from(
                mapping.maximum_batching_window_in_seconds().unwrap_or(0),
            )?),
            report_batch_item_failures: mapping
                .function_response_types()
                .contains(&FunctionResponseType::ReportBatchItemFailures),
            lanes,
        })
    }

    /// Changes the deployed function's settings (`UpdateFunctionConfiguration`, keeping the
    /// others), as an operator tuning it would; [`Self::start`] then runs it with them.
    ///
    /// # Errors
    /// If Lambda refuses.
    pub async fn configure(&self, binary: &str, settings: &[(&str, &str)]) -> anyhow::Result<()> {
        let deployment = self.deployment(binary).await?;
        let mut variables: HashMap<String, String> = deployment.env.into_iter().collect();
        variables.extend(settings.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        let environment =
            aws_sdk_lambda::types::Environment::builder().set_variables(Some(variables)).build();
        self.lambda()
            .update_function_configuration()
            .function_name(&deployment.function_name)
            .environment(environment)
            .send()
            .await
            .with_context(|| format!("configuring {}", deployment.function_name))?;
        Ok(())
    }

    /// Starts the function running `binary` under the local Lambda on its queue, with its
    /// deployed environment, what Lambda adds, and `sandbox` (only [`SANDBOX_SETTINGS`]).
    ///
    /// # Errors
    /// If `sandbox` names another setting, the deployment is inconsistent (see
    /// [`Self::deployment`]), the binary is missing, or the local Lambda refuses the mapping.
    pub async fn start(&self, binary: &str, sandbox: &[(&str, String)]) -> anyhow::Result<Function> {
        self.start_on(binary, None, sandbox).await
    }

    /// [`Self::start`], fed by the mapping of the job's lane `lane` (`low`) instead of its own
    /// queue's: the records it gets come from that lane's queue.
    ///
    /// # Errors
    /// As [`Self::start`], or the job has no such lane.
    pub async fn start_on_lane(
        &self,
        binary: &str,
        lane: &str,
        sandbox: &[(&str, String)],
    ) -> anyhow::Result<Function> {
        self.start_on(binary, Some(lane), sandbox).await
    }

    async fn start_on(
        &self,
        binary: &str,
        lane: Option<&str>,
        sandbox: &[(&str, String)],
    ) -> anyhow::Result<Function> {
        let mut deployment = self.deployment(binary).await?;
        if let Some(lane) = lane {
            let Some(fed) = deployment.lanes.iter().find(|l| l.lane == lane).cloned() else {
                bail!("{binary} has no {lane} lane");
            };
            deployment.queue_arn =
                queue_attribute(&self.sqs(), &fed.queue_url, QueueAttributeName::QueueArn).await?;
            deployment.queue_url = fed.queue_url;
            deployment.batch_size = fed.batch_size;
            deployment.batching_window = fed.batching_window;
            deployment.report_batch_item_failures = fed.report_batch_item_failures;
        }
        let env = lambda_environment(&deployment, moto::function_env(), sandbox)?;
        let mapping = Mapping {
            queue_url: deployment.queue_url.clone(),
            batch_size: deployment.batch_size,
            batching_window: deployment.batching_window,
            report_batch_item_failures: deployment.report_batch_item_failures,
            timeout: deployment.timeout,
        };
        let binary_path = deployed_binary(binary, &deployment.logical_id)?;
        let lambda = LocalLambda::new(self.sqs(), mapping, binary_path, env.into_iter().collect()).await?;
        Ok(Function {
            lambda,
            function_name: deployment.function_name,
            queue_url: deployment.queue_url,
            queue_arn: deployment.queue_arn,
            dlq_url: deployment.dlq_url,
            env: deployment.env,
        })
    }

    /// The EventBridge Scheduler schedule that targets `function`'s queue, as Scheduler holds
    /// it (`GetSchedule`): expression, time zone, flexible window, state and target.
    ///
    /// # Errors
    /// If not exactly one schedule targets the queue.
    pub async fn schedule(&self, function: &Function) -> anyhow::Result<GetScheduleOutput> {
        let scheduler = self.scheduler();
        let mut pages = scheduler.list_schedules().into_paginator().send();
        let mut targeting = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.context("listing the schedules")?;
            targeting.extend(
                page.schedules()
                    .iter()
                    .filter(|s| s.target().map(|t| t.arn()) == Some(function.queue_arn.as_str()))
                    .map(|s| (s.name().unwrap_or_default().to_owned(), s.group_name().map(str::to_owned))),
            );
        }
        let [(name, group)] = targeting.as_slice() else {
            bail!("{} schedules target {}, not one: {targeting:?}", targeting.len(), function.queue_arn);
        };
        scheduler
            .get_schedule()
            .name(name)
            .set_group_name(group.clone())
            .send()
            .await
            .with_context(|| format!("reading the schedule {name}"))
    }

    /// The body the schedule targeting `function`'s queue puts on it for its firing at `time`
    /// (RFC 3339, UTC, as Scheduler writes the scheduled time): the target's input with
    /// Scheduler's context attributes filled in (moto never fires schedules).
    ///
    /// # Errors
    /// If not exactly one enabled schedule targets the queue, or its input cannot be rendered.
    pub async fn tick(&self, function: &Function, time: &str) -> anyhow::Result<String> {
        let schedule = self.schedule(function).await?;
        let name = schedule.name().unwrap_or_default();
        ensure!(
            schedule.state() == Some(&aws_sdk_scheduler::types::ScheduleState::Enabled),
            "schedule {name} is not enabled: it never fires"
        );
        let target = schedule.target().context("a schedule without a target")?;
        let input = target.input().with_context(|| format!("schedule {name} sends no input"))?;
        let execution_id = uuid::Uuid::new_v4().simple().to_string();
        let firing = Firing {
            schedule_arn: schedule.arn().context("a schedule without an ARN")?,
            scheduled_time: time,
            execution_id: &execution_id[..16],
            attempt: 1,
        };
        scheduler::render(input, &firing)
    }

    /// An EventBridge Scheduler client on moto.
    pub fn scheduler(&self) -> aws_sdk_scheduler::Client {
        aws_sdk_scheduler::Client::new(&self.sdk)
    }

    fn function_logical_id(&self, binary: &str) -> anyhow::Result<String> {
        let resources = self.template["Resources"].as_object().context("a template without resources")?;
        let found: Vec<&String> = resources
            .iter()
            .filter(|(_, r)| {
                r["Type"] == "AWS::Lambda::Function" && r["Metadata"]["BuildProperties"]["Binary"] == binary
            })
            .map(|(id, _)| id)
            .collect();
        match found.as_slice() {
            [id] => Ok((*id).clone()),
            [] => bail!("no function of the template builds the binary {binary}"),
            more => bail!("several functions build the binary {binary}: {more:?}"),
        }
    }

    /// The sender of error emails must be a verified SES identity (README, "Deploy", step 4:
    /// the operator clicks the link SES mails). moto's CloudFormation does not create the
    /// template's identity, and moto verifies the ones created through SES at once.
    async fn verify_alert_sender(&self) -> anyhow::Result<()> {
        let sender = self.parameters.get("AlertSender").context("no AlertSender parameter")?;
        aws_sdk_sesv2::Client::new(&self.sdk)
            .create_email_identity()
            .email_identity(sender)
            .send()
            .await
            .context("verifying the alert sender")?;
        Ok(())
    }

    async fn disable_motos_mappings(&self) -> anyhow::Result<()> {
        let lambda = self.lambda();
        for mapping in self.resources_of("AWS::Lambda::EventSourceMapping") {
            lambda
                .update_event_source_mapping()
                .uuid(&mapping.physical_id)
                .enabled(false)
                .send()
                .await
                .with_context(|| format!("disabling moto's event source mapping {}", mapping.physical_id))?;
        }
        Ok(())
    }

    /// moto keeps a `Number` parameter a number where a function's environment refers to it
    /// (`CART_IDLE_AFTER_MINUTES: 120`), which the SDK cannot read: CloudFormation writes the
    /// string, and Lambda holds only strings. Rewrites such settings as the strings Lambda holds.
    async fn write_settings_as_strings(&self) -> anyhow::Result<()> {
        for function in self.resources_of("AWS::Lambda::Function") {
            let url =
                format!("{}/2015-03-31/functions/{}/configuration", moto::endpoint(), function.physical_id);
            let body = tokio::task::spawn_blocking(move || moto::aws_get(&url, "lambda")).await??;
            let config: Value =
                serde_json::from_str(&body).context("a function configuration that is not JSON")?;
            let Some(variables) = config["Environment"]["Variables"].as_object() else { continue };
            if variables.values().all(Value::is_string) {
                continue;
            }
            let variables: HashMap<String, String> = variables
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_owned)))
                .collect();
            let environment =
                aws_sdk_lambda::types::Environment::builder().set_variables(Some(variables)).build();
            self.lambda()
                .update_function_configuration()
                .function_name(&function.physical_id)
                .environment(environment)
                .send()
                .await
                .with_context(|| format!("writing {}'s settings as strings", function.physical_id))?;
        }
        Ok(())
    }

    async fn read_environments(&self) -> anyhow::Result<BTreeMap<String, BTreeMap<String, String>>> {
        let lambda = self.lambda();
        let mut environments = BTreeMap::new();
        for function in self.resources_of("AWS::Lambda::Function") {
            let config = lambda
                .get_function_configuration()
                .function_name(&function.physical_id)
                .send()
                .await
                .with_context(|| format!("reading {}'s configuration", function.physical_id))?;
            let env = config
                .environment()
                .and_then(|e| e.variables())
                .map(|vars| vars.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default();
            environments.insert(function.physical_id.clone(), env);
        }
        Ok(environments)
    }
}

/// The environment Lambda gives `deployment`'s function: its deployed settings, what Lambda
/// adds (name, memory, log group), `aws` (the region, credentials and endpoint; moto's) and
/// `sandbox` (only [`SANDBOX_SETTINGS`]).
///
/// # Errors
/// If `sandbox` names another setting.
pub fn lambda_environment(
    deployment: &Deployment,
    aws: Vec<(&'static str, String)>,
    sandbox: &[(&str, String)],
) -> anyhow::Result<BTreeMap<String, String>> {
    if let Some((name, _)) = sandbox.iter().find(|(name, _)| !SANDBOX_SETTINGS.contains(name)) {
        bail!("{name} is the deployed stack's to set: configure it (Stack::configure) or deploy it");
    }
    let lambda_adds = [
        ("AWS_LAMBDA_FUNCTION_NAME", deployment.function_name.clone()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", deployment.memory_mb.to_string()),
    ]
    .into_iter()
    .chain(deployment.log_group.clone().map(|group| ("AWS_LAMBDA_LOG_GROUP_NAME", group)))
    .chain(aws);
    Ok(deployment
        .env
        .clone()
        .into_iter()
        .chain(lambda_adds.chain(sandbox.iter().cloned()).map(|(k, v)| (k.to_owned(), v)))
        .collect())
}

/// Runs the packaging script: uploads the code artifact to moto's S3 and returns the template
/// translated with `parameters` (JSON).
async fn package(stack: &str, parameters: &BTreeMap<String, String>) -> anyhow::Result<String> {
    let python = std::env::var_os(TRANSLATOR_ENV).filter(|p| !p.is_empty()).with_context(|| {
        format!(
            "{TRANSLATOR_ENV} is not set: run the tests with ./scripts/test (or `source scripts/lib/moto.sh`), \
             which installs the SAM translator"
        )
    })?;
    let mut command = tokio::process::Command::new(&python);
    command
        .arg(PACKAGE_SCRIPT)
        .arg(Path::new(TEMPLATE))
        .args(["--bucket", &format!("{stack}-artifacts"), "--key", "functions.zip", "--region", "us-east-1"])
        .args(parameters.iter().flat_map(|(k, v)| ["--parameter".to_owned(), format!("{k}={v}")]))
        .envs(moto::function_env())
        .env_remove("AWS_PROFILE");
    let out = command.output().await.with_context(|| format!("running {}", Path::new(&python).display()))?;
    ensure!(
        out.status.success(),
        "packaging the template failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).context("the packaged template is not UTF-8")
}

async fn create(
    cloudformation: &aws_sdk_cloudformation::Client,
    stack: &str,
    template: &str,
    parameters: &BTreeMap<String, String>,
) -> anyhow::Result<()> {
    let parameters = parameters
        .iter()
        .map(|(k, v)| Parameter::builder().parameter_key(k).parameter_value(v).build())
        .collect();
    cloudformation
        .create_stack()
        .stack_name(stack)
        .template_body(template)
        .set_parameters(Some(parameters))
        .capabilities(Capability::CapabilityIam)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!(aws_sdk_cloudformation::error::DisplayErrorContext(e).to_string()))
        .with_context(|| format!("creating stack {stack}"))?;
    cloudformation
        .wait_until_stack_create_complete()
        .stack_name(stack)
        .wait(CREATE_LIMIT)
        .await
        .map_err(|e| anyhow::anyhow!(aws_sdk_cloudformation::error::DisplayErrorContext(e).to_string()))
        .with_context(|| format!("waiting for stack {stack} to be created"))?;
    Ok(())
}

async fn list_resources(
    cloudformation: &aws_sdk_cloudformation::Client,
    stack: &str,
) -> anyhow::Result<Vec<Resource>> {
    let mut pages = cloudformation.list_stack_resources().stack_name(stack).into_paginator().send();
    let mut resources = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.context("listing the stack's resources")?;
        resources.extend(page.stack_resource_summaries().iter().map(|r| Resource {
            logical_id: r.logical_resource_id().unwrap_or_default().to_owned(),
            physical_id: r.physical_resource_id().unwrap_or_default().to_owned(),
            kind: r.resource_type().unwrap_or_default().to_owned(),
        }));
    }
    Ok(resources)
}

async fn outputs(
    cloudformation: &aws_sdk_cloudformation::Client,
    stack: &str,
) -> anyhow::Result<BTreeMap<String, String>> {
    let described =
        cloudformation.describe_stacks().stack_name(stack).send().await.context("describing the stack")?;
    let stack = described.stacks().first().context("no such stack")?;
    Ok(stack
        .outputs()
        .iter()
        .filter_map(|o| Some((o.output_key()?.to_owned(), o.output_value()?.to_owned())))
        .collect())
}

/// The URL of the queue whose ARN is `arn`.
async fn queue_url_of(sqs: &aws_sdk_sqs::Client, arn: &str) -> anyhow::Result<String> {
    let out = sqs
        .get_queue_url()
        .queue_name(last_segment(arn, ':'))
        .send()
        .await
        .with_context(|| format!("finding the queue {arn}"))?;
    out.queue_url().map(str::to_owned).context("a queue without a URL")
}

async fn queue_attribute(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    name: QueueAttributeName,
) -> anyhow::Result<String> {
    let out = sqs.get_queue_attributes().queue_url(url).attribute_names(name.clone()).send().await?;
    out.attributes()
        .and_then(|a| a.get(&name))
        .cloned()
        .with_context(|| format!("queue {url} has no {}", name.as_str()))
}

fn last_segment(text: &str, separator: char) -> &str {
    text.rsplit(separator).next().unwrap_or(text)
}
