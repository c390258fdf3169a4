//! The customer_sync job as a Lambda function.

#[tokio::main]
async fn main() -> Result<(), jobkit::lambda::Error> {
    jobkit::lambda::run_with(customer_sync::CustomerSyncJob::from_aws).await
}
