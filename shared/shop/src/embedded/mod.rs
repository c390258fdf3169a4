//! The shop's embedded adapters on SQLite: one database, [`ShopDb`] (a file for `jobctl dev`,
//! `:memory:` in tests), implementing every shop port, a module per repository.
//!
//! Invariant: a record is one row per key ((store, product id), (store, customer id), (kind,
//! history id), ...), so a write repeated by a retry or a second delivery stores it once.

mod carts;
mod catalog;
mod credentials;
mod customers;
mod db;
mod documents;
mod history;
mod inventory;
mod stores;

pub use db::ShopDb;
