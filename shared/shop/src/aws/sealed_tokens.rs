//! Store tokens sealed on the store record: the record every job reads anyway carries its
//! tokens encrypted, so a job pays no Secrets Manager call (`$5` per million jobs, and a cache
//! of it can never hit: a store syncs every 15 minutes on any of many execution environments).
//!
//! How: envelope encryption. An execution environment gets one data key from KMS
//! (`GenerateDataKey`, AES-256, under the stack's token key) or adopts the first one it opens,
//! and keeps it in memory for its life. A token is sealed with AES-256-GCM under that data key
//! and stored beside the store's other attributes as `sealed_shopify_token` /
//! `sealed_square_token`: the data key as KMS encrypted it, a random nonce, the ciphertext. The
//! store's id and the platform are the seal's associated data, so a sealed token copied onto
//! another store's record does not open. Opening one needs the data key: from memory, else one
//! KMS `Decrypt` per environment and data key.
//!
//! Secrets Manager stays the source of truth: a store without a sealed token (or with one that
//! does not open) reads its secret once and seals it; a token the provider refuses (401) is
//! read again from Secrets Manager and sealed again ([`Credentials::refresh_token`]), so a
//! rotated secret takes over at the first refusal.
//!
//! Invariants: the plaintext token and data key never leave memory (never logged, never
//! written); the KMS calls carry the encryption context `purpose=store-token`, which the roles'
//! policies require.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, OnceLock},
};

use async_trait::async_trait;
use aws_lc_rs::{
    aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey},
    rand::{SecureRandom, SystemRandom},
};
use aws_sdk_dynamodb::{primitives::Blob as DynamoBlob, types::AttributeValue};
use aws_sdk_kms::{primitives::Blob, types::DataKeySpec};

use super::{SecretsManagerCredentials, kms_error, sdk_error};
use crate::{
    declaration::Platform,
    ids::StoreId,
    ports::{Credentials, RepoError, RepoResult},
    secret::Secret,
};

/// The encryption context of every KMS call: the roles' policies allow the token key only with it.
pub const ENCRYPTION_CONTEXT: (&str, &str) = ("purpose", "store-token");

/// At most this many data keys are kept open per environment (each stack normally has a few).
const MAX_OPEN_KEYS: usize = 64;

/// A token sealed on a store record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedToken {
    /// The data key, encrypted by KMS.
    pub data_key: Vec<u8>,
    /// AES-GCM's nonce.
    pub nonce: Vec<u8>,
    /// The token, encrypted and authenticated.
    pub ciphertext: Vec<u8>,
}

/// The store record's attribute holding `platform`'s sealed token.
pub fn sealed_attribute(platform: Platform) -> &'static str {
    match platform {
        Platform::Shopify => "sealed_shopify_token",
        Platform::Square => "sealed_square_token",
    }
}

impl SealedToken {
    /// As the record's attribute: a map of three binaries.
    pub fn to_attribute(&self) -> AttributeValue {
        let b = |bytes: &[u8]| AttributeValue::B(DynamoBlob::new(bytes.to_vec()));
        AttributeValue::M(HashMap::from([
            ("k".to_owned(), b(&self.data_key)),
            ("n".to_owned(), b(&self.nonce)),
            ("c".to_owned(), b(&self.ciphertext)),
        ]))
    }

    /// From the record's attribute; `None` for anything else (a seal that does not read is
    /// sealed again, never an error).
    pub fn from_attribute(value: &AttributeValue) -> Option<Self> {
        let map = value.as_m().ok()?;
        let bytes = |name: &str| map.get(name)?.as_b().ok().map(|b| b.as_ref().to_vec());
        Some(Self { data_key: bytes("k")?, nonce: bytes("n")?, ciphertext: bytes("c")? })
    }
}

/// The sealed tokens of the store records this environment read, by store: the stores
/// repository notes them as it reads a record ([`super::DynamoStores`]), so that the token comes
/// with the store a job reads first, without a read of its own.
#[derive(Debug, Default)]
pub struct SealedTokenCache {
    seen: Mutex<HashMap<(StoreId, Platform), SealedToken>>,
}

impl SealedTokenCache {
    /// Notes the sealed tokens of a store record just read (and forgets those it no longer has).
    pub fn note(&self, store: &StoreId, item: &HashMap<String, AttributeValue>) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        for platform in [Platform::Shopify, Platform::Square] {
            let key = (store.clone(), platform);
            match item.get(sealed_attribute(platform)).and_then(SealedToken::from_attribute) {
                Some(sealed) => {
                    // Bounded: a fan-out reads every store, and an environment lives for hours.
                    if seen.len() >= 10_000 {
                        seen.clear();
                    }
                    seen.insert(key, sealed);
                }
                None => {
                    seen.remove(&key);
                }
            }
        }
    }

    fn get(&self, store: &StoreId, platform: Platform) -> Option<SealedToken> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).get(&(store.clone(), platform)).cloned()
    }

    fn put(&self, store: &StoreId, platform: Platform, sealed: SealedToken) {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).insert((store.clone(), platform), sealed);
    }
}

/// A data key in the clear, with the KMS blob that names it.
#[derive(Clone)]
struct DataKey {
    encrypted: Vec<u8>,
    plaintext: Arc<[u8; 32]>,
}

/// [`Credentials`] sealed on the store records, with Secrets Manager behind them.
///
/// Its Secrets Manager and KMS clients are made when first needed, not with the job: a job
/// that finds its token sealed and its data key open needs neither, and a client made at start
/// is a function's cold start (each builds its configuration and a TLS connector).
#[derive(Debug)]
pub struct SealedCredentials {
    sdk: jobkit::lambda::SdkConfig,
    secret_prefix: String,
    secrets: OnceLock<SecretsManagerCredentials>,
    kms: OnceLock<aws_sdk_kms::Client>,
    key_id: String,
    dynamo: aws_sdk_dynamodb::Client,
    stores_table: String,
    cache: Arc<SealedTokenCache>,
    /// Held across the KMS call that opens or makes a key: the records of a batch that all
    /// need the environment's first key wait for one call rather than each making its own.
    keys: tokio::sync::Mutex<DataKeys>,
}

/// The data keys this environment opened, by their encrypted form, and the one it seals with.
#[derive(Default)]
struct DataKeys {
    open: HashMap<Vec<u8>, DataKey>,
    sealing: Option<DataKey>,
}

impl DataKeys {
    /// Keeps `key` open, and seals with it if this environment had no key to seal with.
    fn remember(&mut self, key: DataKey) -> DataKey {
        if self.open.len() >= MAX_OPEN_KEYS {
            self.open.clear();
        }
        self.open.insert(key.encrypted.clone(), key.clone());
        self.sealing.get_or_insert_with(|| key.clone());
        key
    }
}

impl std::fmt::Debug for DataKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataKeys").field("open", &self.open.len()).finish_non_exhaustive()
    }
}

impl SealedCredentials {
    /// Tokens sealed under KMS key `key_id` on `stores_table`'s records, read from the secrets
    /// under `secret_prefix` when a record has none (both services reached through `sdk`);
    /// `cache` is the one the stores repository notes records in.
    pub fn new(
        sdk: jobkit::lambda::SdkConfig,
        secret_prefix: impl Into<String>,
        key_id: impl Into<String>,
        dynamo: aws_sdk_dynamodb::Client,
        stores_table: impl Into<String>,
        cache: Arc<SealedTokenCache>,
    ) -> Self {
        Self {
            sdk,
            secret_prefix: secret_prefix.into(),
            secrets: OnceLock::new(),
            kms: OnceLock::new(),
            key_id: key_id.into(),
            dynamo,
            stores_table: stores_table.into(),
            cache,
            keys: tokio::sync::Mutex::default(),
        }
    }

    async fn token(&self, store: &StoreId, platform: Platform) -> RepoResult<Option<Secret>> {
        let sealed = match self.cache.get(store, platform) {
            Some(sealed) => Some(sealed),
            None => self.read_sealed(store, platform).await?,
        };
        if let Some(sealed) = sealed {
            match self.open(store, platform, &sealed).await {
                Ok(token) => return Ok(Some(token)),
                // A seal that does not open (another key, a record copied from another store)
                // is replaced from the source of truth.
                Err(e) => {
                    tracing::warn!(store = %store, platform = platform.name(), error = %e, "sealed token does not open: sealing it again")
                }
            }
        }
        self.reseal(store, platform).await
    }

    /// The record's sealed token, for a job that did not read the store first.
    async fn read_sealed(&self, store: &StoreId, platform: Platform) -> RepoResult<Option<SealedToken>> {
        let attribute = sealed_attribute(platform);
        let out = self
            .dynamo
            .get_item()
            .table_name(&self.stores_table)
            .key("id", AttributeValue::S(store.as_str().to_owned()))
            .projection_expression("#sealed")
            .expression_attribute_names("#sealed", attribute)
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", &self.stores_table, e))?;
        Ok(out.item().and_then(|item| item.get(attribute)).and_then(SealedToken::from_attribute))
    }

    /// Reads the token from Secrets Manager and seals it on the record.
    async fn reseal(&self, store: &StoreId, platform: Platform) -> RepoResult<Option<Secret>> {
        let Some(token) = self.secrets().fetch(store, platform).await? else {
            return Ok(None);
        };
        let sealed = self.seal(store, platform, &token).await?;
        let written = self
            .dynamo
            .update_item()
            .table_name(&self.stores_table)
            .key("id", AttributeValue::S(store.as_str().to_owned()))
            .update_expression("SET #sealed = :sealed")
            // Never a record for a store that is gone.
            .condition_expression("attribute_exists(id)")
            .expression_attribute_names("#sealed", sealed_attribute(platform))
            .expression_attribute_values(":sealed", sealed.to_attribute())
            .send()
            .await;
        match written {
            Ok(_) => self.cache.put(store, platform, sealed),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => {}
            // The token is good; the next job seals it again.
            Err(e) => {
                tracing::warn!(store = %store, error = %sdk_error("UpdateItem", &self.stores_table, e), "sealed token not stored");
            }
        }
        Ok(Some(token))
    }

    async fn seal(&self, store: &StoreId, platform: Platform, token: &Secret) -> RepoResult<SealedToken> {
        let key = self.sealing_key().await?;
        let mut nonce = [0_u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| RepoError::Unavailable("no randomness for a nonce".to_owned()))?;
        let mut ciphertext = token.expose().as_bytes().to_vec();
        cipher(&key)?
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                aad(store, platform),
                &mut ciphertext,
            )
            .map_err(|_| RepoError::Corrupt("sealing a token failed".to_owned()))?;
        Ok(SealedToken { data_key: key.encrypted, nonce: nonce.to_vec(), ciphertext })
    }

    async fn open(&self, store: &StoreId, platform: Platform, sealed: &SealedToken) -> RepoResult<Secret> {
        let key = self.data_key(&sealed.data_key).await?;
        let nonce = Nonce::try_assume_unique_for_key(&sealed.nonce)
            .map_err(|_| RepoError::Corrupt("a sealed token's nonce is not 12 bytes".to_owned()))?;
        let mut buffer = sealed.ciphertext.clone();
        let plaintext = cipher(&key)?
            .open_in_place(nonce, aad(store, platform), &mut buffer)
            .map_err(|_| RepoError::Corrupt("a sealed token does not open under its key".to_owned()))?;
        let token = String::from_utf8(plaintext.to_vec())
            .map_err(|_| RepoError::Corrupt("a sealed token is not text".to_owned()))?;
        Ok(Secret::new(token))
    }

    /// The key this environment seals with: the first it opened or generated.
    async fn sealing_key(&self) -> RepoResult<DataKey> {
        let mut keys = self.keys.lock().await;
        if let Some(key) = keys.sealing.clone() {
            return Ok(key);
        }
        let (name, value) = ENCRYPTION_CONTEXT;
        let out = self
            .kms()
            .generate_data_key()
            .key_id(&self.key_id)
            .key_spec(DataKeySpec::Aes256)
            .encryption_context(name, value)
            .send()
            .await
            .map_err(|e| kms_error("GenerateDataKey", &self.key_id, e))?;
        let encrypted = out.ciphertext_blob().map(|b| b.as_ref().to_vec()).unwrap_or_default();
        let key = data_key(encrypted, out.plaintext())?;
        Ok(keys.remember(key))
    }

    /// The data key `encrypted`, opened by KMS once per environment.
    async fn data_key(&self, encrypted: &[u8]) -> RepoResult<DataKey> {
        let mut keys = self.keys.lock().await;
        if let Some(key) = keys.open.get(encrypted).cloned() {
            return Ok(key);
        }
        let (name, value) = ENCRYPTION_CONTEXT;
        let out = self
            .kms()
            .decrypt()
            .key_id(&self.key_id)
            .ciphertext_blob(Blob::new(encrypted.to_vec()))
            .encryption_context(name, value)
            .send()
            .await
            .map_err(|e| kms_error("Decrypt", &self.key_id, e))?;
        let key = data_key(encrypted.to_vec(), out.plaintext())?;
        Ok(keys.remember(key))
    }

    fn secrets(&self) -> &SecretsManagerCredentials {
        self.secrets.get_or_init(|| {
            SecretsManagerCredentials::new(
                aws_sdk_secretsmanager::Client::new(&self.sdk),
                self.secret_prefix.clone(),
            )
        })
    }

    fn kms(&self) -> &aws_sdk_kms::Client {
        self.kms.get_or_init(|| aws_sdk_kms::Client::new(&self.sdk))
    }
}

fn data_key(encrypted: Vec<u8>, plaintext: Option<&Blob>) -> RepoResult<DataKey> {
    let plaintext: [u8; 32] = plaintext
        .and_then(|p| p.as_ref().try_into().ok())
        .ok_or_else(|| RepoError::Corrupt("KMS answered a data key that is not 32 bytes".to_owned()))?;
    Ok(DataKey { encrypted, plaintext: Arc::new(plaintext) })
}

fn cipher(key: &DataKey) -> RepoResult<LessSafeKey> {
    let unbound = UnboundKey::new(&AES_256_GCM, key.plaintext.as_slice())
        .map_err(|_| RepoError::Corrupt("a data key AES-256-GCM refuses".to_owned()))?;
    Ok(LessSafeKey::new(unbound))
}

/// What a seal is bound to: the store and the platform.
fn aad(store: &StoreId, platform: Platform) -> Aad<Vec<u8>> {
    Aad::from(format!("store-token\0{store}\0{}", platform.name()).into_bytes())
}

#[async_trait]
impl Credentials for SealedCredentials {
    async fn shopify_token(&self, store: &StoreId) -> RepoResult<Option<Secret>> {
        self.token(store, Platform::Shopify).await
    }

    async fn square_token(&self, store: &StoreId) -> RepoResult<Option<Secret>> {
        self.token(store, Platform::Square).await
    }

    async fn refresh_token(&self, store: &StoreId, platform: Platform) -> RepoResult<Option<Secret>> {
        self.reseal(store, platform).await
    }
}
