//! The retry plan as a picture: one row per error kind, a mark where each attempt may start
//! (a bar over the jitter's range), the DLQ after the last; inline SVG, no script.
//!
//! Time runs on a logarithmic axis: polynomial waits go from seconds to hours, and on a linear
//! axis every attempt but the last few would sit on the origin.

use std::time::Duration;

use maud::{Markup, html};

use crate::{commands::info::Plan, duration};

const WIDTH: f64 = 900.0;
/// Room for a row's label on the left.
const LABEL: f64 = 190.0;
/// Room after the last tick for the DLQ mark.
const RIGHT: f64 = 50.0;
const ROW: f64 = 30.0;
const TOP: f64 = 26.0;

/// Ticks that may label the axis, in seconds.
const TICKS: [(u64, &str); 9] = [
    (0, "0"),
    (10, "10s"),
    (60, "1m"),
    (600, "10m"),
    (3600, "1h"),
    (6 * 3600, "6h"),
    (86_400, "1d"),
    (7 * 86_400, "7d"),
    (30 * 86_400, "30d"),
];

/// An x position for `t` on an axis that ends at `max`.
fn x(t: Duration, max: Duration) -> f64 {
    let scale = (1.0 + max.as_secs_f64()).ln().max(f64::MIN_POSITIVE);
    LABEL + (1.0 + t.as_secs_f64()).ln() / scale * (WIDTH - LABEL - RIGHT)
}

/// The retry timeline of `plans` as an `<svg>`.
pub(crate) fn retry_timeline(plans: &[Plan]) -> Markup {
    let latest = plans.iter().flat_map(|p| p.timeline.steps.iter().map(|s| s.starts_after.1)).max();
    // At least a minute of axis, so a plan of a few seconds is not stretched edge to edge.
    let max = latest.unwrap_or_default().max(Duration::from_secs(60));
    let height = TOP + ROW * plans.len() as f64 + 10.0;
    let ticks: Vec<(f64, &str)> = TICKS
        .iter()
        .filter(|(s, _)| Duration::from_secs(*s) <= max)
        .map(|(s, l)| (x(Duration::from_secs(*s), max), *l))
        .collect();
    html! {
        svg.timeline xmlns="http://www.w3.org/2000/svg" role="img" viewBox=(format!("0 0 {WIDTH} {height}"))
            aria-label="when each attempt may start, per error kind" {
            @for (tx, label) in &ticks {
                line.tick x1=(tx) x2=(tx) y1=(TOP - 6.0) y2=(height - 8.0) {}
                text.tick-label x=(tx) y=(TOP - 10.0) text-anchor="middle" { (label) }
            }
            @for (i, plan) in plans.iter().enumerate() {
                @let y = TOP + ROW * i as f64 + ROW / 2.0;
                text.kind x="4" y=(y + 4.0) { (plan.label()) }
                line.track x1=(LABEL) x2=(WIDTH - RIGHT) y1=(y) y2=(y) {}
                @if plan.timeline.discarded {
                    circle.dlq cx=(LABEL) cy=(y) r="6" { title { "discarded: straight to the DLQ" } }
                    text.note x=(LABEL + 12.0) y=(y + 4.0) { "no retry: to the DLQ at once" }
                } @else {
                    @for step in &plan.timeline.steps {
                        @let (lo, hi) = step.starts_after;
                        @let tip = format!("attempt {} starts after {}", step.attempt, info_range(lo, hi));
                        @if hi > lo {
                            rect.jitter x=(x(lo, max)) y=(y - 4.0) width=(x(hi, max) - x(lo, max)) height="8" rx="3" {
                                title { (tip) }
                            }
                        }
                        circle.attempt cx=(x(lo, max)) cy=(y) r="5" { title { (tip) } }
                    }
                    @if let Some(last) = plan.timeline.steps.last() {
                        @let end = x(last.starts_after.1, max);
                        text.dlq-label x=(end + 10.0) y=(y + 4.0) {
                            "→ DLQ" title { (format!("after {} attempts", plan.timeline.steps.len())) }
                        }
                    }
                }
            }
        }
    }
}

fn info_range(lo: Duration, hi: Duration) -> String {
    if lo == hi {
        duration::format(lo)
    } else {
        format!("{}–{}", duration::format(lo), duration::format(hi))
    }
}

#[cfg(test)]
mod tests {
    use jobkit::{ErrorKind, RetryPolicy, Wait};

    use super::*;

    #[test]
    fn each_attempt_is_a_mark_and_a_discarded_kind_says_so() {
        let policy = RetryPolicy::new()
            .retry_on([ErrorKind::new("throttled")], Wait::Fixed(Duration::from_secs(30)), 3)
            .discard_on([ErrorKind::new("not_found")]);
        let plans: Vec<Plan> = [ErrorKind::new("throttled"), ErrorKind::new("not_found")]
            .into_iter()
            .map(|kind| Plan { timeline: policy.timeline(&kind), kind: Some(kind) })
            .collect();
        let svg = retry_timeline(&plans).into_string();
        assert_eq!(svg.matches("class=\"attempt\"").count(), 3, "{svg}");
        assert!(svg.contains("attempt 3 starts after 1m"), "{svg}");
        assert!(svg.contains("no retry: to the DLQ at once"), "{svg}");
        assert!(svg.contains(">1m<"), "an axis tick at a minute: {svg}");
    }

    #[test]
    fn later_attempts_sit_further_right() {
        let max = Duration::from_secs(3600);
        assert!(x(Duration::ZERO, max) < x(Duration::from_secs(10), max));
        assert!(x(Duration::from_secs(10), max) < x(Duration::from_secs(600), max));
        assert!((x(max, max) - (WIDTH - RIGHT)).abs() < 1e-9);
    }
}
