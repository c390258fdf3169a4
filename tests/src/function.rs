//! Finding and starting a built function binary under the Runtime API stub.

use std::{
    path::PathBuf,
    process::{Command, Stdio},
};

use anyhow::{Context, bail};

/// The path of the debug binary `name`, building it if the test run did not.
///
/// # Errors
/// If it cannot be found or built.
pub fn binary(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the test binary")?;
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).context("test binary outside target/")?;
    let path = profile_dir.join(name);
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let status = Command::new(cargo)
            .args(["build", "-p", name, "--bin", name])
            .status()
            .context("running cargo build")?;
        if !status.success() || !path.exists() {
            bail!("could not build {name}");
        }
    }
    Ok(path)
}

/// A function process; killed when dropped.
pub struct FunctionProcess {
    child: tokio::process::Child,
}

impl FunctionProcess {
    /// Starts `binary` against the Runtime API at `runtime_api` with extra environment `env`.
    ///
    /// # Errors
    /// If the process cannot start.
    pub fn start(binary: &PathBuf, runtime_api: &str, env: &[(&str, String)]) -> anyhow::Result<Self> {
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
        let child = command.spawn().with_context(|| format!("starting {}", binary.display()))?;
        Ok(Self { child })
    }

    /// The process's peak resident memory so far in KiB (Linux's `VmHWM`), if it is running.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()?)).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    /// Stops the process and returns what it wrote (stdout, stderr).
    ///
    /// # Errors
    /// If its output cannot be read.
    pub async fn stop(mut self) -> anyhow::Result<(String, String)> {
        let _ = self.child.start_kill();
        let output = self.child.wait_with_output().await.context("collecting the function's output")?;
        Ok((
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        ))
    }
}
