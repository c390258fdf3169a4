//! Mailers without SES: files in an outbox folder (`jobctl dev`) and a list in memory (tests).

use std::{
    path::{Path, PathBuf},
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use async_trait::async_trait;

use crate::{
    error::{PortError, PortResult},
    ports::{Email, Mailer},
};

/// Writes each email as a readable `.eml` file into a folder.
#[derive(Debug)]
pub struct OutboxMailer {
    folder: PathBuf,
    sequence: AtomicU64,
}

impl OutboxMailer {
    /// An outbox in `folder` (created on first use).
    pub fn new(folder: impl Into<PathBuf>) -> Self {
        Self { folder: folder.into(), sequence: AtomicU64::new(0) }
    }

    /// The folder.
    pub fn folder(&self) -> &Path {
        &self.folder
    }

    /// The files written so far, sorted by name (so by time).
    ///
    /// # Errors
    /// If the folder cannot be read.
    pub fn sent(&self) -> PortResult<Vec<PathBuf>> {
        let entries = match std::fs::read_dir(&self.folder) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(PortError::Unavailable(format!("reading {}: {e}", self.folder.display()))),
        };
        let mut files: Vec<PathBuf> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
        files.sort();
        Ok(files)
    }
}

fn slug(text: &str) -> String {
    let slug: String = text
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' })
        .collect::<String>()
        .split('-')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    slug.chars().take(60).collect()
}

#[async_trait]
impl Mailer for OutboxMailer {
    async fn send(&self, email: &Email) -> PortResult {
        let n = self.sequence.fetch_add(1, Ordering::Relaxed);
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3f");
        let path = self.folder.join(format!("{stamp}-{n}-{}.eml", slug(&email.subject)));
        let text = format!(
            "From: {}\nTo: {}\nSubject: {}\n\n{}",
            email.from,
            email.to.join(", "),
            email.subject,
            email.text
        );
        let folder = self.folder.clone();
        tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&folder)?;
            std::fs::write(&path, text)
        })
        .await
        .map_err(|e| PortError::Unavailable(format!("outbox writer: {e}")))?
        .map_err(|e| PortError::Unavailable(format!("writing to the outbox: {e}")))
    }
}

/// Keeps sent emails in memory.
#[derive(Debug, Default)]
pub struct InMemoryMailer {
    sent: Mutex<Vec<Email>>,
}

impl InMemoryMailer {
    /// The emails sent so far.
    pub fn sent(&self) -> Vec<Email> {
        self.sent.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[async_trait]
impl Mailer for InMemoryMailer {
    async fn send(&self, email: &Email) -> PortResult {
        self.sent.lock().unwrap_or_else(|p| p.into_inner()).push(email.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_outbox_writes_a_readable_file() {
        let folder = std::env::temp_dir().join(format!("outbox-{}", uuid::Uuid::new_v4()));
        let outbox = OutboxMailer::new(&folder);
        let email = Email {
            from: "jobs@example.com".into(),
            to: vec!["ops@example.com".into()],
            subject: "[jobs] cart failed".into(),
            text: "details".into(),
        };
        outbox.send(&email).await.unwrap();
        let files = outbox.sent().unwrap();
        assert_eq!(files.len(), 1);
        let text = std::fs::read_to_string(&files[0]).unwrap();
        assert!(text.contains("Subject: [jobs] cart failed") && text.ends_with("details"));
        std::fs::remove_dir_all(folder).unwrap();
    }
}
