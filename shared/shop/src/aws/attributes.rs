//! Values as native DynamoDB attributes through `serde_dynamo`: a struct or tagged enum is a map
//! (`M`), a `Vec` a list (`L`), a number a number (`N`), a time an RFC 3339 string, `None` a
//! `NULL`, so the console, PartiQL and filter expressions read what the shop stores.
//!
//! Invariant: an attribute that is missing or does not decode into its type is
//! [`RepoError::Corrupt`] naming the record and the attribute; nothing is guessed.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Serialize, de::DeserializeOwned};
use serde_dynamo::aws_sdk_dynamodb_1::{from_attribute_value, to_attribute_value};

use crate::ports::{RepoError, RepoResult};

/// An item as the SDK reads and writes it.
pub(crate) type Item = HashMap<String, AttributeValue>;

/// A corrupt `attribute` of a `record` (`"store"`, `"cart"`).
pub(crate) fn corrupt(record: &str, attribute: &str, why: impl std::fmt::Display) -> RepoError {
    RepoError::Corrupt(format!("{record} item: {attribute}: {why}"))
}

/// `value` as the attribute `attribute` of a `record`.
///
/// # Errors
/// [`RepoError::Corrupt`] if it has no DynamoDB form (a map with keys that are not strings).
pub(crate) fn encode<T: Serialize + ?Sized>(
    record: &str,
    attribute: &str,
    value: &T,
) -> RepoResult<AttributeValue> {
    to_attribute_value(value).map_err(|e| corrupt(record, attribute, e))
}

/// The attribute `attribute` of `item`, a `record`, decoded.
///
/// # Errors
/// [`RepoError::Corrupt`] naming the attribute when it is missing or not of its type.
pub(crate) fn decode<T: DeserializeOwned>(record: &str, item: &Item, attribute: &str) -> RepoResult<T> {
    let value = item.get(attribute).ok_or_else(|| corrupt(record, attribute, "missing"))?;
    from_attribute_value(value.clone()).map_err(|e| corrupt(record, attribute, e))
}

/// Like [`decode`], but an absent attribute or a `NULL` is `None`.
///
/// # Errors
/// [`RepoError::Corrupt`] naming the attribute when it is there but not of its type.
pub(crate) fn decode_optional<T: DeserializeOwned>(
    record: &str,
    item: &Item,
    attribute: &str,
) -> RepoResult<Option<T>> {
    match item.get(attribute) {
        None => Ok(None),
        Some(_) => decode(record, item, attribute),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Plan, SyncState};

    #[test]
    fn a_tagged_enum_is_a_map_and_a_unit_variant_its_name() {
        let state = SyncState::Running { started_at: chrono::DateTime::UNIX_EPOCH, pages: 2, products: 7 };
        let AttributeValue::M(map) = encode("store", "sync_state", &state).unwrap() else { panic!("a map") };
        assert_eq!(map["status"], AttributeValue::S("running".into()));
        assert_eq!(map["pages"], AttributeValue::N("2".into()));
        assert_eq!(map["started_at"], AttributeValue::S("1970-01-01T00:00:00Z".into()));
        assert_eq!(encode("store", "plan", &Plan::Paused).unwrap(), AttributeValue::S("paused".into()));
        let item = Item::from([("sync_state".to_owned(), AttributeValue::M(map))]);
        assert_eq!(decode::<SyncState>("store", &item, "sync_state").unwrap(), state);
    }

    #[test]
    fn a_missing_or_mistyped_attribute_is_corrupt_and_named() {
        let item = Item::from([("plan".to_owned(), AttributeValue::N("1".into()))]);
        let mistyped = decode::<Plan>("store", &item, "plan").unwrap_err().to_string();
        assert!(mistyped.starts_with("corrupt record: store item: plan: "), "{mistyped}");
        let missing = decode::<SyncState>("store", &item, "sync_state").unwrap_err().to_string();
        assert_eq!(missing, "corrupt record: store item: sync_state: missing");
    }
}
