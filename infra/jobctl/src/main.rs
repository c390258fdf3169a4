//! `jobctl`: see `jobctl --help`.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    jobctl::cli::main().await
}
