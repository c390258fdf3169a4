//! Product sharing: a product's title, price and link texted to a phone number, unless the
//! number opted out or the product is gone.

use std::sync::Arc;

use jobkit::{ErrorKind, JobError};

use crate::{
    ids::ProductId,
    phone::PhoneNumber,
    ports::{CatalogRepository, SmsSender},
    sms::SmsText,
    store::Store,
};

/// A share text takes at most this many SMS segments.
const MAX_SEGMENTS: u32 = 2;

/// Texts products.
#[derive(Debug, Clone)]
pub struct ProductSharer {
    catalog: Arc<dyn CatalogRepository>,
    sms: Arc<dyn SmsSender>,
}

impl ProductSharer {
    /// A sharer on these ports.
    pub fn new(catalog: Arc<dyn CatalogRepository>, sms: Arc<dyn SmsSender>) -> Self {
        Self { catalog, sms }
    }

    /// Texts `product` of `store` to `phone`; returns the SMS provider's message id.
    ///
    /// # Errors
    /// `not_found` (permanent) when the product is gone, `opted_out` (permanent) when the number
    /// refuses texts, the provider's classified errors otherwise.
    pub async fn share(
        &self,
        store: &Store,
        product: &ProductId,
        phone: &PhoneNumber,
    ) -> Result<String, JobError> {
        let Some(product) = self.catalog.get_product(&store.id, product).await? else {
            return Err(JobError::permanent(ErrorKind::NOT_FOUND, format!("product {product} is gone")));
        };
        if self.sms.opted_out(phone).await? {
            return Err(JobError::permanent(crate::policy::OPTED_OUT, format!("{phone} opted out of texts")));
        }
        let price = product.from_price().map(|p| format!(" - from {}", p.display())).unwrap_or_default();
        let link = format!("https://{}/products/{}", store.shopify_domain, product.handle);
        let text = SmsText::compose(&format!("{}{price}", product.title), &link, MAX_SEGMENTS)
            .map_err(|e| JobError::permanent(ErrorKind::INVALID_INPUT, e.to_string()))?;
        Ok(self.sms.send(phone, &text).await?)
    }
}
