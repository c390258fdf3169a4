//! Catalog sync: one page of a store's Shopify products into the catalog at a time, so the job
//! can checkpoint the cursor between pages; then, once every page is in, the removal of the
//! products the shop no longer has, a bounded batch at a time.
//!
//! Invariant: every product a run writes is marked with the run ([`CatalogSync::sync_page`]), and
//! only a run that has written its last page removes ([`CatalogSync::remove_batch`]) the store's
//! products without its mark: a run interrupted part-way removes nothing. A product the shop
//! still has but that cannot be read this run is set aside ([`PageSynced::set_aside`]), and its
//! stored copy, if any, is marked with the run as it is: the sweep removes only what the shop no
//! longer has, never a product because one run could not read it.

use std::sync::Arc;

use jobkit::{JobError, SetAside};

use super::tokens::with_token;
use crate::{
    declaration::Platform,
    ids::ProductId,
    ids::StoreId,
    ports::{CatalogRepository, Credentials, Removed},
    shopify::{ShopifyClient, ShopifyShop},
    store::Store,
};

/// Products per page: the most a products page asks within Shopify's single-query cost maximum.
pub const PAGE_SIZE: u32 = crate::shopify::MAX_PRODUCTS_PAGE;

/// Products looked at for removal in one batch, at most (on DynamoDB, four `BatchWriteItem`s of
/// deletes).
pub const REMOVE_BATCH: usize = 100;

/// What one page did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageSynced {
    /// Records written.
    pub upserted: usize,
    /// Records of the page that could not be read, by id, with why: not written, for the job
    /// to report ([`jobkit::JobContext::set_aside`]); the page's others were.
    pub set_aside: Vec<SetAside>,
    /// The next page's cursor, `None` after the last page.
    pub next_cursor: Option<String>,
}

/// Pulls a store's products from Shopify into the catalog.
#[derive(Debug, Clone)]
pub struct CatalogSync {
    shopify: ShopifyClient,
    catalog: Arc<dyn CatalogRepository>,
    credentials: Arc<dyn Credentials>,
}

impl CatalogSync {
    /// A sync on these ports.
    pub fn new(
        shopify: ShopifyClient,
        catalog: Arc<dyn CatalogRepository>,
        credentials: Arc<dyn Credentials>,
    ) -> Self {
        Self { shopify, catalog, credentials }
    }

    /// Syncs the page after `cursor`, marking each product written with the sync run `run`.
    ///
    /// A product that cannot be read is returned in [`PageSynced::set_aside`]; its stored copy
    /// (the last one read), if the store has one, is kept: marked with `run` unchanged, so that
    /// the run's sweep does not remove a product the shop still has.
    ///
    /// # Errors
    /// `unauthorized` (permanent) when the store has no token; Shopify's classified errors
    /// (throttled and unavailable retry, a refused token is permanent); storage failures (retryable).
    pub async fn sync_page(
        &self,
        store: &Store,
        cursor: Option<&str>,
        run: &str,
    ) -> Result<PageSynced, JobError> {
        let page = with_token(self.credentials.as_ref(), &store.id, Platform::Shopify, |token| {
            let shop = ShopifyShop { domain: store.shopify_domain.clone(), token };
            async move { Ok(self.shopify.products_page(&store.id, &shop, cursor, PAGE_SIZE).await?) }
        })
        .await?;
        let upserted = self.catalog.upsert_synced(&page.products, run).await?;
        let mut kept = Vec::new();
        for record in &page.set_aside {
            if let Some(stored) =
                self.catalog.get_product(&store.id, &ProductId::from(record.id.as_str())).await?
            {
                kept.push(stored);
            }
        }
        if !kept.is_empty() {
            self.catalog.upsert_synced(&kept, run).await?;
        }
        Ok(PageSynced { upserted, set_aside: page.set_aside, next_cursor: page.next_cursor })
    }

    /// Removes up to [`REMOVE_BATCH`] of the store's products that the run `run` did not write,
    /// looking at ids after `after`. Call it only once the run has written every page: the
    /// products it did not write are then those the shop no longer has.
    ///
    /// # Errors
    /// Storage failures (retryable; a repeated batch deletes nothing twice).
    pub async fn remove_batch(
        &self,
        store: &StoreId,
        run: &str,
        after: Option<&ProductId>,
    ) -> Result<Removed, JobError> {
        Ok(self.catalog.remove_unsynced(store, run, after, REMOVE_BATCH).await?)
    }
}
