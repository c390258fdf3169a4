//! What the shop's DynamoDB adapters make of DynamoDB's refusals, through the real SDK client
//! against moto: every repository on a table that does not exist, a query on an index the table
//! lacks and an item over 400 KB are refused permanently, naming the table and the operation;
//! and the built clean_active_carts, its carts table gone, sends its job to the DLQ after one
//! attempt. (Throttles, 5xx and timeouts, which moto does not produce: shared/shop/tests/
//! dynamodb_errors.rs and functions/clean_active_carts/tests/dynamodb_errors.rs.)

use std::{future::Future, time::Duration};

use aws_sdk_dynamodb::types::KeyType;
use chrono::Utc;
use jobkit::{ErrorKind, JobError};
use serde_json::json;
use shop::{
    CartRepository, CatalogRepository, CustomerRepository, History, HistoryEntry, Plan, RecordKind,
    RepoError, Store, StoreRepository, SyncState,
    aws::{DynamoCarts, DynamoCatalog, DynamoCustomers, DynamoHistory, DynamoStores},
};
use system_tests::{moto, sqs::dead_letters, stack::Stack, tables};

/// Asserts `call` was refused as DynamoDB refuses a missing table: permanent, naming `table`
/// and `operation`.
async fn refused_as_missing<T: std::fmt::Debug>(
    call: impl Future<Output = Result<T, RepoError>>,
    operation: &str,
    table: &str,
) {
    let error = call.await.expect_err("the table does not exist");
    match &error {
        RepoError::Rejected { service: "DynamoDB", operation: o, resource, code, .. } => {
            assert_eq!((o.as_str(), code.as_str()), (operation, "ResourceNotFoundException"), "{error}");
            assert_eq!(resource, &format!("table `{table}`"));
        }
        other => panic!("{operation} on a missing table is refused, not {other:?}"),
    }
    let text = error.to_string();
    assert!(
        text.starts_with(&format!(
            "DynamoDB refused {operation} on table `{table}`: ResourceNotFoundException"
        )),
        "{text}"
    );
    let job_error = JobError::from(error);
    assert_eq!(job_error.kind(), &ErrorKind::NOT_FOUND);
    assert!(!job_error.is_retryable(), "{job_error}");
}

fn store() -> Store {
    Store {
        id: "st_1".into(),
        shopify_domain: "st-1.myshopify.com".parse().unwrap(),
        pos_location_id: None,
        plan: Plan::Basic,
        sync_state: SyncState::Never,
    }
}

fn entry(detail: serde_json::Value) -> HistoryEntry {
    HistoryEntry {
        kind: RecordKind::SyncRun,
        id: "run_1".into(),
        store_id: "st_1".into(),
        at: Utc::now(),
        detail,
    }
}

#[tokio::test]
async fn every_repository_on_a_missing_table_is_refused_permanently() {
    let client = aws_sdk_dynamodb::Client::new(&moto::sdk_config().await);
    let missing = moto::unique("missing");

    let stores = DynamoStores::new(client.clone(), &missing);
    refused_as_missing(stores.get(&"st_1".into()), "GetItem", &missing).await;
    refused_as_missing(stores.put(&store()), "PutItem", &missing).await;
    refused_as_missing(stores.set_sync_state(&"st_1".into(), &SyncState::Never), "UpdateItem", &missing)
        .await;
    refused_as_missing(stores.syncable(), "Scan", &missing).await;

    let catalog = DynamoCatalog::new(client.clone(), &missing);
    refused_as_missing(catalog.count_products(&"st_1".into()), "Query", &missing).await;
    refused_as_missing(catalog.get_product(&"st_1".into(), &"p1".into()), "GetItem", &missing).await;

    let customers = DynamoCustomers::new(client.clone(), &missing);
    refused_as_missing(customers.get_customer(&"st_1".into(), &"c1".into()), "GetItem", &missing).await;

    let history = DynamoHistory::new(client.clone(), &missing);
    refused_as_missing(history.append(&entry(json!({}))), "PutItem", &missing).await;
    refused_as_missing(history.recent(RecordKind::SyncRun, 10), "Query", &missing).await;
    refused_as_missing(history.purge_before(RecordKind::SyncRun, Utc::now(), 10), "Query", &missing).await;

    let inventory = moto::unique("missing-inventory");
    let carts = DynamoCarts::new(client.clone(), &missing, &inventory);
    refused_as_missing(carts.idle_active(Utc::now(), 10), "Query", &missing).await;
    refused_as_missing(carts.expired(Utc::now(), 10), "Query", &missing).await;
    refused_as_missing(carts.delete(&["c1".into()]), "DeleteItem", &missing).await;
    refused_as_missing(carts.available("v1"), "GetItem", &inventory).await;
}

#[tokio::test]
async fn batch_writes_to_a_missing_table_are_refused_permanently() {
    let client = aws_sdk_dynamodb::Client::new(&moto::sdk_config().await);
    let missing = moto::unique("missing");
    let catalog = DynamoCatalog::new(client.clone(), &missing);
    let product = shop::Product {
        id: "p1".into(),
        store_id: "st_1".into(),
        title: "Shoe".into(),
        handle: "shoe".into(),
        variants: vec![],
    };
    refused_as_missing(catalog.upsert_products(&[product]), "BatchWriteItem", &missing).await;
}

#[tokio::test]
async fn a_missing_index_and_an_oversized_item_are_refused_permanently() {
    let client = aws_sdk_dynamodb::Client::new(&moto::sdk_config().await);
    // The history's key, without its by_kind_time index.
    let table = tables::table(&client, &[("id", KeyType::Hash)]).await.unwrap();
    let history = DynamoHistory::new(client.clone(), &table);

    // DynamoDB answers a ValidationException ("The table does not have the specified index"),
    // moto a ResourceNotFoundException ("Invalid index"): permanent either way.
    let error = history.recent(RecordKind::SyncRun, 10).await.expect_err("no such index");
    assert!(
        matches!(&error, RepoError::Rejected { operation, code, .. } if operation == "Query"
            && ["ValidationException", "ResourceNotFoundException"].contains(&code.as_str())),
        "{error:?}"
    );
    let text = error.to_string();
    assert!(text.starts_with(&format!("DynamoDB refused Query on table `{table}`: ")), "{text}");
    assert!(text.contains("by_kind_time"), "the index is named: {text}");
    assert!(!JobError::from(error).is_retryable());

    // 500 KB of detail: over DynamoDB's 400 KB an item may hold.
    let error = history.append(&entry(json!({"blob": "x".repeat(500 * 1024)}))).await.expect_err("too large");
    assert!(
        matches!(&error, RepoError::Rejected { operation, code, .. } if operation == "PutItem" && code == "ValidationException"),
        "{error:?}"
    );
    assert!(error.to_string().contains(&table), "{error}");
    let job_error = JobError::from(error);
    assert_eq!(job_error.kind(), &ErrorKind::INVALID_INPUT);
    assert!(!job_error.is_retryable());
}

#[tokio::test]
async fn clean_active_carts_without_its_carts_table_goes_to_the_dlq_after_one_attempt() {
    let stack = Stack::deploy().await.expect("stack");
    let carts_table = stack.table("SHOP_CARTS_TABLE").unwrap();
    stack.dynamo().delete_table().table_name(&carts_table).send().await.expect("carts table deleted");
    let mut function = stack.start("clean_active_carts", &[]).await.expect("started");
    let sqs = stack.sqs();
    function.send(&sqs, "{}").await.expect("sent");
    function.lambda.drain(Duration::from_secs(60)).await.expect("the queue drains");
    let logs = function.lambda.logs();

    let dead = dead_letters(&sqs, &function.dlq_url).await.expect("DLQ read");
    assert_eq!(dead.len(), 1, "one message in the DLQ: {dead:?}\n{logs}");
    let error = dead[0].error();
    assert_eq!(
        (error.kind.as_str(), error.reason.as_str(), error.attempts),
        ("not_found", "discarded", 1),
        "a missing table is not retried: {error:?}\n{logs}"
    );
    assert!(
        error
            .message
            .contains(&format!("DynamoDB refused Query on table `{carts_table}`: ResourceNotFoundException")),
        "the DLQ names the table and the operation: {}",
        error.message
    );
}
