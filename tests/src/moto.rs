//! Reaching the moto server that `./scripts/test` starts (`MOTO_ENDPOINT`).

use aws_config::{BehaviorVersion, Region, SdkConfig};

/// The moto server's URL.
///
/// # Panics
/// When `MOTO_ENDPOINT` is unset: these tests need the server, run them with `./scripts/test`.
pub fn endpoint() -> String {
    std::env::var("MOTO_ENDPOINT")
        .expect("MOTO_ENDPOINT is not set: run the tests with ./scripts/test, which starts moto")
}

/// The environment that points a function's SDK clients at moto with test credentials.
pub fn function_env() -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", endpoint()),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
    ]
}

/// An SDK config pointed at moto with test credentials.
pub async fn sdk_config() -> SdkConfig {
    let credentials = aws_sdk_sqs::config::Credentials::new("testing", "testing", None, None, "moto");
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint())
        .credentials_provider(credentials)
        .load()
        .await
}

/// A name no other test uses.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// A plain HTTP GET of `url` (`http://host:port/path`) on loopback, for moto's inspection API.
///
/// # Errors
/// If the server cannot be reached or answers something other than 200.
pub fn http_get(url: &str) -> anyhow::Result<String> {
    http_get_with(url, "")
}

/// [`http_get`] of an AWS API moto serves: the `Authorization` header names `service`, which is
/// how moto tells services apart on one port (it checks no signature).
///
/// # Errors
/// See [`http_get`].
pub fn aws_get(url: &str, service: &str) -> anyhow::Result<String> {
    let authorization = format!(
        "Authorization: AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/{service}/aws4_request, \
         SignedHeaders=host, Signature=0\r\n"
    );
    http_get_with(url, &authorization)
}

fn http_get_with(url: &str, headers: &str) -> anyhow::Result<String> {
    use std::io::{Read, Write};

    let rest = url.strip_prefix("http://").ok_or_else(|| anyhow::anyhow!("not an http URL: {url}"))?;
    let (host, path) = rest.split_once('/').map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
    let mut stream = std::net::TcpStream::connect(host)?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {host}\r\n{headers}Connection: close\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response.split_once("\r\n\r\n").ok_or_else(|| anyhow::anyhow!("no HTTP body"))?;
    anyhow::ensure!(
        head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
        "GET {url}: {head}"
    );
    Ok(body.to_owned())
}

/// What moto's SNS and SES have sent, from every account and region (`GET /moto-api/outbox`,
/// served by `scripts/lib/moto_server.py`). Read this rather than `/moto-api/data.json`: that
/// dumps every model of every service while other tests change them, and a model resized under
/// its dump answers 500.
#[derive(Debug, serde::Deserialize)]
pub struct Outbox {
    /// The texts SNS sent.
    pub texts: Vec<Text>,
    /// The emails SES sent, each with every field moto keeps (`source`, `subject`, `body`,
    /// `destinations`, or `raw_data` for a raw email).
    pub emails: Vec<serde_json::Value>,
}

/// A text SNS sent.
#[derive(Debug, serde::Deserialize)]
pub struct Text {
    /// SNS's message id.
    pub id: String,
    /// The number it went to.
    pub phone: String,
    /// What it said.
    pub message: String,
}

impl Outbox {
    /// Reads the outbox.
    ///
    /// # Errors
    /// If moto cannot be reached or answers something else than the outbox.
    pub async fn read() -> anyhow::Result<Self> {
        let url = format!("{}/moto-api/outbox", endpoint());
        let body = tokio::task::spawn_blocking(move || http_get(&url)).await??;
        Ok(serde_json::from_str(&body)?)
    }

    /// How many texts contain `needle`.
    pub fn texts_containing(&self, needle: &str) -> usize {
        self.texts.iter().filter(|text| text.message.contains(needle)).count()
    }

    /// The emails that name `needle` anywhere (a recipient, a subject).
    pub fn emails_naming(&self, needle: &str) -> Vec<&serde_json::Value> {
        self.emails.iter().filter(|email| email.to_string().contains(needle)).collect()
    }
}
