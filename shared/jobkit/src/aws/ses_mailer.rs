//! [`Mailer`] on Amazon SES (API v2).

use async_trait::async_trait;
use aws_sdk_sesv2::{
    Client,
    types::{Body, Content, Destination, EmailContent, Message},
};

use super::errors::{build_error, port_error};
use crate::{
    error::PortResult,
    ports::{Email, Mailer},
};

/// [`Mailer`] on SES v2 through the real SDK client; the sender must be a verified identity.
#[derive(Debug, Clone)]
pub struct SesMailer {
    client: Client,
}

impl SesMailer {
    /// A mailer on `client`.
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

fn utf8(text: &str) -> PortResult<Content> {
    Content::builder().data(text).charset("UTF-8").build().map_err(|e| build_error("SendEmail content", e))
}

#[async_trait]
impl Mailer for SesMailer {
    async fn send(&self, email: &Email) -> PortResult {
        let message = Message::builder()
            .subject(utf8(&email.subject)?)
            .body(Body::builder().text(utf8(&email.text)?).build())
            .build();
        self.client
            .send_email()
            .from_email_address(&email.from)
            .destination(Destination::builder().set_to_addresses(Some(email.to.clone())).build())
            .content(EmailContent::builder().simple(message).build())
            .send()
            .await
            .map_err(|e| port_error("SendEmail", e))?;
        Ok(())
    }
}
