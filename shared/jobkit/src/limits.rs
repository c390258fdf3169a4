//! SQS's limits on a message, shared by the runner (what it re-sends must fit) and the embedded
//! queue (which refuses what SQS refuses).

/// Message attributes SQS takes on one message.
pub const MAX_MESSAGE_ATTRIBUTES: usize = 10;

/// SQS's limit on a message: its body and attributes together, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 1_048_576;

/// A message's size as SQS counts it: the body, and each attribute's name, data type and value.
pub fn message_size<'a>(body: &str, attributes: impl IntoIterator<Item = (&'a String, &'a String)>) -> usize {
    body.len()
        + attributes.into_iter().map(|(name, value)| name.len() + "String".len() + value.len()).sum::<usize>()
}
