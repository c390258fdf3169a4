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

#[derive(serde::Deserialize)]
struct StoreSecret {
    #[serde(default)]
    shopify_token: Option<Secret>,
}

/// [`Credentials`] in Secrets Manager.
#[derive(Debug)]
pub struct SecretsManagerCredentials {
    client: Client,
    prefix: String,
    cache: Mutex<HashMap<StoreId, (Instant, Option<Secret>)>>,
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

    async fn fetch(&self, store: &StoreId) -> RepoResult<Option<Secret>> {
        let result = self.client.get_secret_value().secret_id(self.secret_name(store)).send().await;
        let out = match result {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => {
                return Ok(None);
            }
            // The SDK's error never includes the secret's value.
            Err(e) => return Err(super::sdk_error("GetSecretValue", e)),
        };
        let Some(raw) = out.secret_string() else { return Ok(None) };
        let parsed: StoreSecret = serde_json::from_str(raw).map_err(|_| {
            RepoError::Corrupt(format!("secret {} is not the expected JSON", self.secret_name(store)))
        })?;
        Ok(parsed.shopify_token)
    }
}

#[async_trait]
impl Credentials for SecretsManagerCredentials {
    async fn shopify_token(&self, store: &StoreId) -> RepoResult<Option<Secret>> {
        if let Some((at, token)) = self.cache.lock().unwrap_or_else(|p| p.into_inner()).get(store) {
            if at.elapsed() < CACHE_FOR {
                return Ok(token.clone());
            }
        }
        let token = self.fetch(store).await?;
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(store.clone(), (Instant::now(), token.clone()));
        Ok(token)
    }
}
