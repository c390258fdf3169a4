//! What the tests of the real `jobctl` binary share.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::atomic::{AtomicU32, Ordering},
};

/// A fresh embedded backend folder for one test.
pub fn folder(name: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "jobctl-cli-{}-{}-{name}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// `jobctl --dir <dir> <args>`: warnings only, no stack from the environment, no input.
pub fn jobctl_command(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_jobctl"));
    command
        .arg("--dir")
        .arg(dir)
        .args(args)
        .env_remove("JOBCTL_STACK")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null());
    command
}
