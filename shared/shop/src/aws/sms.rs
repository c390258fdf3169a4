//! SMS through Amazon SNS `Publish` to a phone number, as transactional messages.

use async_trait::async_trait;
use aws_sdk_sns::{
    Client,
    config::http::HttpResponse,
    error::{DisplayErrorContext, ProvideErrorMetadata, SdkError},
    types::MessageAttributeValue,
};
use jobkit::{IntegrationError, IntegrationErrorKind};

use crate::{phone::PhoneNumber, ports::SmsSender, sms::SmsText};

/// [`SmsSender`] on SNS.
#[derive(Debug, Clone)]
pub struct SnsSms {
    client: Client,
}

impl SnsSms {
    /// A sender on `client`.
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

fn classify<E>(operation: &str, e: SdkError<E, HttpResponse>) -> IntegrationError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let code = e.code().unwrap_or_default().to_owned();
    let kind = match code.as_str() {
        "Throttling" | "ThrottledException" | "KMSThrottlingException" => IntegrationErrorKind::RateLimited,
        "InvalidParameter" | "InvalidParameterValue" => IntegrationErrorKind::InvalidInput,
        "AuthorizationError" => IntegrationErrorKind::Unauthorized,
        "" | "InternalError" | "ServiceUnavailable" => IntegrationErrorKind::Unavailable,
        _ => IntegrationErrorKind::Unexpected,
    };
    // The SDK's message never carries the phone number we sent.
    IntegrationError::new("sns", kind, format!("{operation}: {code}: {}", DisplayErrorContext(&e)))
}

#[async_trait]
impl SmsSender for SnsSms {
    async fn opted_out(&self, phone: &PhoneNumber) -> Result<bool, IntegrationError> {
        let out = self
            .client
            .check_if_phone_number_is_opted_out()
            .phone_number(phone.expose())
            .send()
            .await
            .map_err(|e| classify("CheckIfPhoneNumberIsOptedOut", e))?;
        Ok(out.is_opted_out())
    }

    async fn send(&self, phone: &PhoneNumber, text: &SmsText) -> Result<String, IntegrationError> {
        let transactional = MessageAttributeValue::builder()
            .data_type("String")
            .string_value("Transactional")
            .build()
            .map_err(|e| IntegrationError::new("sns", IntegrationErrorKind::Unexpected, e.to_string()))?;
        let out = self
            .client
            .publish()
            .phone_number(phone.expose())
            .message(text.as_str())
            .message_attributes("AWS.SNS.SMS.SMSType", transactional)
            .send()
            .await
            .map_err(|e| classify("Publish", e))?;
        Ok(out.message_id().unwrap_or_default().to_owned())
    }
}
