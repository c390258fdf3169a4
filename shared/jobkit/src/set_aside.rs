//! Records a job sets aside: a job that walks many records (carts, products, customers) and meets
//! one it cannot process reports it with [`JobContext::set_aside`](crate::JobContext::set_aside)
//! and goes on, so that one bad record never fails the run, still less every later run.
//!
//! A record set aside is logged (warn, with the job, the job id and the record's id), counted
//! in the batch's `set_aside` metric, and emailed to the operators once per (job, record id):
//! a record set aside again by a later run (a job that cannot mark it, and meets it every run)
//! is not emailed again for [`SET_ASIDE_REPORTED_FOR`]. Leaving the record out of the next
//! runs' work (marking it) is the job's part: jobkit knows nothing of records.
//!
//! Invariants: setting a record aside never fails the job (its report is best effort, bounded
//! by the time the execution has left, and a failure is logged); reasons are redacted before
//! they are logged or mailed; record ids are not (they are ids, and the operator needs them).

use std::{fmt, sync::Arc};

use crate::{notify::Notifier, ports::StateStore};

/// How long a record set aside and emailed is not emailed again. Longer than any job's interval,
/// so the next runs do not repeat it; short enough that a record still being set aside a month
/// later (nobody fixed it) is reported again rather than forgotten, and that the store's
/// rate-limit records expire instead of piling up.
pub const SET_ASIDE_REPORTED_FOR: std::time::Duration = std::time::Duration::from_secs(30 * 24 * 3600);

/// At most this many records set aside are emailed one by one per job and notification window
/// (an hour); past it, one more email says so and the rest are only logged and counted (and not
/// emailed later either: the flood's email stands for them). A fault
/// of the code or of the data store can make every record unprocessable: a thousand emails
/// would bury the one that explains them, and spend the run's time on SES.
pub const MAX_SET_ASIDE_EMAILS: i64 = 20;

/// A record a job went past: its id and why it could not be processed. Services that walk
/// records return these for the job to report with
/// [`JobContext::set_aside`](crate::JobContext::set_aside).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetAside {
    /// The record's id: an id, never personal data (it is logged and mailed as it is).
    pub id: String,
    /// Why it could not be processed (redacted before it is logged or mailed).
    pub reason: String,
}

impl SetAside {
    /// Record `id`, set aside because of `reason`.
    pub fn new(id: impl Into<String>, reason: impl fmt::Display) -> Self {
        Self { id: id.into(), reason: reason.to_string() }
    }
}

impl fmt::Display for SetAside {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.id, self.reason)
    }
}

/// Where a running job's set-aside records are reported: the runner's notifier and store.
#[derive(Debug, Clone)]
pub(crate) struct Reports {
    pub(crate) job: &'static str,
    pub(crate) notifier: Option<Notifier>,
    pub(crate) store: Arc<dyn StateStore>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_aside_record_shows_its_id_and_reason() {
        let record = SetAside::new("cart-7", format_args!("{} lines", 120));
        assert_eq!(record, SetAside { id: "cart-7".into(), reason: "120 lines".into() });
        assert_eq!(record.to_string(), "cart-7: 120 lines");
    }
}
