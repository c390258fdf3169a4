//! The catalog on DynamoDB: partition key `store_id`, sort key `id`, the product as JSON in
//! `body`. Writes go 25 at a time with `BatchWriteItem`; unprocessed items are retried with
//! backoff so that nothing is silently dropped.

use std::{collections::HashMap, time::Duration};

use async_trait::async_trait;
use aws_sdk_dynamodb::{
    Client,
    types::{AttributeValue, PutRequest, Select, WriteRequest},
};

use super::sdk_error;
use crate::{
    catalog::Product,
    ids::{ProductId, StoreId},
    ports::{CatalogRepository, RepoError, RepoResult},
};

/// DynamoDB's batch limit.
const BATCH: usize = 25;
/// Tries of one batch's unprocessed items before giving up (the job retries later).
const TRIES: u32 = 6;

/// [`CatalogRepository`] on a DynamoDB table.
#[derive(Debug, Clone)]
pub struct DynamoCatalog {
    client: Client,
    table: String,
}

impl DynamoCatalog {
    /// The repository on `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    async fn write_batch(&self, mut requests: Vec<WriteRequest>) -> RepoResult {
        for attempt in 0..TRIES {
            if attempt > 0 {
                // 50 ms, 100 ms, 200 ms, ...: the table is throttling this partition.
                tokio::time::sleep(Duration::from_millis(50 << (attempt - 1))).await;
            }
            let out = self
                .client
                .batch_write_item()
                .request_items(&self.table, requests)
                .send()
                .await
                .map_err(|e| sdk_error("BatchWriteItem", e))?;
            requests = out.unprocessed_items.and_then(|mut u| u.remove(&self.table)).unwrap_or_default();
            if requests.is_empty() {
                return Ok(());
            }
        }
        Err(RepoError::Unavailable(format!(
            "{} catalog writes still unprocessed after {TRIES} tries",
            requests.len()
        )))
    }
}

fn put_request(product: &Product) -> RepoResult<WriteRequest> {
    let body = serde_json::to_string(product).map_err(|e| RepoError::Corrupt(e.to_string()))?;
    let item = HashMap::from([
        ("store_id".to_owned(), AttributeValue::S(product.store_id.to_string())),
        ("id".to_owned(), AttributeValue::S(product.id.to_string())),
        ("body".to_owned(), AttributeValue::S(body)),
    ]);
    let put =
        PutRequest::builder().set_item(Some(item)).build().map_err(|e| RepoError::Corrupt(e.to_string()))?;
    Ok(WriteRequest::builder().put_request(put).build())
}

#[async_trait]
impl CatalogRepository for DynamoCatalog {
    async fn upsert_products(&self, products: &[Product]) -> RepoResult<usize> {
        // A batch may not hold the same key twice: the last version of a product wins.
        let mut latest: HashMap<(&str, &str), &Product> = HashMap::new();
        for product in products {
            latest.insert((product.store_id.as_str(), product.id.as_str()), product);
        }
        let requests = latest.values().map(|p| put_request(p)).collect::<RepoResult<Vec<_>>>()?;
        for chunk in requests.chunks(BATCH) {
            self.write_batch(chunk.to_vec()).await?;
        }
        Ok(latest.len())
    }

    async fn get_product(&self, store: &StoreId, id: &ProductId) -> RepoResult<Option<Product>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("store_id", AttributeValue::S(store.to_string()))
            .key("id", AttributeValue::S(id.to_string()))
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", e))?;
        let Some(body) = out.item().and_then(|i| i.get("body")).and_then(|b| b.as_s().ok()) else {
            return Ok(None);
        };
        serde_json::from_str(body).map(Some).map_err(|e| RepoError::Corrupt(e.to_string()))
    }

    async fn count_products(&self, store: &StoreId) -> RepoResult<u64> {
        let mut count = 0u64;
        let mut pages = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("store_id = :store")
            .expression_attribute_values(":store", AttributeValue::S(store.to_string()))
            .select(Select::Count)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            count += page.map_err(|e| sdk_error("Query", e))?.count().unsigned_abs() as u64;
        }
        Ok(count)
    }
}
