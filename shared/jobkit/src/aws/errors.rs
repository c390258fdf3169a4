//! SDK errors mapped to [`PortError`]: throttles and outages are transient, the rest is not.

use aws_sdk_sqs::{
    config::http::HttpResponse,
    error::{DisplayErrorContext, ProvideErrorMetadata, SdkError},
};

use crate::error::PortError;

/// Error codes that mean "slow down", across SQS, DynamoDB and SES.
const THROTTLE_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "RequestThrottled",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "LimitExceededException",
];

/// Error codes that mean "no such queue/table/identity".
const NOT_FOUND_CODES: &[&str] = &[
    "QueueDoesNotExist",
    "AWS.SimpleQueueService.NonExistentQueue",
    "ResourceNotFoundException",
    "NotFoundException",
];

/// Maps any SDK operation error to a port error, naming the operation.
pub(crate) fn port_error<E>(operation: &str, err: SdkError<E, HttpResponse>) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match &err {
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or_default();
            let message = service.err().message().unwrap_or_default();
            let status = service.raw().status().as_u16();
            let text = format!("{operation}: {code} ({status}): {message}");
            if THROTTLE_CODES.contains(&code) || status == 429 {
                PortError::Throttled(text)
            } else if NOT_FOUND_CODES.contains(&code) {
                PortError::NotFound(text)
            } else if status >= 500 {
                PortError::Unavailable(text)
            } else {
                PortError::Invalid(text)
            }
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            PortError::Unavailable(format!("{operation}: {}", DisplayErrorContext(&err)))
        }
        _ => PortError::Invalid(format!("{operation}: {}", DisplayErrorContext(&err))),
    }
}

/// A request that could not be built (a missing required field): a bug, reported as invalid.
pub(crate) fn build_error(operation: &str, err: impl std::fmt::Display) -> PortError {
    PortError::Invalid(format!("{operation}: {err}"))
}
