//! Webhook registration: list the shop's subscriptions (every page of them: one of ours may be
//! past the first hundred), then create only what is missing, so a second run creates nothing.

use std::sync::Arc;

use jobkit::JobError;

use super::tokens::with_token;
use crate::{
    declaration::Platform,
    ports::Credentials,
    shopify::{ShopifyClient, ShopifyShop},
    store::Store,
};

/// What a registration did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Registration {
    /// Topics subscribed now.
    pub created: Vec<String>,
    /// Topics that were already subscribed to this address.
    pub existing: Vec<String>,
}

/// Registers a store's webhook subscriptions in Shopify.
#[derive(Debug, Clone)]
pub struct WebhookRegistrar {
    shopify: ShopifyClient,
    credentials: Arc<dyn Credentials>,
}

impl WebhookRegistrar {
    /// A registrar on these ports.
    pub fn new(shopify: ShopifyClient, credentials: Arc<dyn Credentials>) -> Self {
        Self { shopify, credentials }
    }

    /// Subscribes `uri` to each of `topics` that is not subscribed to it yet, among all the
    /// shop's subscriptions.
    ///
    /// # Errors
    /// `unauthorized` (permanent) without a token; Shopify's classified errors.
    pub async fn ensure(
        &self,
        store: &Store,
        topics: &[String],
        uri: &str,
    ) -> Result<Registration, JobError> {
        // Listing and creating again after a refused token is safe: only what is missing is created.
        with_token(self.credentials.as_ref(), &store.id, Platform::Shopify, |token| async move {
            let shop = ShopifyShop { domain: store.shopify_domain.clone(), token };
            let current = self.shopify.webhook_subscriptions(&shop).await?;
            let mut registration = Registration::default();
            for topic in topics {
                let subscribed = current.iter().any(|s| &s.topic == topic && s.uri.as_deref() == Some(uri));
                if subscribed {
                    registration.existing.push(topic.clone());
                } else {
                    self.shopify.create_webhook_subscription(&shop, topic, uri).await?;
                    registration.created.push(topic.clone());
                }
            }
            Ok(registration)
        })
        .await
    }
}
