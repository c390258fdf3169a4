//! Stores on DynamoDB: partition key `id`; `sync_state` is updated on its own, conditioned on the
//! store existing, so a sync never resurrects a deleted store.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::{Client, types::AttributeValue};

use super::sdk_error;
use crate::{
    ids::StoreId,
    ports::{RepoError, RepoResult, StoreRepository},
    store::{Store, SyncState},
};

/// [`StoreRepository`] on a DynamoDB table.
#[derive(Debug, Clone)]
pub struct DynamoStores {
    client: Client,
    table: String,
}

impl DynamoStores {
    /// The repository on `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

fn json<T: serde::Serialize>(value: &T) -> RepoResult<AttributeValue> {
    serde_json::to_string(value).map(AttributeValue::S).map_err(|e| RepoError::Corrupt(e.to_string()))
}

fn text<'a>(item: &'a HashMap<String, AttributeValue>, name: &str) -> RepoResult<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
        .ok_or_else(|| RepoError::Corrupt(format!("store item without {name}")))
}

fn from_item(item: &HashMap<String, AttributeValue>) -> RepoResult<Store> {
    let corrupt = |e: serde_json::Error| RepoError::Corrupt(e.to_string());
    Ok(Store {
        id: StoreId::from(text(item, "id")?),
        shopify_domain: text(item, "shopify_domain")?
            .parse()
            .map_err(|e| RepoError::Corrupt(format!("{e}")))?,
        pos_location_id: item.get("pos_location_id").and_then(|v| v.as_s().ok()).cloned(),
        plan: serde_json::from_str(text(item, "plan")?).map_err(corrupt)?,
        sync_state: serde_json::from_str(text(item, "sync_state")?).map_err(corrupt)?,
    })
}

#[async_trait]
impl StoreRepository for DynamoStores {
    async fn get(&self, id: &StoreId) -> RepoResult<Option<Store>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("id", s(id.as_str()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", e))?;
        out.item().map(from_item).transpose()
    }

    async fn put(&self, store: &Store) -> RepoResult {
        let mut item = HashMap::from([
            ("id".to_owned(), s(store.id.as_str())),
            ("shopify_domain".to_owned(), s(store.shopify_domain.as_str())),
            ("plan".to_owned(), json(&store.plan)?),
            ("sync_state".to_owned(), json(&store.sync_state)?),
        ]);
        if let Some(location) = &store.pos_location_id {
            item.insert("pos_location_id".to_owned(), s(location));
        }
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| sdk_error("PutItem", e))?;
        Ok(())
    }

    async fn set_sync_state(&self, id: &StoreId, state: &SyncState) -> RepoResult {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("id", s(id.as_str()))
            .update_expression("SET sync_state = :state")
            .condition_expression("attribute_exists(id)")
            .expression_attribute_values(":state", json(state)?)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // The store was deleted meanwhile: nothing to record.
            Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => {
                Ok(())
            }
            Err(e) => Err(sdk_error("UpdateItem", e)),
        }
    }

    async fn syncable(&self) -> RepoResult<Vec<StoreId>> {
        let mut ids = Vec::new();
        let mut pages = self.client.scan().table_name(&self.table).into_paginator().items().send();
        while let Some(item) = pages.next().await {
            let item = item.map_err(|e| sdk_error("Scan", e))?;
            let store = from_item(&item)?;
            if store.is_syncable() {
                ids.push(store.id);
            }
        }
        ids.sort();
        Ok(ids)
    }
}
