//! The create_shopify_webhook job as a Lambda function.

#[tokio::main]
async fn main() -> Result<(), jobkit::lambda::Error> {
    jobkit::lambda::run_with(create_shopify_webhook::CreateShopifyWebhook::from_aws).await
}
