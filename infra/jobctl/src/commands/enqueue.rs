//! `jobctl enqueue <job> --args '<json>' [--arg key=value] [--delay 2h | --at <time>]`: the
//! arguments are checked against the job's own argument type before anything is sent.

use std::{future::Future, pin::Pin, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use jobkit::{
    EnqueueError, EnqueueOptions, Enqueuer, Job, JobError, JobId,
    clock::SystemClock,
    enqueue::{DEFAULT_MAX_SCHEDULE_AHEAD, QueueRoutes},
    message::parse_args,
};
use serde_json::{Map, Value, json};

use super::{CommandError, job_spec};
use crate::{
    backend::Backend,
    output::Output,
    registry::{self, JobSpec, JobVisitor},
};

/// When a job sent at `now` with `--delay delay` (or `--at at`) runs.
///
/// # Errors
/// [`CommandError::Input`] when that is more than jobkit's schedule limit ahead (365 days: a job
/// further ahead would hop every 15 minutes for ever), so that it is refused before anything is
/// sent, and a delay no clock can hold never overflows.
pub fn run_at(delay: Duration, now: DateTime<Utc>) -> Result<DateTime<Utc>, CommandError> {
    chrono::Duration::from_std(delay)
        .ok()
        .and_then(|d| now.checked_add_signed(d))
        .filter(|_| delay <= DEFAULT_MAX_SCHEDULE_AHEAD)
        .ok_or_else(|| {
            CommandError::Input(format!(
                "a delay of {} is more than {} days ahead, the furthest a job can be scheduled",
                crate::duration::format(delay),
                DEFAULT_MAX_SCHEDULE_AHEAD.as_secs() / 86_400
            ))
        })
}

/// Checks that `--at at` is within jobkit's schedule limit of `now`.
///
/// # Errors
/// [`CommandError::Input`] naming the limit.
pub fn check_at(at: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), CommandError> {
    let limit = chrono::Duration::from_std(DEFAULT_MAX_SCHEDULE_AHEAD).unwrap_or(chrono::Duration::MAX);
    if at - now > limit {
        return Err(CommandError::Input(format!(
            "--at {} is more than {} days ahead, the furthest a job can be scheduled",
            at.to_rfc3339(),
            DEFAULT_MAX_SCHEDULE_AHEAD.as_secs() / 86_400
        )));
    }
    Ok(())
}

/// What to enqueue.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// The job's name.
    pub job: String,
    /// `--args`: a JSON object.
    pub args: Option<String>,
    /// `--arg key=value`, in order; a value that is JSON (`3`, `true`) is taken as such.
    pub pairs: Vec<String>,
    /// `--delay`.
    pub delay: Option<Duration>,
    /// `--at`.
    pub at: Option<DateTime<Utc>>,
    /// `--lane`.
    pub lane: Option<jobkit::Lane>,
}

/// The arguments object from `--args` and `--arg`s (`--arg` wins on a repeated key).
///
/// # Errors
/// [`CommandError::Input`] for JSON that is not an object or a pair without `=`.
pub fn arguments(request: &Request) -> Result<Value, CommandError> {
    let mut object = match &request.args {
        None => Map::new(),
        Some(text) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => map,
            Ok(other) => {
                return Err(CommandError::Input(format!("--args must be a JSON object, got {other}")));
            }
            Err(e) => return Err(CommandError::Input(format!("--args is not valid JSON: {e}"))),
        },
    };
    for pair in &request.pairs {
        let (key, raw) = pair
            .split_once('=')
            .ok_or_else(|| CommandError::Input(format!("--arg {pair:?} must be key=value")))?;
        let value = serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_owned()));
        object.insert(key.trim().to_owned(), value);
    }
    Ok(Value::Object(object))
}

/// Checks `args` against the argument type of the job named `job`.
struct CheckArgs<'a>(&'a Value);

impl JobVisitor for CheckArgs<'_> {
    type Output = Result<(), JobError>;
    fn visit<J: Job>(self) -> Self::Output {
        parse_args::<J::Args>(self.0).map(drop)
    }
}

/// Sends `args` as a job of the visited type.
struct SendJob {
    backend: Arc<Backend>,
    routes: QueueRoutes,
    args: Value,
    options: EnqueueOptions,
}

type Sent = Pin<Box<dyn Future<Output = Result<JobId, EnqueueError>> + Send>>;

impl JobVisitor for SendJob {
    type Output = Sent;
    fn visit<J: Job>(self) -> Self::Output {
        Box::pin(async move {
            let args = parse_args::<J::Args>(&self.args)?;
            let enqueuer =
                Enqueuer::new(self.backend.queue(), self.backend.store(), Arc::new(SystemClock), self.routes);
            enqueuer.perform_later_with::<J>(&args, self.options).await
        })
    }
}

/// A request whose job exists and whose arguments fit the job's type.
#[derive(Debug, Clone)]
pub struct Checked {
    spec: JobSpec,
    args: Value,
}

/// Judges `request` without a backend: the job must exist and the arguments fit its type.
///
/// # Errors
/// [`CommandError::Input`] saying what does not fit, with the job's example arguments.
pub fn check(request: &Request) -> Result<Checked, CommandError> {
    let spec = job_spec(&request.job)?;
    let args = arguments(request)?;
    registry::visit(spec.name, CheckArgs(&args))?.map_err(|e| {
        CommandError::Input(format!(
            "{} refuses these arguments: {e}; for example: {}",
            spec.name, spec.example
        ))
    })?;
    Ok(Checked { spec, args })
}

/// `jobctl enqueue`, once [`check`]ed.
///
/// # Errors
/// A backend error.
pub async fn enqueue(
    out: Output,
    backend: Arc<Backend>,
    request: &Request,
    checked: Checked,
) -> Result<(), CommandError> {
    let Checked { spec, args } = checked;
    let options = EnqueueOptions {
        delay: request.delay,
        wait_until: request.at,
        lane: request.lane,
        ..EnqueueOptions::default()
    };
    let routes = backend.routes(&spec).await?;
    let queue_id = routes.resolve(spec.name).into_owned();
    let send = SendJob { backend: backend.clone(), routes, args, options };
    let job_id = registry::visit(spec.name, send)?.await.map_err(|e| match e {
        EnqueueError::Port(port) => CommandError::from(port),
        other => CommandError::Input(other.to_string()),
    })?;
    let runs_at = request.at.or_else(|| request.delay.and_then(|d| run_at(d, Utc::now()).ok()));
    if out.json {
        out.json(&json!({
            "job": spec.name, "job_id": job_id.to_string(), "queue": queue_id,
            "runs_at": runs_at.map(|t| t.to_rfc3339()),
        }));
    } else {
        let when =
            runs_at.map(|t| format!(", to run at {} UTC", t.format("%Y-%m-%d %H:%M:%S"))).unwrap_or_default();
        println!("enqueued {} job {job_id} on the {}{when}", spec.name, backend.describe());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delay_may_reach_the_schedule_limit_and_not_a_second_past_it() {
        let now = Utc::now();
        assert!(run_at(DEFAULT_MAX_SCHEDULE_AHEAD, now).is_ok());
        let past = DEFAULT_MAX_SCHEDULE_AHEAD + Duration::from_secs(1);
        assert!(matches!(run_at(past, now), Err(CommandError::Input(_))));
        assert!(matches!(run_at(Duration::MAX, now), Err(CommandError::Input(_))));
        assert!(check_at(now + chrono::Duration::days(365), now).is_ok());
        assert!(matches!(check_at(now + chrono::Duration::days(366), now), Err(CommandError::Input(_))));
    }

    fn request(args: Option<&str>, pairs: &[&str]) -> Request {
        Request {
            job: "store_sync".into(),
            args: args.map(str::to_owned),
            pairs: pairs.iter().map(|p| (*p).to_owned()).collect(),
            ..Request::default()
        }
    }

    #[test]
    fn arguments_merge_json_and_pairs_with_json_values_typed() {
        let args = arguments(&request(
            Some(r#"{"store_id":"st_1","page":1}"#),
            &["page=3", "all=true", "note=hi there"],
        ))
        .expect("valid");
        assert_eq!(args, json!({"store_id": "st_1", "page": 3, "all": true, "note": "hi there"}));
        assert_eq!(arguments(&request(None, &[])).expect("empty"), json!({}));
    }

    #[test]
    fn arguments_that_are_not_an_object_or_pairs_without_equals_are_input_errors() {
        for (args, pairs) in [(Some("[1]"), vec![]), (Some("{oops"), vec![]), (None, vec!["store_id"])] {
            assert!(
                matches!(arguments(&request(args, &pairs)), Err(CommandError::Input(_))),
                "{args:?} {pairs:?}"
            );
        }
    }

    #[test]
    fn each_jobs_own_argument_type_judges_the_arguments() {
        let check = |job: &str, args: Value| registry::visit(job, CheckArgs(&args)).expect("a job");
        assert!(check("store_sync", json!({"store_id": "st_1"})).is_ok());
        assert!(check("store_sync", json!({"all_stores": true})).is_ok());
        assert!(check("store_sync", json!({"store": "st_1"})).is_err(), "unknown field");
        assert!(check("clean_database", json!({})).is_ok());
        assert!(check("customer_sync", json!({"store_id": 42})).is_err(), "wrong type");
        let error =
            check("share_product_text_message", json!({"store_id": "st_1"})).expect_err("missing fields");
        assert!(error.to_string().contains("missing field"), "{error}");
    }
}
