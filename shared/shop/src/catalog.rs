//! The catalog: products with variants, prices and inventory.

use crate::ids::{ProductId, StoreId, VariantId};

/// An amount in minor units (cents) and its ISO 4217 currency; never a float.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Money {
    /// Minor units (cents).
    pub minor: i64,
    /// ISO 4217 code (`USD`).
    pub currency: String,
}

impl Money {
    /// Parses a decimal amount as Shopify and Square send it (`"49.90"`) in a currency with two
    /// decimals; `None` when it is not a plain decimal.
    pub fn parse_decimal(amount: &str, currency: &str) -> Option<Self> {
        let amount = amount.trim();
        let (negative, digits) = match amount.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, amount),
        };
        let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
        if whole.is_empty()
            || fraction.len() > 2
            || !whole.chars().chain(fraction.chars()).all(|c| c.is_ascii_digit())
        {
            return None;
        }
        let cents = format!("{fraction:0<2}");
        let minor = whole.parse::<i64>().ok()?.checked_mul(100)?.checked_add(cents.parse::<i64>().ok()?)?;
        Some(Self { minor: if negative { -minor } else { minor }, currency: currency.to_owned() })
    }

    /// `49.90 USD`.
    pub fn display(&self) -> String {
        let sign = if self.minor < 0 { "-" } else { "" };
        let abs = self.minor.unsigned_abs();
        format!("{sign}{}.{:02} {}", abs / 100, abs % 100, self.currency)
    }
}

/// A product variant: what is actually sold and stocked.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Variant {
    /// Its id.
    pub id: VariantId,
    /// Stock keeping unit, when the shop sets one.
    pub sku: Option<String>,
    /// Its price.
    pub price: Money,
    /// Units available.
    pub inventory: i64,
}

/// A product of a store.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Product {
    /// Its id.
    pub id: ProductId,
    /// Whose it is.
    pub store_id: StoreId,
    /// Its title.
    pub title: String,
    /// Its URL handle (`red-shoe`).
    pub handle: String,
    /// Its variants.
    pub variants: Vec<Variant>,
}

impl Product {
    /// The lowest variant price, for a share text.
    pub fn from_price(&self) -> Option<&Money> {
        self.variants.iter().map(|v| &v.price).min_by_key(|m| m.minor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_amounts_become_cents_exactly() {
        assert_eq!(Money::parse_decimal("49.9", "USD").unwrap().minor, 4990);
        assert_eq!(Money::parse_decimal("0.07", "USD").unwrap().minor, 7);
        assert_eq!(Money::parse_decimal("-3", "USD").unwrap().minor, -300);
        assert_eq!(Money::parse_decimal("12.345", "USD"), None);
        assert_eq!(Money::parse_decimal("1e3", "USD"), None);
        assert_eq!(Money::parse_decimal("49.90", "USD").unwrap().display(), "49.90 USD");
    }
}
