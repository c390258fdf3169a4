//! The shop's AWS adapters: stores, the catalog, customers, carts and the history on DynamoDB,
//! credentials in Secrets Manager (sealed on the store records under KMS: `sealed_tokens`), SMS
//! through SNS.
//!
//! Table and secret names come from the environment the template sets: `SHOP_STORES_TABLE`,
//! `SHOP_PRODUCTS_TABLE`, `SHOP_CUSTOMERS_TABLE`, `SHOP_CARTS_TABLE`, `SHOP_INVENTORY_TABLE`,
//! `SHOP_HISTORY_TABLE`, `SHOP_SECRET_PREFIX`.
//!
//! Invariant: items hold native attributes (maps, lists, numbers; `attributes`), never JSON in a
//! string, so the console, PartiQL and filter expressions read them; keys and index attributes
//! are the template's.

mod attributes;
mod batch;
mod carts;
mod catalog;
mod customers;
mod history;
mod sealed_tokens;
mod secrets;
mod sms;
mod stores;

pub use carts::{BY_STATUS_ACTIVITY, BY_STATUS_EXPIRY, DynamoCarts};
pub use catalog::DynamoCatalog;
pub use customers::DynamoCustomers;
pub use history::{BY_KIND_TIME, DynamoHistory};
pub use sealed_tokens::{
    ENCRYPTION_CONTEXT, SealedCredentials, SealedToken, SealedTokenCache, sealed_attribute,
};
pub use secrets::{SecretsManagerCredentials, secret_name};
pub use sms::SnsSms;
pub use stores::DynamoStores;

use aws_sdk_dynamodb::{
    config::http::HttpResponse,
    error::{DisplayErrorContext, ProvideErrorMetadata, SdkError},
};

use crate::ports::RepoError;

/// Codes that mean "slow down": the SDK's own throttling codes (`aws-runtime`'s
/// `THROTTLING_ERRORS`), DynamoDB's and Secrets Manager's among them.
const THROTTLE_CODES: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "RequestThrottledException",
    "RequestThrottled",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "LimitExceededException",
    "TransactionInProgressException",
    "BandwidthLimitExceeded",
    "SlowDown",
    "PriorRequestNotComplete",
];

/// 4xx codes a later try can get past: the SDK's transient codes, DynamoDB's conflicts with a
/// concurrent transaction or replicated write, and credentials that expired (Lambda's are
/// renewed).
const TRANSIENT_CODES: &[&str] = &[
    "RequestTimeout",
    "RequestTimeoutException",
    "TransactionConflictException",
    "ReplicatedWriteConflictException",
    "ExpiredTokenException",
];

/// A DynamoDB failure of `operation` on `table` as a repository error: throttles
/// ([`RepoError::Throttled`]) and 5xx, timeouts and failed connections
/// ([`RepoError::Unavailable`]) retry; what the service refused (a missing table or index, a
/// validation error such as an item over 400 KB, access denied, any other 4xx) is
/// [`RepoError::Rejected`] and goes to the DLQ.
pub(crate) fn sdk_error<E>(operation: &str, table: &str, err: SdkError<E, HttpResponse>) -> RepoError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    classify("DynamoDB", operation, &format!("table {}", quoted(table)), err)
}

/// [`sdk_error`] for a transaction over several tables.
pub(crate) fn transaction_error<E>(
    operation: &str,
    tables: &[&str],
    err: SdkError<E, HttpResponse>,
) -> RepoError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let names = tables.iter().map(|t| quoted(t)).collect::<Vec<_>>().join(" and ");
    classify("DynamoDB", operation, &format!("tables {names}"), err)
}

/// [`sdk_error`] for Secrets Manager: `secret` is the secret's name (never its value).
pub(crate) fn secrets_error<E>(operation: &str, secret: &str, err: SdkError<E, HttpResponse>) -> RepoError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    classify("Secrets Manager", operation, &format!("secret {}", quoted(secret)), err)
}

/// A KMS failure, classified as the other services' are.
pub(crate) fn kms_error<E>(operation: &str, key: &str, err: SdkError<E, HttpResponse>) -> RepoError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    classify("KMS", operation, &format!("key {}", quoted(key)), err)
}

/// A name in backticks. Unquoted, jobkit's redaction (`jobkit::redact`) takes a name
/// CloudFormation generates (`store-jobs-CartsTable-1XK2Q7ZP3M4N`: 24 or more letters and
/// digits) for a token and hides it from the logs and the DLQ, the places it is needed.
fn quoted(name: &str) -> String {
    format!("`{name}`")
}

fn classify<E>(
    service: &'static str,
    operation: &str,
    resource: &str,
    err: SdkError<E, HttpResponse>,
) -> RepoError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match &err {
        SdkError::ServiceError(failure) => {
            let code = failure.err().code().unwrap_or_default();
            let message = failure.err().message().unwrap_or_default();
            let status = failure.raw().status().as_u16();
            let text = || format!("{service} {operation} on {resource}: {code} ({status}): {message}");
            if THROTTLE_CODES.contains(&code) || status == 429 {
                RepoError::Throttled(text())
            } else if status >= 500 || TRANSIENT_CODES.contains(&code) {
                RepoError::Unavailable(text())
            } else {
                RepoError::Rejected {
                    service,
                    operation: operation.to_owned(),
                    resource: resource.to_owned(),
                    code: if code.is_empty() { format!("HTTP {status}") } else { code.to_owned() },
                    message: message.to_owned(),
                }
            }
        }
        // No answer in time, no connection (or no credentials yet), an answer cut short.
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            RepoError::Unavailable(format!(
                "{service} {operation} on {resource}: {}",
                DisplayErrorContext(&err)
            ))
        }
        // The request could not be serialised: building it again gives the same request.
        SdkError::ConstructionFailure(_) => RepoError::Corrupt(format!(
            "{service} {operation} on {resource}: the request could not be built: {}",
            DisplayErrorContext(&err)
        )),
        _ => RepoError::Unavailable(format!(
            "{service} {operation} on {resource}: {}",
            DisplayErrorContext(&err)
        )),
    }
}
