//! [`StateStore`] on a DynamoDB table with partition key `pk`.
//!
//! Items: `value` (S), `expires_at_ms` (N, checked in code), `ttl` (N, epoch seconds, for
//! DynamoDB's TTL, which deletes late), `count` (N). Conditional writes make `put_if_vacant`
//! and `increment` safe when two invocations race.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::{
    Client,
    operation::{
        delete_item::DeleteItemError, put_item::PutItemError, transact_write_items::TransactWriteItemsError,
        update_item::UpdateItemError,
    },
    types::{
        AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, Put, ReturnValue,
        ReturnValuesOnConditionCheckFailure, ScalarAttributeType, TimeToLiveSpecification, TransactWriteItem,
        Update,
    },
};
use chrono::{DateTime, Utc};

use super::errors::{build_error, port_error};
use crate::{
    error::{PortError, PortResult},
    ports::{PutOutcome, StateStore, StoredRecord},
};

/// Tries of the read-modify-write race in `increment`, and of a transaction that conflicted
/// with another in `increment_once`, before giving up.
const INCREMENT_TRIES: usize = 5;

const VACANT: &str = "attribute_not_exists(pk) OR expires_at_ms <= :now";

/// [`StateStore`] on DynamoDB through the real SDK client.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn number(item: &HashMap<String, AttributeValue>, name: &str) -> Option<i64> {
    item.get(name).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok())
}

fn record(item: &HashMap<String, AttributeValue>) -> Option<StoredRecord> {
    let value = item.get("value").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
    let expires_at = DateTime::from_timestamp_millis(number(item, "expires_at_ms")?)?;
    Some(StoredRecord { value, expires_at })
}

/// Epoch seconds, rounded up, for the TTL attribute.
fn ttl_seconds(t: DateTime<Utc>) -> i64 {
    (t.timestamp_millis() + 999).div_euclid(1000)
}

impl DynamoStore {
    /// A store on `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    /// Creates an on-demand table with key `pk` and TTL on `ttl` (tests, local tooling; the
    /// template creates the deployed one).
    ///
    /// # Errors
    /// A port error from `CreateTable` or `UpdateTimeToLive`.
    pub async fn create_table(client: &Client, name: &str) -> PortResult {
        let key = AttributeDefinition::builder()
            .attribute_name("pk")
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(|e| build_error("CreateTable", e))?;
        let schema = KeySchemaElement::builder()
            .attribute_name("pk")
            .key_type(KeyType::Hash)
            .build()
            .map_err(|e| build_error("CreateTable", e))?;
        client
            .create_table()
            .table_name(name)
            .attribute_definitions(key)
            .key_schema(schema)
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await
            .map_err(|e| port_error("CreateTable", e))?;
        let ttl = TimeToLiveSpecification::builder()
            .enabled(true)
            .attribute_name("ttl")
            .build()
            .map_err(|e| build_error("UpdateTimeToLive", e))?;
        client
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(ttl)
            .send()
            .await
            .map_err(|e| port_error("UpdateTimeToLive", e))?;
        Ok(())
    }

    fn item(
        key: &str,
        value: &str,
        expires_at: DateTime<Utc>,
        count: i64,
    ) -> HashMap<String, AttributeValue> {
        HashMap::from([
            ("pk".to_owned(), s(key)),
            ("value".to_owned(), s(value)),
            ("expires_at_ms".to_owned(), n(expires_at.timestamp_millis())),
            ("ttl".to_owned(), n(ttl_seconds(expires_at))),
            ("count".to_owned(), n(count)),
        ])
    }

    async fn get_any(&self, key: &str) -> PortResult<Option<HashMap<String, AttributeValue>>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| port_error("GetItem", e))?;
        Ok(out.item().cloned())
    }

    /// Up to `limit` live keys starting with one of `prefixes`, in one scan: for operators'
    /// listings (`jobctl batches`), not for jobs. A scan reads (and is billed for) the whole
    /// table, so every prefix is looked for in the same one.
    ///
    /// # Errors
    /// A port error from `Scan`.
    pub async fn keys_with_prefixes(
        &self,
        prefixes: &[String],
        now: DateTime<Utc>,
        limit: usize,
    ) -> PortResult<Vec<String>> {
        if prefixes.is_empty() {
            return Ok(Vec::new());
        }
        let any_prefix: Vec<String> =
            (0..prefixes.len()).map(|i| format!("begins_with(pk, :p{i})")).collect();
        let filter = format!("({}) AND expires_at_ms > :now", any_prefix.join(" OR "));
        let mut keys = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let mut scan = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression(&filter)
                .expression_attribute_values(":now", n(now.timestamp_millis()))
                .projection_expression("pk")
                .set_exclusive_start_key(start);
            for (i, prefix) in prefixes.iter().enumerate() {
                scan = scan.expression_attribute_values(format!(":p{i}"), s(prefix));
            }
            let out = scan.send().await.map_err(|e| port_error("Scan", e))?;
            keys.extend(out.items().iter().filter_map(|i| i.get("pk")?.as_s().ok().cloned()));
            start = out.last_evaluated_key().cloned();
            if start.is_none() || keys.len() >= limit {
                keys.sort();
                keys.truncate(limit);
                return Ok(keys);
            }
        }
    }

    /// Deletes the item at `key` if it expired (one DynamoDB's TTL has not yet removed).
    async fn delete_expired(&self, key: &str, now: DateTime<Utc>) -> PortResult {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(key))
            .condition_expression("expires_at_ms <= :now")
            .expression_attribute_values(":now", n(now.timestamp_millis()))
            .send()
            .await;
        match result {
            Err(e)
                if !matches!(
                    e.as_service_error(),
                    Some(DeleteItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Err(port_error("DeleteItem", e))
            }
            _ => Ok(()),
        }
    }

    /// Writes the item if the key is vacant; `Ok(None)` when written, else the live item if seen.
    async fn put_vacant(
        &self,
        item: HashMap<String, AttributeValue>,
        now: DateTime<Utc>,
    ) -> PortResult<Option<Option<HashMap<String, AttributeValue>>>> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(VACANT)
            .expression_attribute_values(":now", n(now.timestamp_millis()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(None),
            Err(e) => match e.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(failed)) => {
                    Ok(Some(failed.item().cloned()))
                }
                _ => Err(port_error("PutItem", e)),
            },
        }
    }
}

#[async_trait]
impl StateStore for DynamoStore {
    async fn get(&self, key: &str, now: DateTime<Utc>) -> PortResult<Option<StoredRecord>> {
        Ok(self.get_any(key).await?.as_ref().and_then(record).filter(|r| r.expires_at > now))
    }

    async fn put_if_vacant(
        &self,
        key: &str,
        value: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> PortResult<PutOutcome> {
        match self.put_vacant(Self::item(key, value, expires_at, 0), now).await? {
            None => Ok(PutOutcome::Written),
            Some(existing) => {
                // Older services do not return the item on a failed condition: read it.
                let existing = match existing {
                    Some(item) => Some(item),
                    None => self.get_any(key).await?,
                };
                let record = existing.as_ref().and_then(record).ok_or_else(|| {
                    PortError::Unavailable(format!("key {key} is taken but its record could not be read"))
                })?;
                Ok(PutOutcome::Taken(record))
            }
        }
    }

    async fn put(&self, key: &str, value: &str, expires_at: DateTime<Utc>) -> PortResult {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(Self::item(key, value, expires_at, 0)))
            .send()
            .await
            .map_err(|e| port_error("PutItem", e))?;
        Ok(())
    }

    async fn replace(
        &self,
        key: &str,
        expected: &str,
        value: &str,
        expires_at: DateTime<Utc>,
    ) -> PortResult<bool> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(Self::item(key, value, expires_at, 0)))
            // `value` is one of DynamoDB's reserved words.
            .condition_expression("#value = :expected")
            .expression_attribute_names("#value", "value")
            .expression_attribute_values(":expected", s(expected))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e)
                if matches!(e.as_service_error(), Some(PutItemError::ConditionalCheckFailedException(_))) =>
            {
                Ok(false)
            }
            Err(e) => Err(port_error("PutItem", e)),
        }
    }

    async fn delete(&self, key: &str) -> PortResult {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(key))
            .send()
            .await
            .map_err(|e| port_error("DeleteItem", e))?;
        Ok(())
    }

    async fn increment(&self, key: &str, expires_at: DateTime<Utc>, now: DateTime<Utc>) -> PortResult<i64> {
        for _ in 0..INCREMENT_TRIES {
            // A live counter: add one.
            let updated = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("pk", s(key))
                .update_expression(
                    "SET #count = if_not_exists(#count, :zero) + :one, expires_at_ms = :exp, #ttl = :ttl",
                )
                .condition_expression("attribute_exists(pk) AND expires_at_ms > :now")
                .expression_attribute_names("#count", "count")
                .expression_attribute_names("#ttl", "ttl")
                .expression_attribute_values(":zero", n(0))
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":exp", n(expires_at.timestamp_millis()))
                .expression_attribute_values(":ttl", n(ttl_seconds(expires_at)))
                .expression_attribute_values(":now", n(now.timestamp_millis()))
                .return_values(ReturnValue::UpdatedNew)
                .send()
                .await;
            match updated {
                Ok(out) => {
                    return out
                        .attributes()
                        .and_then(|a| number(a, "count"))
                        .ok_or_else(|| PortError::Unavailable("UpdateItem did not return the count".into()));
                }
                Err(e)
                    if matches!(
                        e.as_service_error(),
                        Some(UpdateItemError::ConditionalCheckFailedException(_))
                    ) => {}
                Err(e) => return Err(port_error("UpdateItem", e)),
            }
            // Absent or expired: start again at one, unless someone else just did.
            if self.put_vacant(Self::item(key, "", expires_at, 1), now).await?.is_none() {
                return Ok(1);
            }
        }
        Err(PortError::Throttled(format!("increment of {key} kept racing")))
    }

    async fn increment_once(
        &self,
        marker: &str,
        value: &str,
        counter: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> PortResult<bool> {
        let take_marker = Put::builder()
            .table_name(&self.table)
            .set_item(Some(Self::item(marker, value, expires_at, 0)))
            .condition_expression(VACANT)
            .expression_attribute_values(":now", n(now.timestamp_millis()))
            .build()
            .map_err(|e| build_error("TransactWriteItems", e))?;
        // Only a live (or absent) counter is added to; an expired one is deleted below and the
        // transaction tried again, so it starts from zero as `increment`'s does.
        let add_one = Update::builder()
            .table_name(&self.table)
            .key("pk", s(counter))
            .update_expression(
                "SET #count = if_not_exists(#count, :zero) + :one, expires_at_ms = :exp, #ttl = :ttl",
            )
            .condition_expression("attribute_not_exists(pk) OR expires_at_ms > :now")
            .expression_attribute_values(":now", n(now.timestamp_millis()))
            .expression_attribute_names("#count", "count")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":exp", n(expires_at.timestamp_millis()))
            .expression_attribute_values(":ttl", n(ttl_seconds(expires_at)))
            .build()
            .map_err(|e| build_error("TransactWriteItems", e))?;
        for _ in 0..INCREMENT_TRIES {
            let result = self
                .client
                .transact_write_items()
                .transact_items(TransactWriteItem::builder().put(take_marker.clone()).build())
                .transact_items(TransactWriteItem::builder().update(add_one.clone()).build())
                .send()
                .await;
            let Err(e) = result else { return Ok(true) };
            let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) = e.as_service_error()
            else {
                return Err(port_error("TransactWriteItems", e));
            };
            // One reason per item, in order: the marker's condition failing means counted before.
            let code = |i: usize| cancelled.cancellation_reasons().get(i).and_then(|r| r.code());
            if code(0) == Some("ConditionalCheckFailed") {
                return Ok(false);
            }
            if code(1) == Some("ConditionalCheckFailed") {
                self.delete_expired(counter, now).await?;
            } else if ![code(0), code(1)].contains(&Some("TransactionConflict")) {
                return Err(port_error("TransactWriteItems", e));
            }
        }
        Err(PortError::Throttled(format!("counting {marker} kept conflicting")))
    }

    async fn count(&self, key: &str, now: DateTime<Utc>) -> PortResult<i64> {
        let item = self.get_any(key).await?;
        let live = item
            .as_ref()
            .filter(|i| number(i, "expires_at_ms").is_some_and(|ms| ms > now.timestamp_millis()));
        Ok(live.and_then(|i| number(i, "count")).unwrap_or(0))
    }

    /// Nothing to do: the table's TTL attribute (`ttl`, set on every write) has DynamoDB delete
    /// expired records for free, where a scan here would pay to read the whole table.
    async fn purge_expired(&self, _now: DateTime<Utc>, _limit: usize) -> PortResult<usize> {
        Ok(0)
    }
}
