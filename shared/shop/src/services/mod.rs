//! The services the jobs call: each does one piece of work against the ports.

mod catalog_sync;

pub use catalog_sync::{CatalogSync, PageSynced};
