//! Stores on DynamoDB: partition key `id`; `shopify_domain`, `pos_location_id` (absent when
//! none) and `plan` are strings, `sync_state` a map tagged by `status` (`sync_state.#status =
//! :failed` finds the stores whose last sync failed).
//!
//! `sealed_shopify_token` and `sealed_square_token` (maps of binaries, `sealed_tokens`) are the
//! credentials' own: a put of the store replaces them with none, and the next job seals again.
//!
//! Invariant: `sync_state` is updated on its own, conditioned on the store existing, so a sync
//! never resurrects a deleted store.

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_dynamodb::{Client, types::AttributeValue};

use super::{
    SealedTokenCache,
    attributes::{Item, decode, decode_optional, encode},
    sdk_error,
};
use crate::{
    ids::StoreId,
    ports::{RepoResult, StoreRepository},
    store::{Plan, Store, SyncState},
};

/// [`StoreRepository`] on a DynamoDB table.
#[derive(Debug, Clone)]
pub struct DynamoStores {
    client: Client,
    table: String,
    sealed: Option<Arc<SealedTokenCache>>,
}

impl DynamoStores {
    /// The repository on `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into(), sealed: None }
    }

    /// The repository noting the sealed tokens of each store it reads in `cache`, where the
    /// credentials find them ([`super::SealedCredentials`]): a job's token comes with its store.
    #[must_use]
    pub fn noting_sealed_tokens(mut self, cache: Arc<SealedTokenCache>) -> Self {
        self.sealed = Some(cache);
        self
    }
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

const RECORD: &str = "store";

fn from_item(item: &Item) -> RepoResult<Store> {
    Ok(Store {
        id: decode(RECORD, item, "id")?,
        shopify_domain: decode(RECORD, item, "shopify_domain")?,
        pos_location_id: decode_optional(RECORD, item, "pos_location_id")?,
        plan: decode(RECORD, item, "plan")?,
        sync_state: decode(RECORD, item, "sync_state")?,
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
            .map_err(|e| sdk_error("GetItem", &self.table, e))?;
        let Some(item) = out.item() else { return Ok(None) };
        if let Some(cache) = &self.sealed {
            cache.note(id, item);
        }
        from_item(item).map(Some)
    }

    async fn put(&self, store: &Store) -> RepoResult {
        let mut item = Item::from([
            ("id".to_owned(), s(store.id.as_str())),
            ("shopify_domain".to_owned(), s(store.shopify_domain.as_str())),
            ("plan".to_owned(), encode(RECORD, "plan", &store.plan)?),
            ("sync_state".to_owned(), encode(RECORD, "sync_state", &store.sync_state)?),
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
            .map_err(|e| sdk_error("PutItem", &self.table, e))?;
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
            .expression_attribute_values(":state", encode(RECORD, "sync_state", state)?)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // The store was deleted meanwhile: nothing to record.
            Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => {
                Ok(())
            }
            Err(e) => Err(sdk_error("UpdateItem", &self.table, e)),
        }
    }

    async fn syncable(&self) -> RepoResult<Vec<(StoreId, Plan)>> {
        let mut ids = Vec::new();
        let mut pages = self.client.scan().table_name(&self.table).into_paginator().items().send();
        while let Some(item) = pages.next().await {
            let item = item.map_err(|e| sdk_error("Scan", &self.table, e))?;
            let store = from_item(&item)?;
            if store.is_syncable() {
                ids.push((store.id, store.plan));
            }
        }
        ids.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(ids)
    }
}
