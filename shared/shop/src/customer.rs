//! A store's customer as the POS knows them, with their order history summed up.

use crate::{
    ids::{CustomerId, StoreId},
    phone::PhoneNumber,
};

/// What a customer agreed to.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Preferences {
    /// Marketing emails.
    pub email_marketing: bool,
    /// Marketing texts.
    pub sms_marketing: bool,
}

/// A customer profile.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Customer {
    /// The POS's id.
    pub id: CustomerId,
    /// Whose customer.
    pub store_id: StoreId,
    /// Given and family name.
    pub name: String,
    /// Email, when known (personal data: masked in logs).
    pub email: Option<String>,
    /// Phone, when known and valid.
    pub phone: Option<PhoneNumber>,
    /// Orders placed.
    pub order_count: u32,
    /// Sum of their orders, in minor units of the store's currency.
    pub total_spent_minor: i64,
    /// What they agreed to.
    pub preferences: Preferences,
}
