//! A hand-built stack for the example function, which `template.yaml` does not deploy: jobkit's
//! state table and per function a queue with its DLQ. Every function the template deploys runs
//! on the deployed stack instead ([`crate::stack`]), with the configuration it is deployed with.

use std::time::Duration;

use anyhow::Context;

use crate::{
    function::test_build_binary,
    lambda::{LocalLambda, Mapping},
    moto,
    sqs::{create_queue_with_dlq, queue_arn},
    stack::Function,
};

/// The state table the example function needs.
pub struct ExampleStack {
    /// The SDK config pointed at moto.
    pub sdk: aws_config::SdkConfig,
    /// `JOBKIT_STATE_TABLE`.
    pub state_table: String,
}

/// How the example function is deployed.
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
}

impl FunctionSpec {
    /// `name` with a 600 s timeout, a 600 s visibility, 10 receives and batches of 10.
    ///
    /// The timeout must exceed the job's own plus a second, or the runner hands every record
    /// back unstarted (it cannot finish in time). The visibility may not be shorter than the
    /// timeout (Lambda refuses the mapping); the runner sets each retry's delay itself, so only
    /// a crash waits for it.
    pub fn new(name: &'static str) -> Self {
        Self {
            name,
            timeout: Duration::from_secs(600),
            visibility: Duration::from_secs(600),
            max_receive_count: 10,
            batch_size: 10,
        }
    }
}

impl ExampleStack {
    /// Creates the state table.
    ///
    /// # Errors
    /// If moto refuses.
    pub async fn create() -> anyhow::Result<Self> {
        let sdk = moto::sdk_config().await;
        let state_table = moto::unique("jobs-state");
        jobkit::aws::DynamoStore::create_table(&aws_sdk_dynamodb::Client::new(&sdk), &state_table)
            .await
            .context("creating the state table")?;
        Ok(Self { sdk, state_table })
    }

    /// An SQS client on moto.
    pub fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.sdk)
    }

    /// Creates the function's queue and DLQ and puts the test build's binary under a local
    /// Lambda.
    ///
    /// # Errors
    /// If moto refuses, the binary is missing, or the local Lambda refuses the mapping.
    pub async fn deploy(&self, spec: FunctionSpec) -> anyhow::Result<Function> {
        let binary = test_build_binary(spec.name)?;
        let sqs = self.sqs();
        let name = moto::unique(spec.name);
        let (queue_url, dlq_url) =
            create_queue_with_dlq(&sqs, &name, spec.visibility, spec.max_receive_count).await?;
        let env = moto::function_env()
            .into_iter()
            .chain([
                ("JOBKIT_QUEUE_URL", queue_url.clone()),
                ("JOBKIT_DLQ_URL", dlq_url.clone()),
                ("JOBKIT_STATE_TABLE", self.state_table.clone()),
                ("RUST_LOG", "info".to_owned()),
            ])
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        let mapping = Mapping {
            queue_url: queue_url.clone(),
            batch_size: spec.batch_size,
            batching_window: Duration::ZERO,
            report_batch_item_failures: true,
            timeout: spec.timeout,
        };
        let lambda = LocalLambda::new(sqs.clone(), mapping, binary, env).await?;
        let queue_arn = queue_arn(&sqs, &queue_url).await?;
        Ok(Function { lambda, function_name: name, queue_url, queue_arn, dlq_url, env: Default::default() })
    }
}
