//! The console's routes: access checks around every request, then one handler per page or
//! action, each a call into `crate::commands` and a page of `super::pages`.

use std::sync::Arc;

use axum::{
    Router,
    body::Body,
    extract::{
        Form, Path, Query, Request,
        rejection::{FormRejection, PathRejection},
    },
    http::{HeaderValue, Method, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
};
use chrono::Utc;
use serde::Deserialize;

use super::{
    auth::{Access, Visit},
    pages::{self, Page},
};
use crate::{
    backend::Backend,
    commands::{CommandError, dlq, info, pause, stats},
    registry::{self, JobSpec},
};

/// The vendored htmx (2.0.11, BSD Zero Clause; see `assets/README.md`).
const HTMX: &str = include_str!("assets/htmx.min.js");
const CSS: &str = include_str!("assets/console.css");

/// The largest form body read (a redrive's or purge's form is a few hundred bytes).
const MAX_FORM_BYTES: usize = 16 * 1024;

/// How many messages per DLQ the pages read (as `jobctl dlq list` does unless told).
const LIST_LIMIT: usize = dlq::DEFAULT_LIST_LIMIT;

/// What every handler shares.
pub(crate) struct State {
    pub(crate) backend: Backend,
    pub(crate) access: Access,
    pub(crate) read_only: bool,
}

type Shared = Arc<State>;

impl State {
    fn page(&self) -> Page<'_> {
        Page { backend: self.backend.describe(), csrf: self.access.csrf(), read_only: self.read_only }
    }
}

/// The application: routes behind the access checks.
pub(crate) fn router(state: Shared) -> Router {
    Router::new()
        .route("/", get(overview))
        .route("/fragments/overview", get(overview_rows))
        .route("/jobs/{job}", get(job_page))
        .route("/jobs/{job}/pause", post(pause_job))
        .route("/jobs/{job}/resume", post(resume_job))
        .route("/dlq", get(dlq_page))
        .route("/dlq/{job}/redrive", post(redrive))
        .route("/dlq/{job}/purge", post(purge))
        .route("/dlq/{job}/messages/{id}", get(message_page))
        .route("/assets/htmx.min.js", get(|| async { asset(HTMX, "text/javascript") }))
        .route("/assets/console.css", get(|| async { asset(CSS, "text/css") }))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .layer(middleware::from_fn(headers))
        .with_state(state)
}

/// A page that says what went wrong, with its status.
#[derive(Debug)]
pub(crate) struct PageError {
    status: StatusCode,
    title: &'static str,
    message: String,
}

impl PageError {
    fn new(status: StatusCode, title: &'static str, message: impl Into<String>) -> Self {
        Self { status, title, message: message.into() }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "Bad request", message)
    }
}

impl From<CommandError> for PageError {
    fn from(e: CommandError) -> Self {
        let message = e.to_string();
        match e {
            CommandError::Input(_) => Self::bad_request(message),
            CommandError::Declined(_) => Self::new(StatusCode::BAD_REQUEST, "Not confirmed", message),
            CommandError::NotFound(_) => Self::new(StatusCode::NOT_FOUND, "Not found", message),
            CommandError::Backend(_) => Self::new(StatusCode::BAD_GATEWAY, "The backend failed", message),
            _ => Self::new(StatusCode::INTERNAL_SERVER_ERROR, "The console failed", message),
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        (self.status, pages::html(pages::error_page(self.status, self.title, &self.message))).into_response()
    }
}

type PageResult = Result<Response, PageError>;

/// Headers every answer gets: no caching (pages hold live numbers and a CSRF token), no
/// framing, no referrer (the first URL carries the access token), scripts and styles from the
/// console only.
async fn headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let set = [
        (header::CACHE_CONTROL, "no-store"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    ];
    for (name, value) in set {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// The access checks: the token (cookie, or the URL on a first visit) on every request; on a
/// POST, not read-only and the form's CSRF token.
async fn guard(
    axum::extract::State(state): axum::extract::State<Shared>,
    request: Request,
    next: Next,
) -> Response {
    let cookies = request.headers().get(header::COOKIE).and_then(|v| v.to_str().ok());
    match state.access.visit(request.uri().path(), request.uri().query(), cookies) {
        Visit::Known => {}
        Visit::FromUrl { path } => {
            let mut response = Redirect::to(&path).into_response();
            if let Ok(cookie) = HeaderValue::from_str(&state.access.set_cookie()) {
                response.headers_mut().insert(header::SET_COOKIE, cookie);
            }
            return response;
        }
        Visit::Refused => {
            return PageError::new(
                StatusCode::UNAUTHORIZED,
                "Open the console's URL",
                "This console needs its access token: open the URL `jobctl console` printed \
                 (http://127.0.0.1:PORT/?token=...).",
            )
            .into_response();
        }
    }
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    if state.read_only {
        return PageError::new(
            StatusCode::FORBIDDEN,
            "Read-only",
            "This console was started with --read-only.",
        )
        .into_response();
    }
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_FORM_BYTES).await else {
        return PageError::bad_request("the form is too large").into_response();
    };
    let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes).unwrap_or_default();
    let csrf = fields.iter().find(|(k, _)| k == "csrf").map(|(_, v)| v.as_str()).unwrap_or_default();
    if !state.access.csrf_ok(csrf) {
        return PageError::new(
            StatusCode::FORBIDDEN,
            "Form expired",
            "The form did not carry this console's CSRF token: reload the page and try again.",
        )
        .into_response();
    }
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

fn asset(text: &'static str, kind: &'static str) -> Response {
    ([(header::CONTENT_TYPE, kind)], text).into_response()
}

async fn not_found() -> PageError {
    PageError::new(StatusCode::NOT_FOUND, "Not found", "There is no such page in the console.")
}

/// The registry's entry for the job in a path; a 404 page naming the jobs otherwise.
fn known_job(job: Result<Path<String>, PathRejection>) -> Result<JobSpec, PageError> {
    let Path(job) = job.map_err(|e| PageError::bad_request(e.body_text()))?;
    registry::spec(&job).map_err(|e| match e {
        registry::RegistryError::Unknown(unknown) => {
            PageError::new(StatusCode::NOT_FOUND, "No such job", unknown.to_string())
        }
        other => CommandError::from(other).into(),
    })
}

async fn overview(axum::extract::State(state): axum::extract::State<Shared>) -> PageResult {
    let mut rows = overview_data(&state).await?;
    // Batches on the page's load only, not on every 5 s refresh: on AWS listing them scans
    // the state table. The five newest of each job, newest first over all.
    rows.batches = state.backend.batches(registry::JOB_NAMES, 5).await.map_err(CommandError::from)?;
    Ok(pages::html(pages::overview(&state.page(), &rows)))
}

async fn overview_rows(axum::extract::State(state): axum::extract::State<Shared>) -> PageResult {
    let rows = overview_data(&state).await?;
    Ok(pages::html(pages::overview_rows(&rows)))
}

/// The overview's job rows (its batches are the page's to add).
async fn overview_data(state: &State) -> Result<pages::Overview, PageError> {
    let stats = stats::collect(&state.backend).await?;
    let specs = registry::specs().map_err(CommandError::from)?;
    let now = Utc::now();
    let mut jobs = Vec::new();
    for row in stats.jobs {
        let Some(spec) = specs.iter().find(|s| s.name == row.job).cloned() else { continue };
        let next = match &spec.schedule {
            Some(schedule) => info::next_firing(schedule, now)?,
            None => None,
        };
        jobs.push(pages::JobRow { spec, stats: row, next });
    }
    Ok(pages::Overview { jobs, paused_unknown: stats.paused_unknown, at: now, batches: Vec::new() })
}

async fn job_page(
    axum::extract::State(state): axum::extract::State<Shared>,
    job: Result<Path<String>, PathRejection>,
) -> PageResult {
    let spec = known_job(job)?;
    let mut paused_unknown = None;
    let stats = stats::job_stats(&state.backend, &spec, &mut paused_unknown).await?;
    let letters = dlq::read(&state.backend, Some(spec.name), None, LIST_LIMIT).await?;
    let plans = info::plans(&spec);
    let view =
        pages::JobView { spec: &spec, stats: &stats, paused_unknown, plans: &plans, letters: &letters };
    Ok(pages::html(pages::job(&state.page(), &view)))
}

#[derive(Debug, Deserialize)]
struct DlqQuery {
    job: Option<String>,
    error: Option<String>,
}

async fn dlq_page(
    axum::extract::State(state): axum::extract::State<Shared>,
    query: Result<Query<DlqQuery>, axum::extract::rejection::QueryRejection>,
) -> PageResult {
    let Query(query) = query.map_err(|e| PageError::bad_request(e.body_text()))?;
    let job = match query.job.as_deref().filter(|j| !j.is_empty()) {
        Some(job) => Some(known_job(Ok(Path(job.to_owned())))?.name),
        None => None,
    };
    let error = query.error.as_deref().filter(|e| !e.is_empty());
    let letters = dlq::read(&state.backend, job, error, LIST_LIMIT).await?;
    let depth = dlq::depth(&state.backend, &crate::commands::jobs_or_all(job)?).await?;
    let view = pages::DlqView { job, error, letters: &letters, depth, limit: LIST_LIMIT };
    Ok(pages::html(pages::dlq(&state.page(), &view)))
}

/// The longest id a message page takes: job ids past a DynamoDB key are hashed by jobkit, and
/// SQS message ids are UUIDs.
const MAX_ID_LEN: usize = 1024;

async fn message_page(
    axum::extract::State(state): axum::extract::State<Shared>,
    ids: Result<Path<(String, String)>, PathRejection>,
) -> PageResult {
    let Path((job, id)) = ids.map_err(|e| PageError::bad_request(e.body_text()))?;
    let spec = known_job(Ok(Path(job)))?;
    if id.is_empty() || id.len() > MAX_ID_LEN || id.chars().any(char::is_control) {
        return Err(PageError::bad_request(format!(
            "a message id is 1 to {MAX_ID_LEN} characters, none of them control characters"
        )));
    }
    let letter = dlq::find(&state.backend, &id, Some(spec.name)).await?;
    Ok(pages::html(pages::message(&state.page(), &letter)))
}

async fn pause_job(
    axum::extract::State(state): axum::extract::State<Shared>,
    job: Result<Path<String>, PathRejection>,
) -> PageResult {
    set_paused(&state, job, true).await
}

async fn resume_job(
    axum::extract::State(state): axum::extract::State<Shared>,
    job: Result<Path<String>, PathRejection>,
) -> PageResult {
    set_paused(&state, job, false).await
}

async fn set_paused(state: &State, job: Result<Path<String>, PathRejection>, paused: bool) -> PageResult {
    let spec = known_job(job)?;
    pause::set_paused(&state.backend, spec.name, paused).await?;
    // Post/redirect/get: the job's page shows the state read back, and reloading it does not
    // send the form again.
    Ok(Redirect::to(&format!("/jobs/{}", spec.name)).into_response())
}

/// A form's fields (the guard has checked its CSRF token), or a 400 page.
fn fields(
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Result<Vec<(String, String)>, PageError> {
    form.map(|Form(fields)| fields).map_err(|e| PageError::bad_request(e.body_text()))
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.trim()).filter(|v| !v.is_empty())
}

/// A number field within `range`, or a 400 page naming it.
fn number<T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy>(
    fields: &[(String, String)],
    name: &str,
    range: std::ops::RangeInclusive<T>,
) -> Result<Option<T>, PageError> {
    let Some(text) = field(fields, name) else { return Ok(None) };
    match text.parse::<T>() {
        Ok(n) if range.contains(&n) => Ok(Some(n)),
        _ => Err(PageError::bad_request(format!(
            "{name} must be a whole number from {} to {}",
            range.start(),
            range.end()
        ))),
    }
}

async fn redrive(
    axum::extract::State(state): axum::extract::State<Shared>,
    job: Result<Path<String>, PathRejection>,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> PageResult {
    let spec = known_job(job)?;
    let fields = fields(form)?;
    let request = dlq::Redrive {
        job: spec.name.to_owned(),
        error: field(&fields, "error").map(str::to_owned),
        limit: number(&fields, "limit", 1..=100_000usize)?,
        rate: number(&fields, "rate", 1..=1000u32)?,
        dry_run: false,
    };
    let moved = dlq::redrive_messages(&state.backend, &request).await?;
    Ok(pages::html(pages::redriven(&state.page(), &request, &moved)))
}

async fn purge(
    axum::extract::State(state): axum::extract::State<Shared>,
    job: Result<Path<String>, PathRejection>,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> PageResult {
    let spec = known_job(job)?;
    let fields = fields(form)?;
    dlq::confirm_purge(spec.name, field(&fields, "confirm").unwrap_or_default())?;
    let purged = dlq::purge_dlq(&state.backend, spec.name).await?;
    Ok(pages::html(pages::purged(&state.page(), spec.name, purged)))
}
