//! Store tokens sealed on their store records under KMS (`shop::aws::sealed_tokens`), through
//! the real DynamoDB, Secrets Manager and KMS clients against moto, every call counted by
//! moto's launcher: a store's secret is read once and sealed; an environment that read the store
//! needs nothing more, a new one one KMS `Decrypt`; a rotated secret takes over when read again;
//! a seal moved to another store's record does not open there.

use std::sync::Arc;

use aws_sdk_dynamodb::types::{AttributeValue, KeyType};
use shop::{
    Credentials, Plan, StoreId, StoreRepository,
    aws::{DynamoStores, SealedCredentials, SealedTokenCache, sealed_attribute},
    declaration::Platform,
};
use system_tests::{cost::Meter, moto, tables};

/// One stack: its stores table, secrets and token key, under one meter.
struct Stack {
    meter: Meter,
    sdk: jobkit::lambda::SdkConfig,
    dynamo: aws_sdk_dynamodb::Client,
    secrets: aws_sdk_secretsmanager::Client,
    table: String,
    prefix: String,
    key: String,
}

impl Stack {
    async fn new() -> Self {
        let meter = Meter::new();
        let sdk = meter.sdk_config().await;
        let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
        let table = tables::table(&dynamo, &[("id", KeyType::Hash)]).await.unwrap();
        let kms = aws_sdk_kms::Client::new(&sdk);
        let key = kms.create_key().send().await.unwrap().key_metadata.unwrap().arn.unwrap();
        let stack = Self {
            secrets: aws_sdk_secretsmanager::Client::new(&sdk),
            sdk: sdk.clone(),
            meter,
            dynamo,

            table,
            prefix: moto::unique("store-jobs"),
            key,
        };
        for id in ["st_1", "st_2"] {
            stack.stores(Arc::default()).put(&super::store(id, Plan::Basic)).await.unwrap();
            stack.secret(id, &format!("shpat_{id}")).await;
        }
        stack.meter.reset().await.unwrap();
        stack
    }

    async fn secret(&self, store: &str, token: &str) {
        let name = format!("{}/{store}/shopify", self.prefix);
        let value = format!(r#"{{"token":"{token}"}}"#);
        if self.secrets.put_secret_value().secret_id(&name).secret_string(&value).send().await.is_err() {
            self.secrets.create_secret().name(&name).secret_string(&value).send().await.unwrap();
        }
    }

    fn stores(&self, cache: Arc<SealedTokenCache>) -> DynamoStores {
        DynamoStores::new(self.dynamo.clone(), self.table.clone()).noting_sealed_tokens(cache)
    }

    /// A new execution environment: its stores repository and credentials sharing one cache.
    fn environment(&self) -> (DynamoStores, SealedCredentials) {
        let cache = Arc::new(SealedTokenCache::default());
        let credentials = SealedCredentials::new(
            self.sdk.clone(),
            self.prefix.clone(),
            self.key.clone(),
            self.dynamo.clone(),
            self.table.clone(),
            cache.clone(),
        );
        (self.stores(cache), credentials)
    }

    /// Requests to `service` (`secretsmanager`, `kms`) since the last reset, by action.
    async fn calls(&self, service: &str) -> Vec<(String, f64)> {
        let calls = self.meter.calls().await.unwrap();
        calls.into_iter().filter(|c| c.service == service).map(|c| (c.action, c.requests)).collect()
    }
}

/// A job's way to its token: the store first, then the token.
async fn token_of(env: &(DynamoStores, SealedCredentials), store: &str) -> String {
    env.0.get(&StoreId::from(store)).await.unwrap().expect("the store");
    env.1.shopify_token(&store.into()).await.unwrap().expect("a token").expose().to_owned()
}

#[tokio::test]
async fn a_token_is_read_from_secrets_manager_once_and_then_comes_with_its_store() {
    let stack = Stack::new().await;
    let first = stack.environment();
    for store in ["st_1", "st_2"] {
        assert_eq!(token_of(&first, store).await, format!("shpat_{store}"));
    }
    let secret_reads = stack.calls("secretsmanager").await;
    assert_eq!(secret_reads, [("GetSecretValue".to_owned(), 2.0)], "once per store, to seal it");
    assert_eq!(stack.calls("kms").await, [("GenerateDataKey".to_owned(), 1.0)], "one data key");

    // The same environment, the next jobs: the store's read brings the sealed token.
    stack.meter.reset().await.unwrap();
    for store in ["st_1", "st_2"] {
        assert_eq!(token_of(&first, store).await, format!("shpat_{store}"));
    }
    assert!(stack.calls("secretsmanager").await.is_empty());
    assert!(stack.calls("kms").await.is_empty());

    // Another environment, a batch's records at once: one Decrypt opens the data key every
    // store was sealed with, the others wait for it.
    stack.meter.reset().await.unwrap();
    let second = stack.environment();
    let batch = ["st_1", "st_2", "st_1", "st_2", "st_1"].map(|store| token_of(&second, store));
    let tokens = futures::future::join_all(batch).await;
    assert_eq!(tokens, ["shpat_st_1", "shpat_st_2", "shpat_st_1", "shpat_st_2", "shpat_st_1"]);
    assert!(stack.calls("secretsmanager").await.is_empty());
    assert_eq!(stack.calls("kms").await, [("Decrypt".to_owned(), 1.0)]);

    // What the record holds is no token in the clear.
    let item = stack.dynamo.get_item().table_name(&stack.table).key("id", s("st_1")).send().await.unwrap();
    let printed = format!("{:?}", item.item());
    assert!(printed.contains(sealed_attribute(Platform::Shopify)) && !printed.contains("shpat"), "{printed}");
}

#[tokio::test]
async fn a_rotated_secret_takes_over_when_read_again_and_a_moved_seal_does_not_open() {
    let stack = Stack::new().await;
    let env = stack.environment();
    assert_eq!(token_of(&env, "st_1").await, "shpat_st_1");
    assert_eq!(token_of(&env, "st_2").await, "shpat_st_2");

    // Rotated: the seal still gives the old token until the provider refuses it and it is read again.
    stack.secret("st_1", "shpat_rotated").await;
    assert_eq!(token_of(&env, "st_1").await, "shpat_st_1");
    let again = env.1.refresh_token(&"st_1".into(), Platform::Shopify).await.unwrap().unwrap();
    assert_eq!(again.expose(), "shpat_rotated");
    assert_eq!(token_of(&stack.environment(), "st_1").await, "shpat_rotated", "sealed again on the record");

    // st_1's seal copied onto st_2's record: bound to st_1, it does not open as st_2's, which
    // is read from its secret and sealed again.
    let st_1 = stack.dynamo.get_item().table_name(&stack.table).key("id", s("st_1")).send().await.unwrap();
    let moved = st_1.item().unwrap()[sealed_attribute(Platform::Shopify)].clone();
    stack
        .dynamo
        .update_item()
        .table_name(&stack.table)
        .key("id", s("st_2"))
        .update_expression("SET #sealed = :moved")
        .expression_attribute_names("#sealed", sealed_attribute(Platform::Shopify))
        .expression_attribute_values(":moved", moved)
        .send()
        .await
        .unwrap();
    stack.meter.reset().await.unwrap();
    assert_eq!(token_of(&stack.environment(), "st_2").await, "shpat_st_2");
    assert_eq!(stack.calls("secretsmanager").await, [("GetSecretValue".to_owned(), 1.0)]);
}

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}
