//! The clean_active_carts job as a Lambda function.

#[tokio::main]
async fn main() -> Result<(), jobkit::lambda::Error> {
    shop::run_on_lambda::<clean_active_carts::CleanActiveCarts>().await
}
