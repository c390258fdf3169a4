//! The clean_active_carts job as a Lambda function.

#[tokio::main]
async fn main() -> Result<(), jobkit::lambda::Error> {
    jobkit::lambda::run_with(clean_active_carts::CleanActiveCarts::from_aws).await
}
