//! A job's IAM role: what every job needs (its logs, queue, DLQ, its own records in the state
//! table, error emails from the sender) and one statement per thing its `Uses` declares.
//!
//! Invariant: nothing here grants what a declaration does not name; the only `"*"` resource is
//! SNS's opt-out check, which has no other, and SMS publishes exclude every SNS ARN so a text
//! cannot reach a topic.

use shop::declaration::Platform;

use super::{TemplateError, comment, job::Names, logical_id, quoted, sentence};

/// One statement of the role's policy.
struct Statement {
    /// Why it is there, as comment lines; empty when the `Sid` says it.
    why: Vec<String>,
    sid: String,
    actions: Vec<&'static str>,
    /// `Resource: ...` or `NotResource: ...`.
    resource: String,
    /// The `Condition:` block's lines below the key, indented from the statement's.
    condition: Vec<String>,
}

impl Statement {
    fn new(sid: impl Into<String>, actions: &[&'static str], resource: impl Into<String>) -> Self {
        Self {
            why: Vec::new(),
            sid: sid.into(),
            actions: actions.to_vec(),
            resource: format!("Resource: {}", resource.into()),
            condition: Vec::new(),
        }
    }

    fn because(mut self, why: &[&str]) -> Self {
        self.why = why.iter().map(|line| (*line).to_owned()).collect();
        self
    }

    fn render(&self) -> String {
        let mut text = String::new();
        for line in &self.why {
            text.push_str(&format!("              # {line}\n"));
        }
        text.push_str(&format!(
            "              - Sid: {}\n                Effect: Allow\n                Action: [{}]\n                {}\n",
            self.sid,
            self.actions.join(", "),
            self.resource
        ));
        if !self.condition.is_empty() {
            text.push_str("                Condition:\n");
            for line in &self.condition {
                text.push_str(&format!("                  {line}\n"));
            }
        }
        text
    }
}

/// The role of `job`, which enqueues the `enqueued` jobs.
pub(super) fn role(job: &Names, enqueued: &[Names]) -> Result<String, TemplateError> {
    let statements = statements(job, enqueued);
    let mut sids: Vec<&str> = Vec::new();
    for statement in &statements {
        if sids.contains(&statement.sid.as_str()) {
            return Err(TemplateError::DuplicateSid { job: job.spec.name, sid: statement.sid.clone() });
        }
        sids.push(&statement.sid);
    }
    let statements: String = statements.iter().map(Statement::render).collect();
    Ok(format!(
        r#"  {id}:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Version: "2012-10-17"
        Statement:
          - Effect: Allow
            Principal: {{Service: lambda.amazonaws.com}}
            Action: sts:AssumeRole
      Policies:
        - PolicyName: {queue}
          PolicyDocument:
            Version: "2012-10-17"
            Statement:
{statements}"#,
        id = job.logical("Role"),
        queue = job.queue,
    ))
}

/// The ARN pattern of every store's secret for `platform`, for `!Sub`: the secret's name,
/// `<SecretPrefix>/<store id>/shopify`, then the `-` and six characters Secrets Manager adds.
pub(super) fn token_secrets_arn(platform: Platform) -> String {
    format!(
        "arn:${{AWS::Partition}}:secretsmanager:${{AWS::Region}}:${{AWS::AccountId}}:secret:${{SecretPrefix}}/*/{}-??????",
        platform.secret_suffix()
    )
}

/// What sealing the tokens of `platforms` on the store records takes: the token key, with the
/// encryption context the adapter always sends, and those records' sealed attributes only.
fn sealing(platforms: &[shop::declaration::Platform]) -> [Statement; 2] {
    let (context, purpose) = shop::aws::ENCRYPTION_CONTEXT;
    let attributes: Vec<String> = std::iter::once("id")
        .chain(platforms.iter().map(|p| shop::aws::sealed_attribute(*p)))
        .map(quoted)
        .collect();
    [
        Statement {
            condition: vec![
                "StringEquals:".to_owned(),
                format!("  kms:EncryptionContext:{context}: {purpose}"),
            ],
            ..Statement::new(
                "SealTokens",
                &["kms:GenerateDataKey", "kms:Decrypt"],
                "!GetAtt StoreTokenKey.Arn",
            )
            .because(&[
                "Its tokens sealed on their store records: a data key per execution environment,",
                "for the store-token purpose only.",
            ])
        },
        Statement {
            condition: vec![
                "ForAllValues:StringEquals:".to_owned(),
                format!("  dynamodb:Attributes: [{}]", attributes.join(", ")),
                "StringEqualsIfExists:".to_owned(),
                "  dynamodb:ReturnValues: [NONE]".to_owned(),
            ],
            ..Statement::new(
                "SealedTokensOnStores",
                &["dynamodb:GetItem", "dynamodb:UpdateItem"],
                format!("!GetAtt {}.Arn", shop::declaration::Table::Stores.logical_id()),
            )
            .because(&["Its sealed tokens on the store records: those attributes only, read and written."])
        },
    ]
}

fn statements(job: &Names, enqueued: &[Names]) -> Vec<Statement> {
    let uses = &job.spec.uses;
    let mut all = vec![
        Statement::new(
            "OwnLogs",
            &["logs:CreateLogStream", "logs:PutLogEvents"],
            format!("!Sub \"${{{}.Arn}}\"", job.logical("LogGroup")),
        ),
        Statement::new(
            "OwnQueue",
            &[
                "sqs:ReceiveMessage",
                "sqs:DeleteMessage",
                "sqs:ChangeMessageVisibility",
                "sqs:GetQueueAttributes",
                "sqs:SendMessage",
            ],
            job.queue_arns(),
        )
        .because(if job.lanes.is_empty() {
            &[
                "Receive and settle its records; send to itself for retries' hops, continuations",
                "of long work and fan-out.",
            ]
        } else {
            &[
                "Receive and settle its records (each on the lane's queue it came from); send to",
                "itself for retries' hops, continuations of long work and fan-out.",
            ]
        }),
    ];
    all.extend(enqueued.iter().map(|other| Statement {
        why: vec![format!(
            "It enqueues {}: send only, to that job's {}.",
            other.spec.name,
            other.queues_word()
        )],
        ..Statement::new(format!("Enqueues{}", other.id), &["sqs:SendMessage"], other.queue_arns())
    }));
    all.push(Statement::new(
        "OwnDeadLetters",
        &["sqs:SendMessage"],
        format!("!GetAtt {}.Arn", job.logical("DLQ")),
    ));
    all.push(Statement {
        condition: vec![
            "ForAllValues:StringLike:".to_owned(),
            format!(
                "  dynamodb:LeadingKeys: [{}]",
                quoted(&format!("{}*", jobkit::keys::job_key_prefix(job.spec.name)))
            ),
        ],
        ..Statement::new(
            "JobState",
            &["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"],
            "!GetAtt JobStateTable.Arn",
        )
        .because(&["Only its own job's records: jobkit starts every state key with the job's name."])
    });
    for used in uses.tables {
        let table = used.table;
        all.push(match used.index {
            None => Statement {
                why: vec![format!("{}: {}.", table.sid(), comment(used.why))],
                ..Statement::new(table.sid(), used.actions, format!("!GetAtt {}.Arn", table.logical_id()))
            },
            Some(index) => Statement {
                why: vec![format!("{}.", comment(&sentence(used.why)))],
                ..Statement::new(
                    format!("{}Index{}", table.sid(), logical_id(index)),
                    used.actions,
                    format!("!Sub \"${{{}.Arn}}/index/{index}\"", table.logical_id()),
                )
            },
        });
    }
    for platform in uses.tokens {
        all.push(Statement {
            why: vec![
                format!(
                    "Per-store {} tokens only, read (and cached) by the job: one secret per store",
                    platform.name()
                ),
                format!(
                    "and platform, <prefix>/<store id>/{}, and Secrets Manager ends its ARN with -??????.",
                    platform.secret_suffix()
                ),
            ],
            ..Statement::new(
                format!("{}Tokens", platform.name()),
                &["secretsmanager:GetSecretValue"],
                format!("!Sub \"{}\"", token_secrets_arn(*platform)),
            )
        });
    }
    if !uses.tokens.is_empty() {
        all.extend(sealing(uses.tokens));
    }
    if uses.sms {
        all.push(Statement {
            resource: "NotResource: !Sub \"arn:${AWS::Partition}:sns:*:*:*\"".to_owned(),
            ..Statement::new("SmsToPhoneNumbers", &["sns:Publish"], "").because(&[
                "Texts to phone numbers only. An SMS publish is authorised against the number, not",
                "an ARN, so no Resource can name it; excluding every SNS ARN (topics, the alarm",
                "topic included, and push endpoints) leaves phone numbers.",
            ])
        });
        all.push(
            Statement::new("SmsOptOutCheck", &["sns:CheckIfPhoneNumberIsOptedOut"], "\"*\"")
                .because(&["The opt-out check has no resource type: IAM takes only \"*\" for it."]),
        );
    }
    all.push(Statement {
        condition: vec![
            "StringEquals:".to_owned(),
            "  ses:FromAddress: !Ref AlertSender".to_owned(),
            "ForAllValues:StringLike:".to_owned(),
            "  ses:Recipients: !Split [\",\", !Ref AlertRecipients]".to_owned(),
        ],
        ..Statement::new(
            "ErrorEmails",
            &["ses:SendEmail"],
            "!Sub \"arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:identity/*\"",
        )
        .because(&[
            "Error emails, from the configured sender to the configured recipients only.",
            "identity/* because in the SES sandbox the recipients are identities too; the",
            "conditions pin the sender and every recipient.",
        ])
    });
    all
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use jobkit::{Lane, RetryPolicy};

    use super::*;
    use crate::{Deployment, JobSpec, Table, TableUse, Uses};

    fn spec(uses: Uses) -> JobSpec {
        JobSpec {
            name: "weekly_report",
            lane: Lane::Low,
            other_lanes: &[],
            policy: RetryPolicy::default(),
            timeout: Duration::from_secs(60),
            schedule: None,
            example: "{}",
            summary: "mails the week's numbers",
            deployment: Deployment {
                memory_mb: 128,
                batch_size: 1,
                batching_window_s: 0,
                oldest_message_alarm_s: None,
            },
            uses,
        }
    }

    fn sids(spec: &JobSpec, enqueued: &[Names]) -> Vec<String> {
        let job = Names::of(spec);
        statements(&job, enqueued).into_iter().map(|s| s.sid).collect()
    }

    /// A job with two lanes that the job under test enqueues.
    fn store_sync() -> JobSpec {
        JobSpec { name: "store_sync", lane: Lane::High, other_lanes: &[Lane::Low], ..spec(Uses::NOTHING) }
    }

    #[test]
    fn a_job_that_declares_nothing_gets_only_what_jobkit_needs() {
        assert_eq!(
            sids(&spec(Uses::NOTHING), &[]),
            ["OwnLogs", "OwnQueue", "OwnDeadLetters", "JobState", "ErrorEmails"]
        );
    }

    #[test]
    fn each_declared_use_is_one_statement_and_nothing_else_is_granted() {
        let uses = Uses {
            tables: &[
                TableUse {
                    table: Table::History,
                    index: None,
                    actions: &["dynamodb:PutItem"],
                    why: "its report",
                },
                TableUse {
                    table: Table::History,
                    index: Some("by_kind_time"),
                    actions: &["dynamodb:Query"],
                    why: "the week's runs",
                },
            ],
            tokens: &[Platform::Square, Platform::Shopify],
            sms: true,
            ..Uses::NOTHING
        };
        let spec = spec(uses);
        let store_sync = store_sync();
        assert_eq!(
            sids(&spec, &[Names::of(&store_sync)]),
            [
                "OwnLogs",
                "OwnQueue",
                "EnqueuesStoreSync",
                "OwnDeadLetters",
                "JobState",
                "History",
                "HistoryIndexByKindTime",
                "SquareTokens",
                "ShopifyTokens",
                "SealTokens",
                "SealedTokensOnStores",
                "SmsToPhoneNumbers",
                "SmsOptOutCheck",
                "ErrorEmails",
            ]
        );
        let text = role(&Names::of(&spec), &[Names::of(&store_sync)]).expect("renders");
        // The sealed tokens: the key only for their purpose, the stores' sealed attributes only.
        assert!(text.contains("kms:EncryptionContext:purpose: store-token"), "{text}");
        assert!(
            text.contains(r#"dynamodb:Attributes: ["id", "sealed_square_token", "sealed_shopify_token"]"#),
            "{text}"
        );
        // It may send to each of the job's lanes, and nothing else of it.
        assert!(
            text.contains(
                "Action: [sqs:SendMessage]\n                Resource: [!GetAtt StoreSyncQueue.Arn, !GetAtt StoreSyncLowLaneQueue.Arn]"
            ),
            "{text}"
        );
        assert!(text.contains("Resource: !Sub \"${HistoryTable.Arn}/index/by_kind_time\""), "{text}");
        assert!(text.contains("dynamodb:LeadingKeys: [\"weekly_report:*\"]"), "{text}");
        assert!(text.contains("              # History: its report.\n"), "{text}");
        assert!(text.contains("secret:${SecretPrefix}/*/square-??????\""), "{text}");
        assert!(text.contains("secret:${SecretPrefix}/*/shopify-??????\""), "{text}");
        assert!(text.contains("ses:Recipients: !Split [\",\", !Ref AlertRecipients]"), "{text}");
    }

    #[test]
    fn a_table_declared_twice_is_refused_rather_than_named_twice() {
        let uses = Uses {
            tables: &[
                TableUse { table: Table::Stores, index: None, actions: &["dynamodb:GetItem"], why: "read" },
                TableUse { table: Table::Stores, index: None, actions: &["dynamodb:Scan"], why: "list" },
            ],
            ..Uses::NOTHING
        };
        let refused = role(&Names::of(&spec(uses)), &[]);
        assert!(matches!(refused, Err(TemplateError::DuplicateSid { sid, .. }) if sid == "Stores"));
    }
}
