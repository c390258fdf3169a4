//! What an EventBridge schedule puts on its target: the rule's scheduled event, rendered through
//! the target's input transformer as EventBridge renders it. moto stores rules and targets but
//! never fires a schedule, so the tests build each tick from the deployed rule themselves.
//!
//! Rendering follows EventBridge's documented rules for a JSON input template: `<name>` is a
//! variable of `InputPathsMap` (a JSON path into the event) or a predefined one
//! (`aws.events.rule-name`, `aws.events.rule-arn`, `aws.events.event.ingestion-time`,
//! `aws.events.event`, `aws.events.event.json`). Inside a JSON string a string value goes in as
//! its text; anywhere else a value goes in as JSON.

use std::collections::HashMap;

use anyhow::{Context, bail};
use serde_json::{Value, json};

/// A rule's target input transformer, as `ListTargetsByRule` returns it.
#[derive(Debug, Clone)]
pub struct InputTransformer {
    /// Variable name -> JSON path into the event (`$.time`).
    pub input_paths: HashMap<String, String>,
    /// The template with `<variable>` placeholders.
    pub input_template: String,
}

/// The event a schedule rule emits at `time` (RFC 3339, the scheduled time), as EventBridge
/// writes it. Account and region come from the rule's ARN.
///
/// # Errors
/// If `rule_arn` is not an EventBridge rule ARN.
pub fn scheduled_event(rule_arn: &str, time: &str) -> anyhow::Result<Value> {
    let parts: Vec<&str> = rule_arn.split(':').collect();
    let [_, _, "events", region, account, rule] = parts.as_slice() else {
        bail!("not an EventBridge rule ARN: {rule_arn}");
    };
    anyhow::ensure!(rule.starts_with("rule/"), "not an EventBridge rule ARN: {rule_arn}");
    Ok(json!({
        "version": "0",
        "id": uuid::Uuid::new_v4().to_string(),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": time,
        "region": region,
        "resources": [rule_arn],
        "detail": {},
    }))
}

/// `transformer` applied to `event` from the rule `rule_name` (`rule_arn`): the body its
/// target receives.
///
/// # Errors
/// If a path is not in the event, or a JSON template renders to something that is not JSON
/// (EventBridge refuses such a target when it is put).
pub fn render(
    transformer: &InputTransformer,
    event: &Value,
    rule_name: &str,
    rule_arn: &str,
) -> anyhow::Result<String> {
    let mut without_detail = event.clone();
    if let Some(object) = without_detail.as_object_mut() {
        object.remove("detail");
    }
    let mut values: HashMap<&str, Value> = HashMap::from([
        ("aws.events.rule-name", Value::from(rule_name)),
        ("aws.events.rule-arn", Value::from(rule_arn)),
        ("aws.events.event.ingestion-time", event["time"].clone()),
        ("aws.events.event", without_detail),
        ("aws.events.event.json", event.clone()),
    ]);
    for (name, path) in &transformer.input_paths {
        let value = lookup(event, path).with_context(|| format!("<{name}>: {path} is not in the event"))?;
        values.insert(name.as_str(), value.clone());
    }

    let template = &transformer.input_template;
    let mut out = String::with_capacity(template.len());
    let mut in_string = false;
    let mut rest = template.as_str();
    while let Some(c) = rest.chars().next() {
        if c == '<'
            && let Some(end) = rest.find('>')
            && let Some(value) = values.get(&rest[1..end])
        {
            match (in_string, value) {
                (true, Value::String(text)) => {
                    let quoted = serde_json::to_string(text)?;
                    out.push_str(&quoted[1..quoted.len() - 1]);
                }
                _ => out.push_str(&value.to_string()),
            }
            rest = &rest[end + 1..];
            continue;
        }
        let mut len = c.len_utf8();
        if in_string && c == '\\' {
            // An escape: the character after it is taken as it is (an escaped quote ends nothing).
            len += rest[len..].chars().next().map_or(0, char::len_utf8);
        } else if c == '"' {
            in_string = !in_string;
        }
        out.push_str(&rest[..len]);
        rest = &rest[len..];
    }
    if template.trim_start().starts_with('{') {
        serde_json::from_str::<Value>(&out)
            .with_context(|| format!("the template renders to invalid JSON: {out}"))?;
    }
    Ok(out)
}

/// The value at a JSON path of the dot form EventBridge takes (`$.detail.state`, `$.resources[0]`).
fn lookup<'a>(event: &'a Value, path: &str) -> Option<&'a Value> {
    let mut at = event;
    let rest = path.strip_prefix('$')?;
    for segment in rest.split('.').skip(1) {
        let (key, index) = match segment.split_once('[') {
            Some((key, index)) => (key, Some(index.strip_suffix(']')?.parse::<usize>().ok()?)),
            None => (segment, None),
        };
        at = at.get(key)?;
        if let Some(index) = index {
            at = at.get(index)?;
        }
    }
    Some(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULE_ARN: &str = "arn:aws:events:us-east-1:123456789012:rule/jobs-clean-database-daily";

    fn transformer(paths: &[(&str, &str)], template: &str) -> InputTransformer {
        InputTransformer {
            input_paths: paths.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            input_template: template.to_owned(),
        }
    }

    fn rendered(paths: &[(&str, &str)], template: &str) -> anyhow::Result<String> {
        let event = scheduled_event(RULE_ARN, "2026-11-29T03:00:00Z")?;
        render(&transformer(paths, template), &event, "jobs-clean-database-daily", RULE_ARN)
    }

    #[test]
    fn a_tick_template_carries_the_rule_and_the_scheduled_time() {
        let body = rendered(
            &[("time", "$.time")],
            r#"{"$schedule": {"rule": "<aws.events.rule-name>", "time": "<time>"}}"#,
        )
        .unwrap();
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            body,
            json!({"$schedule": {"rule": "jobs-clean-database-daily", "time": "2026-11-29T03:00:00Z"}})
        );
    }

    #[test]
    fn outside_a_string_a_value_goes_in_as_json_and_inside_as_its_text() {
        let body = rendered(
            &[("res", "$.resources"), ("src", "$.source")],
            r#"{"r": <res>, "s": <src>, "t": "from <src>"}"#,
        )
        .unwrap();
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body, json!({"r": [RULE_ARN], "s": "aws.events", "t": "from aws.events"}));
        let whole = rendered(&[], r#"{"e": <aws.events.event>}"#).unwrap();
        let whole: Value = serde_json::from_str(&whole).unwrap();
        assert_eq!(whole["e"]["detail-type"], "Scheduled Event");
        assert!(whole["e"].get("detail").is_none(), "aws.events.event has no detail");
    }

    #[test]
    fn a_path_the_event_lacks_and_a_template_that_renders_to_bad_json_are_refused() {
        let missing = rendered(&[("x", "$.detail.nothing")], r#"{"x": "<x>"}"#).unwrap_err();
        assert!(missing.to_string().contains("$.detail.nothing"), "{missing}");
        let broken = rendered(&[("t", "$.time")], r#"{"t": <t>"#).unwrap_err();
        assert!(broken.to_string().contains("invalid JSON"), "{broken}");
        assert_eq!(lookup(&json!({"a": [1, {"b": 2}]}), "$.a[1].b"), Some(&json!(2)));
    }
}
