//! A Lambda Runtime API stub on loopback: it hands events to a function binary through
//! `GET /runtime/invocation/next` and collects what it answers, as Lambda's service does.
//!
//! Invariant: one invocation at a time, in the order events were queued, like one Lambda
//! execution environment.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Instant,
};

use anyhow::{Context, bail};
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
    sync::{Notify, mpsc, oneshot},
};

/// What a function answered for one invocation.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// `POST /invocation/{id}/response`.
    Response(serde_json::Value),
    /// `POST /invocation/{id}/error`.
    Error(serde_json::Value),
}

struct Pending {
    event: serde_json::Value,
    deadline_ms: u64,
    request_id: String,
    answer: oneshot::Sender<Answer>,
}

#[derive(Default)]
struct Shared {
    waiting: Mutex<HashMap<String, oneshot::Sender<Answer>>>,
    first_next_at: Mutex<Option<Instant>>,
    init_error: Mutex<Option<String>>,
    next_called: Notify,
}

/// The stub; dropping it stops serving.
pub struct RuntimeApi {
    addr: SocketAddr,
    events: mpsc::UnboundedSender<Pending>,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RuntimeApi {
    /// Starts serving on a free loopback port.
    ///
    /// # Errors
    /// If no port can be bound.
    pub async fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await.context("binding the runtime API stub")?;
        let addr = listener.local_addr()?;
        let (events, queue) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared::default());
        let task = tokio::spawn(serve(listener, Arc::new(tokio::sync::Mutex::new(queue)), shared.clone()));
        Ok(Self { addr, events, shared, task })
    }

    /// The value for `AWS_LAMBDA_RUNTIME_API`.
    pub fn endpoint(&self) -> String {
        self.addr.to_string()
    }

    /// Invokes the function with `event`, giving it until `deadline_ms` (epoch ms), and waits for
    /// its answer.
    ///
    /// Waits as long as it takes: a caller that may see the function die races this against
    /// the process's exit or a timeout (as `lambda::LocalLambda` does).
    ///
    /// # Errors
    /// If the stub stopped.
    pub async fn invoke(&self, event: serde_json::Value, deadline_ms: u64) -> anyhow::Result<Answer> {
        let (answer, answered) = oneshot::channel();
        let request_id = uuid_like();
        self.events
            .send(Pending { event, deadline_ms, request_id, answer })
            .map_err(|_| anyhow::anyhow!("the runtime API stub stopped"))?;
        match answered.await {
            Ok(answer) => Ok(answer),
            Err(_) => bail!("the function did not answer: {:?}", self.init_error()),
        }
    }

    /// When the function first asked for an invocation (the end of its cold start).
    pub fn first_next_at(&self) -> Option<Instant> {
        *self.shared.first_next_at.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until the function asks for its first invocation.
    pub async fn wait_for_first_next(&self) {
        loop {
            let notified = self.shared.next_called.notified();
            if self.first_next_at().is_some() {
                return;
            }
            notified.await;
        }
    }

    /// The init error the function reported, if any.
    pub fn init_error(&self) -> Option<String> {
        self.shared.init_error.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!("00000000-0000-4000-8000-{:012x}", NEXT.fetch_add(1, Ordering::Relaxed))
}

type EventQueue = Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Pending>>>;

async fn serve(listener: TcpListener, queue: EventQueue, shared: Arc<Shared>) {
    while let Ok((stream, _)) = listener.accept().await {
        tokio::spawn(serve_connection(stream, queue.clone(), shared.clone()));
    }
}

struct Request {
    method: String,
    path: String,
    body: Vec<u8>,
}

async fn read_request(reader: &mut BufReader<TcpStream>) -> anyhow::Result<Option<Request>> {
    let mut line = String::new();
    if reader.read_line(&mut line).await? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let (Some(method), Some(path)) = (parts.next(), parts.next()) else { bail!("bad request line {line:?}") };
    let (method, path) = (method.to_owned(), path.to_owned());
    let mut length = 0usize;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).await?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().context("content-length")?;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).await?;
    Ok(Some(Request { method, path, body }))
}

async fn serve_connection(stream: TcpStream, queue: EventQueue, shared: Arc<Shared>) {
    let mut reader = BufReader::new(stream);
    while let Ok(Some(request)) = read_request(&mut reader).await {
        let reply = route(request, &queue, &shared).await;
        if reader.get_mut().write_all(reply.as_bytes()).await.is_err() {
            return;
        }
    }
}

async fn route(request: Request, queue: &EventQueue, shared: &Shared) -> String {
    const PREFIX: &str = "/2018-06-01/runtime/";
    let path = request.path.strip_prefix(PREFIX).unwrap_or(&request.path);
    let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap_or(serde_json::Value::Null);
    match (request.method.as_str(), path.split('/').collect::<Vec<_>>().as_slice()) {
        ("GET", ["invocation", "next"]) => next_invocation(queue, shared).await,
        ("POST", ["invocation", id, "response"]) => answer(shared, id, Answer::Response(body)),
        ("POST", ["invocation", id, "error"]) => answer(shared, id, Answer::Error(body)),
        ("POST", ["init", "error"]) => {
            *shared.init_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(body.to_string());
            http(202, &[], "{}")
        }
        _ => http(404, &[], "{}"),
    }
}

async fn next_invocation(queue: &EventQueue, shared: &Shared) -> String {
    {
        let mut first = shared.first_next_at.lock().unwrap_or_else(|p| p.into_inner());
        first.get_or_insert_with(Instant::now);
    }
    shared.next_called.notify_waiters();
    let Some(pending) = queue.lock().await.recv().await else { return http(500, &[], "{}") };
    shared
        .waiting
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(pending.request_id.clone(), pending.answer);
    let deadline = pending.deadline_ms.to_string();
    let headers = [
        ("Lambda-Runtime-Aws-Request-Id", pending.request_id.as_str()),
        ("Lambda-Runtime-Deadline-Ms", deadline.as_str()),
        ("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:test"),
        ("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000;Sampled=0"),
    ];
    http(200, &headers, &pending.event.to_string())
}

fn answer(shared: &Shared, id: &str, answer: Answer) -> String {
    if let Some(sender) = shared.waiting.lock().unwrap_or_else(|p| p.into_inner()).remove(id) {
        let _ = sender.send(answer);
    }
    http(202, &[], "{}")
}

fn http(status: u16, headers: &[(&str, &str)], body: &str) -> String {
    let mut out = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(body);
    out
}
