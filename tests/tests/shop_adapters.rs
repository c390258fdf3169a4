//! The shop's AWS adapters through the real SDK clients against moto.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use shop::{
    CatalogRepository, Credentials, Money, Plan, Product, Store, StoreId, StoreRepository, SyncState,
    Variant,
    aws::{DynamoCatalog, DynamoStores, SecretsManagerCredentials},
};
use system_tests::moto;

async fn table(client: &aws_sdk_dynamodb::Client, keys: &[(&str, KeyType)]) -> String {
    let name = moto::unique("shop");
    let mut request = client.create_table().table_name(&name).billing_mode(BillingMode::PayPerRequest);
    for (key, kind) in keys {
        let definition = AttributeDefinition::builder()
            .attribute_name(*key)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .unwrap();
        let schema = KeySchemaElement::builder().attribute_name(*key).key_type(kind.clone()).build().unwrap();
        request = request.attribute_definitions(definition).key_schema(schema);
    }
    request.send().await.expect("table created");
    name
}

fn store(id: &str, plan: Plan) -> Store {
    Store {
        id: id.into(),
        shopify_domain: format!("{id}.myshopify.com").replace('_', "-").parse().unwrap(),
        pos_location_id: Some("L1".into()),
        plan,
        sync_state: SyncState::Never,
    }
}

#[tokio::test]
async fn stores_round_trip_and_sync_state_never_resurrects_a_store() {
    let client = aws_sdk_dynamodb::Client::new(&moto::sdk_config().await);
    let stores = DynamoStores::new(client.clone(), table(&client, &[("id", KeyType::Hash)]).await);
    stores.put(&store("st_1", Plan::Basic)).await.unwrap();
    stores.put(&store("st_2", Plan::Paused)).await.unwrap();
    assert_eq!(stores.get(&"st_1".into()).await.unwrap(), Some(store("st_1", Plan::Basic)));
    assert_eq!(stores.syncable().await.unwrap(), vec![StoreId::from("st_1")]);

    let running = SyncState::Running { started_at: chrono::Utc::now(), pages: 3, products: 750 };
    stores.set_sync_state(&"st_1".into(), &running).await.unwrap();
    assert_eq!(stores.get(&"st_1".into()).await.unwrap().unwrap().sync_state, running);
    stores.set_sync_state(&"st_gone".into(), &running).await.unwrap();
    assert_eq!(stores.get(&"st_gone".into()).await.unwrap(), None, "no store is created by a sync state");
}

fn product(n: u32) -> Product {
    Product {
        id: format!("gid://shopify/Product/{n}").into(),
        store_id: "st_1".into(),
        title: format!("Product {n}"),
        handle: format!("p-{n}"),
        variants: vec![Variant {
            id: format!("gid://shopify/ProductVariant/{n}").into(),
            sku: None,
            price: Money { minor: 990, currency: "USD".into() },
            inventory: 1,
        }],
    }
}

#[tokio::test]
async fn catalog_writes_in_batches_and_stores_each_product_once() {
    let client = aws_sdk_dynamodb::Client::new(&moto::sdk_config().await);
    let name = table(&client, &[("store_id", KeyType::Hash), ("id", KeyType::Range)]).await;
    let catalog = DynamoCatalog::new(client, name);
    let mut products: Vec<Product> = (0..60).map(product).collect();
    products.push(product(7)); // the same product twice in one page
    assert_eq!(catalog.upsert_products(&products).await.unwrap(), 60);
    assert_eq!(catalog.upsert_products(&products[..30]).await.unwrap(), 30);
    assert_eq!(catalog.count_products(&"st_1".into()).await.unwrap(), 60);
    assert_eq!(catalog.count_products(&"st_other".into()).await.unwrap(), 0);
}

#[tokio::test]
async fn credentials_come_from_secrets_manager_and_never_print() {
    let client = aws_sdk_secretsmanager::Client::new(&moto::sdk_config().await);
    let prefix = moto::unique("store-jobs");
    client
        .create_secret()
        .name(format!("{prefix}/st_1"))
        .secret_string(r#"{"shopify_token":"shpat_abc123","square_token":"sq0atp-x"}"#)
        .send()
        .await
        .expect("secret created");
    let credentials = SecretsManagerCredentials::new(client, prefix);
    let token = credentials.shopify_token(&"st_1".into()).await.unwrap().expect("a token");
    assert_eq!(token.expose(), "shpat_abc123");
    assert!(!format!("{token:?} {token}").contains("shpat"), "redacted when printed");
    assert_eq!(credentials.shopify_token(&"st_unknown".into()).await.unwrap(), None);
}

#[tokio::test]
async fn sms_goes_out_through_sns_and_opt_outs_are_read() {
    use shop::{SmsSender, SmsText, aws::SnsSms};

    let sms = SnsSms::new(aws_sdk_sns::Client::new(&moto::sdk_config().await));
    let phone: shop::PhoneNumber = "+14155550123".parse().unwrap();
    assert!(!sms.opted_out(&phone).await.unwrap());
    let marker = moto::unique("Red Shoe");
    let text = SmsText::compose(&marker, "https://acme.myshopify.com/products/red-shoe", 1).unwrap();
    let id = sms.send(&phone, &text).await.unwrap();
    assert!(!id.is_empty());
    let url = format!("{}/moto-api/data.json", moto::endpoint());
    let data = tokio::task::spawn_blocking(move || moto::http_get(&url)).await.unwrap().unwrap();
    assert!(data.contains(&marker), "moto recorded the SMS");
}
