//! The history on DynamoDB. Table `SHOP_HISTORY_TABLE`: key `id` (`<kind>#<entry id>`), the
//! entry a map in `body` (its `detail` a map as the writer shaped it), and a global secondary
//! index `by_kind_time` (`kind`, `at_ms`) that finds the oldest entries of a kind. A GSI rather
//! than a table keyed by kind, because a local index would cap each kind at 10 GB.
//!
//! The index is eventually consistent: a purge right after another may see entries the first
//! one deleted; deleting them again is harmless and the next query no longer returns them.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::{
    Client,
    types::{AttributeValue, DeleteRequest, WriteRequest},
};
use chrono::{DateTime, Utc};

use super::{
    attributes::{self, decode, encode},
    batch::{BATCH, write_batch},
    sdk_error,
};
use crate::{
    history::{HistoryEntry, RecordKind},
    ports::{History, RepoResult},
};

/// The index of entries by kind and time.
pub const BY_KIND_TIME: &str = "by_kind_time";

/// [`History`] on DynamoDB.
#[derive(Debug, Clone)]
pub struct DynamoHistory {
    client: Client,
    table: String,
}

impl DynamoHistory {
    /// The history in `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }
}

fn key(kind: RecordKind, id: &str) -> String {
    format!("{kind}#{id}")
}

const RECORD: &str = "history";

#[async_trait]
impl History for DynamoHistory {
    async fn append(&self, entry: &HistoryEntry) -> RepoResult {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("id", AttributeValue::S(key(entry.kind, &entry.id)))
            .item("kind", AttributeValue::S(entry.kind.as_str().to_owned()))
            .item("at_ms", AttributeValue::N(entry.at.timestamp_millis().to_string()))
            .item("body", encode(RECORD, "body", entry)?)
            .send()
            .await
            .map_err(|e| sdk_error("PutItem", &self.table, e))?;
        Ok(())
    }

    async fn purge_before(&self, kind: RecordKind, cutoff: DateTime<Utc>, limit: usize) -> RepoResult<usize> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(BY_KIND_TIME)
            .key_condition_expression("kind = :kind AND at_ms < :cutoff")
            .expression_attribute_values(":kind", AttributeValue::S(kind.as_str().to_owned()))
            .expression_attribute_values(":cutoff", AttributeValue::N(cutoff.timestamp_millis().to_string()))
            .projection_expression("id")
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| sdk_error("Query", &self.table, e))?;
        let deletes = out
            .items()
            .iter()
            .filter_map(|item| item.get("id").cloned())
            .map(|id| {
                let delete = DeleteRequest::builder()
                    .set_key(Some(HashMap::from([("id".to_owned(), id)])))
                    .build()
                    .map_err(|e| attributes::corrupt(RECORD, "id", e))?;
                Ok(WriteRequest::builder().delete_request(delete).build())
            })
            .collect::<RepoResult<Vec<_>>>()?;
        for chunk in deletes.chunks(BATCH) {
            write_batch(&self.client, &self.table, chunk.to_vec()).await?;
        }
        Ok(deletes.len())
    }

    async fn recent(&self, kind: RecordKind, limit: usize) -> RepoResult<Vec<HistoryEntry>> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(BY_KIND_TIME)
            .key_condition_expression("kind = :kind")
            .expression_attribute_values(":kind", AttributeValue::S(kind.as_str().to_owned()))
            .scan_index_forward(false)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| sdk_error("Query", &self.table, e))?;
        out.items().iter().map(|item| decode(RECORD, item, "body")).collect()
    }
}
