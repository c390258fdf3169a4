//! The share_product_text_message job as a Lambda function.

#[tokio::main]
async fn main() -> Result<(), jobkit::lambda::Error> {
    jobkit::lambda::run_with(share_product_text_message::ShareProductTextMessage::from_aws).await
}
