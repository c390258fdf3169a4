//! The stack the other system tests run on: `template.yaml` translated by the SAM translator and
//! created on moto's CloudFormation with an operator's parameters. Every resource the
//! translation declares is created (but the kinds moto's CloudFormation skips), moto's own event
//! source mappings are off, and each function's queue, DLQ and outputs agree.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_sqs::types::MessageSystemAttributeName;
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
            ("AWS::CloudWatch::Alarm", 24),
            ("AWS::CloudWatch::Dashboard", 6),
            ("AWS::DynamoDB::Table", 7),
            ("AWS::Events::Rule", 3),
            ("AWS::IAM::Role", 6),
            ("AWS::Lambda::EventSourceMapping", 6),
            ("AWS::Lambda::Function", 6),
            ("AWS::Logs::LogGroup", 6),
            ("AWS::SES::EmailIdentity", 1),
            ("AWS::SNS::Topic", 1),
            ("AWS::SQS::Queue", 12),
            ("AWS::SQS::QueuePolicy", 3),
        ]),
        "what the SAM translator makes of template.yaml"
    );
    assert_eq!(declared.len(), 81);

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
        assert_eq!(states, [Some("Disabled")], "{binary}: moto's own mapping is off");

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
            [deployment.queue_url, deployment.dlq_url].map(|url| url.rsplit('/').next().map(str::to_owned)),
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
