//! Customer profiles on DynamoDB: partition key `store_id`, sort key `id`, the profile a map in
//! `body` (`preferences` a map of booleans, an unknown email or phone `NULL`), written in batches
//! like the catalog.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;

use super::{
    attributes::{decode, encode},
    batch::{Document, get_document, put_documents},
};
use crate::{
    customer::Customer,
    ids::{CustomerId, StoreId},
    ports::{CustomerRepository, RepoResult},
};

const RECORD: &str = "customer";

/// [`CustomerRepository`] on a DynamoDB table (`SHOP_CUSTOMERS_TABLE`).
#[derive(Debug, Clone)]
pub struct DynamoCustomers {
    client: Client,
    table: String,
}

impl DynamoCustomers {
    /// The repository on `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }
}

#[async_trait]
impl CustomerRepository for DynamoCustomers {
    async fn upsert_customers(&self, customers: &[Customer]) -> RepoResult<usize> {
        let documents = customers
            .iter()
            .map(|c| {
                let body = encode(RECORD, "body", c)?;
                Ok(Document { store_id: c.store_id.to_string(), id: c.id.to_string(), body })
            })
            .collect::<RepoResult<Vec<_>>>()?;
        put_documents(&self.client, &self.table, documents).await
    }

    async fn get_customer(&self, store: &StoreId, id: &CustomerId) -> RepoResult<Option<Customer>> {
        let item = get_document(&self.client, &self.table, store.as_str(), id.as_str()).await?;
        item.map(|item| decode(RECORD, &item, "body")).transpose()
    }
}
