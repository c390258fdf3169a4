//! Webhook registration: list the shop's subscriptions (every page of them: one of ours may be
//! past the first hundred), then create only what is missing, so a second run creates nothing.

use std::sync::Arc;

use jobkit::{ErrorKind, JobError};

use crate::{
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
        let token = self.credentials.shopify_token(&store.id).await?.ok_or_else(|| {
            JobError::permanent(ErrorKind::UNAUTHORIZED, format!("store {} has no Shopify token", store.id))
        })?;
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
    }
}
