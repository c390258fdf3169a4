//! The clean_database job as a Lambda function.

#[tokio::main]
async fn main() -> Result<(), jobkit::lambda::Error> {
    shop::run_on_lambda::<clean_database::CleanDatabase>().await
}
