//! What an EventBridge Scheduler schedule puts on its target: the target's `Input` with
//! Scheduler's context attributes replaced, as Scheduler replaces them when the schedule fires.
//! moto stores schedules but never fires one, so the tests build each tick from the deployed
//! schedule themselves.
//!
//! Scheduler replaces each keyword as text, wherever it stands in the input:
//! `<aws.scheduler.schedule-arn>`, `<aws.scheduler.scheduled-time>` (`2026-11-29T03:00:00Z`),
//! `<aws.scheduler.execution-id>` and `<aws.scheduler.attempt-number>`.

use anyhow::{Context, bail};

/// One firing of a schedule: what Scheduler knows when it invokes the target.
#[derive(Debug, Clone)]
pub struct Firing<'a> {
    /// The schedule's ARN.
    pub schedule_arn: &'a str,
    /// The time the firing was scheduled for, RFC 3339 in UTC.
    pub scheduled_time: &'a str,
    /// The invocation's id (Scheduler's is 16 hex digits).
    pub execution_id: &'a str,
    /// The attempt, from 1.
    pub attempt: u32,
}

/// `input` as the target receives it for `firing`.
///
/// # Errors
/// A `<aws.scheduler.*>` keyword Scheduler does not have (it would reach the target as written),
/// or an input that looks like JSON and is not once rendered.
pub fn render(input: &str, firing: &Firing) -> anyhow::Result<String> {
    let attempt = firing.attempt.to_string();
    let values = [
        ("<aws.scheduler.schedule-arn>", firing.schedule_arn),
        ("<aws.scheduler.scheduled-time>", firing.scheduled_time),
        ("<aws.scheduler.execution-id>", firing.execution_id),
        ("<aws.scheduler.attempt-number>", attempt.as_str()),
    ];
    let mut out = input.to_owned();
    for (keyword, value) in values {
        out = out.replace(keyword, value);
    }
    if let Some(at) = out.find("<aws.scheduler.") {
        let keyword: String = out[at..].chars().take_while(|c| *c != '>').collect();
        bail!("{keyword}> is no context attribute of EventBridge Scheduler");
    }
    if out.trim_start().starts_with('{') {
        serde_json::from_str::<serde_json::Value>(&out)
            .with_context(|| format!("the input renders to invalid JSON: {out}"))?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    const ARN: &str = "arn:aws:scheduler:us-east-1:123456789012:schedule/default/jobs-clean-database-daily";

    fn firing() -> Firing<'static> {
        Firing {
            schedule_arn: ARN,
            scheduled_time: "2026-11-29T02:00:00Z",
            execution_id: "d32c5kddcf5bb8c3",
            attempt: 2,
        }
    }

    #[test]
    fn a_tick_input_carries_the_schedules_name_and_the_scheduled_time() {
        let input = r#"{"$schedule": {"rule": "jobs-clean-database-daily", "time": "<aws.scheduler.scheduled-time>"}}"#;
        let body: Value = serde_json::from_str(&render(input, &firing()).unwrap()).unwrap();
        assert_eq!(
            body,
            json!({"$schedule": {"rule": "jobs-clean-database-daily", "time": "2026-11-29T02:00:00Z"}})
        );
    }

    #[test]
    fn every_context_attribute_is_replaced_and_an_unknown_one_refused() {
        let input =
            "<aws.scheduler.schedule-arn> <aws.scheduler.execution-id> #<aws.scheduler.attempt-number>";
        assert_eq!(render(input, &firing()).unwrap(), format!("{ARN} d32c5kddcf5bb8c3 #2"));
        let unknown = render("<aws.scheduler.rule-name>", &firing()).unwrap_err();
        assert!(unknown.to_string().contains("<aws.scheduler.rule-name>"), "{unknown}");
        let broken = render(r#"{"t": <aws.scheduler.scheduled-time>}"#, &firing()).unwrap_err();
        assert!(broken.to_string().contains("invalid JSON"), "{broken}");
    }
}
