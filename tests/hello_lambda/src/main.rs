//! The smallest SQS function lambda_runtime allows: every record succeeds. The lambda benchmark
//! measures our functions' size, cold start and batch time beside this one.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|_: LambdaEvent<SqsEvent>| async {
        Ok::<_, Error>(SqsBatchResponse::default())
    }))
    .await
}
