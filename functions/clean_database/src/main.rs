//! The clean_database job as a Lambda function.

#[tokio::main]
async fn main() -> Result<(), jobkit::lambda::Error> {
    jobkit::lambda::run_with(clean_database::CleanDatabase::from_aws).await
}
