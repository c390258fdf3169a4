//! Commands that read the registry and need no backend: `jobs`, `schedules`, `cron`,
//! `retry-plan`.

use chrono::{DateTime, SecondsFormat, Utc};
use jobkit::{ErrorKind, policy::Timeline};
use serde_json::json;

use super::{CommandError, job_spec};
use crate::{
    duration,
    output::Output,
    registry::{self, JobSpec, Schedule},
    schedule::{self, CronSchedule},
};

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `jobctl jobs`: every job with its lane, queue, attempts, timeout and schedule.
///
/// # Errors
/// The registry failing to build.
pub fn jobs(out: Output) -> Result<(), CommandError> {
    let specs = registry::specs()?;
    if out.json {
        let jobs: Vec<_> = specs
            .iter()
            .map(|s| {
                json!({
                    "job": s.name,
                    "lane": s.lane.as_str(),
                    "queue": registry::queue_name(s.name),
                    "dlq": registry::dlq_name(s.name),
                    "attempts": s.policy.max_attempts(),
                    "timeout_seconds": s.timeout.as_secs(),
                    "schedule": s.schedule.map(|s| s.cron),
                    "example": s.example,
                })
            })
            .collect();
        out.json(&json!(jobs));
        return Ok(());
    }
    let rows: Vec<Vec<String>> = specs
        .iter()
        .map(|s| {
            vec![
                s.name.to_owned(),
                s.lane.as_str().to_owned(),
                s.policy.max_attempts().to_string(),
                duration::format(s.timeout),
                s.schedule.map_or_else(|| "on demand".to_owned(), |s| s.cron.to_owned()),
                s.example.to_owned(),
            ]
        })
        .collect();
    out.table(&["JOB", "LANE", "ATTEMPTS", "TIMEOUT", "SCHEDULE", "EXAMPLE ARGUMENTS"], &rows);
    Ok(())
}

/// `jobctl schedules`: each recurring tick's rule, expression and next `count` firings (UTC).
///
/// # Errors
/// An expression of the registry that does not evaluate (its tests keep that from happening).
pub fn schedules(out: Output, count: usize, now: DateTime<Utc>) -> Result<(), CommandError> {
    let mut entries = Vec::new();
    for (job, tick) in registry::schedules()? {
        let cron = CronSchedule::parse(tick.cron).map_err(|e| CommandError::Input(e.to_string()))?;
        entries.push((job, tick, cron.next_after(now, count)));
    }
    if out.json {
        let list: Vec<_> = entries
            .iter()
            .map(|(job, tick, next)| {
                json!({
                    "job": job, "rule": tick.rule, "expression": tick.cron, "timezone": "UTC",
                    "arguments": serde_json::from_str::<serde_json::Value>(tick.args).unwrap_or_default(),
                    "next": next.iter().map(|t| rfc3339(*t)).collect::<Vec<_>>(),
                })
            })
            .collect();
        out.json(&json!(list));
        return Ok(());
    }
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|(job, tick, next)| {
            let next: Vec<String> = next.iter().map(|t| t.format("%Y-%m-%d %H:%M").to_string()).collect();
            vec![
                (*job).to_owned(),
                tick.rule.to_owned(),
                tick.cron.to_owned(),
                "UTC".to_owned(),
                next.join(", "),
            ]
        })
        .collect();
    out.table(&["JOB", "RULE", "EXPRESSION", "TIMEZONE", "NEXT (UTC)"], &rows);
    Ok(())
}

/// `jobctl cron "every day at 3am"`: the EventBridge expression and its next three firings.
///
/// # Errors
/// [`CommandError::Input`] for text that is not a schedule, with examples.
pub fn cron(out: Output, text: &str, now: DateTime<Utc>) -> Result<(), CommandError> {
    let expression = if text.trim_start().starts_with("cron(") {
        text.trim().to_owned()
    } else {
        schedule::from_english(text).map_err(|e| CommandError::Input(e.to_string()))?
    };
    let parsed = CronSchedule::parse(&expression).map_err(|e| CommandError::Input(e.to_string()))?;
    let next = parsed.next_after(now, 3);
    if out.json {
        out.json(&json!({
            "expression": expression,
            "timezone": "UTC",
            "next": next.iter().map(|t| rfc3339(*t)).collect::<Vec<_>>(),
        }));
    } else {
        println!("{expression}");
        for t in next {
            println!("  next: {} UTC", t.format("%a %Y-%m-%d %H:%M"));
        }
    }
    Ok(())
}

/// One error kind's timeline in a job's retry plan.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The kind; `None` for "any other error" (the policy's default).
    pub kind: Option<ErrorKind>,
    /// When each attempt may start, or that the kind is discarded.
    pub timeline: Timeline,
}

impl Plan {
    /// How the plan is labelled for people: `on throttled`, or `any other error`.
    pub fn label(&self) -> String {
        self.kind.as_ref().map_or_else(|| "any other error".to_owned(), |kind| format!("on {kind}"))
    }
}

/// The retry plan of `spec`'s policy: one timeline per error kind it names, then the default's.
/// `jobctl retry-plan` prints it; `jobctl console` draws it.
pub fn plans(spec: &JobSpec) -> Vec<Plan> {
    let named = spec.policy.named_kinds();
    let other = ErrorKind::new("any other error");
    named
        .into_iter()
        .map(|kind| Plan { timeline: spec.policy.timeline(&kind), kind: Some(kind) })
        .chain([Plan { timeline: spec.policy.timeline(&other), kind: None }])
        .collect()
}

/// The next firing of `schedule` after `now` (`None` for an expression that never fires again).
///
/// # Errors
/// [`CommandError::Input`] for an expression that does not parse (the registry's tests keep
/// that from happening).
pub fn next_firing(schedule: &Schedule, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>, CommandError> {
    let cron = CronSchedule::parse(schedule.cron).map_err(|e| CommandError::Input(e.to_string()))?;
    Ok(cron.next_after(now, 1).into_iter().next())
}

/// `jobctl retry-plan <job>`: for each error kind the policy names (and any other error),
/// when each attempt can start and when the job lands in the DLQ.
///
/// # Errors
/// [`CommandError::Input`] for an unknown job.
pub fn retry_plan(out: Output, job: &str) -> Result<(), CommandError> {
    let spec = job_spec(job)?;
    let plans = plans(&spec);
    if out.json {
        let plans: Vec<_> = plans.iter().map(plan_json).collect();
        out.json(&json!({"job": spec.name, "timeout_seconds": spec.timeout.as_secs(), "plans": plans}));
        return Ok(());
    }
    println!("{}: runs at most {} per attempt", spec.name, duration::format(spec.timeout));
    for plan in &plans {
        let (label, timeline) = (plan.label(), &plan.timeline);
        if timeline.discarded {
            println!("\n{label}: no retry, straight to the DLQ (discarded)");
            continue;
        }
        println!("\n{label}: {} attempt(s), then the DLQ", timeline.steps.len());
        let rows: Vec<Vec<String>> = timeline
            .steps
            .iter()
            .map(|step| {
                let (earliest, latest) = step.starts_after;
                let wait = step
                    .wait_after_failure
                    .map_or_else(|| "-> DLQ".to_owned(), |(lo, hi)| format!("waits {}", range(lo, hi)));
                vec![format!("#{}", step.attempt), format!("starts after {}", range(earliest, latest)), wait]
            })
            .collect();
        print!("{}", indent(&crate::output::table(&["ATTEMPT", "WHEN", "IF IT FAILS"], &rows)));
    }
    Ok(())
}

fn plan_json(plan: &Plan) -> serde_json::Value {
    let timeline = &plan.timeline;
    let secs = |(lo, hi): (std::time::Duration, std::time::Duration)| json!([lo.as_secs(), hi.as_secs()]);
    json!({
        "error_kind": plan.kind.as_ref().map(ErrorKind::as_str),
        "discarded": timeline.discarded,
        "attempts": timeline.steps.iter().map(|s| json!({
            "attempt": s.attempt,
            "starts_after_seconds": secs(s.starts_after),
            "wait_after_failure_seconds": s.wait_after_failure.map(secs),
        })).collect::<Vec<_>>(),
    })
}

/// `lo-hi` for people (`3s-18s`), or one duration when they are equal.
pub fn range(lo: std::time::Duration, hi: std::time::Duration) -> String {
    let (lo, hi) = (duration::format(lo), duration::format(hi));
    if lo == hi { lo } else { format!("{lo}-{hi}") }
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}\n")).collect()
}
