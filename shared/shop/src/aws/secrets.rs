//! Per-store credentials in Secrets Manager: one secret per store, `<prefix>/<store id>`, holding
//! `{"shopify_token": "...", "square_token": "..."}`. Cached for five minutes across
//! invocations (a rotated token is picked up within that); never logged.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;

use crate::{
    ids::StoreId,
    ports::{Credentials, RepoError, RepoResult},
    secret::Secret,
};

const CACHE_FOR: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Default, serde::Deserialize)]
struct StoreSecret {
    #[serde(default)]
    shopify_token: Option<Secret>,
    #[serde(default)]
    square_token: Option<Secret>,
}

/// [`Credentials`] in Secrets Manager.
#[derive(Debug)]
pub struct SecretsManagerCredentials {
    client: Client,
    prefix: String,
    cache: Mutex<HashMap<StoreId, (Instant, StoreSecret)>>,
}

impl SecretsManagerCredentials {
    /// Credentials under `prefix` (`store-jobs/stores`).
    pub fn new(client: Client, prefix: impl Into<String>) -> Self {
        Self { client, prefix: prefix.into(), cache: Mutex::default() }
    }

    /// The secret's name for `store`.
    pub fn secret_name(&self, store: &StoreId) -> String {
        format!("{}/{store}", self.prefix.trim_end_matches('/'))
    }

    async fn fetch(&self, store: &StoreId) -> RepoResult<StoreSecret> {
        let result = self.client.get_secret_value().secret_id(self.secret_name(store)).send().await;
        let out = match result {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => {
                return Ok(StoreSecret::default());
            }
            // The SDK's error never includes the secret's value.
            Err(e) => return Err(super::secrets_error("GetSecretValue", &self.secret_name(store), e)),
        };
        let Some(raw) = out.secret_string() else { return Ok(StoreSecret::default()) };
        let parsed: StoreSecret = serde_json::from_str(raw).map_err(|_| {
            RepoError::Corrupt(format!("secret {} is not the expected JSON", self.secret_name(store)))
        })?;
        Ok(parsed)
    }

    /// The store's secret, from the cache while it is fresh.
    async fn secret(&self, store: &StoreId) -> RepoResult<StoreSecret> {
        if let Some((at, secret)) = self.cache.lock().unwrap_or_else(|p| p.into_inner()).get(store)
            && at.elapsed() < CACHE_FOR
        {
            return Ok(secret.clone());
        }
        let secret = self.fetch(store).await?;
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(store.clone(), (Instant::now(), secret.clone()));
        Ok(secret)
    }
}

#[async_trait]
impl Credentials for SecretsManagerCredentials {
    async fn shopify_token(&self, store: &StoreId) -> RepoResult<Option<Secret>> {
        Ok(self.secret(store).await?.shopify_token)
    }

    async fn square_token(&self, store: &StoreId) -> RepoResult<Option<Secret>> {
        Ok(self.secret(store).await?.square_token)
    }
}
