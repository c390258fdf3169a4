//! The deployed stack's pieces on moto, for the functions under the local Lambda: every table,
//! a secret prefix, and per function a queue with its DLQ and the environment the template
//! gives it.

use std::time::Duration;

use anyhow::Context;
use shop::{Plan, Store, StoreRepository, SyncState, aws::DynamoStores};

use crate::{
    function::{binary, test_build_binary},
    lambda::{LocalLambda, Mapping},
    moto,
    sqs::create_queue_with_dlq,
    tables::StackTables,
};

/// The shared parts: tables and secrets.
pub struct Stack {
    /// The SDK config pointed at moto.
    pub sdk: aws_config::SdkConfig,
    /// Every table, by its environment variable.
    pub tables: StackTables,
    /// `SHOP_SECRET_PREFIX`: one secret per store under it.
    pub secret_prefix: String,
}

/// A function deployed on the stack: its local Lambda, queue and DLQ.
pub struct Deployed {
    /// The function under its event source mapping.
    pub lambda: LocalLambda,
    /// Its queue.
    pub queue_url: String,
    /// Its DLQ.
    pub dlq_url: String,
}

/// How a function is deployed, past what every function shares.
#[derive(Debug, Clone)]
pub struct FunctionSpec {
    /// The crate under `functions/`.
    pub name: &'static str,
    /// Its timeout (each invocation's deadline).
    pub timeout: Duration,
    /// Its queue's visibility timeout.
    pub visibility: Duration,
    /// Its queue's `maxReceiveCount`.
    pub max_receive_count: u32,
    /// `BatchSize`.
    pub batch_size: usize,
    /// Environment of its own (base URLs, settings).
    pub env: Vec<(&'static str, String)>,
}

impl FunctionSpec {
    /// `name` with a 600 s timeout, a 600 s visibility, 10 receives and batches of 10.
    ///
    /// The timeout must exceed the job's own plus a second, or the runner hands every record
    /// back unstarted (it cannot finish in time); the template gives each function twice its
    /// job's timeout, 600 s at most. The visibility may not be shorter than the timeout (Lambda
    /// refuses the mapping; the template gives six times it); the runner sets each retry's
    /// delay itself, so only a crash waits for it.
    pub fn new(name: &'static str) -> Self {
        Self {
            name,
            timeout: Duration::from_secs(600),
            visibility: Duration::from_secs(600),
            max_receive_count: 10,
            batch_size: 10,
            env: Vec::new(),
        }
    }

    /// With an environment variable.
    #[must_use]
    pub fn env(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.env.push((key, value.into()));
        self
    }
}

impl Stack {
    /// Creates the tables and picks a secret prefix no other test uses.
    ///
    /// # Errors
    /// If moto refuses.
    pub async fn create() -> anyhow::Result<Self> {
        let sdk = moto::sdk_config().await;
        let tables = StackTables::create(&aws_sdk_dynamodb::Client::new(&sdk)).await?;
        Ok(Self { sdk, tables, secret_prefix: moto::unique("store-jobs") })
    }

    /// The name of table `env_name` (`SHOP_STORES_TABLE`...).
    ///
    /// # Errors
    /// If there is no such table.
    pub fn table(&self, env_name: &str) -> anyhow::Result<String> {
        self.tables.env.iter().find(|(k, _)| *k == env_name).map(|(_, t)| t.clone()).context("no such table")
    }

    /// A DynamoDB client on moto.
    pub fn dynamo(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&self.sdk)
    }

    /// An SQS client on moto.
    pub fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.sdk)
    }

    /// Adds the store `id` (shop `<id>.myshopify.com`, with `-` for `_`) and its secret holding
    /// `secret` (`{"shopify_token": ..., "square_token": ...}`).
    ///
    /// # Errors
    /// If moto refuses.
    pub async fn add_store(&self, id: &str, secret: serde_json::Value) -> anyhow::Result<Store> {
        let store = Store {
            id: id.into(),
            shopify_domain: format!("{}.myshopify.com", id.replace('_', "-")).parse()?,
            pos_location_id: Some("L1".into()),
            plan: Plan::Basic,
            sync_state: SyncState::Never,
        };
        DynamoStores::new(self.dynamo(), self.table("SHOP_STORES_TABLE")?).put(&store).await?;
        aws_sdk_secretsmanager::Client::new(&self.sdk)
            .create_secret()
            .name(format!("{}/{id}", self.secret_prefix))
            .secret_string(secret.to_string())
            .send()
            .await
            .context("creating the store's secret")?;
        Ok(store)
    }

    /// Creates the function's queue and DLQ and puts its binary under a local Lambda with the
    /// environment the template gives it.
    ///
    /// # Errors
    /// If moto refuses or the binary is missing.
    pub async fn deploy(&self, spec: FunctionSpec) -> anyhow::Result<Deployed> {
        let path = binary(spec.name)?;
        self.deploy_binary(spec, path).await
    }

    /// [`Self::deploy`] with the test build's binary, for functions the template does not
    /// deploy (the example job).
    ///
    /// # Errors
    /// If moto refuses or the binary is missing.
    pub async fn deploy_test_build(&self, spec: FunctionSpec) -> anyhow::Result<Deployed> {
        let path = test_build_binary(spec.name)?;
        self.deploy_binary(spec, path).await
    }

    async fn deploy_binary(&self, spec: FunctionSpec, path: std::path::PathBuf) -> anyhow::Result<Deployed> {
        let sqs = self.sqs();
        let name = moto::unique(spec.name);
        let (queue_url, dlq_url) =
            create_queue_with_dlq(&sqs, &name, spec.visibility, spec.max_receive_count).await?;
        // The function's own settings override the shared ones, as in the template.
        let env: std::collections::BTreeMap<String, String> = moto::function_env()
            .into_iter()
            .chain([
                ("JOBKIT_QUEUE_URL", queue_url.clone()),
                ("JOBKIT_DLQ_URL", dlq_url.clone()),
                ("SHOP_SECRET_PREFIX", self.secret_prefix.clone()),
                ("RUST_LOG", "info".to_owned()),
            ])
            .chain(self.tables.env.iter().cloned())
            .chain(spec.env)
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        let mapping = Mapping {
            queue_url: queue_url.clone(),
            batch_size: spec.batch_size,
            batching_window: Duration::ZERO,
            report_batch_item_failures: true,
            timeout: spec.timeout,
        };
        let lambda = LocalLambda::new(sqs, mapping, path, env.into_iter().collect()).await?;
        Ok(Deployed { lambda, queue_url, dlq_url })
    }
}

impl Deployed {
    /// Sends `body` to the function's queue; returns the message id.
    ///
    /// # Errors
    /// If SQS refuses.
    pub async fn send(&self, sqs: &aws_sdk_sqs::Client, body: &str) -> anyhow::Result<String> {
        let out = sqs.send_message().queue_url(&self.queue_url).message_body(body).send().await?;
        out.message_id().map(str::to_owned).context("no message id")
    }
}
