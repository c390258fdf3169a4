//! Catalog sync: one page of a store's Shopify products into the catalog at a time, so the job
//! can checkpoint the cursor between pages.

use std::sync::Arc;

use jobkit::{ErrorKind, JobError};

use crate::{
    ids::StoreId,
    ports::{CatalogRepository, Credentials},
    shopify::{ShopifyClient, ShopifyShop},
    store::Store,
};

/// Products per page: the most a products page asks within Shopify's single-query cost maximum.
pub const PAGE_SIZE: u32 = crate::shopify::MAX_PRODUCTS_PAGE;

/// What one page did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageSynced {
    /// Products written.
    pub upserted: usize,
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

    /// Syncs the page after `cursor`.
    ///
    /// # Errors
    /// `unauthorized` (permanent) when the store has no token; Shopify's classified errors
    /// (throttled and unavailable retry, a refused token is permanent); storage failures (retryable).
    pub async fn sync_page(&self, store: &Store, cursor: Option<&str>) -> Result<PageSynced, JobError> {
        let shop = ShopifyShop { domain: store.shopify_domain.clone(), token: self.token(&store.id).await? };
        let page = self.shopify.products_page(&store.id, &shop, cursor, PAGE_SIZE).await?;
        let upserted = self.catalog.upsert_products(&page.products).await?;
        Ok(PageSynced { upserted, next_cursor: page.next_cursor })
    }

    async fn token(&self, store: &StoreId) -> Result<crate::secret::Secret, JobError> {
        self.credentials.shopify_token(store).await?.ok_or_else(|| {
            JobError::permanent(
                ErrorKind::UNAUTHORIZED,
                format!("store {store} has no Shopify token (app uninstalled?)"),
            )
        })
    }
}
