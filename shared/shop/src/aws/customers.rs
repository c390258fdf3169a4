//! Customer profiles on DynamoDB: partition key `store_id`, sort key `id`, the profile as JSON in
//! `body`, written in batches like the catalog.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;

use super::batch::{Document, get_document, put_documents};
use crate::{
    customer::Customer,
    ids::{CustomerId, StoreId},
    ports::{CustomerRepository, RepoError, RepoResult},
};

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
                let body = serde_json::to_string(c).map_err(|e| RepoError::Corrupt(e.to_string()))?;
                Ok(Document { store_id: c.store_id.to_string(), id: c.id.to_string(), body })
            })
            .collect::<RepoResult<Vec<_>>>()?;
        put_documents(&self.client, &self.table, documents).await
    }

    async fn get_customer(&self, store: &StoreId, id: &CustomerId) -> RepoResult<Option<Customer>> {
        let body = get_document(&self.client, &self.table, store.as_str(), id.as_str()).await?;
        body.map(|b| serde_json::from_str(&b).map_err(|e| RepoError::Corrupt(e.to_string()))).transpose()
    }
}
