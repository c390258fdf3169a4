//! Newtype ids: a store id cannot be passed where a product id is expected.

use std::fmt;

macro_rules! id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_owned())
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                Self(s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id!(
    /// A store of the platform (`st_42`).
    StoreId
);
id!(
    /// A product of a store's catalog (Shopify's `gid://shopify/Product/...`).
    ProductId
);
id!(
    /// A product variant (Shopify's `gid://shopify/ProductVariant/...`).
    VariantId
);
id!(
    /// A customer of a store (the POS's customer id).
    CustomerId
);
id!(
    /// A shopping cart.
    CartId
);
id!(
    /// One request to share a product by SMS; the text goes out once per share id.
    ShareId
);
