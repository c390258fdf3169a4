//! A Shopify shop domain, validated before any request: `<name>.myshopify.com` only.

use std::{fmt, str::FromStr};

/// Why a shop domain was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{domain:?} is not a Shopify shop domain (<name>.myshopify.com): {reason}")]
pub struct ShopDomainError {
    domain: String,
    reason: &'static str,
}

/// A validated `<name>.myshopify.com` domain, lower-cased.
///
/// ```
/// use shop::ShopDomain;
/// let domain: ShopDomain = "Acme-Store.myshopify.com".parse().unwrap();
/// assert_eq!(domain.as_str(), "acme-store.myshopify.com");
/// assert!("acme.com".parse::<ShopDomain>().is_err());
/// assert!("evil.com/.myshopify.com".parse::<ShopDomain>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ShopDomain(String);

const SUFFIX: &str = ".myshopify.com";

impl ShopDomain {
    /// The domain.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The shop's name (the part before `.myshopify.com`).
    pub fn shop_name(&self) -> &str {
        &self.0[..self.0.len() - SUFFIX.len()]
    }
}

impl FromStr for ShopDomain {
    type Err = ShopDomainError;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let refuse = |reason| Err(ShopDomainError { domain: raw.to_owned(), reason });
        let domain = raw.trim().to_ascii_lowercase();
        let Some(name) = domain.strip_suffix(SUFFIX) else { return refuse("it must end in .myshopify.com") };
        // Shopify shop names: letters, digits and hyphens, not starting or ending with a hyphen.
        if name.is_empty() || name.len() > 63 {
            return refuse("the shop name must be 1 to 63 characters");
        }
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return refuse("the shop name may hold only letters, digits and hyphens");
        }
        if name.starts_with('-') || name.ends_with('-') {
            return refuse("the shop name may not start or end with a hyphen");
        }
        Ok(Self(domain))
    }
}

impl TryFrom<String> for ShopDomain {
    type Error = ShopDomainError;

    fn try_from(raw: String) -> Result<Self, Self::Error> {
        raw.parse()
    }
}

impl From<ShopDomain> for String {
    fn from(domain: ShopDomain) -> Self {
        domain.0
    }
}

impl fmt::Display for ShopDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_shop_domains_only() {
        for ok in ["acme.myshopify.com", "ACME-2.MyShopify.com", " acme.myshopify.com "] {
            assert!(ok.parse::<ShopDomain>().is_ok(), "{ok}");
        }
        for bad in [
            "acme.com",
            "myshopify.com",
            ".myshopify.com",
            "acme.myshopify.com.evil.com",
            "evil.com/.myshopify.com",
            "a.b.myshopify.com",
            "-acme.myshopify.com",
            "acme_store.myshopify.com",
            "https://acme.myshopify.com",
        ] {
            assert!(bad.parse::<ShopDomain>().is_err(), "{bad}");
        }
    }

    #[test]
    fn deserialising_validates_too() {
        assert!(serde_json::from_str::<ShopDomain>(r#""acme.myshopify.com""#).is_ok());
        let err = serde_json::from_str::<ShopDomain>(r#""acme.com""#).unwrap_err();
        assert!(err.to_string().contains("myshopify.com"), "{err}");
    }
}
