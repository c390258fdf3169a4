//! `template.yaml` is what the job registry renders, and what it renders agrees with the code
//! and grants least privilege. The checks below read the render, so they hold for any
//! declaration the registry makes, and the first test keeps the committed file the render.

use std::collections::BTreeSet;

use jobctl::{
    registry::{self, JobSpec, ScheduleExt},
    template,
};
use serde_yaml_ng::Value;
use shop::declaration::Platform;

fn rendered() -> String {
    template::render_repository(&template::repository_root()).expect("the registry renders the template")
}

fn template() -> Value {
    serde_yaml_ng::from_str(&rendered()).expect("the rendered template parses")
}

/// The practice rust-analyzer keeps for generated code: the file is committed, so it is read
/// and reviewed as it is deployed, and this test fails with the command that renders it again.
#[test]
fn the_committed_template_is_what_the_registry_renders() {
    let path = template::repository_root().join(template::TEMPLATE);
    let committed = std::fs::read_to_string(&path).expect("template.yaml at the repository's root");
    if let Some(difference) = template::first_difference(&rendered(), &committed) {
        panic!(
            "{} is not what the registry renders ({difference}).\nRender it again and commit it: {}",
            path.display(),
            template::WRITE_COMMAND
        );
    }
}

#[test]
fn jobctl_template_prints_the_render_and_checks_the_committed_file() {
    let jobctl = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_jobctl")).args(args).output().expect("jobctl runs")
    };
    let printed = jobctl(&["template"]);
    assert!(printed.status.success(), "{}", String::from_utf8_lossy(&printed.stderr));
    assert_eq!(String::from_utf8_lossy(&printed.stdout), rendered());
    let checked = jobctl(&["template", "--check"]);
    assert_eq!(checked.status.code(), Some(0), "{}", String::from_utf8_lossy(&checked.stderr));
}

/// `store_sync` -> `StoreSync`: the prefix of a job's logical ids in the template.
fn logical_id(job: &str) -> String {
    job.split('_').map(|part| part[..1].to_uppercase() + &part[1..]).collect()
}

fn resource<'a>(template: &'a Value, id: &str) -> &'a Value {
    template["Resources"].get(id).unwrap_or_else(|| panic!("template.yaml has no resource {id}"))
}

fn resources_of_type<'a>(template: &'a Value, kind: &str) -> Vec<(String, &'a Value)> {
    let resources = template["Resources"].as_mapping().expect("Resources");
    resources
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some(kind))
        .map(|(id, r)| (id.as_str().unwrap_or_default().to_owned(), r))
        .collect()
}

/// `!GetAtt X.Arn` / `!Ref X` / `!Sub "..."` as ("GetAtt", "X.Arn").
fn intrinsic(value: &Value) -> Option<(String, String)> {
    match value {
        Value::Tagged(tagged) => {
            let tag = tagged.tag.to_string().trim_start_matches('!').to_owned();
            Some((tag, tagged.value.as_str().unwrap_or_default().to_owned()))
        }
        _ => None,
    }
}

fn number(value: &Value, what: &str) -> u64 {
    value.as_u64().unwrap_or_else(|| panic!("{what} is not a number: {value:?}"))
}

fn specs() -> Vec<JobSpec> {
    registry::specs().expect("the registry builds")
}

#[test]
fn every_job_has_a_function_queue_dlq_and_partial_batch_responses() {
    let template = template();
    for spec in specs() {
        let id = logical_id(spec.name);
        let function = resource(&template, &format!("{id}Function"));
        assert_eq!(function["Type"].as_str(), Some("AWS::Serverless::Function"), "{id}Function");
        assert_eq!(function["Metadata"]["BuildMethod"].as_str(), Some("rust-cargolambda"), "{id}");
        assert_eq!(function["Metadata"]["BuildProperties"]["Binary"].as_str(), Some(spec.name), "{id}");
        let events = function["Properties"]["Events"].as_mapping().expect("Events");
        let sqs: Vec<&Value> = events.values().filter(|e| e["Type"].as_str() == Some("SQS")).collect();
        // One SQS event per lane: the job's own queue's, then one per other lane's queue, all
        // redriving to the job's one DLQ.
        let lanes: Vec<(jobkit::Lane, String, String)> =
            std::iter::once((spec.lane, format!("{id}Queue"), registry::queue_name(spec.name)))
                .chain(spec.other_lanes.iter().map(|&lane| {
                    (
                        lane,
                        format!("{id}{}LaneQueue", logical_id(lane.as_str())),
                        jobkit::job::lane_queue_name(spec.name, lane),
                    )
                }))
                .collect();
        assert_eq!(sqs.len(), lanes.len(), "{}: one SQS event per lane", spec.name);
        for (lane, queue_id, queue_name) in &lanes {
            let event = &sqs
                .iter()
                .find(|e| {
                    intrinsic(&e["Properties"]["Queue"]) == Some(("GetAtt".into(), format!("{queue_id}.Arn")))
                })
                .unwrap_or_else(|| panic!("{}: no event reads {queue_id}", spec.name))["Properties"];
            let responses = event["FunctionResponseTypes"].as_sequence().expect("FunctionResponseTypes");
            assert!(responses.iter().any(|r| r.as_str() == Some("ReportBatchItemFailures")), "{}", spec.name);
            assert_eq!(
                number(&event["ScalingConfig"]["MaximumConcurrency"], "MaximumConcurrency"),
                u64::from(lane.max_concurrency()),
                "{}: concurrency follows the {lane} lane",
                spec.name,
            );
            let queue = &resource(&template, queue_id)["Properties"];
            assert_eq!(
                intrinsic(&queue["RedrivePolicy"]["deadLetterTargetArn"]),
                Some(("GetAtt".into(), format!("{id}DLQ.Arn"))),
                "{} ({lane}): its job's DLQ",
                spec.name
            );
            let expected = format!("${{AWS::StackName}}-{queue_name}");
            assert_eq!(intrinsic(&queue["QueueName"]), Some(("Sub".into(), expected)), "{}", spec.name);
        }

        let queue = &resource(&template, &format!("{id}Queue"))["Properties"];
        let dlq = &resource(&template, &format!("{id}DLQ"))["Properties"];
        // jobctl --aws finds the queues by these names.
        for (q, name) in [(queue, registry::queue_name(spec.name)), (dlq, registry::dlq_name(spec.name))] {
            let expected = format!("${{AWS::StackName}}-{name}");
            assert_eq!(intrinsic(&q["QueueName"]), Some(("Sub".into(), expected)), "{}", spec.name);
        }
        for (name, q) in [("queue", queue), ("DLQ", dlq)] {
            assert_eq!(
                number(&q["MaximumMessageSize"], "MaximumMessageSize"),
                1_048_576,
                "{} {name}",
                spec.name
            );
        }
        assert_eq!(number(&dlq["MessageRetentionPeriod"], "DLQ retention"), 14 * 24 * 3600, "{}", spec.name);
        assert_eq!(dlq["RedriveAllowPolicy"]["redrivePermission"].as_str(), Some("byQueue"), "{}", spec.name);

        let outputs = &template["Outputs"];
        for output in [format!("{id}QueueUrl"), format!("{id}DlqUrl")] {
            assert!(outputs.get(&output).is_some(), "output {output} (jobctl reads it)");
        }
    }
}

#[test]
fn redrive_and_timeouts_leave_the_policy_room() {
    let template = template();
    for spec in specs() {
        let id = logical_id(spec.name);
        let function = &resource(&template, &format!("{id}Function"))["Properties"];
        let queue = &resource(&template, &format!("{id}Queue"))["Properties"];
        let timeout = number(&function["Timeout"], "Timeout");
        let visibility = number(&queue["VisibilityTimeout"], "VisibilityTimeout");
        assert!(visibility >= 6 * timeout, "{}: visibility {visibility} < 6 x timeout {timeout}", spec.name);
        assert!(
            timeout > spec.timeout.as_secs(),
            "{}: a record starts only if its {} s fit before the function's {timeout} s deadline",
            spec.name,
            spec.timeout.as_secs()
        );
        let receives = number(&queue["RedrivePolicy"]["maxReceiveCount"], "maxReceiveCount");
        assert_eq!(
            receives,
            u64::from(spec.policy.max_attempts() + registry::RECEIVE_MARGIN),
            "{}: maxReceiveCount stays {} above the policy's {} attempts (jobctl dev does the same)",
            spec.name,
            registry::RECEIVE_MARGIN,
            spec.policy.max_attempts()
        );
    }
}

#[test]
fn the_templates_schedules_are_the_jobs_schedules_in_their_zones() {
    let template = template();
    assert!(
        resources_of_type(&template, "AWS::Events::Rule").is_empty(),
        "EventBridge Scheduler ticks, rules do not"
    );
    let mut seen = BTreeSet::new();
    for (id, resource) in resources_of_type(&template, "AWS::Scheduler::Schedule") {
        let props = &resource["Properties"];
        let name = intrinsic(&props["Name"]).expect("Name is a !Sub").1;
        let rule = name.strip_prefix("${AWS::StackName}-").unwrap_or(&name).to_owned();
        let schedules = registry::schedules().expect("registry");
        let (job, schedule) = schedules
            .iter()
            .find(|(_, s)| s.rule == rule)
            .unwrap_or_else(|| panic!("{id}: schedule {rule} is not a schedule of any job"));
        assert_eq!(id, format!("{}Schedule", logical_id(job)));
        let cron = schedule.cron().expect("the registry's schedules read");
        assert_eq!(props["ScheduleExpression"].as_str(), Some(cron.expression()), "{id}");
        let zone = &props["ScheduleExpressionTimezone"];
        match schedule.zone {
            registry::Zone::Named(name) => assert_eq!(zone.as_str(), Some(name), "{id}"),
            registry::Zone::Stack => assert_eq!(
                intrinsic(zone),
                Some(("Ref".into(), registry::STACK_ZONE_PARAMETER.into())),
                "{id}"
            ),
        }
        assert_eq!(props["FlexibleTimeWindow"]["Mode"].as_str(), Some("OFF"), "{id}: on time");
        assert_eq!(props["State"].as_str(), Some("ENABLED"), "{id}");
        let target = &props["Target"];
        assert_eq!(
            intrinsic(&target["Arn"]),
            Some(("GetAtt".into(), format!("{}Queue.Arn", logical_id(job)))),
            "{id} ticks the job's queue, so ticks get its retries and DLQ"
        );
        assert_eq!(
            intrinsic(&target["RoleArn"]),
            Some(("GetAtt".into(), format!("{}ScheduleRole.Arn", logical_id(job)))),
            "{id}"
        );
        // The tick: the arguments, and $schedule with the schedule's name and the scheduled time.
        let (tag, input) = intrinsic(&target["Input"]).expect("Input is a !Sub");
        assert_eq!(tag, "Sub");
        let body = input
            .replace("${AWS::StackName}", "jobs")
            .replace("<aws.scheduler.scheduled-time>", "2026-01-01T03:00:00Z");
        let mut body: serde_json::Value = serde_json::from_str(&body).expect("the tick is JSON");
        let tick = body.as_object_mut().and_then(|o| o.remove("$schedule")).expect("$schedule");
        assert_eq!(tick, serde_json::json!({"rule": format!("jobs-{rule}"), "time": "2026-01-01T03:00:00Z"}));
        let args: serde_json::Value = serde_json::from_str(schedule.args).expect("registry args");
        assert_eq!(body, args, "{id}: the tick's arguments");
        seen.insert(rule);
    }
    let expected: BTreeSet<String> =
        registry::schedules().expect("registry").iter().map(|(_, s)| s.rule.to_owned()).collect();
    assert_eq!(seen, expected, "every schedule of the registry is in the template");
}

#[test]
fn a_schedules_role_is_for_scheduler_and_sends_to_its_jobs_queue_only() {
    let template = template();
    let statements = statements(&template);
    for (job, _) in registry::schedules().expect("registry") {
        let id = format!("{}ScheduleRole", logical_id(job));
        let trust = &resource(&template, &id)["Properties"]["AssumeRolePolicyDocument"]["Statement"];
        let trust = list(trust);
        assert_eq!(trust.len(), 1, "{id}");
        assert_eq!(trust[0]["Principal"]["Service"].as_str(), Some("scheduler.amazonaws.com"), "{id}");
        let source =
            intrinsic(&trust[0]["Condition"]["ArnEquals"]["aws:SourceArn"]).expect("aws:SourceArn").1;
        // Scheduler's SourceArn is its schedule group's ARN, never a schedule's (AWS's confused
        // deputy guide): a schedule's ARN here would keep Scheduler from assuming the role.
        assert!(source.ends_with(":schedule-group/default"), "{id}: {source}");
        let account = &trust[0]["Condition"]["StringEquals"]["aws:SourceAccount"];
        assert_eq!(intrinsic(account), Some(("Ref".into(), "AWS::AccountId".into())), "{id}");
        let own: Vec<&Value> = statements.iter().filter(|(r, _)| *r == id).map(|(_, s)| s).collect();
        assert_eq!(own.len(), 1, "{id}");
        let actions: Vec<Value> = list(&own[0]["Action"]);
        assert_eq!(actions, [Value::from("sqs:SendMessage")], "{id}");
        assert_eq!(
            intrinsic(&own[0]["Resource"]),
            Some(("GetAtt".into(), format!("{}Queue.Arn", logical_id(job)))),
            "{id}"
        );
    }
}

#[test]
fn the_stack_zone_parameter_defaults_to_what_jobctl_assumes() {
    let template = template();
    let parameter = &template["Parameters"][registry::STACK_ZONE_PARAMETER];
    assert_eq!(parameter["Default"].as_str(), Some(registry::STACK_ZONE_DEFAULT));
    assert!(job_registry::schedule::zone(registry::STACK_ZONE_DEFAULT).is_ok());
}

#[test]
fn every_function_in_the_template_is_a_job_of_the_registry() {
    let template = template();
    let jobs: BTreeSet<String> = specs().iter().map(|s| format!("{}Function", logical_id(s.name))).collect();
    let functions: BTreeSet<String> =
        resources_of_type(&template, "AWS::Serverless::Function").into_iter().map(|(id, _)| id).collect();
    assert_eq!(functions, jobs);
}

/// Every statement of every role: (role, statement).
fn statements(template: &Value) -> Vec<(String, Value)> {
    let mut all = Vec::new();
    for (id, role) in resources_of_type(template, "AWS::IAM::Role") {
        for policy in role["Properties"]["Policies"].as_sequence().into_iter().flatten() {
            for statement in policy["PolicyDocument"]["Statement"].as_sequence().into_iter().flatten() {
                all.push((id.clone(), statement.clone()));
            }
        }
    }
    all
}

fn list(value: &Value) -> Vec<Value> {
    match value {
        Value::Sequence(items) => items.clone(),
        Value::Null => Vec::new(),
        other => vec![other.clone()],
    }
}

#[test]
fn no_role_has_a_wildcard_action_or_a_wildcard_resource_but_the_sms_opt_out_check() {
    let template = template();
    let statements = statements(&template);
    assert!(statements.len() >= 6 * 5, "every function has an explicit role");
    for (role, statement) in statements {
        for action in list(&statement["Action"]) {
            let action = action.as_str().unwrap_or_default();
            assert!(!action.contains('*'), "{role}: wildcard action {action}");
        }
        for resource in list(&statement["Resource"]) {
            if resource.as_str() == Some("*") {
                let actions: Vec<String> =
                    list(&statement["Action"]).iter().filter_map(|a| a.as_str().map(str::to_owned)).collect();
                // The opt-out check names no resource, so IAM knows only "*" for it. Publish
                // on "*" would reach every topic, the alarm topic included.
                assert_eq!(actions, ["sns:CheckIfPhoneNumberIsOptedOut"], "{role}: \"*\" resource");
            }
        }
    }
}

/// `arn:${AWS::Partition}:sns:*:*:*` (or `aws` or `*` for the partition): every topic and
/// endpoint ARN.
fn is_every_sns_arn(value: &Value) -> bool {
    let text = match intrinsic(value) {
        Some((tag, text)) if tag == "Sub" => text,
        Some(_) => return false,
        None => value.as_str().unwrap_or_default().to_owned(),
    };
    ["arn:${AWS::Partition}:sns:*:*:*", "arn:aws:sns:*:*:*", "arn:*:sns:*:*:*"].contains(&text.as_str())
}

#[test]
fn text_messages_may_be_published_to_phone_numbers_only() {
    let template = template();
    let mut publishers = BTreeSet::new();
    for (role, statement) in statements(&template) {
        let actions = list(&statement["Action"]);
        if !actions.iter().any(|a| a.as_str() == Some("sns:Publish")) {
            assert!(statement.get("NotResource").is_none(), "{role}: NotResource only excludes topics");
            continue;
        }
        publishers.insert(role.clone());
        assert_eq!(actions.len(), 1, "{role}: sns:Publish in a statement of its own");
        assert!(statement.get("Resource").is_none(), "{role}: sns:Publish on a named resource");
        let excluded = list(&statement["NotResource"]);
        // An SMS publish names no topic; excluding every SNS ARN leaves phone numbers only.
        assert!(
            excluded.len() == 1 && is_every_sns_arn(&excluded[0]),
            "{role}: sns:Publish must exclude every topic with NotResource, got {excluded:?}"
        );
    }
    assert_eq!(publishers, BTreeSet::from(["ShareProductTextMessageRole".to_owned()]), "only the texter");
}

/// Whether `statement` grants something on the jobkit state table.
fn is_on_the_state_table(statement: &Value) -> bool {
    list(&statement["Resource"])
        .iter()
        .filter_map(intrinsic)
        .any(|(_, target)| target == "JobStateTable.Arn" || target.contains("${JobStateTable"))
}

#[test]
fn a_function_may_touch_only_its_own_jobs_state() {
    let template = template();
    let statements = statements(&template);
    for spec in specs() {
        let role = format!("{}Role", logical_id(spec.name));
        let own: Vec<&Value> = statements
            .iter()
            .filter(|(r, s)| *r == role && is_on_the_state_table(s))
            .map(|(_, s)| s)
            .collect();
        assert!(!own.is_empty(), "{role}: the functions get JOBKIT_STATE_TABLE, so a statement on it");
        let leading = format!("{}*", jobkit::keys::job_key_prefix(spec.name));
        for statement in own {
            let condition = &statement["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"];
            let patterns = list(condition);
            let keys: Vec<Option<&str>> = patterns.iter().map(Value::as_str).collect();
            assert_eq!(
                keys,
                [Some(leading.as_str())],
                "{role}: the state table only under its own job's keys ({leading}), got {:?}",
                statement["Condition"]
            );
            let conditions = statement["Condition"].as_mapping().map_or(0, |m| m.len());
            assert_eq!(conditions, 1, "{role}: one condition operator, ForAllValues:StringLike");
        }
    }
    let roles: BTreeSet<String> = specs().iter().map(|s| format!("{}Role", logical_id(s.name))).collect();
    for (role, statement) in &statements {
        assert!(roles.contains(role) || !is_on_the_state_table(statement), "{role} is no job's role");
    }
}

#[test]
fn a_function_may_touch_only_its_own_queues_and_send_to_the_jobs_it_enqueues() {
    let template = template();
    let specs = specs();
    for (role, statement) in statements(&template) {
        // A schedule's role belongs to its job too (a_schedules_role_is_for_scheduler_...).
        let owner = role
            .strip_suffix("ScheduleRole")
            .or_else(|| role.strip_suffix("Role"))
            .expect("roles are <Job>Role or <Job>ScheduleRole");
        let spec = specs.iter().find(|s| logical_id(s.name) == owner).expect("a job's role");
        let actions = list(&statement["Action"]);
        for resource in list(&statement["Resource"]) {
            let Some((_, target)) = intrinsic(&resource) else { continue };
            for other in specs.iter().filter(|s| logical_id(s.name) != owner) {
                let id = logical_id(other.name);
                assert!(!target.starts_with(&format!("{id}DLQ.")), "{role} may touch {target}");
                if !target.starts_with(&format!("{id}Queue.")) {
                    continue;
                }
                assert!(spec.uses.enqueues.contains(&other.name), "{role} may touch {target}");
                let sends_only = actions.iter().all(|a| a.as_str() == Some("sqs:SendMessage"));
                assert!(sends_only, "{role} may only send to {target}, the queue of a job it enqueues");
            }
        }
    }
}

#[test]
fn a_function_that_enqueues_a_job_is_given_its_queue_and_may_send_to_it() {
    let template = template();
    let mut chained = 0;
    for spec in specs() {
        let id = logical_id(spec.name);
        let env = &resource(&template, &format!("{id}Function"))["Properties"]["Environment"]["Variables"];
        let role = format!("{id}Role");
        let sends: Vec<String> = statements(&template)
            .into_iter()
            .filter(|(r, s)| {
                *r == role && list(&s["Action"]).iter().any(|a| a.as_str() == Some("sqs:SendMessage"))
            })
            .flat_map(|(_, s)| list(&s["Resource"]))
            .filter_map(|r| intrinsic(&r).map(|(_, target)| target))
            .collect();
        for target in spec.uses.enqueues {
            let setting = format!("JOBKIT_QUEUE_URL_{}", target.to_uppercase());
            let queue = format!("{}Queue", logical_id(target));
            assert_eq!(
                intrinsic(&env[&setting]),
                Some(("Ref".to_owned(), queue.clone())),
                "{}: {setting}",
                spec.name
            );
            assert!(sends.contains(&format!("{queue}.Arn")), "{} may send to {queue}: {sends:?}", spec.name);
            chained += 1;
        }
    }
    assert!(chained > 0, "a job enqueues another (create_shopify_webhook: customer_sync)");
}

#[test]
fn jobctl_finds_the_state_table_the_functions_are_given_by_its_logical_id() {
    let template = template();
    let id = jobctl::backend::STATE_TABLE_LOGICAL_ID;
    assert_eq!(resource(&template, id)["Type"].as_str(), Some("AWS::DynamoDB::Table"));
    let given = &template["Globals"]["Function"]["Environment"]["Variables"]["JOBKIT_STATE_TABLE"];
    assert_eq!(intrinsic(given), Some(("Ref".to_owned(), id.to_owned())), "{given:?}");
    // CloudFormation names it; a TableName added now would replace the table on the next deploy.
    assert!(resource(&template, id)["Properties"].get("TableName").is_none());
}

/// The `!GetAtt <queue>.QueueName` an alarm watches, with its metric.
fn watched_queue(alarm: &Value) -> Option<(String, String)> {
    let dimension = &alarm["Properties"]["Dimensions"][0];
    if dimension["Name"].as_str() != Some("QueueName") {
        return None;
    }
    let (_, target) = intrinsic(&dimension["Value"])?;
    let queue = target.strip_suffix(".QueueName")?.to_owned();
    Some((queue, alarm["Properties"]["MetricName"].as_str()?.to_owned()))
}

#[test]
fn every_queue_and_dlq_has_its_alarm_and_a_place_on_its_jobs_dashboard() {
    let template = template();
    let watched: BTreeSet<(String, String)> = resources_of_type(&template, "AWS::CloudWatch::Alarm")
        .into_iter()
        .filter_map(|(_, alarm)| watched_queue(alarm))
        .collect();
    let dashboards: String = resources_of_type(&template, "AWS::CloudWatch::Dashboard")
        .into_iter()
        .filter_map(|(_, d)| intrinsic(&d["Properties"]["DashboardBody"]).map(|(_, body)| body))
        .collect();
    let queues = resources_of_type(&template, "AWS::SQS::Queue");
    assert!(queues.len() > specs().len() * 2, "every job's queue and DLQ, and the lanes' queues: {queues:?}");
    for (id, _) in queues {
        let metric = if id.ends_with("DLQ") {
            "ApproximateNumberOfMessagesVisible"
        } else {
            "ApproximateAgeOfOldestMessage"
        };
        assert!(
            watched.contains(&(id.clone(), metric.to_owned())),
            "{id} has no {metric} alarm: {watched:?}"
        );
        assert!(dashboards.contains(&format!("${{{id}.QueueName}}")), "{id} is on no dashboard");
    }
    // store_sync's low lane is a queue of its own, with an alarm of its own.
    let lane = format!("{}LowLaneQueue", logical_id("store_sync"));
    assert!(watched.contains(&(lane.clone(), "ApproximateAgeOfOldestMessage".to_owned())), "{lane}");
}

/// The platforms whose store secrets `statement` lets its role read: each resource must be
/// `<SecretPrefix>/*/<platform>-??????`, one platform's secrets of every store.
fn token_platforms(role: &str, statement: &Value) -> BTreeSet<Platform> {
    let actions = list(&statement["Action"]);
    if !actions.iter().any(|a| a.as_str().is_some_and(|a| a.starts_with("secretsmanager:"))) {
        return BTreeSet::new();
    }
    assert_eq!(
        actions.iter().filter_map(Value::as_str).collect::<Vec<_>>(),
        ["secretsmanager:GetSecretValue"],
        "{role}: secrets are only read"
    );
    let mut platforms = BTreeSet::new();
    for resource in list(&statement["Resource"]) {
        let Some((tag, arn)) = intrinsic(&resource) else { panic!("{role}: secret resource {resource:?}") };
        assert_eq!(tag, "Sub", "{role}: {arn}");
        let prefix =
            "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:${SecretPrefix}/*/";
        let platform = arn
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix("-??????"))
            .and_then(|name| Platform::ALL.into_iter().find(|p| p.secret_suffix() == name))
            .unwrap_or_else(|| {
                panic!("{role}: {arn} is not one platform's secrets (<SecretPrefix>/*/<platform>-??????)")
            });
        platforms.insert(platform);
    }
    platforms
}

#[test]
fn a_role_reads_the_secrets_of_the_platforms_its_job_declares_and_no_other() {
    let template = template();
    let statements = statements(&template);
    let mut read = std::collections::BTreeMap::new();
    for spec in specs() {
        let role = format!("{}Role", logical_id(spec.name));
        let platforms: BTreeSet<Platform> =
            statements.iter().filter(|(r, _)| *r == role).flat_map(|(r, s)| token_platforms(r, s)).collect();
        let declared: BTreeSet<Platform> = spec.uses.tokens.iter().copied().collect();
        assert_eq!(
            platforms, declared,
            "{role} reads the secrets of {platforms:?}, its job declares {declared:?}"
        );
        read.insert(spec.name, platforms);
    }
    // What issue 30 found: each job could read every platform's tokens.
    assert_eq!(read["customer_sync"], BTreeSet::from([Platform::Square]), "customer_sync: no Shopify token");
    assert_eq!(read["store_sync"], BTreeSet::from([Platform::Shopify]), "store_sync: no Square token");
    assert_eq!(read["create_shopify_webhook"], BTreeSet::from([Platform::Shopify]), "no Square token");
    let roles: BTreeSet<String> = specs().iter().map(|s| format!("{}Role", logical_id(s.name))).collect();
    for (role, statement) in &statements {
        assert!(
            roles.contains(role) || token_platforms(role, statement).is_empty(),
            "{role} is no job's role"
        );
    }
}

#[test]
fn a_function_that_calls_a_platform_is_told_whether_the_stack_is_a_sandbox_which_it_is_not_by_default() {
    let template = template();
    let parameter = &template["Parameters"]["Sandbox"];
    assert_eq!(parameter["Default"].as_str(), Some("false"), "https unless the operator says sandbox");
    for spec in specs() {
        let function = resource(&template, &format!("{}Function", logical_id(spec.name)));
        let variables = &function["Properties"]["Environment"]["Variables"];
        let sandbox = variables.get(shop::SANDBOX_SETTING).and_then(intrinsic);
        if spec.uses.tokens.is_empty() {
            assert_eq!(sandbox, None, "{}: calls no platform", spec.name);
        } else {
            assert_eq!(sandbox, Some(("Ref".to_owned(), "Sandbox".to_owned())), "{}", spec.name);
        }
        // The platforms' addresses are the real ones unless a setting names another, which
        // then must be https outside a sandbox (ShopPorts refuses anything else at start).
        for name in ["SHOPIFY_BASE_URL", "SQUARE_BASE_URL"] {
            if let Some(Value::String(url)) = variables.get(name) {
                assert!(url.starts_with("https://"), "{}: {name} is {url}", spec.name);
            }
        }
    }
    let square = &template["Parameters"]["SquareBaseUrl"]["Default"];
    assert!(square.as_str().is_some_and(|u| u.starts_with("https://")), "{square:?}");
}

#[test]
fn every_role_that_may_send_email_sends_from_the_sender_to_the_recipients_only() {
    let template = template();
    let mut senders = BTreeSet::new();
    for (role, statement) in statements(&template) {
        let actions = list(&statement["Action"]);
        if !actions.iter().any(|a| a.as_str().is_some_and(|a| a.starts_with("ses:Send"))) {
            continue;
        }
        senders.insert(role.clone());
        let condition = &statement["Condition"];
        assert_eq!(
            intrinsic(&condition["StringEquals"]["ses:FromAddress"]),
            Some(("Ref".to_owned(), "AlertSender".to_owned())),
            "{role}: from the sender only, got {condition:?}"
        );
        let Value::Tagged(recipients) = &condition["ForAllValues:StringLike"]["ses:Recipients"] else {
            panic!("{role}: to the recipients only, got {condition:?}");
        };
        assert_eq!(recipients.tag.to_string().trim_start_matches('!'), "Split", "{role}");
        let split = list(&recipients.value);
        assert_eq!(split.len(), 2, "{role}: {split:?}");
        assert_eq!(split[0].as_str(), Some(","), "{role}");
        assert_eq!(intrinsic(&split[1]), Some(("Ref".to_owned(), "AlertRecipients".to_owned())), "{role}");
    }
    assert_eq!(senders.len(), specs().len(), "every job's function emails its errors: {senders:?}");
    // The recipients are split at commas, so a space would be part of an address: refused.
    let pattern = template["Parameters"]["AlertRecipients"]["AllowedPattern"].as_str().expect("a pattern");
    assert!(pattern.contains(r"\s,"), "{pattern}");
}
