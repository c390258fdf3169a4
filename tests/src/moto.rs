//! Reaching the moto server that `./scripts/test` starts (`MOTO_ENDPOINT`).

use aws_config::{BehaviorVersion, Region, SdkConfig};

/// The moto server's URL.
///
/// # Panics
/// When `MOTO_ENDPOINT` is unset: these tests need the server, run them with `./scripts/test`.
pub fn endpoint() -> String {
    std::env::var("MOTO_ENDPOINT")
        .expect("MOTO_ENDPOINT is not set: run the tests with ./scripts/test, which starts moto")
}

/// An SDK config pointed at moto with test credentials.
pub async fn sdk_config() -> SdkConfig {
    let credentials = aws_sdk_sqs::config::Credentials::new("testing", "testing", None, None, "moto");
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint())
        .credentials_provider(credentials)
        .load()
        .await
}

/// A name no other test uses.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}
