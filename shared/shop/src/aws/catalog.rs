//! The catalog on DynamoDB: partition key `store_id`, sort key `id`, the product a map in `body`
//! (`title`, `handle`, `variants` a list of maps with `price.minor`), so `body.handle = :handle`
//! filters on it.
//!
//! Invariant: writes go 25 at a time with `BatchWriteItem` and unprocessed items are retried
//! (`batch`), so nothing is silently dropped.

use async_trait::async_trait;
use aws_sdk_dynamodb::{
    Client,
    types::{AttributeValue, Select},
};

use super::{
    attributes::{decode, encode},
    batch::{Document, get_document, put_documents},
    sdk_error,
};
use crate::{
    catalog::Product,
    ids::{ProductId, StoreId},
    ports::{CatalogRepository, RepoResult},
};

const RECORD: &str = "product";

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
}

#[async_trait]
impl CatalogRepository for DynamoCatalog {
    async fn upsert_products(&self, products: &[Product]) -> RepoResult<usize> {
        let documents = products
            .iter()
            .map(|p| {
                let body = encode(RECORD, "body", p)?;
                Ok(Document { store_id: p.store_id.to_string(), id: p.id.to_string(), body })
            })
            .collect::<RepoResult<Vec<_>>>()?;
        put_documents(&self.client, &self.table, documents).await
    }

    async fn get_product(&self, store: &StoreId, id: &ProductId) -> RepoResult<Option<Product>> {
        let item = get_document(&self.client, &self.table, store.as_str(), id.as_str()).await?;
        item.map(|item| decode(RECORD, &item, "body")).transpose()
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
            count += page.map_err(|e| sdk_error("Query", &self.table, e))?.count().unsigned_abs() as u64;
        }
        Ok(count)
    }
}
