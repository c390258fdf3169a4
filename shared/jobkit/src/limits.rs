//! The limits AWS puts on what jobkit sends: SQS's on a message, a batch and a visibility
//! timeout, DynamoDB's on a key and an item, with the arithmetic the services use to count them.
//!
//! Invariants: the embedded adapters refuse exactly what these checks refuse, as
//! [`PortError::Invalid`] (what the AWS adapters make of the services' client errors), so a test
//! on SQLite cannot pass what AWS refuses; the runner can call the same checks before it sends.

use std::{collections::BTreeMap, time::Duration};

pub use crate::{enqueue::MAX_DELAY_SECONDS, keys::MAX_KEY_BYTES};
use crate::{error::PortError, message::OutgoingMessage};

/// SQS's most message attributes on one message.
pub const MAX_MESSAGE_ATTRIBUTES: usize = 10;

/// SQS's largest message in bytes, counted by [`message_size`] (1 MiB).
pub const MAX_MESSAGE_BYTES: usize = 1_048_576;

/// SQS's most entries in one `SendMessageBatch`.
pub const MAX_BATCH_ENTRIES: usize = 10;

/// SQS's largest `SendMessageBatch`: the sizes of its messages added up (1 MiB, as one message).
pub const MAX_BATCH_BYTES: usize = 1_048_576;

/// SQS's longest visibility, counted from when the message was received: a
/// `ChangeMessageVisibility` that would keep it invisible longer is refused.
pub const MAX_VISIBILITY: Duration = Duration::from_secs(12 * 60 * 60);

/// DynamoDB's largest item in bytes (400 KB), attribute names and values counted.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;

/// The data type jobkit gives every message attribute; SQS counts it in the message's size.
pub const ATTRIBUTE_DATA_TYPE: &str = "String";

/// A limit a request would break.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LimitError {
    /// More message attributes than [`MAX_MESSAGE_ATTRIBUTES`].
    #[error("message has {count} attributes, over SQS's limit of {MAX_MESSAGE_ATTRIBUTES}")]
    TooManyAttributes {
        /// The attributes the message has.
        count: usize,
    },
    /// A message larger than [`MAX_MESSAGE_BYTES`].
    #[error("message is {bytes} bytes (body and attributes), over SQS's limit of {MAX_MESSAGE_BYTES}")]
    MessageTooLong {
        /// The message's size by [`message_size`].
        bytes: usize,
    },
    /// A `DelaySeconds` over [`MAX_DELAY_SECONDS`].
    #[error("delay of {seconds}s is over SQS's limit of {MAX_DELAY_SECONDS}s")]
    DelayTooLong {
        /// The delay asked for.
        seconds: u32,
    },
    /// A batch whose messages add up to more than [`MAX_BATCH_BYTES`].
    #[error("batch is {bytes} bytes (its messages added up), over SQS's limit of {MAX_BATCH_BYTES}")]
    BatchTooLong {
        /// The messages' sizes added up.
        bytes: usize,
    },
    /// A visibility that would end more than [`MAX_VISIBILITY`] after the message was received.
    #[error(
        "visibility would end {seconds}s after the message was received, over SQS's limit of {}s",
        MAX_VISIBILITY.as_secs()
    )]
    VisibilityTooLong {
        /// From the receive to the end of the visibility asked for, in seconds.
        seconds: u64,
    },
    /// An empty key (DynamoDB's keys have at least one byte).
    #[error("key is empty, DynamoDB's keys have at least 1 byte")]
    EmptyKey,
    /// A key longer than [`MAX_KEY_BYTES`].
    #[error("key is {bytes} bytes, over DynamoDB's limit of {MAX_KEY_BYTES}")]
    KeyTooLong {
        /// The key's length in bytes.
        bytes: usize,
    },
    /// An item larger than [`MAX_ITEM_BYTES`].
    #[error("item is {bytes} bytes, over DynamoDB's limit of {MAX_ITEM_BYTES}")]
    ItemTooLarge {
        /// The item's size, names and values counted.
        bytes: usize,
    },
}

impl From<LimitError> for PortError {
    /// The services refuse these as client errors, which the AWS adapters report as invalid.
    fn from(e: LimitError) -> Self {
        PortError::Invalid(e.to_string())
    }
}

/// A message's size as SQS counts it against [`MAX_MESSAGE_BYTES`]: the body's bytes, and for
/// each attribute its name's, its data type's ([`ATTRIBUTE_DATA_TYPE`]) and its value's bytes.
///
/// ```
/// # use std::collections::BTreeMap;
/// let attributes = BTreeMap::from([("job".to_owned(), "store_sync".to_owned())]);
/// assert_eq!(jobkit::limits::message_size("{}", &attributes), 2 + 3 + 6 + 10);
/// ```
pub fn message_size(body: &str, attributes: &BTreeMap<String, String>) -> usize {
    let attributes: usize =
        attributes.iter().map(|(name, value)| name.len() + ATTRIBUTE_DATA_TYPE.len() + value.len()).sum();
    body.len() + attributes
}

/// Checks a message against SQS's limits on one message: attributes, size and delay.
///
/// # Errors
/// The first limit the message breaks.
pub fn check_message(message: &OutgoingMessage) -> Result<(), LimitError> {
    let count = message.attributes.len();
    if count > MAX_MESSAGE_ATTRIBUTES {
        return Err(LimitError::TooManyAttributes { count });
    }
    let bytes = message_size(&message.body, &message.attributes);
    if bytes > MAX_MESSAGE_BYTES {
        return Err(LimitError::MessageTooLong { bytes });
    }
    if message.delay_seconds > MAX_DELAY_SECONDS {
        return Err(LimitError::DelayTooLong { seconds: message.delay_seconds });
    }
    Ok(())
}

/// Checks one `SendMessageBatch` (at most [`MAX_BATCH_ENTRIES`] messages) against SQS's limit
/// on the whole request; each message's own limits are [`check_message`]'s.
///
/// # Errors
/// [`LimitError::BatchTooLong`] when the messages add up to more than [`MAX_BATCH_BYTES`].
pub fn check_batch(messages: &[OutgoingMessage]) -> Result<(), LimitError> {
    let bytes = messages.iter().map(|m| message_size(&m.body, &m.attributes)).sum();
    if bytes > MAX_BATCH_BYTES {
        return Err(LimitError::BatchTooLong { bytes });
    }
    Ok(())
}

/// Checks a visibility change made `since_receive` after the message was received, asking for
/// `timeout` from now. `timeout` is counted in whole seconds rounded up, as the SQS adapter
/// sends it.
///
/// # Errors
/// [`LimitError::VisibilityTooLong`] when it would end more than [`MAX_VISIBILITY`] after the
/// receive.
pub fn check_visibility(since_receive: Duration, timeout: Duration) -> Result<(), LimitError> {
    let whole_seconds = Duration::from_secs(timeout.as_secs() + u64::from(timeout.subsec_nanos() > 0));
    let total = since_receive.saturating_add(whole_seconds);
    if total > MAX_VISIBILITY {
        let seconds = total.as_secs() + u64::from(total.subsec_nanos() > 0);
        return Err(LimitError::VisibilityTooLong { seconds });
    }
    Ok(())
}

/// Checks a state store key against DynamoDB's partition key: 1 to [`MAX_KEY_BYTES`] bytes.
///
/// # Errors
/// [`LimitError::EmptyKey`] or [`LimitError::KeyTooLong`].
pub fn check_key(key: &str) -> Result<(), LimitError> {
    match key.len() {
        0 => Err(LimitError::EmptyKey),
        bytes if bytes > MAX_KEY_BYTES => Err(LimitError::KeyTooLong { bytes }),
        _ => Ok(()),
    }
}

/// The size DynamoDB counts for a string attribute: its name's and its value's UTF-8 bytes.
pub fn string_attribute_size(name: &str, value: &str) -> usize {
    name.len() + value.len()
}

/// The size DynamoDB counts for a number attribute: its name's bytes, one byte per two
/// significant digits (leading and trailing zeros trimmed), and one byte.
pub fn number_attribute_size(name: &str, value: i64) -> usize {
    let digits = value.unsigned_abs().to_string();
    let significant = digits.trim_start_matches('0').trim_end_matches('0').len().max(1);
    name.len() + significant.div_ceil(2) + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(body: &str, attributes: &[(&str, &str)]) -> OutgoingMessage {
        OutgoingMessage {
            body: body.to_owned(),
            attributes: attributes.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            ..OutgoingMessage::default()
        }
    }

    #[test]
    fn message_size_counts_body_and_each_attribute_name_type_and_value_in_bytes() {
        assert_eq!(message_size("", &BTreeMap::new()), 0);
        let m = message("é{}", &[("job", "x"), ("job_id", "ü")]);
        // 4 body bytes; "job" + "String" + "x"; "job_id" + "String" + 2 bytes.
        assert_eq!(message_size(&m.body, &m.attributes), 4 + (3 + 6 + 1) + (6 + 6 + 2));
    }

    #[test]
    fn a_message_may_have_ten_attributes_and_no_more() {
        let names: Vec<String> = (0..11).map(|i| format!("a{i}")).collect();
        let ten: Vec<(&str, &str)> = names[..10].iter().map(|n| (n.as_str(), "v")).collect();
        assert_eq!(check_message(&message("{}", &ten)), Ok(()));
        let eleven: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "v")).collect();
        assert_eq!(check_message(&message("{}", &eleven)), Err(LimitError::TooManyAttributes { count: 11 }));
    }

    #[test]
    fn a_message_may_be_one_mib_with_its_attributes_and_no_more() {
        let attributes = [("job", "store_sync")];
        let overhead = 3 + ATTRIBUTE_DATA_TYPE.len() + 10;
        let at = message(&"x".repeat(MAX_MESSAGE_BYTES - overhead), &attributes);
        assert_eq!(check_message(&at), Ok(()));
        let over = message(&"x".repeat(MAX_MESSAGE_BYTES - overhead + 1), &attributes);
        assert_eq!(check_message(&over), Err(LimitError::MessageTooLong { bytes: MAX_MESSAGE_BYTES + 1 }));
        // Bytes, not characters: 'é' is two.
        let wide = message(&"é".repeat(MAX_MESSAGE_BYTES / 2 + 1), &[]);
        assert!(matches!(check_message(&wide), Err(LimitError::MessageTooLong { .. })));
    }

    #[test]
    fn a_delay_may_be_900_seconds_and_no_more() {
        let at = OutgoingMessage { delay_seconds: 900, ..message("{}", &[]) };
        assert_eq!(check_message(&at), Ok(()));
        let over = OutgoingMessage { delay_seconds: 901, ..at };
        assert_eq!(check_message(&over), Err(LimitError::DelayTooLong { seconds: 901 }));
    }

    #[test]
    fn a_batch_may_add_up_to_one_mib_and_no_more() {
        let half = message(&"x".repeat(MAX_BATCH_BYTES / 2), &[]);
        assert_eq!(check_batch(&[half.clone(), half.clone()]), Ok(()));
        let more = message("x", &[]);
        assert_eq!(
            check_batch(&[half.clone(), half, more]),
            Err(LimitError::BatchTooLong { bytes: MAX_BATCH_BYTES + 1 })
        );
    }

    #[test]
    fn visibility_ends_at_most_twelve_hours_after_the_receive_in_whole_seconds() {
        let hour = Duration::from_secs(3600);
        assert_eq!(check_visibility(Duration::ZERO, MAX_VISIBILITY), Ok(()));
        assert_eq!(check_visibility(hour, 11 * hour), Ok(()));
        assert_eq!(
            check_visibility(hour, 11 * hour + Duration::from_secs(1)),
            Err(LimitError::VisibilityTooLong { seconds: 43_201 })
        );
        // The SQS adapter rounds a fraction of a second up, so SQS sees a whole second more.
        assert!(check_visibility(Duration::ZERO, MAX_VISIBILITY - Duration::from_millis(500)).is_ok());
        assert!(check_visibility(hour, 11 * hour + Duration::from_millis(1)).is_err());
        assert!(check_visibility(Duration::from_millis(1), MAX_VISIBILITY).is_err());
    }

    #[test]
    fn keys_have_one_to_2048_bytes() {
        assert_eq!(check_key(&"k".repeat(MAX_KEY_BYTES)), Ok(()));
        assert_eq!(check_key(&"k".repeat(MAX_KEY_BYTES + 1)), Err(LimitError::KeyTooLong { bytes: 2049 }));
        assert_eq!(check_key(&"é".repeat(1025)), Err(LimitError::KeyTooLong { bytes: 2050 }), "bytes");
        assert_eq!(check_key(""), Err(LimitError::EmptyKey));
    }

    #[test]
    fn attribute_sizes_follow_dynamodb_s_rules() {
        assert_eq!(string_attribute_size("pk", "ab"), 4);
        assert_eq!(number_attribute_size("count", 0), 5 + 1 + 1);
        assert_eq!(number_attribute_size("n", 1_700_000_000_000), 1 + 1 + 1, "trailing zeros trimmed");
        assert_eq!(number_attribute_size("n", 1_712_345_678_901), 1 + 7 + 1);
        assert_eq!(number_attribute_size("n", -12), 1 + 1 + 1);
    }

    #[test]
    fn a_broken_limit_is_an_invalid_request_naming_the_limit() {
        let e = PortError::from(LimitError::TooManyAttributes { count: 11 });
        assert!(matches!(&e, PortError::Invalid(text) if text.contains("limit of 10")), "{e}");
    }
}
