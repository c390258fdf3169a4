//! Commands that read the registry and need no backend: `jobs`, `schedules`, `cron`,
//! `retry-plan`.

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use chrono_tz::Tz;
use jobkit::{ErrorKind, policy::Timeline};
use serde_json::json;

use super::{CommandError, job_spec};
use crate::{
    duration,
    output::Output,
    registry::{
        self, JobSpec, STACK_ZONE_DEFAULT, STACK_ZONE_PARAMETER, Schedule, ScheduleExt, Zone, ZoneExt,
    },
    schedule,
};

fn rfc3339<Z: TimeZone>(t: &DateTime<Z>) -> String
where
    Z::Offset: std::fmt::Display,
{
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A firing as people read it: local time with the zone's abbreviation, then UTC (its date too
/// when that differs): `2026-03-29 03:00 CEST (01:00Z)`.
fn local_and_utc(t: &DateTime<Tz>) -> String {
    let utc = t.with_timezone(&Utc);
    if t.timezone() == Tz::UTC {
        return utc.format("%a %Y-%m-%d %H:%M UTC").to_string();
    }
    let utc_text = if utc.date_naive() == t.date_naive() {
        utc.format("%H:%MZ").to_string()
    } else {
        utc.format("%Y-%m-%d %H:%MZ").to_string()
    };
    format!("{} ({utc_text})", t.format("%a %Y-%m-%d %H:%M %Z"))
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
                    "schedule": s.schedule.map(|s| json!({
                        "every": s.every,
                        "zone": zone_json(s.zone),
                        "expression": s.cron().ok().map(|c| c.expression().to_owned()),
                    })),
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
                s.schedule.map_or_else(
                    || "on demand".to_owned(),
                    |s| format!("{} ({})", s.every, zone_text(s.zone)),
                ),
                s.example.to_owned(),
            ]
        })
        .collect();
    out.table(&["JOB", "LANE", "ATTEMPTS", "TIMEOUT", "SCHEDULE", "EXAMPLE ARGUMENTS"], &rows);
    Ok(())
}

/// A declared zone for JSON: its name, or `"stack"` for the stack's `ScheduleTimeZone`.
fn zone_json(zone: Zone) -> &'static str {
    match zone {
        Zone::Named(name) => name,
        Zone::Stack => "stack",
    }
}

/// A declared zone in a table: its name, or `ScheduleTimeZone` for the stack's.
fn zone_text(zone: Zone) -> &'static str {
    match zone {
        Zone::Named(name) => name,
        Zone::Stack => STACK_ZONE_PARAMETER,
    }
}

/// `jobctl schedules`: each recurring tick's name, when it fires, its expression and zone, and
/// its next `count` firings in its zone's local time and in UTC. `stack_zone` stands for the
/// stack's `ScheduleTimeZone` (what the deployment sets; its default unless told).
///
/// # Errors
/// A schedule of the registry that does not evaluate (the registry refuses to build with one).
pub fn schedules(out: Output, count: usize, now: DateTime<Utc>, stack_zone: Tz) -> Result<(), CommandError> {
    let mut entries = Vec::new();
    for (job, tick) in registry::schedules()? {
        let input =
            |e: schedule::ScheduleError| CommandError::Input(format!("{job}'s schedule {}: {e}", tick.rule));
        let cron = tick.cron().map_err(input)?;
        let zone = tick.zone.resolve(stack_zone).map_err(input)?;
        let next = cron.next_in(zone, now, count);
        entries.push((job, tick, cron, zone, next));
    }
    if out.json {
        let list: Vec<_> = entries
            .iter()
            .map(|(job, tick, cron, zone, next)| {
                json!({
                    "job": job, "rule": tick.rule, "every": tick.every, "expression": cron.expression(),
                    "timezone": zone.name(), "declared_zone": zone_json(tick.zone),
                    "arguments": serde_json::from_str::<serde_json::Value>(tick.args).unwrap_or_default(),
                    "next": next.iter().map(|t| rfc3339(&t.with_timezone(&Utc))).collect::<Vec<_>>(),
                    "next_local": next.iter().map(rfc3339).collect::<Vec<_>>(),
                })
            })
            .collect();
        out.json(&json!(list));
        return Ok(());
    }
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|(job, tick, cron, zone, next)| {
            let zone_cell = match tick.zone {
                Zone::Named(_) => zone.name().to_owned(),
                Zone::Stack => format!("{} ({STACK_ZONE_PARAMETER})", zone.name()),
            };
            vec![
                (*job).to_owned(),
                tick.rule.to_owned(),
                tick.every.to_owned(),
                cron.expression().to_owned(),
                zone_cell,
                next.iter().map(local_and_utc).collect::<Vec<_>>().join(", "),
            ]
        })
        .collect();
    out.table(&["JOB", "SCHEDULE", "EVERY", "EXPRESSION", "ZONE", "NEXT (LOCAL, UTC)"], &rows);
    Ok(())
}

/// `jobctl cron "every day at 3am Europe/Berlin"`: the EventBridge expression, its zone and its
/// next three firings in that zone and in UTC.
///
/// # Errors
/// [`CommandError::Input`] for text that is not a schedule, saying which forms are read.
pub fn cron(out: Output, text: &str, now: DateTime<Utc>) -> Result<(), CommandError> {
    let parsed = schedule::parse(text).map_err(|e| CommandError::Input(e.to_string()))?;
    let zone = parsed.zone.unwrap_or(Tz::UTC);
    let next = parsed.cron.next_in(zone, now, 3);
    if out.json {
        out.json(&json!({
            "expression": parsed.cron.expression(),
            "timezone": zone.name(),
            "next": next.iter().map(|t| rfc3339(&t.with_timezone(&Utc))).collect::<Vec<_>>(),
            "next_local": next.iter().map(rfc3339).collect::<Vec<_>>(),
        }));
    } else {
        println!("{}", parsed.cron.expression());
        let default = if parsed.zone.is_none() { " (none written)" } else { "" };
        println!("  zone: {}{default}", zone.name());
        for t in &next {
            println!("  next: {}", local_and_utc(t));
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

/// The next firing of `schedule` after `now`, in its zone (the stack's zone taken at its
/// default, as `jobctl schedules` does unless told); `None` for one that never fires again.
///
/// # Errors
/// [`CommandError::Input`] for a schedule that does not evaluate (the registry refuses to
/// build with one).
pub fn next_firing(schedule: &Schedule, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>, CommandError> {
    let input = |e: schedule::ScheduleError| CommandError::Input(format!("schedule {}: {e}", schedule.rule));
    let cron = schedule.cron().map_err(input)?;
    let stack_zone: Tz = STACK_ZONE_DEFAULT
        .parse()
        .map_err(|e| CommandError::Input(format!("{STACK_ZONE_DEFAULT} is not a time zone: {e}")))?;
    let zone = schedule.zone.resolve(stack_zone).map_err(input)?;
    Ok(cron.next_in(zone, now, 1).into_iter().next().map(|t| t.with_timezone(&Utc)))
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
