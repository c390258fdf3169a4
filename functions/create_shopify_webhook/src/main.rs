//! The create_shopify_webhook job as a Lambda function.

#[tokio::main]
async fn main() -> Result<(), jobkit::lambda::Error> {
    shop::run_on_lambda::<create_shopify_webhook::CreateShopifyWebhook>().await
}
