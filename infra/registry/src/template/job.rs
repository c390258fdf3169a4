//! One job's resources: its function, log group, role, queue and DLQ, a queue per other lane
//! (each with its own event source mapping into the same function), its schedule and the role
//! that schedule sends with (`schedule.rs`), an alarm per queue (its oldest message's age; the
//! DLQ's: not empty), two on the function (errors, throttles), a dashboard showing every queue,
//! and its outputs.
//!
//! Every resource is named from the job's name (`store_sync` -> `StoreSync...`, queue
//! `store-sync`), and every number is the spec's (timeouts, batch, concurrency, receives). Queues
//! and log groups are encrypted with the stack's KMS key when it has one, and the function says
//! in its `Metadata` why checkov's checks that do not apply to it are skipped.

use jobkit::Lane;

use super::{
    KMS_KEY_PARAMETER, TemplateError, checkov_skips, comment, logical_id, quoted, role, schedule,
    with_kms_key,
};
use crate::JobSpec;

/// What one job's resources are named.
pub(super) struct Names<'a> {
    /// The job's spec.
    pub spec: &'a JobSpec,
    /// The prefix of its logical ids (`StoreSync`).
    pub id: String,
    /// Its queue's name without the stack's (`store-sync`); also its function's and policy's.
    pub queue: String,
    /// The queues of its other lanes.
    pub lanes: Vec<LaneQueue>,
}

/// The queue of one of a job's other lanes.
pub(super) struct LaneQueue {
    pub lane: Lane,
    /// Its logical id (`StoreSyncLowLaneQueue`).
    pub id: String,
    /// Its name without the stack's (`store-sync-low`).
    pub queue: String,
}

impl<'a> Names<'a> {
    pub(super) fn of(spec: &'a JobSpec) -> Self {
        let id = logical_id(spec.name);
        let lanes = spec
            .other_lanes
            .iter()
            .map(|&lane| LaneQueue {
                lane,
                id: format!("{id}{}LaneQueue", logical_id(lane.as_str())),
                queue: jobkit::job::lane_queue_name(spec.name, lane),
            })
            .collect();
        Self { spec, id, queue: spec.queue_name(), lanes }
    }

    /// The logical id of its resource `kind` (`Function` -> `StoreSyncFunction`).
    pub fn logical(&self, kind: &str) -> String {
        format!("{}{kind}", self.id)
    }

    /// "queue", or "queues" for a job with other lanes.
    pub fn queues_word(&self) -> &'static str {
        if self.lanes.is_empty() { "queue" } else { "queues" }
    }

    /// Its queues' ARNs as one resource of a policy: the job's own queue and its lanes'.
    pub fn queue_arns(&self) -> String {
        let own = format!("!GetAtt {}.Arn", self.logical("Queue"));
        if self.lanes.is_empty() {
            return own;
        }
        let lanes = self.lanes.iter().map(|l| format!("!GetAtt {}.Arn", l.id));
        format!("[{}]", std::iter::once(own).chain(lanes).collect::<Vec<_>>().join(", "))
    }

    /// The variables that route jobkit to its queues: `JOBKIT_QUEUE_URL_<JOB>` and, per other
    /// lane, `JOBKIT_QUEUE_URL_<JOB>__<LANE>`.
    fn queue_variables(&self) -> Vec<String> {
        let job = self.spec.name.to_uppercase();
        std::iter::once(format!("JOBKIT_QUEUE_URL_{job}: !Ref {}", self.logical("Queue")))
            .chain(self.lanes.iter().map(|l| {
                format!("JOBKIT_QUEUE_URL_{job}__{}: !Ref {}", l.lane.as_str().to_uppercase(), l.id)
            }))
            .collect()
    }
}

/// Every resource of `spec`'s job, in the order a reader follows it: a header, then one block
/// per resource, blank lines between.
pub(super) fn resources(spec: &JobSpec, specs: &[JobSpec]) -> Result<String, TemplateError> {
    let job = Names::of(spec);
    let enqueued = enqueued(spec, specs)?;
    let mut blocks = vec![
        format!("{}{}", header(&job), function(&job, &enqueued)?),
        log_group(&job),
        role::role(&job, &enqueued)?,
        queue(&job),
    ];
    blocks.extend(job.lanes.iter().map(|lane| lane_queue(&job, lane)));
    blocks.push(dlq(&job));
    if let Some(declared) = &spec.schedule {
        blocks.extend(schedule::resources(&job, declared)?);
    }
    blocks.extend([dlq_alarm(&job), age_alarm(&job)]);
    blocks.extend(job.lanes.iter().map(|lane| lane_age_alarm(&job, lane)));
    blocks.extend([errors_alarm(&job), throttles_alarm(&job), dashboard(&job)]);
    Ok(blocks.join("\n"))
}

/// The jobs `spec` enqueues, each checked against the registry.
fn enqueued<'a>(spec: &JobSpec, specs: &'a [JobSpec]) -> Result<Vec<Names<'a>>, TemplateError> {
    spec.uses
        .enqueues
        .iter()
        .map(|&target| match specs.iter().find(|s| s.name == target) {
            Some(other) => Ok(Names::of(other)),
            None => Err(TemplateError::UnknownEnqueued { job: spec.name, target }),
        })
        .collect()
}

fn header(job: &Names) -> String {
    let lanes = if job.lanes.is_empty() {
        format!("{} priority", job.spec.lane)
    } else {
        format!("lanes {}", job.spec.lanes_text())
    };
    format!(
        "  # ---------------------------------------------------------------- {} ({lanes})\n  # {}.\n",
        job.spec.name,
        comment(job.spec.summary)
    )
}

/// The longest description Lambda takes.
const MAX_DESCRIPTION: usize = 256;

fn function(job: &Names, enqueued: &[Names]) -> Result<String, TemplateError> {
    let spec = job.spec;
    let description = format!("{}: {}", spec.name, spec.summary);
    let length = description.chars().count();
    if length > MAX_DESCRIPTION {
        return Err(TemplateError::Description { job: spec.name, length });
    }
    let mut variables = vec![
        format!("JOBKIT_QUEUE_URL: !Ref {}", job.logical("Queue")),
        format!("JOBKIT_DLQ_URL: !Ref {}", job.logical("DLQ")),
    ];
    if !job.lanes.is_empty() {
        variables
            .push("# Its other lanes' queues: it settles each record on the queue it came from.".to_owned());
        variables.extend(job.queue_variables().into_iter().skip(1));
    }
    let mut tables = Vec::new();
    for table in spec.uses.tables.iter().map(|u| u.table) {
        // A table used twice (itself and an index) is one setting.
        if !tables.contains(&table) {
            tables.push(table);
            variables.push(format!("{}: !Ref {}", table.setting(), table.logical_id()));
        }
    }
    if !spec.uses.tokens.is_empty() {
        variables.push("SHOP_SECRET_PREFIX: !Ref SecretPrefix".to_owned());
        // Its tokens are sealed on the store records under this key (shop::aws::sealed_tokens).
        variables.push(format!("{}: !GetAtt StoreTokenKey.Arn", shop::TOKEN_KEY_SETTING));
        // It calls the platforms whose tokens it reads: over https, unless the stack is a sandbox.
        variables.push(format!("{}: !Ref Sandbox", shop::SANDBOX_SETTING));
    }
    variables.extend(spec.uses.settings.iter().map(|s| format!("{}: !Ref {}", s.env, s.parameter)));
    if !enqueued.is_empty() {
        variables.push(
            "# The queues of the jobs it enqueues: jobkit sends job <JOB> to JOBKIT_QUEUE_URL_<JOB>."
                .to_owned(),
        );
    }
    for other in enqueued {
        variables.extend(other.queue_variables());
    }
    let variables: String = variables.iter().map(|v| format!("          {v}\n")).collect();
    Ok(format!(
        r#"  {function}:
    Type: AWS::Serverless::Function
    Metadata:
      BuildMethod: rust-cargolambda
      BuildProperties:
        Binary: {name}
{skips}    Properties:
      FunctionName: !Sub "${{AWS::StackName}}-{queue}"
      Description: {description}
      Role: !GetAtt {role}.Arn
      # The job's own timeout is {timeout} s; the function gets room to start a batch's
      # later records (a record starts only if its whole timeout fits before the deadline).
      Timeout: {function_timeout}
      MemorySize: {memory}
      LoggingConfig:
        LogGroup: !Ref {log_group}
      Environment:
        Variables:
{variables}      Events:
        Queue:
          Type: SQS
          Properties:
            Queue: !GetAtt {queue_id}.Arn
            BatchSize: {batch}
            MaximumBatchingWindowInSeconds: {window}
            # Failed records are reported one by one; the others are deleted.
            FunctionResponseTypes: [ReportBatchItemFailures]
            ScalingConfig:
              MaximumConcurrency: {concurrency}
{lane_events}"#,
        function = job.logical("Function"),
        name = spec.name,
        queue = job.queue,
        description = quoted(&description),
        role = job.logical("Role"),
        timeout = spec.timeout.as_secs(),
        function_timeout = spec.function_timeout().as_secs(),
        memory = spec.deployment.memory_mb,
        log_group = job.logical("LogGroup"),
        queue_id = job.logical("Queue"),
        batch = spec.deployment.batch_size,
        window = spec.deployment.batching_window_s,
        concurrency = spec.lane.max_concurrency(),
        lane_events = job.lanes.iter().map(|lane| lane_event(job, lane)).collect::<String>(),
        skips = checkov_skips(&function_skips(job)),
    ))
}

/// checkov's checks of a function that do not apply to a job's, and why (rendered into the
/// function's `Metadata`, so the template says why each is skipped).
fn function_skips(job: &Names) -> Vec<(&'static str, String)> {
    let spec = job.spec;
    let concurrency = std::iter::once(spec.lane)
        .chain(spec.other_lanes.iter().copied())
        .map(|lane| format!("{} on its {lane} lane's queue", lane.max_concurrency()))
        .collect::<Vec<_>>()
        .join(", ");
    vec![
        (
            "CKV_AWS_115",
            format!(
                "Its concurrency is capped where its work arrives, by the SQS event source mapping's \
                 ScalingConfig.MaximumConcurrency ({concurrency}). Reserved concurrency would also \
                 set that much aside from the account's pool, and any below the mapping's cap makes \
                 Lambda throttle polled records back onto the queue."
            ),
        ),
        (
            "CKV_AWS_116",
            format!(
                "Lambda's DeadLetterQueue is for asynchronous invokes; SQS event source mappings invoke \
                 synchronously, so it would never receive anything. A failed job goes to its DLQ \
                 {dlq}: jobkit sends it there with the error, and the redrive policy of its {queues} \
                 catches crashes and timeouts.",
                dlq = job.logical("DLQ"),
                queues = job.queues_word(),
            ),
        ),
        (
            "CKV_AWS_117",
            "It reaches only public endpoints: AWS APIs (SQS, DynamoDB, SES, SNS, Secrets Manager) \
             and Shopify's and Square's APIs, while its logs and metrics leave through Lambda's log \
             stream; there is no private resource to reach. A VPC would add NAT gateways or VPC \
             endpoints, and their cost, for nothing."
                .to_owned(),
        ),
        (
            "CKV_AWS_173",
            format!(
                "Its variables hold no secret: resource names, queue URLs, the alert addresses and \
                 settings (store tokens are in Secrets Manager, read at run time). Lambda encrypts \
                 them at rest with its AWS managed key; a {KMS_KEY_PARAMETER} for them would protect \
                 nothing more."
            ),
        ),
    ]
}

/// The event source mapping of one of the job's other lanes: the same batching as its own
/// queue's, the lane's concurrency.
fn lane_event(job: &Names, lane: &LaneQueue) -> String {
    let spec = job.spec;
    format!(
        r#"        {name}Lane:
          Type: SQS
          Properties:
            Queue: !GetAtt {queue_id}.Arn
            BatchSize: {batch}
            MaximumBatchingWindowInSeconds: {window}
            FunctionResponseTypes: [ReportBatchItemFailures]
            ScalingConfig:
              MaximumConcurrency: {concurrency}
"#,
        name = logical_id(lane.lane.as_str()),
        queue_id = lane.id,
        batch = spec.deployment.batch_size,
        window = spec.deployment.batching_window_s,
        concurrency = lane.lane.max_concurrency(),
    )
}

fn log_group(job: &Names) -> String {
    format!(
        r#"  {id}:
    Type: AWS::Logs::LogGroup
    Properties:
      LogGroupName: !Sub "/aws/lambda/${{AWS::StackName}}-{queue}"
      RetentionInDays: !Ref LogRetentionDays
      # CloudWatch Logs encrypts every log group; with KmsKeyArn, with that key.
      KmsKeyId: {kms}
"#,
        id = job.logical("LogGroup"),
        queue = job.queue,
        kms = with_kms_key(&format!("!Ref {KMS_KEY_PARAMETER}")),
    )
}

/// Seconds SQS keeps a message in the queue and in the DLQ: its maximum, 14 days.
const RETENTION_S: u32 = 14 * 24 * 3600;

fn queue(job: &Names) -> String {
    queue_resource(job, &job.logical("Queue"), &job.queue, "")
}

fn lane_queue(job: &Names, lane: &LaneQueue) -> String {
    let why = format!(
        "  # Its {} lane: runs of it that take this lane wait here, and its DLQ is the job's.\n",
        lane.lane
    );
    queue_resource(job, &lane.id, &lane.queue, &why)
}

/// A queue of the job (its own or a lane's), `why` the comment lines above it.
fn queue_resource(job: &Names, id: &str, queue: &str, why: &str) -> String {
    let spec = job.spec;
    format!(
        r#"{why}  # Visibility {visibility} s = 6 x the function's {function_timeout} s. The policy allows {attempts} attempts;
  # the redrive after {receives} receives only catches crashes and timeouts.
  {id}:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: !Sub "${{AWS::StackName}}-{queue}"
      VisibilityTimeout: {visibility}
      MaximumMessageSize: 1048576
      MessageRetentionPeriod: {RETENTION_S}
{encryption}      RedrivePolicy:
        deadLetterTargetArn: !GetAtt {dlq}.Arn
        maxReceiveCount: {receives}
"#,
        visibility = spec.visibility_timeout().as_secs(),
        function_timeout = spec.function_timeout().as_secs(),
        attempts = spec.policy.max_attempts(),
        receives = spec.max_receive_count(),
        dlq = job.logical("DLQ"),
        encryption = queue_encryption(),
    )
}

/// A queue's encryption at rest: with KmsKeyArn, SSE-KMS with that key; else SQS's own keys
/// (SSE-SQS).
fn queue_encryption() -> String {
    format!(
        "      KmsMasterKeyId: {}\n      SqsManagedSseEnabled: {}\n",
        with_kms_key(&format!("!Ref {KMS_KEY_PARAMETER}")),
        super::unless_kms_key("true"),
    )
}

fn dlq(job: &Names) -> String {
    format!(
        r#"  # Kept 14 days; only its own {queues} may redrive into it. Inspect with `jobctl dlq list {name}`.
  {id}:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: !Sub "${{AWS::StackName}}-{dlq_name}"
      MaximumMessageSize: 1048576
      MessageRetentionPeriod: {RETENTION_S}
{encryption}      RedriveAllowPolicy:
        redrivePermission: byQueue
        # The source queue by name: its ARN would make the two queues depend on each other.
        sourceQueueArnList:
{sources}"#,
        name = job.spec.name,
        queues = job.queues_word(),
        id = job.logical("DLQ"),
        dlq_name = jobkit::job::dlq_name(job.spec.name),
        encryption = queue_encryption(),
        sources = std::iter::once(&job.queue)
            .chain(job.lanes.iter().map(|l| &l.queue))
            .map(|queue| format!(
                "          - !Sub \"arn:${{AWS::Partition}}:sqs:${{AWS::Region}}:${{AWS::AccountId}}:${{AWS::StackName}}-{queue}\"\n"
            ))
            .collect::<String>(),
    )
}

/// What differs between the four alarms; the rest is one shape.
struct Alarm<'a> {
    /// Its logical id.
    id: String,
    /// The queue it names itself after (the job's, or a lane's).
    queue: &'a str,
    name: &'a str,
    description: String,
    namespace: &'a str,
    metric: &'a str,
    dimension: String,
    statistic: &'a str,
    period: u32,
    threshold: u32,
    /// Whether it says so when it clears: a queue's alarms do, a function's only when it fires.
    ok_actions: bool,
}

fn alarm(alarm: Alarm) -> String {
    let ok = if alarm.ok_actions { "      OKActions: [!Ref AlarmTopic]\n" } else { "" };
    format!(
        r#"  {id}:
    Type: AWS::CloudWatch::Alarm
    Properties:
      AlarmName: !Sub "${{AWS::StackName}}-{queue}-{name}"
      AlarmDescription: {description}
      Namespace: {namespace}
      MetricName: {metric}
      Dimensions:
        - {{{dimension}}}
      Statistic: {statistic}
      Period: {period}
      EvaluationPeriods: 1
      Threshold: {threshold}
      ComparisonOperator: GreaterThanThreshold
      TreatMissingData: notBreaching
      AlarmActions: [!Ref AlarmTopic]
{ok}"#,
        id = alarm.id,
        queue = alarm.queue,
        name = alarm.name,
        description = quoted(&alarm.description),
        namespace = alarm.namespace,
        metric = alarm.metric,
        dimension = alarm.dimension,
        statistic = alarm.statistic,
        period = alarm.period,
        threshold = alarm.threshold,
    )
}

fn dlq_alarm(job: &Names) -> String {
    let name = job.spec.name;
    alarm(Alarm {
        id: job.logical("DlqAlarm"),
        queue: &job.queue,
        name: "dlq-not-empty",
        description: format!("{name} has failed jobs in its DLQ: jobctl dlq list {name}"),
        namespace: "AWS/SQS",
        metric: "ApproximateNumberOfMessagesVisible",
        dimension: format!("Name: QueueName, Value: !GetAtt {}.QueueName", job.logical("DLQ")),
        statistic: "Maximum",
        period: 60,
        threshold: 0,
        ok_actions: true,
    })
}

fn age_alarm(job: &Names) -> String {
    let spec = job.spec;
    let threshold = spec.oldest_message_alarm_s();
    alarm(Alarm {
        id: job.logical("AgeAlarm"),
        queue: &job.queue,
        name: "oldest-message-age",
        description: format!(
            "{}'s oldest message waited over {threshold} s: the job is falling behind ({} priority)",
            spec.name, spec.lane
        ),
        namespace: "AWS/SQS",
        metric: "ApproximateAgeOfOldestMessage",
        dimension: format!("Name: QueueName, Value: !GetAtt {}.QueueName", job.logical("Queue")),
        statistic: "Maximum",
        period: 300,
        threshold,
        ok_actions: true,
    })
}

/// The age alarm of one of the job's other lanes: each queue a job is fed from has its own.
fn lane_age_alarm(job: &Names, lane: &LaneQueue) -> String {
    let threshold = job.spec.oldest_message_alarm_s_on(lane.lane);
    alarm(Alarm {
        id: format!("{}AgeAlarm", lane.id),
        queue: &lane.queue,
        name: "oldest-message-age",
        description: format!(
            "{}'s oldest message on its {} lane waited over {threshold} s: the lane is falling behind",
            job.spec.name, lane.lane
        ),
        namespace: "AWS/SQS",
        metric: "ApproximateAgeOfOldestMessage",
        dimension: format!("Name: QueueName, Value: !GetAtt {}.QueueName", lane.id),
        statistic: "Maximum",
        period: 300,
        threshold,
        ok_actions: true,
    })
}

fn errors_alarm(job: &Names) -> String {
    let why = "  # Function errors are crashes, timeouts and setup failures: a failing job is a reported\n  \
               # record, not a function error.\n";
    let alarm = alarm(Alarm {
        id: job.logical("ErrorsAlarm"),
        queue: &job.queue,
        name: "function-errors",
        description: format!("{}'s function crashed, timed out or failed to start", job.spec.name),
        namespace: "AWS/Lambda",
        metric: "Errors",
        dimension: format!("Name: FunctionName, Value: !Ref {}", job.logical("Function")),
        statistic: "Sum",
        period: 300,
        threshold: 0,
        ok_actions: false,
    });
    format!("{why}{alarm}")
}

fn throttles_alarm(job: &Names) -> String {
    alarm(Alarm {
        id: job.logical("ThrottlesAlarm"),
        queue: &job.queue,
        name: "function-throttles",
        description: format!(
            "{}'s function was throttled: the account's concurrency is exhausted",
            job.spec.name
        ),
        namespace: "AWS/Lambda",
        metric: "Throttles",
        dimension: format!("Name: FunctionName, Value: !Ref {}", job.logical("Function")),
        statistic: "Sum",
        period: 300,
        threshold: 0,
        ok_actions: false,
    })
}

/// The dashboard's body, a `!Sub` of CloudWatch's JSON. `<Job>` and `<job>` stand for the
/// logical id prefix and the job's name: JSON's braces would each have to be doubled in a
/// `format!` string.
const DASHBOARD: &str = r#"  <Job>Dashboard:
    Type: AWS::CloudWatch::Dashboard
    Properties:
      DashboardName: !Sub "${AWS::StackName}-<queue>"
      DashboardBody: !Sub |
        {"widgets": [
          {"type": "metric", "x": 0, "y": 0, "width": 12, "height": 6, "properties": {
            "title": "Queue depth", "region": "${AWS::Region}", "stat": "Maximum", "period": 60,
            "metrics": [["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", "${<Job>Queue.QueueName}", {"label": "visible"}],
                        [".", "ApproximateNumberOfMessagesNotVisible", ".", ".", {"label": "in flight"}],
                        [".", "ApproximateNumberOfMessagesDelayed", ".", ".", {"label": "delayed"}]<lane_depth>]}},
          {"type": "metric", "x": 12, "y": 0, "width": 12, "height": 6, "properties": {
            "title": "Oldest message age (s) and DLQ depth", "region": "${AWS::Region}", "stat": "Maximum", "period": 60,
            "metrics": [["AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", "${<Job>Queue.QueueName}", {"label": "oldest age"}],
                        [".", "ApproximateNumberOfMessagesVisible", ".", "${<Job>DLQ.QueueName}", {"label": "DLQ depth", "yAxis": "right"}]<lane_age>]}},
          {"type": "metric", "x": 0, "y": 6, "width": 12, "height": 6, "properties": {
            "title": "Function duration (ms)", "region": "${AWS::Region}", "period": 300,
            "metrics": [["AWS/Lambda", "Duration", "FunctionName", "${<Job>Function}", {"stat": "p50"}],
                        ["...", {"stat": "p99"}],
                        ["...", {"stat": "Maximum"}]]}},
          {"type": "metric", "x": 12, "y": 6, "width": 12, "height": 6, "properties": {
            "title": "Function errors and throttles", "region": "${AWS::Region}", "stat": "Sum", "period": 300,
            "metrics": [["AWS/Lambda", "Errors", "FunctionName", "${<Job>Function}"],
                        [".", "Throttles", ".", "."]]}},
          {"type": "metric", "x": 0, "y": 12, "width": 24, "height": 6, "properties": {
            "title": "Jobs: succeeded, retried, failed, discarded", "region": "${AWS::Region}", "stat": "Sum", "period": 300,
            "metrics": [["${MetricsNamespace}", "succeeded", "job", "<job>"],
                        [".", "retried", ".", "."],
                        [".", "failed", ".", "."],
                        [".", "discarded", ".", "."]]}}
        ]}
"#;

/// The dashboard: its queue widgets show every queue of the job, its other lanes' too.
fn dashboard(job: &Names) -> String {
    let lane_lines = |metric: &str, what: &str| -> String {
        job.lanes
            .iter()
            .map(|lane| {
                format!(
                    ",\n                        [\"AWS/SQS\", \"{metric}\", \"QueueName\", \"${{{id}.QueueName}}\", {{\"label\": \"{lane} lane {what}\"}}]",
                    id = lane.id,
                    lane = lane.lane,
                )
            })
            .collect()
    };
    DASHBOARD
        .replace("<lane_depth>", &lane_lines("ApproximateNumberOfMessagesVisible", "visible"))
        .replace("<lane_age>", &lane_lines("ApproximateAgeOfOldestMessage", "oldest age"))
        .replace("<Job>", &job.id)
        .replace("<job>", job.spec.name)
        .replace("<queue>", &job.queue)
}

/// The job's queue (and its other lanes') and DLQ URLs, which `jobctl --aws` reads from the
/// stack's outputs.
pub(super) fn outputs(spec: &JobSpec) -> String {
    let job = Names::of(spec);
    let lanes: String = job
        .lanes
        .iter()
        .map(|lane| {
            format!(
                "  {id}Url:\n    Description: The {name} queue's {lane} lane\n    Value: !Ref {id}\n",
                id = lane.id,
                name = spec.name,
                lane = lane.lane,
            )
        })
        .collect();
    format!(
        r#"  {id}QueueUrl:
    Description: The {name} queue (send a job here)
    Value: !Ref {queue}
{lanes}  {id}DlqUrl:
    Description: The {name} dead-letter queue
    Value: !Ref {dlq}
"#,
        id = job.id,
        name = spec.name,
        queue = job.logical("Queue"),
        dlq = job.logical("DLQ"),
    )
}
