//! The message contract: the body is the job's arguments as JSON, metadata rides in message
//! attributes, every attribute is optional, and EventBridge ticks are understood.
//!
//! Invariants: decoding never panics; a body that is not the arguments is a permanent
//! `invalid_arguments` failure whose message names the problem; unknown fields are rejected
//! whatever the argument type says.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Serialize, de::DeserializeOwned};

use crate::{
    error::{ErrorKind, JobError},
    ids::JobId,
};

/// Names of the message attributes jobkit reads and writes.
pub mod attr {
    /// The job's id; defaults to the SQS message id.
    pub const JOB_ID: &str = "job_id";
    /// The job's name, written by `perform_later` and on DLQ messages.
    pub const JOB: &str = "job";
    /// When the job was first enqueued (RFC 3339).
    pub const ENQUEUED_AT: &str = "enqueued_at";
    /// Not to run before this time (RFC 3339); longer waits than SQS's 15 minutes hop.
    pub const NOT_BEFORE: &str = "not_before";
    /// An explicit idempotency key.
    pub const IDEMPOTENCY_KEY: &str = "idempotency_key";
    /// The run a message belongs to (`{"run": "<token>"}`, written by jobkit).
    pub const CONTINUATION: &str = "continuation";
    /// W3C trace context.
    pub const TRACEPARENT: &str = "traceparent";
    /// The `unique_until_done` lock the job holds (a state store key, written by jobkit); the
    /// runner gives it back when the job succeeds or lands in the DLQ.
    pub const UNIQUE_LOCK: &str = "unique_lock";
    /// The batch the job is a member of (its id, written by jobkit): the runner counts the
    /// member's finish there.
    pub const BATCH: &str = "batch";
    /// On DLQ messages: the runner's account of the failure, as JSON
    /// ([`crate::dead_letter::DeadLetterError`]).
    pub const ERROR: &str = "error";
    /// On older DLQ messages (before [`ERROR`]): the error kind.
    pub const ERROR_KIND: &str = "error_kind";
    /// On older DLQ messages (before [`ERROR`]): the (redacted) error message.
    pub const ERROR_MESSAGE: &str = "error_message";
    /// On older DLQ messages (before [`ERROR`]): executions that started.
    pub const ATTEMPTS: &str = "attempts";
    /// On older DLQ messages (before [`ERROR`]): the first failure (RFC 3339).
    pub const FIRST_FAILED_AT: &str = "first_failed_at";
    /// On older DLQ messages (before [`ERROR`]): the last failure (RFC 3339).
    pub const LAST_FAILED_AT: &str = "last_failed_at";
    /// On older DLQ messages (before [`ERROR`]): the SQS id of the message that failed.
    pub const ORIGINAL_MESSAGE_ID: &str = "original_message_id";
    /// On older DLQ messages (before [`ERROR`]): why it is there (`discarded`, `exhausted`).
    pub const DLQ_REASON: &str = "dlq_reason";
    /// The contract's version the producer wrote; absent means [`super::SCHEMA_VERSION`]. A
    /// runner refuses versions it does not know rather than guess at them.
    pub const SCHEMA_VERSION: &str = "schema_version";

    /// The attributes jobkit reads on the way in: a value it cannot read as text refuses the
    /// message. Anything else (a producer's own attributes) is left alone.
    pub const READ: [&str; 10] = [
        JOB_ID,
        JOB,
        ENQUEUED_AT,
        NOT_BEFORE,
        IDEMPOTENCY_KEY,
        CONTINUATION,
        TRACEPARENT,
        SCHEMA_VERSION,
        UNIQUE_LOCK,
        BATCH,
    ];
}

/// The version of the message contract this runner reads.
pub const SCHEMA_VERSION: &str = "1";

/// The key under which a schedule's input puts the tick: `{"$schedule": {"rule": <the schedule's
/// name>, "time": <the scheduled time>}}` (EventBridge Scheduler's `<aws.scheduler.scheduled-time>`;
/// an EventBridge rule's input transformer writes the same with the rule's name).
pub const SCHEDULE_KEY: &str = "$schedule";

/// A scheduled tick: which rule fired, for which time. Two deliveries of one tick share it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Tick {
    /// The name of the schedule (or EventBridge rule) that fired.
    pub rule: String,
    /// The scheduled time, as EventBridge wrote it.
    pub time: String,
}

/// The `continuation` attribute: a reference to the run a message belongs to, written by the
/// runner on continuations and DLQ copies. Only the reference travels; the run's checkpoint
/// and history stay in the state store, so a sender cannot skip steps by writing one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContinuationRef {
    /// The run's token.
    pub run: String,
}

impl ContinuationRef {
    /// The attribute's value.
    pub fn to_attribute(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// A message as a queue delivered it, whatever the queue.
#[derive(Debug, Clone, Default)]
pub struct ReceivedMessage {
    /// The queue's id for it.
    pub message_id: String,
    /// The handle to delete it or change its visibility.
    pub receipt_handle: String,
    /// The body (the arguments).
    pub body: String,
    /// String message attributes.
    pub attributes: BTreeMap<String, String>,
    /// Deliveries so far, this one included (`ApproximateReceiveCount`).
    pub receive_count: u32,
    /// When the queue accepted it.
    pub sent_at: Option<DateTime<Utc>>,
    /// The FIFO message group.
    pub group_id: Option<String>,
    /// Message attributes whose value is not UTF-8 text (a binary value), by name.
    pub unreadable_attributes: Vec<String>,
    /// The X-Ray trace header SQS keeps when the sender traced (`AWSTraceHeader`), continued
    /// when the message has no `traceparent`.
    pub aws_trace_header: Option<String>,
}

/// A message to send.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OutgoingMessage {
    /// The body (the arguments).
    pub body: String,
    /// String message attributes.
    pub attributes: BTreeMap<String, String>,
    /// `DelaySeconds` (at most 900).
    pub delay_seconds: u32,
    /// The FIFO message group.
    pub group_id: Option<String>,
    /// The FIFO deduplication id.
    pub dedup_id: Option<String>,
}

/// What the runner knows about one record beyond its arguments.
#[derive(Debug, Clone)]
pub struct Metadata {
    /// The job's id (attribute, or the SQS message id).
    pub job_id: JobId,
    /// The job the message names (its `job` attribute), if it names one.
    pub job: Option<String>,
    /// The queue's id for this delivery.
    pub message_id: String,
    /// Executions that started, this one included.
    pub attempt: u32,
    /// Deliveries so far, this one included.
    pub receive_count: u32,
    /// When it was first enqueued.
    pub enqueued_at: Option<DateTime<Utc>>,
    /// Not to run before.
    pub not_before: Option<DateTime<Utc>>,
    /// An explicit idempotency key.
    pub idempotency_key: Option<String>,
    /// The scheduled tick that produced it.
    pub tick: Option<Tick>,
    /// The run this message belongs to (its `continuation` attribute), if any.
    pub run_token: Option<String>,
    /// Trace context.
    pub traceparent: Option<String>,
    /// The FIFO message group.
    pub group_id: Option<String>,
    /// The `unique_until_done` lock the job holds, if enqueued with one.
    pub unique_lock: Option<String>,
    /// The batch the job is a member of, if enqueued in one.
    pub batch: Option<String>,
}

/// A record decoded: its arguments (not yet typed) and the metadata.
#[derive(Debug, Clone)]
pub struct Envelope<'a> {
    /// The arguments' JSON, without any tick.
    pub args: ArgsJson<'a>,
    /// The metadata.
    pub meta: Metadata,
}

/// A record's arguments before they meet the job's type. Most bodies stay the text they came
/// as and are parsed once, straight into the type; only ticks are rewritten first.
#[derive(Debug, Clone)]
pub enum ArgsJson<'a> {
    /// The body as it came (a JSON object, not yet parsed).
    Body(&'a str),
    /// The arguments after a tick was taken out.
    Value(serde_json::Value),
}

impl ArgsJson<'_> {
    /// Parses the arguments into the job's type, refusing unknown fields.
    ///
    /// # Errors
    /// A permanent `invalid_arguments` error naming the syntax, field or type problem.
    pub fn parse<A: DeserializeOwned>(&self) -> Result<A, JobError> {
        match self {
            Self::Body(body) => parse_body(body),
            Self::Value(value) => parse_args(value),
        }
    }

    /// The arguments as canonical JSON (keys sorted), for hashing.
    pub fn canonical(&self) -> String {
        match self {
            Self::Body(body) => serde_json::from_str::<serde_json::Value>(body)
                .map_or_else(|_| (*body).to_owned(), |v| v.to_string()),
            Self::Value(value) => value.to_string(),
        }
    }

    /// The arguments as text, for error emails.
    pub fn text(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Self::Body(body) => std::borrow::Cow::Borrowed(body),
            Self::Value(value) => std::borrow::Cow::Owned(value.to_string()),
        }
    }
}

fn parse_time(value: Option<&String>) -> Option<DateTime<Utc>> {
    value.and_then(|v| DateTime::parse_from_rfc3339(v).ok()).map(|t| t.with_timezone(&Utc))
}

fn invalid(message: String) -> JobError {
    JobError::permanent(ErrorKind::INVALID_ARGUMENTS, message)
}

/// Decodes a delivered message into arguments JSON and metadata.
///
/// # Errors
/// A permanent `invalid_arguments` error when the body is not a JSON object, or an attribute
/// jobkit owns cannot be read.
pub fn decode(message: &ReceivedMessage) -> Result<Envelope<'_>, JobError> {
    let body = message.body.as_str();
    // The common case, an object with no tick, is left as text and parsed once into the job's
    // type; anything else is parsed here to take the tick out or to say what is wrong.
    let plain_object =
        body.trim_start().starts_with('{') && !body.contains(SCHEDULE_KEY) && !body.contains("aws.events");
    let (args, tick) = if plain_object {
        (ArgsJson::Body(body), None)
    } else {
        let mut value: serde_json::Value =
            serde_json::from_str(body).map_err(|e| invalid(format!("body is not valid JSON: {e}")))?;
        let tick = take_tick(&mut value)?;
        if !value.is_object() {
            return Err(invalid(format!(
                "body must be a JSON object of arguments, got {}",
                json_type(&value)
            )));
        }
        (ArgsJson::Value(value), tick)
    };
    let attrs = &message.attributes;
    if let Some(name) = message.unreadable_attributes.iter().find(|name| attr::READ.contains(&name.as_str()))
    {
        return Err(invalid(format!("attribute {name} is not UTF-8 text")));
    }
    if let Some(version) = attrs.get(attr::SCHEMA_VERSION).filter(|v| v.as_str() != SCHEMA_VERSION) {
        return Err(invalid(format!(
            "unknown schema version {version:?}: this runner reads version {SCHEMA_VERSION}"
        )));
    }
    let not_before = match attrs.get(attr::NOT_BEFORE) {
        Some(raw) => Some(parse_time(Some(raw)).ok_or_else(|| {
            invalid(format!("attribute {} is not an RFC 3339 time: {raw:?}", attr::NOT_BEFORE))
        })?),
        None => None,
    };
    let run_token = match attrs.get(attr::CONTINUATION) {
        Some(raw) => Some(
            serde_json::from_str::<ContinuationRef>(raw)
                .map_err(|e| {
                    invalid(format!(
                        "attribute {} is not a run reference the runner wrote: {e}",
                        attr::CONTINUATION
                    ))
                })?
                .run,
        ),
        None => None,
    };
    let job_id = attrs
        .get(attr::JOB_ID)
        .filter(|id| !id.is_empty())
        .map_or_else(|| JobId::from(message.message_id.as_str()), |id| JobId::from(id.as_str()));
    let meta = Metadata {
        job_id,
        job: attrs.get(attr::JOB).filter(|job| !job.is_empty()).cloned(),
        message_id: message.message_id.clone(),
        attempt: message.receive_count.max(1),
        receive_count: message.receive_count.max(1),
        enqueued_at: parse_time(attrs.get(attr::ENQUEUED_AT)).or(message.sent_at),
        not_before,
        idempotency_key: attrs.get(attr::IDEMPOTENCY_KEY).cloned(),
        tick,
        run_token,
        traceparent: attrs.get(attr::TRACEPARENT).cloned(),
        group_id: message.group_id.clone(),
        unique_lock: attrs.get(attr::UNIQUE_LOCK).filter(|key| !key.is_empty()).cloned(),
        batch: attrs.get(attr::BATCH).filter(|id| !id.is_empty()).cloned(),
    };
    Ok(Envelope { args, meta })
}

/// Removes and returns the tick: a `$schedule` key, or a raw EventBridge scheduled event
/// (whose `detail` then becomes the arguments).
fn take_tick(args: &mut serde_json::Value) -> Result<Option<Tick>, JobError> {
    let Some(object) = args.as_object_mut() else { return Ok(None) };
    if let Some(raw) = object.remove(SCHEDULE_KEY) {
        let tick: Tick = serde_json::from_value(raw)
            .map_err(|e| invalid(format!("{SCHEDULE_KEY} must be {{\"rule\", \"time\"}}: {e}")))?;
        return Ok(Some(tick));
    }
    if object.get("source").and_then(|s| s.as_str()) == Some("aws.events")
        && object.contains_key("detail-type")
    {
        if object.get("detail-type").and_then(|s| s.as_str()) != Some("Scheduled Event") {
            return Err(invalid("an EventBridge event that is not a Scheduled Event".to_owned()));
        }
        let rule = object
            .get("resources")
            .and_then(|r| r.get(0))
            .and_then(|r| r.as_str())
            .map(|arn| arn.rsplit('/').next().unwrap_or(arn).to_owned())
            .ok_or_else(|| invalid("scheduled event without a rule in resources".to_owned()))?;
        let time = object
            .get("time")
            .and_then(|t| t.as_str())
            .ok_or_else(|| invalid("scheduled event without a time".to_owned()))?
            .to_owned();
        let detail = object.remove("detail").unwrap_or_else(|| serde_json::json!({}));
        *args = detail;
        return Ok(Some(Tick { rule, time }));
    }
    Ok(None)
}

fn json_type(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// Turns arguments JSON into the job's argument type, refusing unknown fields.
///
/// # Errors
/// A permanent `invalid_arguments` error naming the field or type problem.
pub fn parse_args<A: DeserializeOwned>(args: &serde_json::Value) -> Result<A, JobError> {
    let mut unknown = Vec::new();
    let parsed: A = serde_ignored::deserialize(args, |path| unknown.push(path.to_string()))
        .map_err(|e| invalid(format!("arguments do not fit: {e}")))?;
    if !unknown.is_empty() {
        return Err(invalid(format!("unknown argument field(s): {}", unknown.join(", "))));
    }
    Ok(parsed)
}

fn parse_body<A: DeserializeOwned>(body: &str) -> Result<A, JobError> {
    let describe = |e: serde_json::Error| match e.classify() {
        serde_json::error::Category::Data => invalid(format!("arguments do not fit: {e}")),
        _ => invalid(format!("body is not valid JSON: {e}")),
    };
    let mut unknown = Vec::new();
    let mut deserializer = serde_json::Deserializer::from_str(body);
    let parsed: A = serde_ignored::deserialize(&mut deserializer, |path| unknown.push(path.to_string()))
        .map_err(describe)?;
    deserializer.end().map_err(describe)?;
    if !unknown.is_empty() {
        return Err(invalid(format!("unknown argument field(s): {}", unknown.join(", "))));
    }
    Ok(parsed)
}

/// Encodes arguments as a message body.
///
/// # Errors
/// A permanent `invalid_arguments` error when the arguments do not serialise to an object.
pub fn encode_args<A: Serialize>(args: &A) -> Result<String, JobError> {
    let value =
        serde_json::to_value(args).map_err(|e| invalid(format!("arguments do not serialise: {e}")))?;
    if !value.is_object() {
        return Err(invalid(format!("arguments must serialise to a JSON object, got {}", json_type(&value))));
    }
    Ok(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(body: &str) -> ReceivedMessage {
        ReceivedMessage {
            message_id: "m-1".into(),
            body: body.into(),
            receive_count: 1,
            ..Default::default()
        }
    }

    #[derive(Debug, serde::Deserialize, PartialEq)]
    struct Args {
        store_id: String,
    }

    #[test]
    fn a_bare_body_gets_defaults() {
        let message = message(r#"{"store_id":"st_42"}"#);
        let env = decode(&message).unwrap();
        assert_eq!(env.meta.job_id.as_str(), "m-1");
        assert_eq!(env.meta.attempt, 1);
        let args: Args = env.args.parse().unwrap();
        assert_eq!(args, Args { store_id: "st_42".into() });
    }

    #[test]
    fn bad_bodies_are_permanent_and_named() {
        let e = decode(&message("not json")).unwrap_err();
        assert!(e.message().contains("not valid JSON"), "{e}");
        let bad = message(r#"{"store_id": "a""#);
        let e = decode(&bad).unwrap().args.parse::<Args>().unwrap_err();
        assert!(e.message().contains("not valid JSON"), "{e}");
        let trailing = message(r#"{"store_id": "a"} x"#);
        assert!(decode(&trailing).unwrap().args.parse::<Args>().is_err(), "trailing characters are refused");
        let e = decode(&message("not json")).unwrap_err();
        assert_eq!(e.kind(), &ErrorKind::INVALID_ARGUMENTS);
        assert!(e.message().contains("not valid JSON"), "{e}");
        let e = decode(&message("[1]")).unwrap_err();
        assert!(e.message().contains("an array"), "{e}");
    }

    #[test]
    fn unknown_and_missing_fields_are_refused() {
        let e = parse_args::<Args>(&serde_json::json!({"store_id":"a","extra":1})).unwrap_err();
        assert!(e.message().contains("extra"), "{e}");
        let e = parse_args::<Args>(&serde_json::json!({})).unwrap_err();
        assert!(e.message().contains("store_id"), "{e}");
    }

    #[test]
    fn schedule_key_becomes_a_tick() {
        let message = message(r#"{"$schedule":{"rule":"clean-db","time":"2026-01-01T03:00:00Z"}}"#);
        let env = decode(&message).unwrap();
        assert_eq!(
            env.meta.tick,
            Some(Tick { rule: "clean-db".into(), time: "2026-01-01T03:00:00Z".into() })
        );
        assert_eq!(env.args.canonical(), "{}");
    }

    #[test]
    fn raw_scheduled_event_is_understood_and_other_events_refused() {
        let raw = r#"{"source":"aws.events","detail-type":"Scheduled Event","time":"2026-01-01T03:00:00Z",
            "resources":["arn:aws:events:us-east-1:1:rule/clean-db"],"detail":{}}"#;
        let raw_message = message(raw);
        let env = decode(&raw_message).unwrap();
        assert_eq!(env.meta.tick.unwrap().rule, "clean-db");
        let other = r#"{"source":"aws.events","detail-type":"EC2 Instance State-change","detail":{}}"#;
        assert!(decode(&message(other)).unwrap_err().message().contains("not a Scheduled Event"));
    }
}
