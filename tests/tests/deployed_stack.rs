//! The stack the other system tests run on: `template.yaml` translated by the SAM translator and
//! created on moto's CloudFormation with an operator's parameters. Every resource the
//! translation declares is created (but the kinds moto's CloudFormation skips), moto's own event
//! source mappings are off, each function's queue, DLQ and outputs agree, and the schedules are
//! EventBridge Scheduler's, each in its time zone, ticking their jobs.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use aws_sdk_scheduler::types::FlexibleTimeWindowMode;
use aws_sdk_sqs::types::MessageSystemAttributeName;
use chrono::{DateTime, TimeZone, Utc};
use job_registry::schedule::{self, CronSchedule};
use serde_json::json;
use shop::{History, HistoryEntry, RecordKind, aws::DynamoHistory};
use system_tests::stack::{NOT_CREATED_BY_MOTO, Stack};

fn count<'a>(kinds: impl Iterator<Item = &'a str>) -> BTreeMap<&'a str, usize> {
    kinds.fold(BTreeMap::new(), |mut counts, kind| {
        *counts.entry(kind).or_default() += 1;
        counts
    })
}

#[tokio::test]
async fn the_translated_template_is_created_whole() {
    let stack = Stack::deploy().await.expect("deployed");
    eprintln!("stack {}: packaged in {:?}, created in {:?}", stack.name, stack.packaged_in, stack.created_in);
    let declared = stack.template["Resources"].as_object().expect("resources");
    let declared_kinds = count(declared.values().map(|r| r["Type"].as_str().expect("a type")));
    assert_eq!(
        declared_kinds,
        BTreeMap::from([
            ("AWS::CloudWatch::Alarm", 25),
            ("AWS::CloudWatch::Dashboard", 6),
            ("AWS::DynamoDB::Table", 7),
            ("AWS::IAM::Role", 9),
            ("AWS::KMS::Key", 1),
            ("AWS::Lambda::EventSourceMapping", 7),
            ("AWS::Lambda::Function", 6),
            ("AWS::Logs::LogGroup", 6),
            ("AWS::SES::EmailIdentity", 1),
            ("AWS::SNS::Topic", 1),
            ("AWS::SQS::Queue", 13),
            ("AWS::Scheduler::Schedule", 3),
        ]),
        "what the SAM translator makes of template.yaml"
    );
    assert_eq!(declared.len(), 85);

    assert_eq!(stack.resources.len(), declared.len(), "one resource per declaration");
    let created = count(stack.resources.iter().map(|r| r.kind.as_str()));
    for (kind, n) in &declared_kinds {
        if NOT_CREATED_BY_MOTO.contains(kind) {
            assert_eq!(created.get(kind), None, "moto creates {kind} now: take it off NOT_CREATED_BY_MOTO");
        } else {
            assert_eq!(created.get(kind), Some(n), "{kind}");
        }
    }
    let skipped: usize = NOT_CREATED_BY_MOTO.iter().filter_map(|kind| declared_kinds.get(kind)).sum();
    assert_eq!(created.get(""), Some(&skipped), "moto lists what it skipped without a type");
    for resource in stack.resources.iter().filter(|r| !r.kind.is_empty()) {
        assert_eq!(declared[&resource.logical_id]["Type"], resource.kind.as_str(), "{resource:?}");
        assert!(!resource.physical_id.is_empty(), "{resource:?}");
    }
}

#[tokio::test]
async fn each_function_reads_its_own_queue_and_moto_takes_nothing_from_it() {
    let stack = Stack::deploy().await.expect("deployed");
    let lambda = stack.lambda();
    let sqs = stack.sqs();
    let mut queues = BTreeSet::new();
    let binaries: Vec<&str> = stack.template["Resources"]
        .as_object()
        .expect("resources")
        .values()
        .filter_map(|r| r["Metadata"]["BuildProperties"]["Binary"].as_str())
        .collect();
    assert_eq!(binaries.len(), 6, "{binaries:?}");
    for binary in binaries {
        // Checks the mapping, JOBKIT_QUEUE_URL and JOBKIT_DLQ_URL agree.
        let deployment = stack.deployment(binary).await.expect("a consistent deployment");
        assert!(deployment.report_batch_item_failures, "{binary}: failed records would be deleted");
        let mappings = lambda
            .list_event_source_mappings()
            .function_name(&deployment.function_name)
            .send()
            .await
            .unwrap();
        let states: Vec<Option<&str>> = mappings.event_source_mappings().iter().map(|m| m.state()).collect();
        assert_eq!(
            states,
            vec![Some("Disabled"); 1 + deployment.lanes.len()],
            "{binary}: moto's own mappings are off"
        );

        // moto's mapping, when on, receives every message as it is sent.
        sqs.send_message().queue_url(&deployment.queue_url).message_body("{}").send().await.unwrap();
        let received = sqs
            .receive_message()
            .queue_url(&deployment.queue_url)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        let counts: Vec<Option<&String>> = received
            .messages()
            .iter()
            .map(|m| m.attributes().and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount)))
            .collect();
        assert_eq!(counts, [Some(&"1".to_owned())], "{binary}: the first receive is ours");
        queues.extend(
            [deployment.queue_url, deployment.dlq_url]
                .into_iter()
                .chain(deployment.lanes.into_iter().map(|lane| lane.queue_url))
                .map(|url| url.rsplit('/').next().map(str::to_owned)),
        );
    }
    // The outputs operators read (README, "Deploy") name these very queues.
    let named: BTreeSet<Option<String>> = stack
        .outputs
        .iter()
        .filter(|(key, _)| key.ends_with("QueueUrl") || key.ends_with("DlqUrl"))
        .map(|(_, url)| url.rsplit('/').next().map(str::to_owned))
        .collect();
    assert_eq!(named, queues);
}

fn utc(y: i32, mo: u32, d: u32, h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, 0, 0).single().expect("a valid time")
}

/// `clean_database` fires "every day at 3am" in the zone the deployment gives the stack
/// (`ScheduleTimeZone`): the schedule EventBridge Scheduler holds for it (created by moto's
/// CloudFormation through `scripts/lib/moto_server.py`) has that zone, its expression and the
/// job's queue as target; evaluated as Scheduler does, it fires at 01:00 UTC in summer and 02:00
/// UTC in winter; and its tick, built from the schedule's input as Scheduler fills it, runs the
/// job once.
#[tokio::test]
async fn a_schedule_in_the_stacks_time_zone_is_deployed_with_it_and_its_tick_runs_the_job() {
    let stack = Stack::deploy_with(&[("ScheduleTimeZone", "Europe/Berlin")]).await.expect("deployed");
    let mut function = stack.start("clean_database", &[]).await.expect("started");
    let deployed = stack.schedule(&function).await.expect("clean_database's schedule");
    let name = format!("{}-clean-database-daily", stack.name);
    assert_eq!(deployed.name(), Some(name.as_str()));
    assert_eq!(stack.physical_id("CleanDatabaseSchedule").expect("listed by the stack"), name);
    assert_eq!(deployed.schedule_expression(), Some("cron(0 3 * * ? *)"));
    assert_eq!(deployed.schedule_expression_timezone(), Some("Europe/Berlin"));
    assert_eq!(deployed.flexible_time_window().map(|w| w.mode()), Some(&FlexibleTimeWindowMode::Off));
    let target = deployed.target().expect("a target");
    assert_eq!(target.arn(), function.queue_arn, "it ticks the job's queue");
    let role = stack.physical_id("CleanDatabaseScheduleRole").expect("its role");
    assert!(target.role_arn().ends_with(&format!(":role/{role}")), "{} is not {role}", target.role_arn());

    // The stack's other schedules are declared in UTC whatever its zone.
    let listed = stack.scheduler().list_schedules().name_prefix(&stack.name).send().await.expect("listed");
    let mut zones = BTreeMap::new();
    for summary in listed.schedules() {
        let name = summary.name().expect("a name");
        let held = stack.scheduler().get_schedule().name(name).send().await.expect("read");
        zones.insert(
            name.trim_start_matches(&format!("{}-", stack.name)).to_owned(),
            held.schedule_expression_timezone().map(str::to_owned),
        );
    }
    let zone_of = |s: &str| Some(s.to_owned());
    assert_eq!(
        zones,
        BTreeMap::from([
            ("clean-active-carts-hourly".to_owned(), zone_of("UTC")),
            ("clean-database-daily".to_owned(), zone_of("Europe/Berlin")),
            ("store-sync-fan-out".to_owned(), zone_of("UTC")),
        ])
    );

    // When it fires, read off what Scheduler holds: 03:00 in Berlin across daylight saving.
    let cron = CronSchedule::parse(deployed.schedule_expression().unwrap_or_default()).expect("cron");
    let zone = schedule::zone(deployed.schedule_expression_timezone().unwrap_or_default()).expect("a zone");
    let next = |after| cron.next_in(zone, after, 1)[0].with_timezone(&Utc);
    let summer = next(utc(2026, 6, 30, 12));
    assert_eq!(summer, utc(2026, 7, 1, 1), "03:00 CEST");
    assert_eq!(next(utc(2026, 1, 10, 12)), utc(2026, 1, 11, 2), "03:00 CET");

    // Its tick at the summer firing, as Scheduler sends it, runs the job: what is past
    // retention goes.
    let history = DynamoHistory::new(stack.dynamo(), stack.table("SHOP_HISTORY_TABLE").expect("history"));
    for (id, days) in [("t_old", 2), ("t_new", 0)] {
        let entry = HistoryEntry {
            kind: RecordKind::Temporary,
            id: id.to_owned(),
            store_id: "acme".into(),
            at: Utc::now() - chrono::Duration::days(days),
            detail: json!({}),
        };
        history.append(&entry).await.expect("appended");
    }
    let time = summer.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let tick = stack.tick(&function, &time).await.expect("the schedule's tick");
    let body: serde_json::Value = serde_json::from_str(&tick).expect("JSON");
    assert_eq!(body, json!({"$schedule": {"rule": name, "time": "2026-07-01T01:00:00Z"}}));
    let sqs = stack.sqs();
    function.send(&sqs, &tick).await.expect("sent");
    function.lambda.drain(Duration::from_secs(60)).await.expect("drained");
    let first = function.lambda.logs();
    let kept: Vec<String> =
        history.recent(RecordKind::Temporary, 10).await.expect("read").into_iter().map(|e| e.id).collect();
    assert_eq!(kept, ["t_new"], "the tick ran clean_database\n{first}");
    // Scheduler delivers at least once: the same firing again is acknowledged without running.
    function.send(&sqs, &tick).await.expect("sent");
    function.lambda.drain(Duration::from_secs(60)).await.expect("drained");
    let logs = function.lambda.logs();
    assert!(logs[first.len()..].contains(r#""status":"Duplicate""#), "{}", &logs[first.len()..]);
}
