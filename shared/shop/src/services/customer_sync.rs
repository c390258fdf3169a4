//! Customer sync: one page of a store's POS customers, with their order history summed up, into
//! the customer profiles at a time, so the job can checkpoint the cursor between pages. A page of
//! 100 customers takes one `ListCustomers` call and a paged `SearchOrders` per 10 of them
//! (Square's limit on a search's customer ids, [`crate::square::ORDERS_SEARCH_CUSTOMERS`]).

use std::sync::Arc;

use jobkit::{ErrorKind, JobError};

use super::PageSynced;
use super::tokens::with_token;
use crate::{
    declaration::Platform,
    ports::{Credentials, CustomerRepository},
    square::SquareClient,
    store::Store,
};

/// Pulls a store's customers from the POS.
#[derive(Debug, Clone)]
pub struct CustomerSync {
    square: SquareClient,
    customers: Arc<dyn CustomerRepository>,
    credentials: Arc<dyn Credentials>,
}

impl CustomerSync {
    /// A sync on these ports.
    pub fn new(
        square: SquareClient,
        customers: Arc<dyn CustomerRepository>,
        credentials: Arc<dyn Credentials>,
    ) -> Self {
        Self { square, customers, credentials }
    }

    /// Syncs the page after `cursor`. A customer that cannot be read is not written but
    /// returned in [`PageSynced::set_aside`], as is an order that cannot be read (its
    /// customer's totals are those of the others).
    ///
    /// # Errors
    /// `not_found` (permanent) when the store has no POS location, `unauthorized` (permanent)
    /// without a token; the POS's classified errors; storage failures (retryable).
    pub async fn sync_page(&self, store: &Store, cursor: Option<&str>) -> Result<PageSynced, JobError> {
        let Some(location) = &store.pos_location_id else {
            return Err(JobError::permanent(
                ErrorKind::NOT_FOUND,
                format!("store {} has no POS location", store.id),
            ));
        };
        let page = with_token(self.credentials.as_ref(), &store.id, Platform::Square, |token| async move {
            Ok(self.square.customers_page(&store.id, location, &token, cursor).await?)
        })
        .await?;
        let upserted = self.customers.upsert_customers(&page.customers).await?;
        Ok(PageSynced { upserted, set_aside: page.set_aside, next_cursor: page.next_cursor })
    }
}
