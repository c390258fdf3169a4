//! DynamoDB tables on moto in the shapes `template.yaml` declares.

use anyhow::Context;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType,
};

use crate::moto;

fn attribute(name: &str, kind: ScalarAttributeType) -> anyhow::Result<AttributeDefinition> {
    Ok(AttributeDefinition::builder().attribute_name(name).attribute_type(kind).build()?)
}

fn schema(name: &str, kind: KeyType) -> anyhow::Result<KeySchemaElement> {
    Ok(KeySchemaElement::builder().attribute_name(name).key_type(kind).build()?)
}

/// A new on-demand table keyed by string attributes `keys` (hash, then range); returns its name.
///
/// # Errors
/// If moto refuses.
pub async fn table(client: &aws_sdk_dynamodb::Client, keys: &[(&str, KeyType)]) -> anyhow::Result<String> {
    let name = moto::unique("shop");
    let mut request = client.create_table().table_name(&name).billing_mode(BillingMode::PayPerRequest);
    for (key, kind) in keys {
        request = request
            .attribute_definitions(attribute(key, ScalarAttributeType::S)?)
            .key_schema(schema(key, kind.clone())?);
    }
    request.send().await.with_context(|| format!("creating table {name}"))?;
    Ok(name)
}

/// A new table keyed by `key` (S) with a global secondary index `index` on `hash` (S) and
/// `range` (N), projecting everything: the shape of the carts and history tables.
///
/// # Errors
/// If moto refuses.
pub async fn indexed_table(
    client: &aws_sdk_dynamodb::Client,
    key: &str,
    index: &str,
    hash: &str,
    range: &str,
) -> anyhow::Result<String> {
    let index = GlobalSecondaryIndex::builder()
        .index_name(index)
        .key_schema(schema(hash, KeyType::Hash)?)
        .key_schema(schema(range, KeyType::Range)?)
        .projection(Projection::builder().projection_type(ProjectionType::All).build())
        .build()?;
    let name = moto::unique("shop");
    client
        .create_table()
        .table_name(&name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute(key, ScalarAttributeType::S)?)
        .attribute_definitions(attribute(hash, ScalarAttributeType::S)?)
        .attribute_definitions(attribute(range, ScalarAttributeType::N)?)
        .key_schema(schema(key, KeyType::Hash)?)
        .global_secondary_indexes(index)
        .send()
        .await
        .with_context(|| format!("creating table {name}"))?;
    Ok(name)
}

/// A new carts table as the template declares it: keyed by `id`, with the janitor's two indexes
/// (`by_status_activity`, everything projected; `by_status_expiry`, keys only).
///
/// # Errors
/// If moto refuses.
pub async fn carts_table(client: &aws_sdk_dynamodb::Client) -> anyhow::Result<String> {
    let index =
        |name: &str, range: &str, projection: ProjectionType| -> anyhow::Result<GlobalSecondaryIndex> {
            Ok(GlobalSecondaryIndex::builder()
                .index_name(name)
                .key_schema(schema("status", KeyType::Hash)?)
                .key_schema(schema(range, KeyType::Range)?)
                .projection(Projection::builder().projection_type(projection).build())
                .build()?)
        };
    let name = moto::unique("shop");
    client
        .create_table()
        .table_name(&name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute("id", ScalarAttributeType::S)?)
        .attribute_definitions(attribute("status", ScalarAttributeType::S)?)
        .attribute_definitions(attribute("last_activity_ms", ScalarAttributeType::N)?)
        .attribute_definitions(attribute("expires_ms", ScalarAttributeType::N)?)
        .key_schema(schema("id", KeyType::Hash)?)
        .global_secondary_indexes(index(
            shop::aws::BY_STATUS_ACTIVITY,
            "last_activity_ms",
            ProjectionType::All,
        )?)
        .global_secondary_indexes(index(shop::aws::BY_STATUS_EXPIRY, "expires_ms", ProjectionType::KeysOnly)?)
        .send()
        .await
        .with_context(|| format!("creating table {name}"))?;
    Ok(name)
}

/// Every table of the stack, as the functions' environment names them.
#[derive(Debug, Clone)]
pub struct StackTables {
    /// (environment variable, table name).
    pub env: Vec<(&'static str, String)>,
}

impl StackTables {
    /// Creates jobkit's state table and the shop's tables.
    ///
    /// # Errors
    /// If moto refuses.
    pub async fn create(client: &aws_sdk_dynamodb::Client) -> anyhow::Result<Self> {
        let state = moto::unique("jobs-state");
        jobkit::aws::DynamoStore::create_table(client, &state).await.context("creating the state table")?;
        let by_store = [("store_id", KeyType::Hash), ("id", KeyType::Range)];
        let env = vec![
            ("JOBKIT_STATE_TABLE", state),
            ("SHOP_STORES_TABLE", table(client, &[("id", KeyType::Hash)]).await?),
            ("SHOP_PRODUCTS_TABLE", table(client, &by_store).await?),
            ("SHOP_CUSTOMERS_TABLE", table(client, &by_store).await?),
            ("SHOP_CARTS_TABLE", carts_table(client).await?),
            ("SHOP_INVENTORY_TABLE", table(client, &[("variant_id", KeyType::Hash)]).await?),
            (
                "SHOP_HISTORY_TABLE",
                indexed_table(client, "id", shop::aws::BY_KIND_TIME, "kind", "at_ms").await?,
            ),
        ];
        Ok(Self { env })
    }
}
