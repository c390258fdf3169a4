//! The Square client against an HTTP stub: what it does with answers it must not trust.

use std::{
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
    time::Duration,
};

use jobkit::IntegrationErrorKind;
use serde_json::json;
use shop::{
    Secret, StoreId,
    shopify::Pacer,
    square::{SquareClient, SquareConfig},
};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{any, method, path},
};

/// Records waits instead of sleeping.
#[derive(Debug, Default)]
struct RecordingPacer(Mutex<Vec<Duration>>);

impl Pacer for RecordingPacer {
    fn wait(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        self.0.lock().unwrap().push(duration);
        Box::pin(async {})
    }
}

fn client(server: &MockServer) -> (SquareClient, Arc<RecordingPacer>) {
    let pacer = Arc::new(RecordingPacer::default());
    let config = SquareConfig { base_url: server.uri(), ..SquareConfig::default() };
    (SquareClient::with_pacer(config, pacer.clone()).unwrap(), pacer)
}

async fn customers_page(
    client: &SquareClient,
) -> Result<shop::square::CustomerPage, jobkit::IntegrationError> {
    client.customers_page(&StoreId::from("st_1"), "L1", &Secret::new("sq0atp-test"), None).await
}

#[tokio::test]
async fn a_redirect_is_not_followed_and_is_a_permanent_error_naming_its_host() {
    let server = MockServer::start().await;
    let elsewhere = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2/customers"))
        .respond_with(
            ResponseTemplate::new(307).insert_header("Location", format!("{}/collect?x=1", elsewhere.uri())),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"customers": []})))
        .mount(&elsewhere)
        .await;
    let (client, pacer) = client(&server);
    let result = customers_page(&client).await;

    let received = elsewhere.received_requests().await.unwrap();
    assert!(received.is_empty(), "the redirect was followed, with the token: {received:?}");
    let err = result.unwrap_err();
    assert_eq!(err.kind, IntegrationErrorKind::Unexpected);
    assert!(!err.recoverable, "a redirect does not pass by itself");
    let host = elsewhere.address().to_string();
    assert!(err.message.contains("307") && err.message.contains(&host), "{}", err.message);
    assert!(!err.message.contains("/collect"), "only the host is named: {}", err.message);
    assert!(!format!("{err:?}").contains("sq0atp-test"), "the token never shows in errors");
    assert!(pacer.0.lock().unwrap().is_empty(), "not retried");
}

#[tokio::test]
async fn a_retry_after_past_the_cap_is_not_slept_in_process_but_left_to_the_jobs_retry_policy() {
    for huge in ["1e20", "99999999999", "inf", "61"] {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", huge))
            .expect(1)
            .mount(&server)
            .await;
        let (client, pacer) = client(&server);
        let err = customers_page(&client).await.unwrap_err();
        assert_eq!(err.kind, IntegrationErrorKind::RateLimited, "{huge}");
        assert!(err.recoverable, "{huge}: the job's policy backs off instead");
        assert!(pacer.0.lock().unwrap().is_empty(), "{huge}: no wait in process");
    }
}

#[tokio::test]
async fn a_retry_after_within_the_cap_is_waited_in_process() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503).insert_header("Retry-After", "60"))
        .expect(4)
        .mount(&server)
        .await;
    let (client, pacer) = client(&server);
    let err = customers_page(&client).await.unwrap_err();
    assert_eq!(err.kind, IntegrationErrorKind::Unavailable);
    assert_eq!(*pacer.0.lock().unwrap(), [Duration::from_secs(60); 3]);
}
