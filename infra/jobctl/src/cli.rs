//! The command line: arguments (clap), which backend, and the exit code.
//!
//! Exit codes: 0 done, 1 the backend failed (or `template --check` found the file stale),
//! 2 bad input (nothing was sent or changed), 3 not confirmed, 4 not found.

use std::{path::PathBuf, process::ExitCode, sync::Arc};

use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand};

use crate::{
    backend::{Backend, DEFAULT_DIR, DEFAULT_STACK, Target},
    commands::{self, CommandError, dlq, enqueue},
    dev::{Dev, DevOptions},
    duration,
    output::Output,
    registry,
};

/// Operate the store's background jobs: on the embedded backend that `jobctl dev` runs (the
/// default, a SQLite file under `.jobs/`), or on a deployed stack with `--aws`.
#[derive(Debug, Parser)]
#[command(name = "jobctl", version)]
pub struct Cli {
    /// Act on the deployed stack's queues (SDK configuration from the environment:
    /// AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL for moto or LocalStack).
    #[arg(long, global = true)]
    aws: bool,
    /// The stack whose queues --aws acts on.
    #[arg(long, global = true, env = "JOBCTL_STACK", default_value = DEFAULT_STACK)]
    stack: String,
    /// The embedded backend's folder.
    #[arg(long, global = true, env = "JOBCTL_DIR", default_value = DEFAULT_DIR)]
    dir: PathBuf,
    /// Print JSON, for scripts.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

/// The most firings `jobctl schedules` lists per schedule: enough to read weeks ahead, while a
/// count without a bound would walk the cron to its last year and print a line no one reads.
const MAX_FIRINGS: i64 = 1000;

#[derive(Debug, Subcommand)]
enum Command {
    /// Run every job locally on the embedded backend (Ctrl-C stops as Sidekiq does on TERM:
    /// step jobs at their next checkpoint, others within 25 s; twice stops at once).
    Dev(DevArgs),
    /// List the jobs: lane, attempts, timeout, schedule, example arguments.
    Jobs {
        /// Print the README's job table (Markdown) instead.
        #[arg(long)]
        markdown: bool,
    },
    /// Enqueue a job; its arguments are checked against the job's type before sending.
    Enqueue(EnqueueArgs),
    /// Per job: queued, in flight, delayed, oldest message's age, DLQ depth.
    Stats,
    /// Pause a job: its messages wait in its queue (on AWS its function's event source mapping
    /// is disabled; `jobctl dev` stops polling it) until `jobctl resume`.
    Pause {
        /// The job.
        job: String,
    },
    /// Resume a paused job.
    Resume {
        /// The job.
        job: String,
    },
    /// Cancel a pending job: its next delivery (a retry, a delayed run, a continuation) is
    /// acknowledged without running. An execution already running finishes.
    Cancel {
        /// The job.
        job: String,
        /// The job id `jobctl enqueue` printed (or `dlq list` shows).
        job_id: String,
    },
    /// Each batch's progress: members finished of all, succeeded, failed, pending, callbacks
    /// sent (newest first).
    Batches {
        /// Only this job's batches.
        job: Option<String>,
        /// At most this many batches per job.
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u16).range(1..))]
        limit: u16,
    },
    /// Inspect, redrive or purge the dead-letter queues.
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// Each recurring tick's schedule, when it fires, its cron expression, its time zone and
    /// its next firings in local time and UTC.
    Schedules {
        /// How many firings to show (1 to 1000).
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=MAX_FIRINGS))]
        count: u16,
        #[command(flatten)]
        zone: StackZone,
    },
    /// Turn a schedule as people write it ("every day at 3am Europe/Berlin", "on the 1st of
    /// every month at 6am") into an EventBridge cron expression and its next firings.
    Cron {
        /// The schedule, in English or as cron(...), optionally followed by a time zone.
        text: String,
    },
    /// The outside APIs' versions the jobs pin (Shopify's Admin API, Square), and how long
    /// each is supported.
    Versions,
    /// The backoff timeline of a job's retry policy.
    RetryPlan {
        /// The job.
        job: String,
    },
    /// What each job costs on AWS per million jobs (and per month at --jobs-per-day), from
    /// the calls counted on the stack deployed on moto, beside a Powertools-Python and a
    /// lambdakiq-style deployment of the same jobs.
    Cost {
        /// Only this job.
        job: Option<String>,
        /// Also the cost of a month at this many jobs a day.
        #[arg(long)]
        jobs_per_day: Option<u64>,
        /// The Lambda architecture to price (the template's default is arm64).
        #[arg(long, value_enum, default_value_t = commands::cost::Architecture::Arm64)]
        architecture: commands::cost::Architecture,
    },
    /// Serve the operator console: a web page of the jobs, their DLQs and policies, on
    /// loopback; prints the URL to open (it carries the access token).
    Console(ConsoleArgs),
    /// Render template.yaml from the job registry and infra/template/shared.yaml, to standard
    /// output (a command for this repository's developers: it reads the checkout it was built from).
    Template {
        /// Write it to the repository's template.yaml instead.
        #[arg(long, conflicts_with = "check")]
        write: bool,
        /// Fail (exit 1) if the repository's template.yaml is not what the registry renders.
        #[arg(long)]
        check: bool,
    },
}

#[derive(Debug, Args)]
struct DevArgs {
    /// Run the demo: three stores on a local Shopify and POS sandbox, every job, retries into
    /// the DLQ on a virtual clock, then a summary (in <dir>/demo, emptied first).
    #[arg(long)]
    demo: bool,
    /// Stop once every job queue is empty, then print a summary. Retries waiting out their
    /// backoff and delayed jobs count: it waits for them.
    #[arg(long)]
    until_idle: bool,
    /// Do not tick the schedules.
    #[arg(long)]
    no_schedules: bool,
    #[command(flatten)]
    zone: StackZone,
    /// Shopify's base URL, `{shop}` standing for the shop's name (default: the real Shopify).
    #[arg(long, env = "JOBCTL_SHOPIFY_URL")]
    shopify_url: Option<String>,
    /// Square's base URL (default: the real Square).
    #[arg(long, env = "JOBCTL_SQUARE_URL")]
    square_url: Option<String>,
    /// Log JSON lines instead of readable text.
    #[arg(long)]
    json_logs: bool,
    /// With --demo: every record's log lines on stderr, not only in <dir>/demo/demo.log.
    #[arg(long, requires = "demo")]
    verbose: bool,
}

/// The zone of the schedules declared in the stack's zone (its `ScheduleTimeZone` parameter).
#[derive(Debug, Args)]
struct StackZone {
    /// The time zone a deployment gives the stack's ScheduleTimeZone parameter, for the
    /// schedules declared in it (IANA name, e.g. Europe/Berlin).
    #[arg(long, env = "JOBCTL_SCHEDULE_TIME_ZONE", default_value = registry::STACK_ZONE_DEFAULT, value_parser = parse_zone)]
    schedule_time_zone: chrono_tz::Tz,
}

#[derive(Debug, Args)]
struct ConsoleArgs {
    /// The port (default: a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// The address to listen on; anything but loopback exposes the console (behind its token)
    /// to the network.
    #[arg(long, default_value = "127.0.0.1")]
    bind: std::net::IpAddr,
    /// Show, never change: no buttons, and every POST is refused.
    #[arg(long)]
    read_only: bool,
}

#[derive(Debug, Args)]
struct EnqueueArgs {
    /// The job (see `jobctl jobs`).
    job: String,
    /// The arguments, a JSON object.
    #[arg(long, conflicts_with = "file")]
    args: Option<String>,
    /// One argument, key=value (repeatable; a JSON value such as 3 or true is taken as such).
    #[arg(long = "arg", value_name = "KEY=VALUE", conflicts_with = "file")]
    pairs: Vec<String>,
    /// Many jobs: a file with one JSON object of arguments per line (`-` for standard input).
    /// Every line is checked first; a bad line sends nothing.
    #[arg(long, value_name = "PATH")]
    file: Option<std::path::PathBuf>,
    /// Run after this long: 90s, 15m, 2h, 1d (SQS's 15-minute limit is hopped).
    #[arg(long, value_parser = parse_delay, conflicts_with = "at")]
    delay: Option<std::time::Duration>,
    /// Run at (or after) this time, RFC 3339 (2026-11-23T03:00:00Z).
    #[arg(long, value_parser = parse_time)]
    at: Option<DateTime<Utc>>,
    /// The lane to run on (high, default, low), one of the job's (see `jobctl jobs`), instead
    /// of the one the job picks from its arguments.
    #[arg(long, value_parser = parse_lane)]
    lane: Option<jobkit::Lane>,
}

fn parse_lane(text: &str) -> Result<jobkit::Lane, String> {
    text.parse().map_err(|e: jobkit::job::UnknownLane| e.to_string())
}

#[derive(Debug, Subcommand)]
enum DlqCommand {
    /// What is in the DLQs: id, job, error kind, message, attempts, failed at.
    List {
        /// Only this job's DLQ.
        job: Option<String>,
        /// Only messages that failed with this error kind.
        #[arg(long)]
        error: Option<String>,
        /// Read at most this many messages per DLQ.
        #[arg(long, default_value_t = dlq::DEFAULT_LIST_LIMIT)]
        limit: usize,
        /// Read every message (a large DLQ takes a while: each message is received).
        #[arg(long, conflicts_with = "limit")]
        all: bool,
    },
    /// Per job and error kind: how many, the oldest and newest failure.
    Summary {
        /// Only this job's DLQ.
        job: Option<String>,
        /// Read at most this many messages per DLQ.
        #[arg(long, default_value_t = dlq::DEFAULT_SUMMARY_LIMIT)]
        limit: usize,
    },
    /// One message: the full error, its attributes and arguments.
    Show {
        /// The job id (or SQS message id).
        id: String,
        /// Look only in this job's DLQ.
        #[arg(long)]
        job: Option<String>,
    },
    /// Send DLQ messages back to the job's queue (after the fix).
    Redrive {
        /// The job.
        job: String,
        /// Only messages that failed with this error kind.
        #[arg(long)]
        error: Option<String>,
        /// At most this many.
        #[arg(long)]
        limit: Option<usize>,
        /// At most this many per second (1 to 1000).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1000))]
        rate: Option<u32>,
        /// Show what would be redriven; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Delete every message of a job's DLQ (asks to type the job's name).
    Purge {
        /// The job.
        job: String,
        /// Do not ask.
        #[arg(long)]
        yes: bool,
    },
}

fn parse_delay(text: &str) -> Result<std::time::Duration, String> {
    duration::parse(text).map_err(|e| e.to_string())
}

fn parse_zone(text: &str) -> Result<chrono_tz::Tz, String> {
    crate::schedule::zone(text).map_err(|e| e.to_string())
}

fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{e}: write RFC 3339, e.g. 2026-11-23T03:00:00Z"))
}

/// The text of a `--file` of jobs (`-`: standard input).
fn read_jobs_file(path: &std::path::Path) -> Result<String, CommandError> {
    let read = if path.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(path)
    };
    read.map_err(|e| CommandError::Input(format!("cannot read {}: {e}", path.display())))
}

/// Parses the command line, runs the command, and turns its outcome into the exit code.
pub async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("jobctl: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}

async fn run(cli: Cli) -> Result<(), CommandError> {
    let out = Output { json: cli.json };
    let now = Utc::now();
    let target = if cli.aws { Target::Aws { stack: cli.stack } } else { Target::Embedded(cli.dir.clone()) };
    match cli.command {
        Command::Dev(_) if cli.aws => Err(CommandError::Input(
            "jobctl dev runs on the embedded backend; on AWS the functions run the jobs".into(),
        )),
        Command::Dev(args) => dev(out, cli.dir, args).await,
        Command::Jobs { markdown: false } => commands::info::jobs(out),
        Command::Jobs { markdown: true } => {
            println!("{}", registry::jobs_markdown(&registry::specs()?));
            Ok(())
        }
        Command::Schedules { count, zone } => {
            commands::info::schedules(out, usize::from(count), now, zone.schedule_time_zone)
        }
        Command::Cron { text } => commands::info::cron(out, &text, now),
        Command::RetryPlan { job } => commands::info::retry_plan(out, &job),
        Command::Versions => {
            commands::versions::versions(out);
            Ok(())
        }
        Command::Cost { job, jobs_per_day, architecture } => {
            commands::cost::cost(out, job.as_deref(), jobs_per_day, architecture)
        }
        Command::Template { write, check } => commands::template::template(match (write, check) {
            (true, _) => commands::template::Mode::Write,
            (_, true) => commands::template::Mode::Check,
            _ => commands::template::Mode::Print,
        }),
        Command::Enqueue(EnqueueArgs { job, file: Some(path), delay, at, lane, .. }) => {
            if let Some(delay) = delay {
                enqueue::run_at(delay, now)?;
            }
            if let Some(at) = at {
                enqueue::check_at(at, now)?;
            }
            let text = read_jobs_file(&path)?;
            // Every line judged before the backend is opened: a bad file sends nothing.
            let checked = commands::bulk::check(&job, &text)?;
            let backend = Arc::new(Backend::open(&target).await?);
            let options = jobkit::EnqueueOptions { delay, wait_until: at, lane, ..Default::default() };
            commands::bulk::enqueue(out, backend, options, checked).await
        }
        Command::Enqueue(args) => {
            if let Some(delay) = args.delay {
                enqueue::run_at(delay, now)?;
            }
            if let Some(at) = args.at {
                enqueue::check_at(at, now)?;
            }
            let request = enqueue::Request {
                job: args.job,
                args: args.args,
                pairs: args.pairs,
                delay: args.delay,
                at: args.at,
                lane: args.lane,
            };
            // Judged before the backend is opened: nothing is sent when the arguments do not fit.
            let checked = enqueue::check(&request)?;
            let backend = Arc::new(Backend::open(&target).await?);
            enqueue::enqueue(out, backend, &request, checked).await
        }
        Command::Stats => commands::stats::stats(out, &Backend::open(&target).await?).await,
        Command::Console(args) => {
            let options =
                crate::console::Options { bind: args.bind, port: args.port, read_only: args.read_only };
            Ok(crate::console::serve(Backend::open(&target).await?, options).await?)
        }
        Command::Pause { job } => commands::pause::set(out, &Backend::open(&target).await?, &job, true).await,
        Command::Resume { job } => {
            commands::pause::set(out, &Backend::open(&target).await?, &job, false).await
        }
        Command::Batches { job, limit } => {
            if let Some(job) = &job {
                commands::job_spec(job)?;
            }
            commands::batches::batches(
                out,
                &Backend::open(&target).await?,
                job.as_deref(),
                usize::from(limit),
            )
            .await
        }
        Command::Cancel { job, job_id } => {
            commands::job_spec(&job)?;
            commands::cancel::cancel(out, &Backend::open(&target).await?, &job, &job_id, now).await
        }
        Command::Dlq(command) => {
            let backend = Backend::open(&target).await?;
            match command {
                DlqCommand::List { job, error, limit, all } => {
                    let limit = if all { usize::MAX } else { limit };
                    dlq::list(out, &backend, job.as_deref(), error.as_deref(), limit).await
                }
                DlqCommand::Summary { job, limit } => {
                    dlq::summary(out, &backend, job.as_deref(), limit).await
                }
                DlqCommand::Show { id, job } => dlq::show(out, &backend, &id, job.as_deref()).await,
                DlqCommand::Redrive { job, error, limit, rate, dry_run } => {
                    dlq::redrive(out, &backend, dlq::Redrive { job, error, limit, rate, dry_run }).await
                }
                DlqCommand::Purge { job, yes } => dlq::purge(out, &backend, &job, yes).await,
            }
        }
    }
}

async fn dev(out: Output, dir: PathBuf, args: DevArgs) -> Result<(), CommandError> {
    if args.demo {
        let folder = crate::demo::fresh_folder(&dir)?;
        let log = if args.verbose {
            jobkit::telemetry::init_logging(args.json_logs);
            None
        } else {
            let (path, file) = crate::demo::log_file(&folder)?;
            jobkit::telemetry::init_logging_to(args.json_logs, std::sync::Mutex::new(file));
            Some(path)
        };
        let report = crate::demo::run(&folder).await?;
        print_demo(out, &report, &folder);
        if let (Some(log), false) = (log, out.json) {
            println!("every record's log lines: {} (--verbose shows them here)", log.display());
        }
        return Ok(());
    }
    jobkit::telemetry::init_logging(args.json_logs);
    let options = DevOptions {
        until_idle: args.until_idle,
        shopify_url: args.shopify_url,
        square_url: args.square_url,
        schedules: !args.no_schedules,
        stack_zone: args.zone.schedule_time_zone,
        ..DevOptions::new(dir)
    };
    let mut system = Dev::open(&options).await?;
    eprintln!("jobctl dev: every job on the {}; Ctrl-C stops", system.describe());
    let started = std::time::Instant::now();
    let tallies = system.run(options.until_idle).await?;
    let outbox = crate::dev::outbox(&options.dir);
    if out.json {
        out.json(&serde_json::json!({"jobs": tallies, "seconds": started.elapsed().as_secs_f64(), "outbox": outbox}));
    } else {
        let rows: Vec<Vec<String>> = tallies
            .iter()
            .map(|t| {
                vec![
                    t.job.to_owned(),
                    t.succeeded.to_string(),
                    t.retried.to_string(),
                    t.dead_lettered.to_string(),
                ]
            })
            .collect();
        out.table(&["JOB", "SUCCEEDED", "RETRIED", "TO DLQ"], &rows);
        println!("in {:.1}s; mail and texts in {}", started.elapsed().as_secs_f64(), outbox.display());
    }
    Ok(())
}

fn print_demo(out: Output, report: &crate::demo::DemoReport, dir: &std::path::Path) {
    if out.json {
        out.json(&serde_json::json!(report));
        return;
    }
    let rows: Vec<Vec<String>> = report
        .jobs
        .iter()
        .map(|t| {
            vec![
                t.job.to_owned(),
                t.succeeded.to_string(),
                t.retried.to_string(),
                t.dead_lettered.to_string(),
            ]
        })
        .collect();
    println!();
    out.table(&["JOB", "SUCCEEDED", "RETRIED", "TO DLQ"], &rows);
    println!("\nin the DLQs ({}):", report.dead_letters.len());
    for letter in &report.dead_letters {
        println!("  {}: {} ({}): {}", letter.job, letter.error_kind, letter.reason, letter.message);
    }
    let catalog: Vec<String> = report.products.iter().map(|(store, n)| format!("{store} {n}")).collect();
    println!("\nproducts synced: {}; sync runs recorded: {}", catalog.join(", "), report.sync_runs);
    println!("carts abandoned and their stock released: {}", report.carts_abandoned);
    let outbox = crate::dev::outbox(dir);
    println!("\noutbox: {} error email(s) in {}", report.emails, outbox.join("mail").display());
    println!("        {} text(s) in {}", report.texts, outbox.join("sms").display());
    println!(
        "\n{:.1}s of real time; the virtual clock moved {:.1} hours through the backoffs",
        report.seconds, report.virtual_hours
    );
    println!("look around: cargo run -q -p jobctl -- --dir {} dlq list", dir.display());
}
