//! Per-store credentials in Secrets Manager: one secret per store and platform,
//! `<prefix>/<store id>/shopify` and `<prefix>/<store id>/square`, each holding
//! `{"token": "..."}`. One secret per platform lets a job's role read the platform it calls and
//! no other (`docs/decisions.md`). Cached for five minutes across invocations (a rotated token
//! is picked up within that); never logged.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;

use crate::{
    declaration::Platform,
    ids::StoreId,
    ports::{Credentials, RepoError, RepoResult},
    secret::Secret,
};

const CACHE_FOR: Duration = Duration::from_secs(300);

/// A platform's secret: `{"token": "..."}` (an object, so a refresh token or an expiry can join
/// it later without a new layout).
#[derive(Debug, Clone, serde::Deserialize)]
struct TokenSecret {
    token: Secret,
}

/// A token as last read (`None`: the store has no secret for the platform), and when.
type Cached = (Instant, Option<Secret>);

/// [`Credentials`] in Secrets Manager.
#[derive(Debug)]
pub struct SecretsManagerCredentials {
    client: Client,
    prefix: String,
    cache: Mutex<HashMap<(StoreId, Platform), Cached>>,
}

impl SecretsManagerCredentials {
    /// Credentials under `prefix` (`store-jobs/stores`).
    pub fn new(client: Client, prefix: impl Into<String>) -> Self {
        Self { client, prefix: prefix.into(), cache: Mutex::default() }
    }

    /// The name of `store`'s secret for `platform`: `<prefix>/<store id>/shopify`.
    pub fn secret_name(&self, store: &StoreId, platform: Platform) -> String {
        secret_name(&self.prefix, store, platform)
    }

    /// The store's token for `platform`, read now (no cache).
    pub(crate) async fn fetch(&self, store: &StoreId, platform: Platform) -> RepoResult<Option<Secret>> {
        let name = self.secret_name(store, platform);
        let result = self.client.get_secret_value().secret_id(&name).send().await;
        let out = match result {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => {
                return Ok(None);
            }
            // The SDK's error never includes the secret's value.
            Err(e) => return Err(super::secrets_error("GetSecretValue", &name, e)),
        };
        let Some(raw) = out.secret_string() else { return Ok(None) };
        // The parse error is not passed on: it could quote the value.
        let parsed: TokenSecret = serde_json::from_str(raw).map_err(|_| {
            RepoError::Corrupt(format!("secret {name} is not the expected JSON ({{\"token\": \"...\"}})"))
        })?;
        Ok(Some(parsed.token))
    }

    /// The store's token for `platform`, from the cache while it is fresh.
    async fn token(&self, store: &StoreId, platform: Platform) -> RepoResult<Option<Secret>> {
        let key = (store.clone(), platform);
        if let Some((at, token)) = self.cache.lock().unwrap_or_else(|p| p.into_inner()).get(&key)
            && at.elapsed() < CACHE_FOR
        {
            return Ok(token.clone());
        }
        let token = self.fetch(store, platform).await?;
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).insert(key, (Instant::now(), token.clone()));
        Ok(token)
    }
}

/// The name of `store`'s secret for `platform` under `prefix`: `<prefix>/<store id>/shopify`
/// (what an operator, the tests and the bench write, and what the roles' ARNs match).
pub fn secret_name(prefix: &str, store: &StoreId, platform: Platform) -> String {
    format!("{}/{store}/{}", prefix.trim_end_matches('/'), platform.secret_suffix())
}

#[async_trait]
impl Credentials for SecretsManagerCredentials {
    async fn shopify_token(&self, store: &StoreId) -> RepoResult<Option<Secret>> {
        self.token(store, Platform::Shopify).await
    }

    async fn square_token(&self, store: &StoreId) -> RepoResult<Option<Secret>> {
        self.token(store, Platform::Square).await
    }

    async fn refresh_token(&self, store: &StoreId, platform: Platform) -> RepoResult<Option<Secret>> {
        let token = self.fetch(store, platform).await?;
        let fresh = (Instant::now(), token.clone());
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).insert((store.clone(), platform), fresh);
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_platform_has_a_secret_of_its_own_under_the_store() {
        let store = StoreId::from("st_42");
        assert_eq!(secret_name("shop/stores", &store, Platform::Shopify), "shop/stores/st_42/shopify");
        assert_eq!(secret_name("shop/stores/", &store, Platform::Square), "shop/stores/st_42/square");
    }

    #[test]
    fn a_secret_holds_its_token_and_nothing_else() {
        let parsed: TokenSecret = serde_json::from_str(r#"{"token":"shpat_1"}"#).unwrap();
        assert_eq!(parsed.token.expose(), "shpat_1");
        assert!(serde_json::from_str::<TokenSecret>(r#"{"shopify_token":"shpat_1"}"#).is_err());
    }
}
