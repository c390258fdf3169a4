//! Carts: items with reserved stock, and the transitions the cart janitor makes.
//!
//! Invariants: a cart's reserved stock is released exactly once: the transition that releases it
//! also clears `stock_reserved`, and repositories write it with a condition on the old status. A
//! cart the janitor cannot process is set aside ([`CartStatus::SetAside`]): out of its work for
//! good, its stock still reserved, until an operator deals with it.

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
    /// Set aside by the cart janitor, which could not process it (it does not read, or gives
    /// stock back to more variants than one transaction takes): left out of every later run,
    /// its stock still reserved, the reason stored with it, until an operator fixes it (and
    /// makes it active again) or deletes it. Its expired session is not deleted meanwhile.
    SetAside,
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

    /// Marks an idle active cart abandoned and returns the stock to release, one release per
    /// variant (in the order the variants first appear); `None` (and no change) when it is not
    /// idle, no longer active, or its stock was already released.
    ///
    /// Lines of the same variant are summed: a transaction may write an item once (DynamoDB
    /// refuses two actions on one item), and the release is by variant anyway.
    pub fn abandon(&mut self, now: DateTime<Utc>, threshold: Duration) -> Option<Vec<StockRelease>> {
        if !self.is_idle(now, threshold) {
            return None;
        }
        self.status = CartStatus::Abandoned;
        if !std::mem::replace(&mut self.stock_reserved, false) {
            return Some(Vec::new());
        }
        let mut releases: Vec<StockRelease> = Vec::new();
        for item in self.items.iter().filter(|i| i.quantity > 0) {
            match releases.iter_mut().find(|r| r.variant_id == item.variant_id) {
                Some(release) => release.quantity = release.quantity.saturating_add(item.quantity),
                None => releases
                    .push(StockRelease { variant_id: item.variant_id.clone(), quantity: item.quantity }),
            }
        }
        Some(releases)
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
    fn lines_of_one_variant_give_their_stock_back_in_one_release() {
        let now = Utc::now();
        let line = |variant: &str, quantity| CartItem { variant_id: variant.into(), quantity };
        let mut c = cart(now);
        c.items = vec![line("v1", 2), line("v2", 1), line("v1", 3), line("v3", 0)];
        let released = c.abandon(now, Duration::hours(2)).unwrap();
        assert_eq!(
            released,
            vec![
                StockRelease { variant_id: "v1".into(), quantity: 5 },
                StockRelease { variant_id: "v2".into(), quantity: 1 },
            ]
        );
    }

    #[test]
    fn a_recent_or_checked_out_cart_is_left_alone() {
        let now = Utc::now();
        let mut recent = cart(now);
        assert_eq!(recent.abandon(now, Duration::hours(4)), None);
        let mut bought = Cart { status: CartStatus::CheckedOut, ..cart(now) };
        assert_eq!(bought.abandon(now, Duration::hours(2)), None);
        assert!(bought.stock_reserved);
        let mut set_aside = Cart { status: CartStatus::SetAside, ..cart(now) };
        assert_eq!(set_aside.abandon(now, Duration::hours(2)), None, "set aside: left alone");
        assert!(set_aside.stock_reserved);
    }
}
