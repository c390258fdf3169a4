//! SMS without SNS: each text written to a file in an outbox folder (`jobctl dev`, tests), with
//! the number masked in the file's name and body, and an opt-out list.

use std::{
    collections::HashSet,
    path::{Path, PathBuf},
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use async_trait::async_trait;
use jobkit::{IntegrationError, IntegrationErrorKind};

use crate::{phone::PhoneNumber, ports::SmsSender, sms::SmsText};

/// [`SmsSender`] into a folder.
#[derive(Debug)]
pub struct SmsOutbox {
    folder: PathBuf,
    sequence: AtomicU64,
    opted_out: Mutex<HashSet<String>>,
}

impl SmsOutbox {
    /// An outbox in `folder` (created on first send).
    pub fn new(folder: impl Into<PathBuf>) -> Self {
        Self { folder: folder.into(), sequence: AtomicU64::new(0), opted_out: Mutex::default() }
    }

    /// The folder.
    pub fn folder(&self) -> &Path {
        &self.folder
    }

    /// Makes `phone` refuse texts.
    pub fn opt_out(&self, phone: &PhoneNumber) {
        self.opted_out.lock().unwrap_or_else(|p| p.into_inner()).insert(phone.expose().to_owned());
    }

    /// The texts sent so far (file contents, oldest first).
    ///
    /// # Errors
    /// If the folder cannot be read.
    pub fn sent(&self) -> std::io::Result<Vec<String>> {
        let mut files = match std::fs::read_dir(&self.folder) {
            Ok(entries) => entries.filter_map(Result::ok).map(|e| e.path()).collect::<Vec<_>>(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        files.sort();
        files.iter().map(std::fs::read_to_string).collect()
    }
}

#[async_trait]
impl SmsSender for SmsOutbox {
    async fn opted_out(&self, phone: &PhoneNumber) -> Result<bool, IntegrationError> {
        Ok(self.opted_out.lock().unwrap_or_else(|p| p.into_inner()).contains(phone.expose()))
    }

    async fn send(&self, phone: &PhoneNumber, text: &SmsText) -> Result<String, IntegrationError> {
        // Stamped, so a second process writing into the same folder adds rather than overwrites.
        let n = self.sequence.fetch_add(1, Ordering::Relaxed);
        let id = format!("sms-{}-{n:04}", chrono::Utc::now().format("%Y%m%dT%H%M%S%.3f"));
        let body = format!("To: {phone}\nSegments: {}\n\n{}\n", text.segments(), text.as_str());
        let path = self.folder.join(format!("{id}.txt"));
        let folder = self.folder.clone();
        tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&folder)?;
            std::fs::write(path, body)
        })
        .await
        .map_err(|e| IntegrationError::new("sms-outbox", IntegrationErrorKind::Unavailable, e.to_string()))?
        .map_err(|e| IntegrationError::new("sms-outbox", IntegrationErrorKind::Unavailable, e.to_string()))?;
        Ok(id)
    }
}
