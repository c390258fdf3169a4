//! AWS adapters of the ports: SQS, DynamoDB and SES v2 through the real `aws-sdk-*` clients.
//!
//! `AWS_ENDPOINT_URL` is honoured by the SDK itself, so the same code talks to moto in tests.

mod dynamo_store;
mod errors;
mod ses_mailer;
mod sqs_queue;

use aws_config::{BehaviorVersion, SdkConfig};
pub use dynamo_store::DynamoStore;
pub use ses_mailer::SesMailer;
pub use sqs_queue::{SqsCounts, SqsQueue};

/// The SDK configuration from the environment (region, credentials, `AWS_ENDPOINT_URL`).
pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}
