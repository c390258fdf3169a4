//! Finding and starting a built function binary under the Runtime API stub.

use std::{
    path::{Path, PathBuf},
    process::{ExitStatus, Stdio},
    sync::{Arc, Mutex},
};

use anyhow::{Context, bail};
use tokio::{
    io::{AsyncBufReadExt, AsyncRead, BufReader},
    sync::Notify,
    task::JoinHandle,
};

/// Where `SYSTEM_TESTS_BOOTSTRAPS` points the tests at release bootstraps instead of the debug
/// binaries of the test build: `.aws-sam/build` (after `sam build`, one `<Function>/bootstrap`
/// per function, named by its logical id in `template.yaml`).
const BOOTSTRAPS_ENV: &str = "SYSTEM_TESTS_BOOTSTRAPS";

/// The binary of the deployed function `logical_id` (the template's name for it), which runs
/// the crate `name`.
///
/// With `SYSTEM_TESTS_BOOTSTRAPS` set (CI sets it after `sam build`), the release `bootstrap`
/// that `sam build` made for that function (`<dir>/<logical id>/bootstrap`), which is what gets
/// deployed. Otherwise the debug binary of the test build, built if the test run did not.
///
/// # Errors
/// If it cannot be found or built.
pub fn deployed_binary(name: &str, logical_id: &str) -> anyhow::Result<PathBuf> {
    match std::env::var_os(BOOTSTRAPS_ENV).filter(|d| !d.is_empty()) {
        Some(dir) => {
            let path = Path::new(&dir).join(logical_id).join("bootstrap");
            if !path.exists() {
                bail!("{} is missing: run `sam build` first, or unset {BOOTSTRAPS_ENV}", path.display());
            }
            Ok(path)
        }
        None => test_build_binary(name),
    }
}

/// The debug binary `name` of the test build, built if the test run did not (also for binaries
/// the template does not deploy, like the example job).
///
/// # Errors
/// If it cannot be found or built.
pub fn test_build_binary(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the test binary")?;
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).context("test binary outside target/")?;
    let path = profile_dir.join(name);
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let status = std::process::Command::new(cargo)
            .args(["build", "-p", name, "--bin", name])
            .status()
            .context("running cargo build")?;
        if !status.success() || !path.exists() {
            bail!("could not build {name}");
        }
    }
    Ok(path)
}

/// What a process wrote so far, filled as it writes (so its pipes never fill up and block it).
#[derive(Default)]
struct Output {
    stdout: Mutex<String>,
    stderr: Mutex<String>,
    changed: Notify,
}

fn collect(
    stream: impl AsyncRead + Unpin + Send + 'static,
    output: Arc<Output>,
    stderr: bool,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut reader = BufReader::new(stream);
        let mut line = Vec::new();
        // Until the pipe closes, whatever it carries: a line that is not UTF-8 is kept lossily
        // rather than ending the reading (which would leave the process blocked on a full pipe).
        while matches!(reader.read_until(b'\n', &mut line).await, Ok(n) if n > 0) {
            let text = String::from_utf8_lossy(&line);
            let buffer = if stderr { &output.stderr } else { &output.stdout };
            let mut kept = buffer.lock().unwrap_or_else(|p| p.into_inner());
            kept.push_str(text.trim_end_matches('\n'));
            kept.push('\n');
            drop(kept);
            line.clear();
            output.changed.notify_waiters();
        }
    })
}

/// A function's logs (stderr) as they are written.
#[derive(Clone)]
pub struct LogWatch(Arc<Output>);

impl LogWatch {
    /// What it wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.0.stderr.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Waits until its logs so far satisfy `ready` (a log line appeared, say).
    pub async fn wait_for(&self, ready: impl Fn(&str) -> bool) {
        loop {
            let changed = self.0.changed.notified();
            if ready(&self.stderr()) {
                return;
            }
            changed.await;
        }
    }
}

/// A function process; killed when dropped.
pub struct FunctionProcess {
    child: tokio::process::Child,
    output: Arc<Output>,
    readers: Vec<JoinHandle<()>>,
}

impl FunctionProcess {
    /// Starts `binary` against the Runtime API at `runtime_api` with extra environment `env`.
    ///
    /// # Errors
    /// If the process cannot start.
    pub fn start(binary: &Path, runtime_api: &str, env: &[(&str, String)]) -> anyhow::Result<Self> {
        let mut command = tokio::process::Command::new(binary);
        command
            .env("AWS_LAMBDA_RUNTIME_API", runtime_api)
            .env("AWS_LAMBDA_FUNCTION_NAME", "test-function")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "test")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/test-function")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().with_context(|| format!("starting {}", binary.display()))?;
        let output = Arc::new(Output::default());
        let mut readers = Vec::new();
        if let Some(stdout) = child.stdout.take() {
            readers.push(collect(stdout, output.clone(), false));
        }
        if let Some(stderr) = child.stderr.take() {
            readers.push(collect(stderr, output.clone(), true));
        }
        Ok(Self { child, output, readers })
    }

    /// The process's peak resident memory so far in KiB (Linux's `VmHWM`), if it is running.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()?)).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    /// What it wrote to stderr (its logs) so far.
    pub fn stderr(&self) -> String {
        self.log_watch().stderr()
    }

    /// A handle on its logs that does not borrow the process.
    pub fn log_watch(&self) -> LogWatch {
        LogWatch(self.output.clone())
    }

    /// Waits for the process to end by itself.
    ///
    /// # Errors
    /// If its status cannot be read.
    pub async fn exited(&mut self) -> anyhow::Result<ExitStatus> {
        self.child.wait().await.context("waiting for the function")
    }

    /// Kills it now (SIGKILL: no destructor, no flush), as Lambda ends an environment that
    /// crashed or ran out of time.
    ///
    /// # Errors
    /// If it cannot be killed.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        self.child.kill().await.context("killing the function")
    }

    /// Stops the process and returns what it wrote (stdout, stderr).
    ///
    /// # Errors
    /// If it cannot be stopped.
    pub async fn stop(mut self) -> anyhow::Result<(String, String)> {
        let _ = self.child.start_kill();
        self.child.wait().await.context("stopping the function")?;
        for reader in self.readers.drain(..) {
            let _ = reader.await;
        }
        let take = |m: &Mutex<String>| std::mem::take(&mut *m.lock().unwrap_or_else(|p| p.into_inner()));
        Ok((take(&self.output.stdout), take(&self.output.stderr)))
    }
}
