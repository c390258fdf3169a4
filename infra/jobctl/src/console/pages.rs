//! The console's pages, rendered on the server with maud (which escapes every value): the
//! overview, a job's page, the DLQ browser, a message, the results of actions and errors.
//!
//! Invariant: text that comes from a message (error messages, attributes, arguments) passes
//! through [`masked`] (jobkit's redaction, as logs get it) before it reaches a page.

use axum::{
    http::StatusCode,
    response::{Html, IntoResponse, Response},
};
use chrono::{DateTime, SecondsFormat, Utc};
use maud::{DOCTYPE, Markup, html};

use super::chart;
use crate::{
    commands::{
        dlq::{self, Account, DeadLetter, LastSeen, Moved, Purged},
        info::{self, Plan},
        stats::{self, JobStats},
    },
    duration,
    registry::JobSpec,
};

/// What every page shows besides its content.
#[derive(Debug, Clone)]
pub(crate) struct Page<'a> {
    /// Where the console acts (the embedded file or the stack).
    pub(crate) backend: String,
    /// The CSRF token the forms carry.
    pub(crate) csrf: &'a str,
    /// Whether to leave out every button.
    pub(crate) read_only: bool,
}

/// The overview's data.
#[derive(Debug, Clone)]
pub(crate) struct Overview {
    pub(crate) jobs: Vec<JobRow>,
    pub(crate) paused_unknown: Option<String>,
    pub(crate) at: DateTime<Utc>,
    /// The newest batches (all jobs), as `jobctl batches` lists them; the page's load only.
    pub(crate) batches: Vec<jobkit::batch::BatchStatus>,
}

/// One job on the overview.
#[derive(Debug, Clone)]
pub(crate) struct JobRow {
    pub(crate) spec: JobSpec,
    pub(crate) stats: JobStats,
    pub(crate) next: Option<DateTime<Utc>>,
}

/// A job's page's data.
#[derive(Debug)]
pub(crate) struct JobView<'a> {
    pub(crate) spec: &'a JobSpec,
    pub(crate) stats: &'a JobStats,
    pub(crate) paused_unknown: Option<String>,
    pub(crate) plans: &'a [Plan],
    pub(crate) letters: &'a [DeadLetter],
}

/// The DLQ browser's data.
#[derive(Debug)]
pub(crate) struct DlqView<'a> {
    pub(crate) job: Option<&'static str>,
    pub(crate) error: Option<&'a str>,
    pub(crate) letters: &'a [DeadLetter],
    pub(crate) depth: u64,
    pub(crate) limit: usize,
}

/// `markup` as an HTML response.
pub(crate) fn html(markup: Markup) -> Response {
    Html(markup.into_string()).into_response()
}

/// Text from a message, masked as logs are (emails, phone numbers, tokens).
fn masked(text: &str) -> String {
    jobkit::redact::redact(text)
}

fn time(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(|| "-".to_owned(), |t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
}

/// A message's page: ids are percent-encoded into the path.
fn message_href(letter: &DeadLetter) -> String {
    let id: String = letter
        .id()
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect();
    format!("/dlq/{}/messages/{id}", letter.job)
}

fn layout(page: &Page<'_>, title: &str, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                // htmx would add a <style> element, which the console's CSP refuses.
                meta name="htmx-config" content=r#"{"includeIndicatorStyles":false}"#;
                title { (title) " · jobctl console" }
                link rel="stylesheet" href="/assets/console.css";
                script src="/assets/htmx.min.js" defer {}
            }
            body {
                header {
                    a.brand href="/" { "jobctl console" }
                    nav { a href="/" { "Overview" } a href="/dlq" { "Dead letters" } }
                    span.backend { (page.backend) }
                    @if page.read_only { span.badge #read-only { "read-only" } }
                }
                main { (content) }
            }
        }
    }
}

fn csrf(page: &Page<'_>) -> Markup {
    html! { input type="hidden" name="csrf" value=(page.csrf); }
}

/// The overview: every job's numbers, refreshed every 5 s.
pub(crate) fn overview(page: &Page<'_>, data: &Overview) -> Markup {
    layout(
        page,
        "Overview",
        html! {
            h1 { "Jobs" }
            @if let Some(why) = &data.paused_unknown {
                p.warning { "Cannot tell which jobs are paused: " (why) }
            }
            table.jobs #overview {
                thead {
                    tr {
                        th { "Job" } th { "Lane" } th.num { "Queued" } th.num { "In flight" }
                        th.num { "Delayed" } th.num { "Oldest" } th.num { "DLQ" }
                        th { "Schedule" } th { "Next firing (UTC)" } th { "Paused" }
                    }
                }
                (overview_rows(data))
            }
            p.hint { "Refreshes every 5 seconds. Times are UTC." }
            h2 { "Batches" }
            @if data.batches.is_empty() {
                p.hint { "No batches (a batch's records are kept 14 days)." }
            } @else {
                table.batches #batches {
                    thead {
                        tr {
                            th { "Job" } th { "Batch" } th { "Progress" } th.num { "Succeeded" }
                            th.num { "Failed" } th.num { "Pending" } th { "State" } th { "Opened" }
                        }
                    }
                    tbody {
                        @for b in &data.batches { (batch_row(b)) }
                    }
                }
            }
        },
    )
}

/// One batch: its progress as a bar and a count, its outcomes, where it is.
fn batch_row(b: &jobkit::batch::BatchStatus) -> Markup {
    let done = b.succeeded + b.failed;
    html! {
        tr.batch id=(format!("batch-{}", b.id)) {
            td { (b.job) }
            td.id title=(b.description) { (b.id) }
            td.progress {
                progress max=(b.total.max(1)) value=(if b.total == 0 { 1 } else { done }) {}
                " " span.count { (done) "/" (b.total) }
            }
            td.num.succeeded { (b.succeeded) }
            td.num.failed.alert[b.failed > 0] { (b.failed) }
            td.num.pending { (b.pending()) }
            td.state { (crate::commands::batches::state(b)) }
            td { (time(Some(b.created_at))) }
        }
    }
}

/// The overview's rows, also served alone for htmx to swap in every 5 s.
pub(crate) fn overview_rows(data: &Overview) -> Markup {
    html! {
        tbody #overview-rows hx-get="/fragments/overview" hx-trigger="every 5s" hx-swap="outerHTML"
            data-at=(time(Some(data.at))) {
            @for row in &data.jobs {
                (job_row(row.spec.name, &row.spec, &row.stats, row.next, true))
            }
        }
    }
}

fn job_row(name: &str, spec: &JobSpec, stats: &JobStats, next: Option<DateTime<Utc>>, link: bool) -> Markup {
    let dlq_depth = stats.dlq.total();
    html! {
        tr.job id=(format!("job-{name}")) {
            td.name { @if link { a href=(format!("/jobs/{name}")) { (name) } } @else { (name) } }
            td.lane { (spec.lanes_text()) }
            td.num.queued { (stats.queue.visible) }
            td.num.in-flight { (stats.queue.in_flight) }
            td.num.delayed { (stats.queue.delayed) }
            td.num.oldest { (stats::oldest_cell(&stats.queue)) }
            td.num.dlq.alert[dlq_depth > 0] {
                @if dlq_depth > 0 { a href=(format!("/dlq?job={name}")) { (dlq_depth) } } @else { "0" }
            }
            td.schedule {
                @match &spec.schedule {
                    Some(s) => { span title=(s.what) { (s.every) } }
                    None => { "on demand" }
                }
            }
            td.next { (next.map_or_else(|| "-".to_owned(), |t| t.format("%Y-%m-%d %H:%M").to_string())) }
            td.paused {
                @match stats.paused { Some(true) => { strong { "paused" } } Some(false) => { "-" } None => { "?" } }
            }
        }
    }
}

/// A job's page: its numbers, pause/resume, its retry plan drawn, its DLQ.
pub(crate) fn job(page: &Page<'_>, view: &JobView<'_>) -> Markup {
    let spec = view.spec;
    let name = spec.name;
    let next = spec.schedule.as_ref().and_then(|s| info::next_firing(s, Utc::now()).ok().flatten());
    layout(
        page,
        name,
        html! {
            h1 { (name) }
            p.summary { (spec.summary) }
            @if let Some(why) = &view.paused_unknown {
                p.warning { "Cannot tell whether it is paused: " (why) }
            }
            table.jobs {
                thead {
                    tr {
                        th { "Job" } th { "Lane" } th.num { "Queued" } th.num { "In flight" }
                        th.num { "Delayed" } th.num { "Oldest" } th.num { "DLQ" }
                        th { "Schedule" } th { "Next firing (UTC)" } th { "Paused" }
                    }
                }
                tbody { (job_row(name, spec, view.stats, next, false)) }
            }
            @if !page.read_only {
                @let (action, label) = match view.stats.paused {
                    Some(true) => ("resume", "Resume"),
                    _ => ("pause", "Pause"),
                };
                form.inline #pause method="post" action=(format!("/jobs/{name}/{action}")) {
                    (csrf(page))
                    button type="submit" { (label) " " (name) }
                }
            }
            h2 { "Retry policy" }
            p { (spec.policy.describe()) "; at most " (duration::format(spec.timeout)) " per attempt." }
            (chart::retry_timeline(view.plans))
            p.hint { "When each attempt may start after the first, per error kind (bars: the jitter's range; log scale)." }
            h2 { "Dead letters" }
            @if view.letters.is_empty() {
                p.empty { "No messages in " (name) "'s DLQ." }
            } @else {
                (dlq_section(page, name, view.letters))
            }
        },
    )
}

/// The DLQ browser: messages grouped by job and error kind, each group redrivable.
pub(crate) fn dlq(page: &Page<'_>, view: &DlqView<'_>) -> Markup {
    let read = view.letters.len() as u64;
    let mut jobs: Vec<&'static str> = view.letters.iter().map(|l| l.job).collect();
    jobs.dedup();
    layout(
        page,
        "Dead letters",
        html! {
            h1 {
                "Dead letters"
                @if let Some(job) = view.job { " of " a href=(format!("/jobs/{job}")) { (job) } }
                @if let Some(error) = view.error { " failed with " code { (error) } }
            }
            @if view.letters.is_empty() {
                @if view.depth == 0 {
                    p.empty #dlq-empty { "No messages in the DLQs." }
                } @else {
                    p.warning {
                        (view.depth) " message(s) are in the DLQs but none could be read now: another \
                        listing or a redrive holds them for its visibility timeout. Reload shortly."
                    }
                }
            }
            @if view.depth > read && !view.letters.is_empty() {
                p.hint { "Showing " (read) " of " (view.depth) " messages (at most " (view.limit) " per DLQ)." }
            }
            @for job in &jobs {
                @let letters: Vec<DeadLetter> = view.letters.iter().filter(|l| l.job == *job).cloned().collect();
                section.dlq-job id=(format!("dlq-{job}")) {
                    h2 { a href=(format!("/jobs/{job}")) { (job) } }
                    (dlq_section(page, job, &letters))
                }
            }
        },
    )
}

/// One job's DLQ: its groups (each with a redrive form), its messages, the purge form.
fn dlq_section(page: &Page<'_>, job: &str, letters: &[DeadLetter]) -> Markup {
    let groups = dlq::groups(letters);
    html! {
        table.groups {
            thead { tr { th { "Error kind" } th.num { "Count" } th { "Oldest failure" } th { "Newest failure" } th {} } }
            tbody {
                @for group in &groups {
                    tr.group data-job=(group.job) data-kind=(group.error_kind) {
                        td.kind { a href=(format!("/dlq?job={}&error={}", group.job, group.error_kind)) { (group.error_kind) } }
                        td.num.count { (group.count) }
                        td { (time(group.oldest)) }
                        td { (time(group.newest)) }
                        td {
                            @if !page.read_only {
                                form.redrive.inline method="post" action=(format!("/dlq/{job}/redrive")) {
                                    (csrf(page))
                                    input type="hidden" name="error" value=(group.error_kind);
                                    label { "limit " input type="number" name="limit" min="1" max="100000" placeholder="all"; }
                                    label { "per second " input type="number" name="rate" min="1" max="1000" placeholder="any"; }
                                    button type="submit" { "Redrive " (group.error_kind) }
                                }
                            }
                        }
                    }
                }
            }
        }
        table.messages {
            thead { tr { th { "Id" } th { "Error kind" } th { "Message" } th.num { "Attempts" } th { "Failed at" } } }
            tbody {
                @for letter in letters {
                    tr.message data-kind=(letter.error_kind()) {
                        td.id { a href=(message_href(letter)) { (letter.id()) } }
                        td { (letter.error_kind()) }
                        td.error { (masked(&crate::output::truncate(&letter.summary_line(), 120))) }
                        td.num { (letter.attempts().map_or_else(|| "-".to_owned(), |n| n.to_string())) }
                        td { (time(letter.failed_at())) }
                    }
                }
            }
        }
        @if !page.read_only {
            form.purge method="post" action=(format!("/dlq/{job}/purge")) {
                (csrf(page))
                label {
                    "Purge " (job) "'s DLQ for good: type the job's name "
                    input type="text" name="confirm" autocomplete="off" required placeholder=(job);
                }
                button.danger type="submit" { "Purge" }
            }
        }
    }
}

/// One DLQ message: its error, attempts, failure times, attributes and arguments.
pub(crate) fn message(page: &Page<'_>, letter: &DeadLetter) -> Markup {
    let arguments = serde_json::to_string_pretty(&letter.arguments()).unwrap_or_default();
    let job = letter.job;
    layout(
        page,
        "Dead letter",
        html! {
            h1 { a href=(format!("/jobs/{job}")) { (job) } " · " (letter.id()) }
            dl.facts {
                dt { "Error kind" } dd #error-kind { (letter.error_kind()) }
                dt { "Error" } dd #error-message { (masked(&letter.error_message())) }
                dt { "Moved by" } dd { (letter.recorded_by()) }
                @match &letter.account {
                    Account::Runner(error) => {
                        dt { "Why" } dd { (if error.reason.is_empty() { "in the DLQ" } else { error.reason.as_str() }) }
                        dt { "Attempts" } dd #attempts { (error.attempts) }
                        dt { "First failure" } dd { (time(error.first_failed_at)) }
                        dt { "Last failure" } dd { (time(error.last_failed_at)) }
                        @if !error.dropped_attributes.is_empty() {
                            dt { "Attributes the copy had no room for" } dd { (error.dropped_attributes.join(", ")) }
                        }
                    }
                    Account::Sqs { last_error, .. } => {
                        dt { "Last error the runner saw" }
                        dd {
                            @match last_error {
                                LastSeen::Found(last) => {
                                    (last.kind) " at attempt " (last.attempt) ", " (time(Some(last.at))) ": " (masked(&last.message))
                                }
                                LastSeen::NotRecorded => { "none recorded" }
                                LastSeen::Unavailable(why) => { "could not be read: " (why) }
                                LastSeen::Unknown => { "-" }
                            }
                        }
                    }
                }
                dt { "SQS message id" } dd { (letter.message.message_id) }
                dt { "Sent at" } dd { (time(letter.message.sent_at)) }
            }
            h2 { "Attributes" }
            table.attributes {
                tbody {
                    @for (name, value) in &letter.message.attributes {
                        tr { th { (name) } td { code { (masked(value)) } } }
                    }
                }
            }
            h2 { "Arguments" }
            pre #arguments { (masked(&arguments)) }
        },
    )
}

/// What a redrive did: how many moved, which matched and did not move, what is left.
pub(crate) fn redriven(page: &Page<'_>, request: &dlq::Redrive, moved: &Moved) -> Markup {
    let job = &request.job;
    let filter = request.error.as_deref().map(|e| format!(" with error {e}")).unwrap_or_default();
    layout(
        page,
        "Redriven",
        html! {
            h1 { "Redrive" }
            p.result {
                "Redrove " strong #moved-count { (moved.moved.len()) } " message(s)" (filter)
                " from " a href=(format!("/jobs/{job}")) { (job) } "'s DLQ to its queue; "
                strong #left-count { (moved.left_in_dlq) } " left in the DLQ."
            }
            @if let Some(error) = &moved.stopped {
                p.warning #stopped { "Stopped early: " (error) ". What moved before stays moved." }
            }
            @if !moved.moved.is_empty() {
                h2 { "Moved" }
                ul #moved { @for id in &moved.moved { li { (id) } } }
            }
            @if !moved.not_moved.is_empty() {
                h2 { "Matched, not moved" }
                ul #not-moved { @for id in &moved.not_moved { li { (id) } } }
            }
            p { a href="/dlq" { "Back to the dead letters" } }
        },
    )
}

/// What a purge did.
pub(crate) fn purged(page: &Page<'_>, job: &str, purged: Purged) -> Markup {
    layout(
        page,
        "Purged",
        html! {
            h1 { "Purge" }
            p.result {
                "Purged " strong #purged-count { (purged.purged) } " message(s) from "
                a href=(format!("/jobs/{job}")) { (job) } "'s DLQ; "
                strong #left-count { (purged.left) } " left (sent while it ran)."
            }
            p { a href="/dlq" { "Back to the dead letters" } }
        },
    )
}

/// A page for a refused or failed request: the status and what to do, nothing more.
pub(crate) fn error_page(status: StatusCode, title: &str, message: &str) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { (title) " · jobctl console" }
                link rel="stylesheet" href="/assets/console.css";
            }
            body {
                header { a.brand href="/" { "jobctl console" } }
                main.error {
                    h1 { (status.as_u16()) " " (title) }
                    p #error-detail { (message) }
                    p { a href="/" { "Overview" } }
                }
            }
        }
    }
}
