//! A job's schedule: an EventBridge Scheduler schedule (`AWS::Scheduler::Schedule`) that puts
//! the tick on the job's queue, and the role Scheduler assumes to send it.
//!
//! Invariants: every schedule is a Scheduler schedule, in its declared zone (UTC included), so
//! there is one way a tick is made (`docs/decisions.md` says why not EventBridge rules); the
//! tick's body is the one the rules sent (`{..args, "$schedule": {"rule": <the schedule's
//! name>, "time": <the scheduled time>}}`), so jobkit reads it unchanged; the role may send to
//! that one queue and nothing else.

use super::{TemplateError, comment, job::Names, quoted, sentence};
use crate::{STACK_ZONE_PARAMETER, Schedule, ScheduleExt, Zone};

/// The schedule of `job` and its role.
pub(super) fn resources(job: &Names, schedule: &Schedule) -> Result<Vec<String>, TemplateError> {
    Ok(vec![scheduler_schedule(job, schedule)?, role(job)])
}

fn scheduler_schedule(job: &Names, schedule: &Schedule) -> Result<String, TemplateError> {
    let cron = schedule.cron().map_err(|source| TemplateError::Schedule {
        job: job.spec.name,
        rule: schedule.rule,
        source,
    })?;
    let input = tick_input(job.spec.name, schedule)?;
    let zone = match schedule.zone {
        Zone::Named(name) => quoted(name),
        Zone::Stack => format!("!Ref {STACK_ZONE_PARAMETER}"),
    };
    let when = format!("{}, in {}", schedule.every, schedule.zone.describe());
    Ok(format!(
        r#"  # {when}: {what}.
  # EventBridge Scheduler reads the expression in that zone (local times across daylight saving
  # changes) and puts the tick on the queue, so it gets the same retries and DLQ as any message;
  # $schedule (name, scheduled time) makes a tick delivered twice run once.
  {id}:
    Type: AWS::Scheduler::Schedule
    Properties:
      Name: !Sub "${{AWS::StackName}}-{rule}"
      Description: {description}
      ScheduleExpression: {cron}
      ScheduleExpressionTimezone: {zone}
      FlexibleTimeWindow:
        Mode: "OFF"
      State: ENABLED
      Target:
        Arn: !GetAtt {queue_id}.Arn
        RoleArn: !GetAtt {role}.Arn
        Input: !Sub '{input}'
"#,
        when = comment(&sentence(&when)),
        what = comment(schedule.what),
        id = job.logical("Schedule"),
        rule = schedule.rule,
        description = quoted(&format!("{}: {when}: {}", job.spec.name, schedule.what)),
        cron = quoted(cron.expression()),
        queue_id = job.logical("Queue"),
        role = job.logical("ScheduleRole"),
        // YAML's single-quoted scalar: a quote is written twice.
        input = input.replace('\'', "''"),
    ))
}

/// The role EventBridge Scheduler assumes for this one schedule: it may send to the job's
/// queue and nothing else, and only Scheduler acting for this account's schedules may assume it.
fn role(job: &Names) -> String {
    format!(
        r#"  {id}:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Version: "2012-10-17"
        Statement:
          - Effect: Allow
            Principal: {{Service: scheduler.amazonaws.com}}
            Action: sts:AssumeRole
            # Only for Scheduler acting for this account's default schedule group (confused
            # deputy): Scheduler's SourceArn is the group's, never a schedule's.
            Condition:
              StringEquals:
                aws:SourceAccount: !Ref AWS::AccountId
              ArnEquals:
                aws:SourceArn: !Sub "arn:${{AWS::Partition}}:scheduler:${{AWS::Region}}:${{AWS::AccountId}}:schedule-group/default"
      Policies:
        - PolicyName: {queue}-schedule
          PolicyDocument:
            Version: "2012-10-17"
            Statement:
              - Sid: Tick
                Effect: Allow
                Action: [sqs:SendMessage]
                Resource: !GetAtt {queue_id}.Arn
"#,
        id = job.logical("ScheduleRole"),
        queue = job.queue,
        queue_id = job.logical("Queue"),
    )
}

/// The tick's body as a `!Sub` string: the schedule's arguments and `$schedule`, whose `rule`
/// is the schedule's name (what `<aws.events.rule-name>` gave when ticks came from rules) and
/// whose `time` Scheduler fills with the scheduled time (`2026-11-29T03:00:00Z`). Written from
/// the declared text rather than re-serialised, so the arguments read in the template as they
/// do in the registry.
fn tick_input(job: &'static str, schedule: &Schedule) -> Result<String, TemplateError> {
    let refused = || TemplateError::ScheduleArgs { job, rule: schedule.rule, args: schedule.args };
    let parsed: serde_json::Value = serde_json::from_str(schedule.args).map_err(|_| refused())?;
    let Some(args) = parsed.as_object() else { return Err(refused()) };
    // `${` would be read by `!Sub` as a reference.
    if args.contains_key("$schedule") || schedule.args.contains("${") {
        return Err(refused());
    }
    let tick = format!(
        r#""$schedule": {{"rule": "${{AWS::StackName}}-{}", "time": "{SCHEDULED_TIME}"}}"#,
        schedule.rule
    );
    if args.is_empty() {
        return Ok(format!("{{{tick}}}"));
    }
    let trimmed = schedule.args.trim();
    // An object's text starts with `{` and ends with `}`: what is between is its members.
    let members = trimmed[1..trimmed.len() - 1].trim();
    Ok(format!("{{{members}, {tick}}}"))
}

/// EventBridge Scheduler's context attribute for the time a firing was scheduled for.
pub const SCHEDULED_TIME: &str = "<aws.scheduler.scheduled-time>";

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(args: &'static str) -> Schedule {
        Schedule { rule: "r", every: "every hour", zone: Zone::UTC, args, what: "hourly" }
    }

    #[test]
    fn a_tick_carries_the_schedules_arguments_and_schedule() {
        let tick =
            r#""$schedule": {"rule": "${AWS::StackName}-r", "time": "<aws.scheduler.scheduled-time>"}"#;
        assert_eq!(tick_input("j", &schedule("{}")).expect("empty"), format!("{{{tick}}}"));
        assert_eq!(
            tick_input("j", &schedule(r#" {"all_stores": true} "#)).expect("args"),
            format!(r#"{{"all_stores": true, {tick}}}"#)
        );
    }

    #[test]
    fn schedule_arguments_that_are_not_an_object_are_refused() {
        for args in ["[]", "3", "{", r#"{"$schedule": 1}"#, r#"{"a": "${AWS::Region}"}"#] {
            assert!(
                matches!(tick_input("j", &schedule(args)), Err(TemplateError::ScheduleArgs { .. })),
                "{args}"
            );
        }
    }

    #[test]
    fn a_zone_of_its_own_is_written_and_the_stacks_is_the_parameter() {
        let specs = crate::specs().expect("registry");
        let store_sync = specs.iter().find(|s| s.name == "store_sync").expect("store_sync");
        let job = Names::of(store_sync);
        let berlin =
            Schedule { zone: Zone::Named("Europe/Berlin"), every: "every day at 3am", ..schedule("{}") };
        let text = scheduler_schedule(&job, &berlin).expect("renders");
        assert!(text.contains("ScheduleExpressionTimezone: \"Europe/Berlin\"\n"), "{text}");
        assert!(text.contains("ScheduleExpression: \"cron(0 3 * * ? *)\"\n"), "{text}");
        let stack = Schedule { zone: Zone::Stack, ..berlin };
        let text = scheduler_schedule(&job, &stack).expect("renders");
        assert!(text.contains("ScheduleExpressionTimezone: !Ref ScheduleTimeZone\n"), "{text}");
        let unread = Schedule { every: "now and then", ..berlin };
        assert!(matches!(scheduler_schedule(&job, &unread), Err(TemplateError::Schedule { .. })));
    }
}
