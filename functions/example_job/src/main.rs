//! The example job as a Lambda function.

#[tokio::main]
async fn main() -> Result<(), jobkit::lambda::Error> {
    jobkit::lambda::run(example_job::ExampleJob).await
}
