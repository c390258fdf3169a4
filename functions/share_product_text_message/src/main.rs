//! The share_product_text_message job as a Lambda function.

#[tokio::main]
async fn main() -> Result<(), jobkit::lambda::Error> {
    shop::run_on_lambda::<share_product_text_message::ShareProductTextMessage>().await
}
