//! The catalog on DynamoDB: partition key `store_id`, sort key `id`, the product a map in `body`
//! (`title`, `handle`, `variants` a list of maps with `price.minor`), so `body.handle = :handle`
//! filters on it. A product written by a sync run carries the run in `synced_by` (a top-level
//! string); the sweep of a run queries the store's partition for products whose `synced_by` is
//! missing or another run's (a filter, projecting `id` alone) and deletes them.
//!
//! Invariant: writes and deletes go 25 at a time with `BatchWriteItem` and unprocessed items are
//! retried (`batch`), so nothing is silently dropped.

use async_trait::async_trait;
use aws_sdk_dynamodb::{
    Client,
    types::{AttributeValue, Select},
};

use super::{
    attributes::{decode, encode},
    batch::{Document, delete_documents, get_document, put_documents_with},
    sdk_error,
};
use crate::{
    catalog::Product,
    ids::{ProductId, StoreId},
    ports::{CatalogRepository, Removed, RepoError, RepoResult},
};

const RECORD: &str = "product";
/// The attribute naming the sync run that last wrote a product.
const SYNCED_BY: &str = "synced_by";

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

impl DynamoCatalog {
    async fn put(&self, products: &[Product], run: Option<&str>) -> RepoResult<usize> {
        let documents = products
            .iter()
            .map(|p| {
                let body = encode(RECORD, "body", p)?;
                Ok(Document { store_id: p.store_id.to_string(), id: p.id.to_string(), body })
            })
            .collect::<RepoResult<Vec<_>>>()?;
        let mark = run.map(|run| (SYNCED_BY, run));
        put_documents_with(&self.client, &self.table, documents, mark).await
    }
}

#[async_trait]
impl CatalogRepository for DynamoCatalog {
    async fn upsert_products(&self, products: &[Product]) -> RepoResult<usize> {
        self.put(products, None).await
    }

    async fn upsert_synced(&self, products: &[Product], run: &str) -> RepoResult<usize> {
        self.put(products, Some(run)).await
    }

    async fn remove_unsynced(
        &self,
        store: &StoreId,
        run: &str,
        after: Option<&ProductId>,
        limit: usize,
    ) -> RepoResult<Removed> {
        let mut ids: Vec<String> = Vec::new();
        let mut start = after.map(|id| {
            std::collections::HashMap::from([
                ("store_id".to_owned(), AttributeValue::S(store.to_string())),
                ("id".to_owned(), AttributeValue::S(id.to_string())),
            ])
        });
        // Pages of the store's partition in id order, until `limit` products to remove or its end.
        let exhausted = loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("store_id = :store")
                .filter_expression("attribute_not_exists(#by) OR #by <> :run")
                .projection_expression("#id")
                .expression_attribute_names("#by", SYNCED_BY)
                .expression_attribute_names("#id", "id")
                .expression_attribute_values(":store", AttributeValue::S(store.to_string()))
                .expression_attribute_values(":run", AttributeValue::S(run.to_owned()))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| sdk_error("Query", &self.table, e))?;
            for item in out.items() {
                match item.get("id") {
                    Some(AttributeValue::S(id)) => ids.push(id.clone()),
                    _ => {
                        return Err(RepoError::Corrupt(format!(
                            "a product of store {store} has no string id"
                        )));
                    }
                }
            }
            if ids.len() >= limit {
                break false;
            }
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break true,
            }
        };
        ids.truncate(limit);
        delete_documents(&self.client, &self.table, store.as_str(), &ids).await?;
        let next = if exhausted { None } else { ids.last().map(|id| ProductId::from(id.as_str())) };
        Ok(Removed { products: ids.into_iter().map(ProductId::from).collect(), next })
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
