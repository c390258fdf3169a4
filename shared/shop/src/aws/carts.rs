//! Carts on DynamoDB. Table `SHOP_CARTS_TABLE`: key `id`, a global secondary index
//! `by_status_activity` (`status`, `last_activity_ms`) to find idle active carts, and one
//! `by_status_expiry` (`status`, `expires_ms`, keys only) to find expired sessions, so that the
//! hourly cleanup reads what it deletes rather than the whole table; `items` a list
//! of maps (`variant_id`, `quantity`); a cart set aside has `status` `set_aside` (so it leaves
//! the index's `active` partition) and `set_aside_reason`, `set_aside_ms`. Inventory in
//! `SHOP_INVENTORY_TABLE` (key `variant_id`, `available`).
//!
//! Invariants: abandoning a cart and giving its stock back is one `TransactWriteItems`
//! conditioned on the cart still being active, so stock is released once; a cart whose abandon
//! would not fit in one transaction is refused as [`RepoError::Unprocessable`] before any
//! write. An item of the query that does not read is returned as its id and why, never a
//! failed query.

use async_trait::async_trait;
use aws_sdk_dynamodb::{
    Client,
    types::{AttributeValue, TransactWriteItem, Update},
};
use chrono::{DateTime, Utc};
use jobkit::SetAside;

use super::{
    attributes::{self, Item, decode, encode},
    sdk_error, transaction_error,
};
use crate::{
    cart::{Cart, CartStatus, StockRelease},
    ids::{CartId, StoreId},
    ports::{CartRepository, RepoError, RepoResult},
};

/// The index of active carts by last activity.
pub const BY_STATUS_ACTIVITY: &str = "by_status_activity";
/// The index of carts by status and session expiry (keys only).
pub const BY_STATUS_EXPIRY: &str = "by_status_expiry";
/// The statuses whose expired sessions are deleted, those that hold no stock first. Carts set
/// aside stay for the operator, expired or not: their status is not asked for.
const DELETABLE: [CartStatus; 3] = [CartStatus::Abandoned, CartStatus::CheckedOut, CartStatus::Active];
/// The most variants one abandon gives stock back to: `TransactWriteItems` takes at most 100
/// actions (raised from 25 in September 2022; the API reference's `TransactItems`), one of
/// which is the cart's own update, and no two on the same item (so one release per variant).
const MAX_RELEASES: usize = 99;
/// Reasons are stored cut to this many characters: a note for the operator, far below
/// DynamoDB's 400 KB item limit whatever the error said.
const MAX_REASON_CHARS: usize = 1000;

/// [`CartRepository`] on DynamoDB.
#[derive(Debug, Clone)]
pub struct DynamoCarts {
    client: Client,
    carts: String,
    inventory: String,
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn status_text(status: CartStatus) -> &'static str {
    match status {
        CartStatus::Active => "active",
        CartStatus::Abandoned => "abandoned",
        CartStatus::CheckedOut => "checked_out",
        CartStatus::SetAside => "set_aside",
    }
}

const RECORD: &str = "cart";

fn corrupt(attribute: &str) -> RepoError {
    attributes::corrupt(RECORD, attribute, "missing or not of its type")
}

/// The item's cart, or its id and why it does not read. Only an item without an id fails (the
/// table's key: not without a broken table).
fn from_item_or_id(item: &Item) -> RepoResult<Result<Cart, SetAside>> {
    match from_item(item) {
        Ok(cart) => Ok(Ok(cart)),
        Err(e) => match item.get("id").and_then(|v| v.as_s().ok()) {
            Some(id) => Ok(Err(SetAside::new(id.as_str(), format_args!("the cart does not read: {e}")))),
            None => Err(e),
        },
    }
}

fn from_item(item: &Item) -> RepoResult<Cart> {
    let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).ok_or_else(|| corrupt(name));
    let number = |name: &str| {
        item.get(name)
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<i64>().ok())
            .ok_or_else(|| corrupt(name))
    };
    let time = |name: &str| {
        number(name).and_then(|ms| DateTime::from_timestamp_millis(ms).ok_or_else(|| corrupt(name)))
    };
    let status = match text("status")?.as_str() {
        "active" => CartStatus::Active,
        "abandoned" => CartStatus::Abandoned,
        "checked_out" => CartStatus::CheckedOut,
        "set_aside" => CartStatus::SetAside,
        _ => return Err(corrupt("status")),
    };
    Ok(Cart {
        id: CartId::from(text("id")?.as_str()),
        store_id: StoreId::from(text("store_id")?.as_str()),
        items: decode(RECORD, item, "items")?,
        status,
        stock_reserved: item.get("stock_reserved").and_then(|v| v.as_bool().ok()).copied().unwrap_or(false),
        last_activity_at: time("last_activity_ms")?,
        expires_at: time("expires_ms")?,
    })
}

impl DynamoCarts {
    /// The repository on the carts and inventory tables.
    pub fn new(client: Client, carts: impl Into<String>, inventory: impl Into<String>) -> Self {
        Self { client, carts: carts.into(), inventory: inventory.into() }
    }

    /// Creates or replaces a cart (the storefront's side; seeding and tests).
    ///
    /// # Errors
    /// A storage failure.
    pub async fn put_cart(&self, cart: &Cart) -> RepoResult {
        self.client
            .put_item()
            .table_name(&self.carts)
            .item("id", s(cart.id.as_str()))
            .item("store_id", s(cart.store_id.as_str()))
            .item("items", encode(RECORD, "items", &cart.items)?)
            .item("status", s(status_text(cart.status)))
            .item("stock_reserved", AttributeValue::Bool(cart.stock_reserved))
            .item("last_activity_ms", n(cart.last_activity_at.timestamp_millis()))
            .item("expires_ms", n(cart.expires_at.timestamp_millis()))
            .send()
            .await
            .map_err(|e| sdk_error("PutItem", &self.carts, e))?;
        Ok(())
    }

    /// Units of a variant available (what abandoned carts gave back).
    ///
    /// # Errors
    /// A storage failure.
    pub async fn available(&self, variant: &str) -> RepoResult<i64> {
        let out = self
            .client
            .get_item()
            .table_name(&self.inventory)
            .key("variant_id", s(variant))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", &self.inventory, e))?;
        Ok(out
            .item()
            .and_then(|i| i.get("available"))
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }

    /// Why a cart was set aside, if it was (the operator's view, and tests').
    ///
    /// # Errors
    /// A storage failure.
    pub async fn set_aside_reason(&self, id: &CartId) -> RepoResult<Option<String>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.carts)
            .key("id", s(id.as_str()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", &self.carts, e))?;
        let set_aside = out
            .item()
            .filter(|i| i.get("status").and_then(|v| v.as_s().ok()).is_some_and(|s| s == "set_aside"));
        Ok(set_aside.and_then(|i| i.get("set_aside_reason")).and_then(|v| v.as_s().ok()).cloned())
    }
}

fn update(build: aws_sdk_dynamodb::types::builders::UpdateBuilder) -> RepoResult<TransactWriteItem> {
    let update = build.build().map_err(|e| RepoError::Corrupt(e.to_string()))?;
    Ok(TransactWriteItem::builder().update(update).build())
}

#[async_trait]
impl CartRepository for DynamoCarts {
    async fn idle_active(
        &self,
        idle_since: DateTime<Utc>,
        limit: usize,
    ) -> RepoResult<Vec<Result<Cart, SetAside>>> {
        let out = self
            .client
            .query()
            .table_name(&self.carts)
            .index_name(BY_STATUS_ACTIVITY)
            .key_condition_expression("#status = :active AND last_activity_ms <= :since")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":active", s("active"))
            .expression_attribute_values(":since", n(idle_since.timestamp_millis()))
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| sdk_error("Query", &self.carts, e))?;
        out.items().iter().map(from_item_or_id).collect()
    }

    async fn abandon(&self, cart: &CartId, releases: &[StockRelease]) -> RepoResult<bool> {
        if releases.len() > MAX_RELEASES {
            return Err(RepoError::Unprocessable {
                id: cart.to_string(),
                reason: format!(
                    "it gives stock back to {} variants, and one DynamoDB transaction takes the cart \
                     and at most {MAX_RELEASES} of them",
                    releases.len()
                ),
            });
        }
        let mut items = vec![update(
            Update::builder()
                .table_name(&self.carts)
                .key("id", s(cart.as_str()))
                .update_expression("SET #status = :abandoned, stock_reserved = :no")
                .condition_expression("#status = :active")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":abandoned", s("abandoned"))
                .expression_attribute_values(":active", s("active"))
                .expression_attribute_values(":no", AttributeValue::Bool(false)),
        )?];
        for release in releases {
            items.push(update(
                Update::builder()
                    .table_name(&self.inventory)
                    .key("variant_id", s(release.variant_id.as_str()))
                    .update_expression("ADD available :units")
                    .expression_attribute_values(":units", n(i64::from(release.quantity))),
            )?);
        }
        match self.client.transact_write_items().set_transact_items(Some(items)).send().await {
            Ok(_) => Ok(true),
            Err(e) => {
                let lost_race = e.as_service_error().is_some_and(|s| s.is_transaction_canceled_exception());
                // Canceled means the cart's condition failed: another run abandoned it first.
                if lost_race {
                    Ok(false)
                } else {
                    Err(transaction_error("TransactWriteItems", &[&self.carts, &self.inventory], e))
                }
            }
        }
    }

    async fn set_aside(&self, cart: &CartId, reason: &str, at: DateTime<Utc>) -> RepoResult<bool> {
        let reason: String = reason.chars().take(MAX_REASON_CHARS).collect();
        let updated = self
            .client
            .update_item()
            .table_name(&self.carts)
            .key("id", s(cart.as_str()))
            .update_expression("SET #status = :set_aside, set_aside_reason = :reason, set_aside_ms = :at")
            .condition_expression("#status = :active")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":set_aside", s("set_aside"))
            .expression_attribute_values(":active", s("active"))
            .expression_attribute_values(":reason", AttributeValue::S(reason))
            .expression_attribute_values(":at", n(at.timestamp_millis()))
            .send()
            .await;
        match updated {
            Ok(_) => Ok(true),
            // No longer active: checked out or abandoned since it was read.
            Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => {
                Ok(false)
            }
            Err(e) => Err(sdk_error("UpdateItem", &self.carts, e)),
        }
    }

    async fn expired(&self, now: DateTime<Utc>, limit: usize) -> RepoResult<Vec<CartId>> {
        // From the index of sessions by status and expiry: each query reads the expired ones of
        // a status and stops there, however many carts the table holds.
        let mut ids = Vec::new();
        for status in DELETABLE {
            if ids.len() >= limit {
                break;
            }
            let mut pages = self
                .client
                .query()
                .table_name(&self.carts)
                .index_name(BY_STATUS_EXPIRY)
                .key_condition_expression("#status = :status AND expires_ms <= :now")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":status", s(status_text(status)))
                .expression_attribute_values(":now", n(now.timestamp_millis()))
                .limit(i32::try_from(limit - ids.len()).unwrap_or(i32::MAX))
                .into_paginator()
                .items()
                .send();
            while let Some(item) = pages.next().await {
                let item = item.map_err(|e| sdk_error("Query", &self.carts, e))?;
                if let Some(id) = item.get("id").and_then(|v| v.as_s().ok()) {
                    ids.push(CartId::from(id.as_str()));
                }
                if ids.len() >= limit {
                    break;
                }
            }
        }
        Ok(ids)
    }

    async fn delete(&self, carts: &[CartId]) -> RepoResult<usize> {
        for id in carts {
            self.client
                .delete_item()
                .table_name(&self.carts)
                .key("id", s(id.as_str()))
                .send()
                .await
                .map_err(|e| sdk_error("DeleteItem", &self.carts, e))?;
        }
        Ok(carts.len())
    }
}
