//! How the shop's AWS adapters classify what DynamoDB and Secrets Manager answer: the real SDK
//! clients (retries off) against an HTTP stub answering the services' JSON error shapes.
//! Throttles and outages retry; a missing table or index, a validation error, an oversized item
//! and a refused permission are permanent and name the table and the operation.

use std::time::Duration;

use aws_sdk_dynamodb::config::{
    BehaviorVersion, Credentials as SdkCredentials, Region, retry::RetryConfig, timeout::TimeoutConfig,
};
use chrono::Utc;
use jobkit::{ErrorKind, JobError, RetryPolicy, policy::Decision};
use serde_json::{Value, json};
use shop::{
    CartRepository, CatalogRepository, Credentials, History, HistoryEntry, Money, Product, RecordKind,
    RepoError, StockRelease, Store, StoreRepository, SyncState, Variant,
    aws::{DynamoCarts, DynamoCatalog, DynamoHistory, DynamoStores, SecretsManagerCredentials},
};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{header, method},
};

/// A name as CloudFormation generates it (which jobkit's redaction would take for a token).
const TABLE: &str = "store-jobs-StoresTable-1XK2Q7ZP3M4N";

fn dynamo_at(endpoint: &str) -> aws_sdk_dynamodb::Client {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(SdkCredentials::new("testing", "testing", None, None, "test"))
        .endpoint_url(endpoint)
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder().operation_attempt_timeout(Duration::from_millis(500)).build(),
        )
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

fn secrets_at(endpoint: &str) -> aws_sdk_secretsmanager::Client {
    let config = aws_sdk_secretsmanager::Config::builder()
        .behavior_version(aws_sdk_secretsmanager::config::BehaviorVersion::latest())
        .region(aws_sdk_secretsmanager::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_secretsmanager::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .endpoint_url(endpoint)
        .retry_config(aws_sdk_secretsmanager::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_secretsmanager::Client::from_conf(config)
}

/// DynamoDB's (awsJson 1.0) error body for `code`.
fn error_body(code: &str, message: &str) -> Value {
    json!({"__type": format!("com.amazonaws.dynamodb.v20120810#{code}"), "message": message})
}

fn answer(status: u16, body: &Value) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(body.to_string(), "application/x-amz-json-1.0")
}

/// A stub answering every call of DynamoDB's `operation` with `status` and `body`.
async fn dynamodb_answering(operation: &str, status: u16, body: Value) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(header("x-amz-target", format!("DynamoDB_20120810.{operation}").as_str()))
        .respond_with(answer(status, &body))
        .mount(&server)
        .await;
    server
}

async fn stores_answering(operation: &str, status: u16, body: Value) -> (DynamoStores, MockServer) {
    let server = dynamodb_answering(operation, status, body).await;
    (DynamoStores::new(dynamo_at(&server.uri()), TABLE), server)
}

fn store() -> Store {
    Store {
        id: "st_1".into(),
        shopify_domain: "st-1.myshopify.com".parse().unwrap(),
        pos_location_id: None,
        plan: shop::Plan::Basic,
        sync_state: SyncState::Never,
    }
}

/// The policy clean_active_carts and clean_database declare: storage outages retry, a corrupt
/// record is discarded; every other permanent error goes to the DLQ by default.
fn storage_policy() -> RetryPolicy {
    RetryPolicy::new()
        .retry_on(
            [ErrorKind::UNAVAILABLE, ErrorKind::THROTTLED, ErrorKind::TIMEOUT],
            jobkit::Wait::Polynomial,
            5,
        )
        .discard_on([ErrorKind::CORRUPT_RECORD])
}

/// Checks what every job's policy does with `error` after its first attempt.
fn assert_first_failure(error: &JobError, retried: bool) {
    for (name, policy) in [
        ("default", RetryPolicy::new()),
        ("storage", storage_policy()),
        ("integration", shop::policy::integration_policy(5)),
    ] {
        let decision = policy.decide_with_jitter(error, 1, 0.5);
        assert_eq!(matches!(decision, Decision::Retry(_)), retried, "{name} policy on {error}: {decision:?}");
        if !retried {
            assert_eq!(decision, Decision::Discard, "{name} policy on {error}: straight to the DLQ");
        }
    }
}

#[tokio::test]
async fn throttles_retry_as_throttled_naming_the_table_and_operation() {
    for (status, code) in [
        (400, "ProvisionedThroughputExceededException"),
        (400, "ThrottlingException"),
        (400, "RequestLimitExceeded"),
        (429, "SomethingNew"),
    ] {
        let (stores, _server) = stores_answering("GetItem", status, error_body(code, "slow down")).await;
        let error = stores.get(&"st_1".into()).await.expect_err("the stub throttles");
        let RepoError::Throttled(text) = &error else { panic!("{code} ({status}) is a throttle: {error:?}") };
        assert!(text.contains("GetItem") && text.contains(TABLE) && text.contains(code), "{text}");
        let job_error = JobError::from(error);
        assert_eq!(job_error.kind(), &ErrorKind::THROTTLED);
        assert!(job_error.is_retryable(), "{job_error}");
        assert_first_failure(&job_error, true);
    }
}

#[tokio::test]
async fn server_errors_and_transaction_conflicts_retry_as_unavailable() {
    for (status, code) in
        [(500, "InternalServerError"), (503, "ServiceUnavailable"), (400, "TransactionConflictException")]
    {
        let (stores, _server) = stores_answering("PutItem", status, error_body(code, "try again")).await;
        let error = stores.put(&store()).await.expect_err("the stub fails");
        let RepoError::Unavailable(text) = &error else {
            panic!("{code} ({status}) is transient: {error:?}")
        };
        assert!(text.contains("PutItem") && text.contains(TABLE), "{text}");
        let job_error = JobError::from(error);
        assert_eq!(job_error.kind(), &ErrorKind::UNAVAILABLE);
        assert_first_failure(&job_error, true);
    }
}

#[tokio::test]
async fn timeouts_and_refused_connections_retry_as_unavailable() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(answer(200, &json!({})).set_delay(Duration::from_secs(5)))
        .mount(&server)
        .await;
    let slow = DynamoStores::new(dynamo_at(&server.uri()), TABLE);
    let error = slow.get(&"st_1".into()).await.expect_err("no answer within the attempt timeout");
    assert!(matches!(&error, RepoError::Unavailable(t) if t.contains("GetItem")), "{error:?}");

    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let closed = DynamoStores::new(dynamo_at(&format!("http://127.0.0.1:{port}")), TABLE);
    let error = closed.get(&"st_1".into()).await.expect_err("connection refused");
    assert!(matches!(&error, RepoError::Unavailable(t) if t.contains("GetItem")), "{error:?}");
    assert!(JobError::from(error).is_retryable());
}

#[tokio::test]
async fn a_missing_table_is_rejected_as_not_found_and_goes_to_the_dlq_at_once() {
    let message = "Requested resource not found: Table: shop-stores-test not found";
    let (stores, _server) =
        stores_answering("PutItem", 400, error_body("ResourceNotFoundException", message)).await;
    let error = stores.put(&store()).await.expect_err("no such table");
    match &error {
        RepoError::Rejected { service, operation, resource, code, message: said } => {
            assert_eq!(*service, "DynamoDB");
            assert_eq!(operation, "PutItem");
            assert_eq!(resource, &format!("table `{TABLE}`"));
            assert_eq!(code, "ResourceNotFoundException");
            assert_eq!(said, message);
        }
        other => panic!("a missing table is permanent: {other:?}"),
    }
    assert_eq!(
        error.to_string(),
        format!("DynamoDB refused PutItem on table `{TABLE}`: ResourceNotFoundException: {message}")
    );
    assert!(!error.is_transient());
    let job_error = JobError::from(error);
    assert_eq!(job_error.kind(), &ErrorKind::NOT_FOUND);
    assert!(!job_error.is_retryable());
    assert!(job_error.message().contains("PutItem") && job_error.message().contains(TABLE));
    // What the logs and the DLQ get: the redacted message still names the table.
    let redacted = jobkit::redact::redact(job_error.message());
    assert!(redacted.contains(&format!("PutItem on table `{TABLE}`")), "{redacted}");
    assert_first_failure(&job_error, false);
}

fn product() -> Product {
    Product {
        id: "gid://shopify/Product/1".into(),
        store_id: "st_1".into(),
        title: "Shoe".into(),
        handle: "shoe".into(),
        variants: vec![Variant {
            id: "gid://shopify/ProductVariant/1".into(),
            sku: None,
            price: Money { minor: 1000, currency: "EUR".into() },
            inventory: 1,
        }],
    }
}

fn entry() -> HistoryEntry {
    HistoryEntry {
        kind: RecordKind::SyncRun,
        id: "run_1".into(),
        store_id: "st_1".into(),
        at: Utc::now(),
        detail: json!({}),
    }
}

/// Asserts `error` is a refusal of `operation` on `table` with `code`, permanent as invalid input.
fn assert_refused(error: RepoError, operation: &str, table: &str, code: &str) {
    let text = error.to_string();
    assert!(
        matches!(&error, RepoError::Rejected { operation: o, code: c, .. } if o == operation && c == code),
        "{error:?}"
    );
    assert!(
        text.starts_with(&format!("DynamoDB refused {operation} on table `{table}`: {code}: ")),
        "{text}"
    );
    let job_error = JobError::from(error);
    assert_eq!(job_error.kind(), &ErrorKind::INVALID_INPUT, "{job_error}");
    assert_first_failure(&job_error, false);
}

#[tokio::test]
async fn a_missing_index_an_oversized_item_and_a_refused_permission_are_permanent() {
    // Query on an index the table does not have.
    let server = dynamodb_answering(
        "Query",
        400,
        error_body("ValidationException", "The table does not have the specified index: by_kind_time"),
    )
    .await;
    let history = DynamoHistory::new(dynamo_at(&server.uri()), "shop-history-test");
    let error = history.recent(RecordKind::SyncRun, 10).await.expect_err("no such index");
    assert!(error.to_string().contains("by_kind_time"), "{error}");
    assert_refused(error, "Query", "shop-history-test", "ValidationException");

    // An item over 400 KB.
    let server = dynamodb_answering(
        "PutItem",
        400,
        error_body("ValidationException", "Item size has exceeded the maximum allowed size"),
    )
    .await;
    let history = DynamoHistory::new(dynamo_at(&server.uri()), "shop-history-test");
    let error = history.append(&entry()).await.expect_err("too large");
    assert_refused(error, "PutItem", "shop-history-test", "ValidationException");

    // The role may not write the table.
    let denied = "User: arn:aws:sts::123456789012:assumed-role/jobs/fn is not authorized to perform: \
                  dynamodb:BatchWriteItem on resource: arn:aws:dynamodb:us-east-1:123456789012:table/shop-products-test";
    let server = dynamodb_answering("BatchWriteItem", 400, error_body("AccessDeniedException", denied)).await;
    let catalog = DynamoCatalog::new(dynamo_at(&server.uri()), "shop-products-test");
    let error = catalog.upsert_products(&[product()]).await.expect_err("denied");
    assert_refused(error, "BatchWriteItem", "shop-products-test", "AccessDeniedException");

    // Credentials DynamoDB does not know.
    let server = dynamodb_answering(
        "Scan",
        400,
        error_body("UnrecognizedClientException", "The security token included in the request is invalid."),
    )
    .await;
    let stores = DynamoStores::new(dynamo_at(&server.uri()), TABLE);
    let error = stores.syncable().await.expect_err("unknown credentials");
    assert_refused(error, "Scan", TABLE, "UnrecognizedClientException");

    // Any other 4xx, with or without a code.
    let (stores, _server) = stores_answering("GetItem", 403, json!({})).await;
    let error = stores.get(&"st_1".into()).await.expect_err("forbidden");
    assert_refused(error, "GetItem", TABLE, "HTTP 403");
}

#[tokio::test]
async fn carts_name_the_table_each_call_used() {
    let server = dynamodb_answering(
        "GetItem",
        400,
        error_body("ResourceNotFoundException", "Requested resource not found"),
    )
    .await;
    let carts = DynamoCarts::new(dynamo_at(&server.uri()), "shop-carts-test", "shop-inventory-test");
    let error = carts.available("v1").await.expect_err("no inventory table");
    assert!(
        error.to_string().starts_with("DynamoDB refused GetItem on table `shop-inventory-test`:"),
        "{error}"
    );

    let server = dynamodb_answering(
        "TransactWriteItems",
        400,
        error_body("AccessDeniedException", "not authorized to perform: dynamodb:UpdateItem"),
    )
    .await;
    let carts = DynamoCarts::new(dynamo_at(&server.uri()), "shop-carts-test", "shop-inventory-test");
    let release = StockRelease { variant_id: "v1".into(), quantity: 1 };
    let error = carts.abandon(&"c1".into(), &[release]).await.expect_err("denied");
    let text = error.to_string();
    assert!(
        text.starts_with(
            "DynamoDB refused TransactWriteItems on tables `shop-carts-test` and `shop-inventory-test`:"
        ),
        "{text}"
    );
    assert!(!JobError::from(error).is_retryable());
}

#[tokio::test]
async fn a_lost_condition_keeps_its_meaning() {
    // The store was deleted meanwhile: nothing to record, no error.
    let (stores, _server) = stores_answering(
        "UpdateItem",
        400,
        error_body("ConditionalCheckFailedException", "The conditional request failed"),
    )
    .await;
    stores.set_sync_state(&"st_gone".into(), &SyncState::Never).await.expect("a deleted store is no error");

    // Another janitor abandoned the cart first.
    let canceled = json!({
        "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
        "message": "Transaction cancelled, please refer cancellation reasons for specific reasons [ConditionalCheckFailed, None]",
        "CancellationReasons": [{"Code": "ConditionalCheckFailed"}, {"Code": "None"}],
    });
    let server = dynamodb_answering("TransactWriteItems", 400, canceled).await;
    let carts = DynamoCarts::new(dynamo_at(&server.uri()), "shop-carts-test", "shop-inventory-test");
    let release = StockRelease { variant_id: "v1".into(), quantity: 1 };
    assert!(!carts.abandon(&"c1".into(), &[release]).await.unwrap(), "lost the race: false, no error");
}

#[tokio::test]
async fn writes_left_unprocessed_are_a_throttle() {
    let unprocessed = json!({"UnprocessedItems": {"shop-products-test": [{"PutRequest": {"Item": {
        "store_id": {"S": "st_1"}, "id": {"S": "gid://shopify/Product/1"}, "body": {"M": {}},
    }}}]}});
    let server = dynamodb_answering("BatchWriteItem", 200, unprocessed).await;
    let catalog = DynamoCatalog::new(dynamo_at(&server.uri()), "shop-products-test");
    let error = catalog.upsert_products(&[product()]).await.expect_err("never processed");
    assert!(matches!(&error, RepoError::Throttled(t) if t.contains("shop-products-test")), "{error:?}");
    assert!(JobError::from(error).is_retryable());
}

/// A stub answering Secrets Manager's `GetSecretValue` with `status` and `body`.
async fn secrets_answering(status: u16, body: Value) -> (SecretsManagerCredentials, MockServer) {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(header("x-amz-target", "secretsmanager.GetSecretValue"))
        .respond_with(
            ResponseTemplate::new(status).set_body_raw(body.to_string(), "application/x-amz-json-1.1"),
        )
        .mount(&server)
        .await;
    (SecretsManagerCredentials::new(secrets_at(&server.uri()), "store-jobs/stores"), server)
}

fn secrets_error(code: &str, message: &str) -> Value {
    json!({"__type": code, "message": message})
}

#[tokio::test]
async fn a_missing_secret_is_no_token_and_a_refused_read_is_permanent() {
    let (credentials, _server) = secrets_answering(
        400,
        secrets_error("ResourceNotFoundException", "Secrets Manager can't find the specified secret."),
    )
    .await;
    assert!(credentials.shopify_token(&"st_1".into()).await.unwrap().is_none(), "no secret: no token");

    let (credentials, _server) = secrets_answering(
        400,
        secrets_error("AccessDeniedException", "not authorized to perform: GetSecretValue"),
    )
    .await;
    let error = credentials.shopify_token(&"st_1".into()).await.expect_err("denied");
    assert_eq!(
        error.to_string(),
        "Secrets Manager refused GetSecretValue on secret `store-jobs/stores/st_1/shopify`: AccessDeniedException: \
         not authorized to perform: GetSecretValue"
    );
    let job_error = JobError::from(error);
    assert_eq!(job_error.kind(), &ErrorKind::INVALID_INPUT);
    assert_first_failure(&job_error, false);

    let (credentials, _server) =
        secrets_answering(400, secrets_error("ThrottlingException", "Rate exceeded")).await;
    let error = credentials.square_token(&"st_1".into()).await.expect_err("throttled");
    assert!(matches!(&error, RepoError::Throttled(t) if t.contains("GetSecretValue")), "{error:?}");

    let (credentials, _server) = secrets_answering(
        500,
        secrets_error("InternalServiceError", "An error occurred on the server side."),
    )
    .await;
    let error = credentials.square_token(&"st_1".into()).await.expect_err("a server error");
    assert!(matches!(&error, RepoError::Unavailable(_)), "{error:?}");
}
