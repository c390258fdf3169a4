//! One trace from enqueue to perform (W3C Trace Context): a job's record runs inside the trace
//! its message's `traceparent` names (or a new one), its log lines carry that `trace_id`, and a
//! job it enqueues gets a `traceparent` in the same trace, so the enqueuer's and the job's log
//! lines share a trace id across queues and functions.
//!
//! With the `otel` feature and an export configured (`crate::otel`), the record's span is
//! exported in that trace, and a job enqueued under a span names that span as its parent.
//!
//! Invariant: only a well-formed `traceparent` (version 00, non-zero ids) is continued; any
//! other value starts a new trace rather than failing the job.

use std::fmt::Write;

/// A position in a trace: the trace's id and the id of the span a child hangs under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    trace_id: String,
    parent_id: String,
}

tokio::task_local! {
    static CURRENT: TraceContext;
}

impl TraceContext {
    /// The context a `traceparent` header names, if it is well formed.
    pub fn parse(header: &str) -> Option<Self> {
        let mut parts = header.trim().split('-');
        let (version, trace_id, parent_id, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let hex = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
        let zero = |s: &str| s.bytes().all(|b| b == b'0');
        let valid = parts.next().is_none()
            && version == "00"
            && hex(trace_id, 32)
            && hex(parent_id, 16)
            && hex(flags, 2)
            && !zero(trace_id)
            && !zero(parent_id);
        valid.then(|| Self {
            trace_id: trace_id.to_ascii_lowercase(),
            parent_id: parent_id.to_ascii_lowercase(),
        })
    }

    /// The context an X-Ray trace header names (`Root=1-5759e988-bd862e3fe1be46a994272793;
    /// Parent=53995c3f42cd8ad8;Sampled=1`, SQS's `AWSTraceHeader`): X-Ray's root is a W3C trace
    /// id written in two parts.
    pub fn from_xray(header: &str) -> Option<Self> {
        let field =
            |name: &str| header.split(';').find_map(|part| part.trim().strip_prefix(name)?.strip_prefix('='));
        let root = field("Root")?.strip_prefix("1-")?.replace('-', "");
        let parent = field("Parent")?;
        Self::parse(&format!("00-{root}-{parent}-01"))
    }

    /// A new trace.
    pub fn new_root() -> Self {
        Self { trace_id: random_hex(16), parent_id: random_hex(8) }
    }

    /// The position of an exported span: its trace's id (32 hex digits) and its own (16).
    #[cfg(feature = "otel")]
    pub(crate) fn from_ids(trace_id: &str, span_id: &str) -> Self {
        Self { trace_id: trace_id.to_owned(), parent_id: span_id.to_owned() }
    }

    /// The trace's id (32 hex digits).
    pub fn trace_id(&self) -> &str {
        &self.trace_id
    }

    /// The id of the span a child hangs under (16 hex digits): the producer's, for a message's.
    pub fn parent_id(&self) -> &str {
        &self.parent_id
    }

    /// The `traceparent` of a child in this trace: a new span id under it, sampled.
    pub fn child_header(&self) -> String {
        format!("00-{}-{}-01", self.trace_id, random_hex(8))
    }
}

/// The trace of the record running on this task, if any.
pub(crate) fn current() -> Option<TraceContext> {
    CURRENT.try_with(Clone::clone).ok()
}

/// The `traceparent` of a job enqueued now: `None` outside a record; inside one, a child of the
/// exported span it is enqueued under when there is one, else a new span in the record's trace.
pub(crate) fn header_for_child() -> Option<String> {
    let trace = current()?;
    #[cfg(feature = "otel")]
    if let Some(header) = crate::otel::current_span_header() {
        return Some(header);
    }
    Some(trace.child_header())
}

/// Runs `work` inside `trace`: what it enqueues joins the trace.
pub(crate) async fn scope<F: Future>(trace: TraceContext, work: F) -> F::Output {
    CURRENT.scope(trace, work).await
}

fn random_hex(bytes: usize) -> String {
    let mut out = String::with_capacity(bytes * 2);
    for byte in (0..bytes).map(|_| rand::random::<u8>()) {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::TraceContext;

    #[test]
    fn only_a_well_formed_traceparent_is_continued() {
        let ok = TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        assert_eq!(ok.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        let child = TraceContext::parse(&ok.child_header()).unwrap();
        assert_eq!(child.trace_id(), ok.trace_id());
        assert_ne!(child.child_header(), ok.child_header());
        let xray = TraceContext::from_xray(
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
        );
        assert_eq!(xray.unwrap().trace_id(), "5759e988bd862e3fe1be46a994272793");
        assert!(TraceContext::from_xray("Root=1-5759e988-bd862e3fe1be46a994272793").is_none(), "no parent");
        assert!(
            TraceContext::from_xray("Self=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8")
                .is_none()
        );
        for bad in [
            "",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e47zz-00f067aa0ba902b7-01",
        ] {
            assert!(TraceContext::parse(bad).is_none(), "{bad:?}");
        }
    }
}
