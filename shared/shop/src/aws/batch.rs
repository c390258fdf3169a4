//! Documents keyed by (`store_id`, `id`) with their `body` a map, written (and deleted) 25 at a
//! time with `BatchWriteItem`.
//!
//! Invariant: unprocessed items are retried with backoff until written or the write fails, so
//! nothing is silently dropped.

use std::{collections::HashMap, time::Duration};

use aws_sdk_dynamodb::{
    Client,
    types::{AttributeValue, DeleteRequest, PutRequest, WriteRequest},
};

use super::{attributes::Item, sdk_error};
use crate::ports::{RepoError, RepoResult};

/// DynamoDB's batch limit.
pub(crate) const BATCH: usize = 25;
/// Tries of one batch's unprocessed items before giving up (the job retries later).
const TRIES: u32 = 6;

/// One document to write.
pub(crate) struct Document {
    pub store_id: String,
    pub id: String,
    pub body: AttributeValue,
}

/// Writes `documents` into `table`; a key given twice keeps its last document (a batch may not
/// hold a key twice). Returns how many distinct documents were written.
pub(crate) async fn put_documents(
    client: &Client,
    table: &str,
    documents: Vec<Document>,
) -> RepoResult<usize> {
    put_documents_with(client, table, documents, None).await
}

/// As [`put_documents`], each item also carrying the string attribute `mark` (name, value).
pub(crate) async fn put_documents_with(
    client: &Client,
    table: &str,
    documents: Vec<Document>,
    mark: Option<(&str, &str)>,
) -> RepoResult<usize> {
    let mut latest: HashMap<(String, String), AttributeValue> = HashMap::new();
    for doc in documents {
        latest.insert((doc.store_id, doc.id), doc.body);
    }
    let count = latest.len();
    let requests = latest
        .into_iter()
        .map(|((store_id, id), body)| {
            let mut item = HashMap::from([
                ("store_id".to_owned(), AttributeValue::S(store_id)),
                ("id".to_owned(), AttributeValue::S(id)),
                ("body".to_owned(), body),
            ]);
            if let Some((name, value)) = mark {
                item.insert(name.to_owned(), AttributeValue::S(value.to_owned()));
            }
            let put = PutRequest::builder()
                .set_item(Some(item))
                .build()
                .map_err(|e| RepoError::Corrupt(e.to_string()))?;
            Ok(WriteRequest::builder().put_request(put).build())
        })
        .collect::<RepoResult<Vec<_>>>()?;
    for chunk in requests.chunks(BATCH) {
        write_batch(client, table, chunk.to_vec()).await?;
    }
    Ok(count)
}

/// Deletes the documents (`store_id`, `id`) of `table`, 25 at a time.
pub(crate) async fn delete_documents(
    client: &Client,
    table: &str,
    store_id: &str,
    ids: &[String],
) -> RepoResult {
    let requests = ids
        .iter()
        .map(|id| {
            let delete = DeleteRequest::builder()
                .key("store_id", AttributeValue::S(store_id.to_owned()))
                .key("id", AttributeValue::S(id.clone()))
                .build()
                .map_err(|e| RepoError::Corrupt(e.to_string()))?;
            Ok(WriteRequest::builder().delete_request(delete).build())
        })
        .collect::<RepoResult<Vec<_>>>()?;
    for chunk in requests.chunks(BATCH) {
        write_batch(client, table, chunk.to_vec()).await?;
    }
    Ok(())
}

pub(crate) async fn write_batch(client: &Client, table: &str, mut requests: Vec<WriteRequest>) -> RepoResult {
    for attempt in 0..TRIES {
        if attempt > 0 {
            // 50 ms, 100 ms, 200 ms, ...: the table is throttling this partition.
            tokio::time::sleep(Duration::from_millis(50 << (attempt - 1))).await;
        }
        let out = client
            .batch_write_item()
            .request_items(table, requests)
            .send()
            .await
            .map_err(|e| sdk_error("BatchWriteItem", table, e))?;
        requests = out.unprocessed_items.and_then(|mut u| u.remove(table)).unwrap_or_default();
        if requests.is_empty() {
            return Ok(());
        }
    }
    // DynamoDB leaves items unprocessed when the table's throughput is exceeded.
    Err(RepoError::Throttled(format!(
        "{} writes to {table} still unprocessed after {TRIES} tries",
        requests.len()
    )))
}

/// The document (`store_id`, `id`), if any.
pub(crate) async fn get_document(
    client: &Client,
    table: &str,
    store_id: &str,
    id: &str,
) -> RepoResult<Option<Item>> {
    let out = client
        .get_item()
        .table_name(table)
        .key("store_id", AttributeValue::S(store_id.to_owned()))
        .key("id", AttributeValue::S(id.to_owned()))
        .send()
        .await
        .map_err(|e| sdk_error("GetItem", table, e))?;
    Ok(out.item)
}
