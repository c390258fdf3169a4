//! The customer_sync job as a Lambda function.

#[tokio::main]
async fn main() -> Result<(), jobkit::lambda::Error> {
    shop::run_on_lambda::<customer_sync::CustomerSyncJob>().await
}
