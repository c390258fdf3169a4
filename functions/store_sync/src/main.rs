//! The store_sync job as a Lambda function.

#[tokio::main]
async fn main() -> Result<(), jobkit::lambda::Error> {
    jobkit::lambda::run_with(store_sync::StoreSync::from_aws).await
}
