//! Carts: items with reserved stock, and the transitions the cart janitor makes.
//!
//! Invariant: a cart's reserved stock is released exactly once: the transition that releases it
//! also clears `stock_reserved`, and repositories write it with a condition on the old status.

use chrono::{DateTime, Duration, Utc};

use crate::ids::{CartId, StoreId, VariantId};

/// Where a cart is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CartStatus {
    /// Being filled.
    Active,
    /// Left idle past the threshold; its stock went back.
    Abandoned,
    /// Bought.
    CheckedOut,
}

/// A line of a cart.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CartItem {
    /// What.
    pub variant_id: VariantId,
    /// How many.
    pub quantity: u32,
}

/// A shopping cart.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Cart {
    /// Its id.
    pub id: CartId,
    /// Whose store.
    pub store_id: StoreId,
    /// Its lines.
    pub items: Vec<CartItem>,
    /// Its status.
    pub status: CartStatus,
    /// Whether its items still hold stock.
    pub stock_reserved: bool,
    /// The last time the shopper touched it.
    pub last_activity_at: DateTime<Utc>,
    /// When its session may be deleted.
    pub expires_at: DateTime<Utc>,
}

/// Stock to give back to inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockRelease {
    /// The variant.
    pub variant_id: VariantId,
    /// Units to give back.
    pub quantity: u32,
}

impl Cart {
    /// Whether the cart has been idle for `threshold` at `now` while still active.
    pub fn is_idle(&self, now: DateTime<Utc>, threshold: Duration) -> bool {
        self.status == CartStatus::Active && now - self.last_activity_at >= threshold
    }

    /// Whether its session may be deleted at `now`.
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at <= now
    }

    /// Marks an idle active cart abandoned and returns the stock to release; `None` (and no
    /// change) when it is not idle, no longer active, or its stock was already released.
    pub fn abandon(&mut self, now: DateTime<Utc>, threshold: Duration) -> Option<Vec<StockRelease>> {
        if !self.is_idle(now, threshold) {
            return None;
        }
        self.status = CartStatus::Abandoned;
        if !std::mem::replace(&mut self.stock_reserved, false) {
            return Some(Vec::new());
        }
        Some(
            self.items
                .iter()
                .filter(|i| i.quantity > 0)
                .map(|i| StockRelease { variant_id: i.variant_id.clone(), quantity: i.quantity })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cart(now: DateTime<Utc>) -> Cart {
        Cart {
            id: "c1".into(),
            store_id: "st_1".into(),
            items: vec![CartItem { variant_id: "v1".into(), quantity: 2 }],
            status: CartStatus::Active,
            stock_reserved: true,
            last_activity_at: now - Duration::hours(3),
            expires_at: now + Duration::days(1),
        }
    }

    #[test]
    fn an_idle_cart_is_abandoned_and_releases_its_stock_once() {
        let now = Utc::now();
        let mut c = cart(now);
        let released = c.abandon(now, Duration::hours(2)).unwrap();
        assert_eq!(released, vec![StockRelease { variant_id: "v1".into(), quantity: 2 }]);
        assert_eq!((c.status, c.stock_reserved), (CartStatus::Abandoned, false));
        assert_eq!(c.abandon(now, Duration::hours(2)), None, "a second pass changes nothing");
    }

    #[test]
    fn a_recent_or_checked_out_cart_is_left_alone() {
        let now = Utc::now();
        let mut recent = cart(now);
        assert_eq!(recent.abandon(now, Duration::hours(4)), None);
        let mut bought = Cart { status: CartStatus::CheckedOut, ..cart(now) };
        assert_eq!(bought.abandon(now, Duration::hours(2)), None);
        assert!(bought.stock_reserved);
    }
}
