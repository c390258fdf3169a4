//! The shop's AWS adapters through the real SDK clients against moto.

// What the adapters make of DynamoDB's refusals: a module of this binary rather than a test
// binary of its own, which would link the AWS SDK once more.
#[path = "shop_adapters/dynamodb_errors.rs"]
mod dynamodb_errors;
#[path = "shop_adapters/sealed_tokens.rs"]
mod sealed_tokens;

use aws_sdk_dynamodb::types::{AttributeValue, KeyType};
use shop::{
    CatalogRepository, Credentials, CustomerRepository, Money, Plan, Product, Store, StoreId,
    StoreRepository, SyncState, Variant,
    aws::{DynamoCatalog, DynamoStores, SecretsManagerCredentials},
};
use system_tests::{moto, tables};

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
    let stores =
        DynamoStores::new(client.clone(), tables::table(&client, &[("id", KeyType::Hash)]).await.unwrap());
    stores.put(&store("st_1", Plan::Basic)).await.unwrap();
    stores.put(&store("st_2", Plan::Paused)).await.unwrap();
    assert_eq!(stores.get(&"st_1".into()).await.unwrap(), Some(store("st_1", Plan::Basic)));
    assert_eq!(stores.syncable().await.unwrap(), vec![(StoreId::from("st_1"), Plan::Basic)]);

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
    let name = tables::table(&client, &[("store_id", KeyType::Hash), ("id", KeyType::Range)]).await.unwrap();
    let catalog = DynamoCatalog::new(client, name);
    let mut products: Vec<Product> = (0..60).map(product).collect();
    products.push(product(7)); // the same product twice in one page
    assert_eq!(catalog.upsert_products(&products).await.unwrap(), 60);
    assert_eq!(catalog.upsert_products(&products[..30]).await.unwrap(), 30);
    assert_eq!(catalog.count_products(&"st_1".into()).await.unwrap(), 60);
    assert_eq!(catalog.count_products(&"st_other".into()).await.unwrap(), 0);
}

#[tokio::test]
async fn the_catalog_sweep_removes_exactly_the_products_one_store_did_not_sync() {
    let client = aws_sdk_dynamodb::Client::new(&moto::sdk_config().await);
    let name = tables::table(&client, &[("store_id", KeyType::Hash), ("id", KeyType::Range)]).await.unwrap();
    let catalog = DynamoCatalog::new(client, name);
    let (st_1, st_2) = (StoreId::from("st_1"), StoreId::from("st_2"));
    let of_st_2 = |n: u32| Product { store_id: st_2.clone(), ..product(n) };
    // st_1: 80 products of an earlier run, one written unmarked; this run rewrites 0..40 but 5
    // and 30. st_2: products of the same ids, of the earlier run and unmarked.
    catalog.upsert_synced(&(0..80).map(product).collect::<Vec<_>>(), "run-a").await.unwrap();
    catalog.upsert_products(&[product(99)]).await.unwrap();
    let this_run: Vec<Product> = (0..40).filter(|n| ![5, 30].contains(n)).map(product).collect();
    catalog.upsert_synced(&this_run, "run-b").await.unwrap();
    catalog.upsert_synced(&(0..10).map(of_st_2).collect::<Vec<_>>(), "run-a").await.unwrap();
    catalog.upsert_products(&[of_st_2(50)]).await.unwrap();

    // Batches of 30 (more than one BatchWriteItem of 25), each after the last id it removed.
    let first = catalog.remove_unsynced(&st_1, "run-b", None, 30).await.unwrap();
    assert_eq!(first.products.len(), 30);
    assert_eq!(first.next.as_ref(), first.products.last(), "the next batch starts after this one");
    let second = catalog.remove_unsynced(&st_1, "run-b", first.next.as_ref(), 30).await.unwrap();
    assert_eq!(second.next, None, "every product of st_1 looked at");
    let mut removed: Vec<_> = first.products.into_iter().chain(second.products).collect();
    removed.sort();
    let mut expected: Vec<_> = [5, 30, 99].into_iter().chain(40..80).map(|n| product(n).id).collect();
    expected.sort();
    assert_eq!(removed, expected, "exactly the products this run did not write");

    for n in 0..80 {
        let kept = catalog.get_product(&st_1, &product(n).id).await.unwrap();
        assert_eq!(kept.is_some(), this_run.iter().any(|p| p.id == product(n).id), "product {n}");
    }
    assert_eq!(catalog.count_products(&st_1).await.unwrap(), this_run.len() as u64);
    assert_eq!(catalog.count_products(&st_2).await.unwrap(), 11, "another store's products stay");
    let again = catalog.remove_unsynced(&st_1, "run-b", None, 30).await.unwrap();
    assert_eq!((again.products.len(), again.next), (0, None), "nothing left to remove");
}

#[tokio::test]
async fn credentials_come_from_secrets_manager_and_never_print() {
    let client = aws_sdk_secretsmanager::Client::new(&moto::sdk_config().await);
    let prefix = moto::unique("store-jobs");
    // One secret per platform: a role granted one platform's secrets reads that token only.
    for (platform, token) in [("shopify", "shpat_abc123"), ("square", "sq0atp-x")] {
        client
            .create_secret()
            .name(format!("{prefix}/st_1/{platform}"))
            .secret_string(format!(r#"{{"token":"{token}"}}"#))
            .send()
            .await
            .expect("secret created");
    }
    let credentials = SecretsManagerCredentials::new(client, prefix);
    let token = credentials.shopify_token(&"st_1".into()).await.unwrap().expect("a token");
    assert_eq!(token.expose(), "shpat_abc123");
    assert!(!format!("{token:?} {token}").contains("shpat"), "redacted when printed");
    assert_eq!(
        credentials.square_token(&"st_1".into()).await.unwrap().expect("a POS token").expose(),
        "sq0atp-x"
    );
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
    let outbox = moto::Outbox::read().await.expect("moto's outbox");
    assert_eq!(outbox.texts_containing(&marker), 1, "moto recorded the SMS");
}

#[tokio::test]
async fn carts_on_dynamodb_abandon_once_and_expire() {
    use shop::{Cart, CartItem, CartRepository, CartStatus, StockRelease};

    let (_, _, carts) = janitor_on_dynamodb().await;

    let now = chrono::Utc::now();
    let cart = |id: &str, status: CartStatus, idle_hours: i64, expires_hours: i64| Cart {
        id: id.into(),
        store_id: "st_1".into(),
        items: vec![CartItem { variant_id: "v1".into(), quantity: 3 }],
        status,
        stock_reserved: status == CartStatus::Active,
        last_activity_at: now - chrono::Duration::hours(idle_hours),
        expires_at: now + chrono::Duration::hours(expires_hours),
    };
    carts.put_cart(&cart("idle", CartStatus::Active, 3, 24)).await.unwrap();
    carts.put_cart(&cart("recent", CartStatus::Active, 0, 24)).await.unwrap();
    carts.put_cart(&cart("old", CartStatus::Abandoned, 48, -1)).await.unwrap();

    let idle = carts.idle_active(now - chrono::Duration::hours(2), 10).await.unwrap();
    assert_eq!(idle.iter().map(|c| c.as_ref().unwrap().id.as_str()).collect::<Vec<_>>(), ["idle"]);
    let releases = [StockRelease { variant_id: "v1".into(), quantity: 3 }];
    assert!(carts.abandon(&"idle".into(), &releases).await.unwrap());
    assert!(!carts.abandon(&"idle".into(), &releases).await.unwrap(), "the second run loses the race");
    assert_eq!(carts.available("v1").await.unwrap(), 3, "stock given back once");
    assert!(carts.idle_active(now - chrono::Duration::hours(2), 10).await.unwrap().is_empty());

    // Eight janitors racing for one cart, as many invocations of the hourly run would: one
    // transaction wins, the stock comes back once.
    for n in 0..5 {
        let id = format!("raced-{n}");
        carts.put_cart(&cart(&id, CartStatus::Active, 3, 24)).await.unwrap();
        let before = carts.available("v1").await.unwrap();
        let cart_id = shop::CartId::from(id.as_str());
        let races = (0..8).map(|_| carts.abandon(&cart_id, &releases));
        let won = futures::future::join_all(races).await.into_iter().filter(|r| *r.as_ref().unwrap()).count();
        assert_eq!(won, 1, "{id}: one janitor wins");
        assert_eq!(carts.available("v1").await.unwrap(), before + 3, "{id}: stock given back once");
        carts.delete(&[cart_id]).await.unwrap();
    }

    let expired = carts.expired(now, 10).await.unwrap();
    assert_eq!(expired, [shop::CartId::from("old")]);
    assert_eq!(carts.delete(&expired).await.unwrap(), 1);
    assert!(carts.expired(now, 10).await.unwrap().is_empty());
}

/// Among 300 carts, the expired sessions are found by reading those (the index of carts by
/// status and expiry), not the table: the read units stay those of the few expired carts, where
/// a scan of the table's 300 carts pays for all of them. Carts set aside stay, expired or not.
#[tokio::test]
async fn expired_sessions_are_found_by_reading_them_not_the_table() {
    use shop::{Cart, CartItem, CartRepository, CartStatus};
    use system_tests::cost::Meter;

    let meter = Meter::new();
    let client = aws_sdk_dynamodb::Client::new(&meter.sdk_config().await);
    let carts_table = tables::carts_table(&client).await.unwrap();
    let inventory_table = tables::table(&client, &[("variant_id", KeyType::Hash)]).await.unwrap();
    let carts = shop::aws::DynamoCarts::new(client, carts_table, inventory_table);
    let now = chrono::Utc::now();
    let cart = |n: usize, status: CartStatus, expires_hours: i64| Cart {
        id: format!("cart-{n:03}").into(),
        store_id: "st_1".into(),
        items: (0..5).map(|v| CartItem { variant_id: format!("variant-{v}").into(), quantity: 1 }).collect(),
        status,
        stock_reserved: status == CartStatus::Active,
        last_activity_at: now - chrono::Duration::minutes(10),
        expires_at: now + chrono::Duration::hours(expires_hours),
    };
    for n in 0..300 {
        let expired = match n {
            7 => cart(n, CartStatus::Abandoned, -1),
            150 => cart(n, CartStatus::CheckedOut, -2),
            299 => cart(n, CartStatus::Active, -3),
            42 => cart(n, CartStatus::SetAside, -4),
            _ => cart(n, CartStatus::Active, 24),
        };
        carts.put_cart(&expired).await.unwrap();
    }
    meter.reset().await.unwrap();

    let mut expired = carts.expired(now, 100).await.unwrap();
    expired.sort();
    assert_eq!(
        expired,
        ["cart-007".into(), "cart-150".into(), "cart-299".into()],
        "all but the cart set aside"
    );
    let calls = meter.calls().await.unwrap();
    let read: f64 = calls.iter().map(|c| c.rcu).sum();
    let actions: Vec<&str> = calls.iter().map(|c| c.action.as_str()).collect();
    assert!(!actions.contains(&"Scan"), "{actions:?}");
    // Three queries (a status each) of at most one key-only item: half a unit each.
    assert!(read <= 1.5, "{read} read units for three expired carts among 300");
}

/// The carts and inventory tables on moto, and the janitor on them.
async fn janitor_on_dynamodb() -> (aws_sdk_dynamodb::Client, String, std::sync::Arc<shop::aws::DynamoCarts>) {
    let client = aws_sdk_dynamodb::Client::new(&moto::sdk_config().await);
    let carts_table = tables::carts_table(&client).await.unwrap();
    let inventory_table = tables::table(&client, &[("variant_id", KeyType::Hash)]).await.unwrap();
    let carts = shop::aws::DynamoCarts::new(client.clone(), carts_table.clone(), inventory_table);
    (client, carts_table, std::sync::Arc::new(carts))
}

/// Cart `n` of a backlog, idle past the 2-hour threshold (the lower `n`, the older), with
/// `lines` lines of 2 units.
fn backlog_cart(n: usize, lines: &[&str], now: chrono::DateTime<chrono::Utc>) -> shop::Cart {
    shop::Cart {
        id: format!("cart-{n:03}").into(),
        store_id: "st_1".into(),
        items: lines.iter().map(|v| shop::CartItem { variant_id: (*v).into(), quantity: 2 }).collect(),
        status: shop::CartStatus::Active,
        stock_reserved: true,
        last_activity_at: now - chrono::Duration::hours(3) - chrono::Duration::minutes(500 - n as i64),
        expires_at: now + chrono::Duration::days(1),
    }
}

/// The cleanup job's loop over the janitor: batches of 100 until one comes back short.
async fn clean(
    janitor: &shop::services::CartJanitor,
    now: chrono::DateTime<chrono::Utc>,
) -> (usize, u64, Vec<jobkit::SetAside>) {
    let (mut abandoned, mut units, mut set_aside) = (0, 0, Vec::new());
    loop {
        let batch = janitor.abandon_idle(now, chrono::Duration::hours(2), 100).await.unwrap();
        abandoned += batch.abandoned;
        units += batch.units_released;
        set_aside.extend(batch.set_aside);
        if batch.examined < 100 {
            return (abandoned, units, set_aside);
        }
    }
}

const VARIANTS: [&str; 7] = ["v0", "v1", "v2", "v3", "v4", "v5", "v6"];

#[tokio::test]
async fn a_cart_too_big_for_one_transaction_among_500_is_set_aside_and_the_499_others_abandoned() {
    use futures::StreamExt;

    let (client, carts_table, carts) = janitor_on_dynamodb().await;
    let now = chrono::Utc::now();
    // 120 lines, 120 variants: its abandon would be 121 actions, and TransactWriteItems takes 100.
    let big: Vec<String> = (0..120).map(|l| format!("big-{l}")).collect();
    let big: Vec<&str> = big.iter().map(String::as_str).collect();
    let backlog: Vec<shop::Cart> = (0..500)
        .map(|n| if n == 137 { backlog_cart(n, &big, now) } else { backlog_cart(n, &[VARIANTS[n % 7]], now) })
        .collect();
    futures::stream::iter(&backlog)
        .for_each_concurrent(16, |cart| async { carts.put_cart(cart).await.unwrap() })
        .await;
    let janitor = shop::services::CartJanitor::new(carts.clone());

    let (abandoned, units, set_aside) = clean(&janitor, now).await;

    assert_eq!((abandoned, units), (499, 998));
    let mut available = 0;
    for variant in VARIANTS {
        available += carts.available(variant).await.unwrap();
    }
    assert_eq!(available, 998, "the 499 gave their stock back");
    assert_eq!(carts.available("big-0").await.unwrap(), 0, "the big one's stock stays reserved");
    assert_eq!(set_aside.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["cart-137"], "reported once");
    assert!(set_aside[0].reason.contains("120 variants"), "{}", set_aside[0].reason);
    let item = raw_item(&client, &carts_table, &[("id", "cart-137")]).await;
    assert_eq!(item["status"], s("set_aside"), "out of the index's active partition");
    assert_eq!(item["set_aside_reason"], s(&set_aside[0].reason));
    assert_eq!(
        carts.set_aside_reason(&"cart-137".into()).await.unwrap().as_deref(),
        Some(set_aside[0].reason.as_str())
    );

    // The next hourly run finds nothing: the set-aside cart is not picked up again.
    let (abandoned, _, set_aside) = clean(&janitor, now + chrono::Duration::hours(1)).await;
    assert_eq!((abandoned, set_aside), (0, vec![]));
    // Its session, once expired, is kept for the operator.
    let expired = janitor.delete_expired(now + chrono::Duration::days(2), 1000).await.unwrap();
    assert_eq!(expired, 499);
    assert_eq!(raw_item(&client, &carts_table, &[("id", "cart-137")]).await["status"], s("set_aside"));
}

#[tokio::test]
async fn a_cart_item_that_does_not_read_is_set_aside_and_repeated_variants_are_one_action() {
    use shop::CartRepository;

    let (client, carts_table, carts) = janitor_on_dynamodb().await;
    let now = chrono::Utc::now();
    for n in 0..20 {
        // Each cart holds its variant on two lines: one update of the variant, as DynamoDB
        // refuses two actions on one item in a transaction.
        let variant = VARIANTS[n % 7];
        carts.put_cart(&backlog_cart(n, &[variant, "v-shared", variant], now)).await.unwrap();
    }
    client
        .update_item()
        .table_name(&carts_table)
        .key("id", s("cart-005"))
        .update_expression("SET #items = :garbage")
        .expression_attribute_names("#items", "items")
        .expression_attribute_values(":garbage", s("three socks"))
        .send()
        .await
        .expect("updated");
    let idle = carts.idle_active(now - chrono::Duration::hours(2), 100).await.unwrap();
    assert_eq!(
        idle.iter().filter(|c| c.is_err()).count(),
        1,
        "one bad item fails neither the query nor the others"
    );

    let janitor = shop::services::CartJanitor::new(carts.clone());
    let (abandoned, units, set_aside) = clean(&janitor, now).await;

    assert_eq!((abandoned, units), (19, 19 * 6));
    assert_eq!(carts.available("v-shared").await.unwrap(), 19 * 2);
    assert_eq!(set_aside.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["cart-005"]);
    assert!(set_aside[0].reason.contains("items"), "names the attribute: {}", set_aside[0].reason);
    assert_eq!(raw_item(&client, &carts_table, &[("id", "cart-005")]).await["status"], s("set_aside"));
    assert_eq!(clean(&janitor, now).await, (0, 0, vec![]), "not picked up again");
}

#[tokio::test]
async fn customers_round_trip_on_dynamodb() {
    use shop::{Customer, Preferences, aws::DynamoCustomers};

    let client = aws_sdk_dynamodb::Client::new(&moto::sdk_config().await);
    let name = tables::table(&client, &[("store_id", KeyType::Hash), ("id", KeyType::Range)]).await.unwrap();
    let customers = DynamoCustomers::new(client, name);
    let profile = |n: u32| Customer {
        id: format!("c{n}").into(),
        store_id: "st_1".into(),
        name: format!("Ana {n}"),
        email: Some(format!("ana{n}@example.com")),
        phone: Some("+14155550123".parse().unwrap()),
        order_count: n,
        total_spent_minor: i64::from(n) * 1000,
        preferences: Preferences { email_marketing: true, sms_marketing: false },
    };
    let batch: Vec<Customer> = (0..40).map(profile).collect();
    assert_eq!(customers.upsert_customers(&batch).await.unwrap(), 40);
    assert_eq!(customers.get_customer(&"st_1".into(), &"c39".into()).await.unwrap(), Some(profile(39)));
    assert_eq!(customers.get_customer(&"st_1".into(), &"c99".into()).await.unwrap(), None);
}

#[tokio::test]
async fn history_on_dynamodb_keeps_one_entry_per_id_and_purges_the_oldest_first() {
    use shop::{History, HistoryEntry, RecordKind, aws::DynamoHistory};

    let client = aws_sdk_dynamodb::Client::new(&moto::sdk_config().await);
    let table = tables::indexed_table(&client, "id", shop::aws::BY_KIND_TIME, "kind", "at_ms").await.unwrap();
    let history = DynamoHistory::new(client, table);
    let now = chrono::Utc::now();
    let run = |n: i64, days_ago: i64| {
        let at = now - chrono::Duration::days(days_ago);
        HistoryEntry::sync_run("store_sync", &format!("j{n}"), &"st_1".into(), at, at, serde_json::json!({}))
    };
    for n in 0..30 {
        history.append(&run(n, 40 + n)).await.unwrap();
    }
    history.append(&run(99, 1)).await.unwrap();
    history.append(&run(99, 1)).await.unwrap();
    let audit = HistoryEntry::audit("product_shared", "sh_1", &"st_1".into(), now, serde_json::json!({}));
    history.append(&audit).await.unwrap();

    let cutoff = now - chrono::Duration::days(30);
    assert_eq!(history.purge_before(RecordKind::SyncRun, cutoff, 25).await.unwrap(), 25, "bounded");
    assert_eq!(history.purge_before(RecordKind::SyncRun, cutoff, 25).await.unwrap(), 5);
    assert_eq!(history.purge_before(RecordKind::SyncRun, cutoff, 25).await.unwrap(), 0);
    let left = history.recent(RecordKind::SyncRun, 10).await.unwrap();
    assert_eq!(left.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["store_sync:j99"], "one per id");
    assert_eq!(history.recent(RecordKind::AuditLog, 10).await.unwrap(), [audit], "other kinds untouched");
}

#[tokio::test]
async fn a_history_entry_that_does_not_decode_is_purged_like_the_others_on_dynamodb() {
    use shop::{History, HistoryEntry, RecordKind, aws::DynamoHistory};

    let client = aws_sdk_dynamodb::Client::new(&moto::sdk_config().await);
    let table = tables::indexed_table(&client, "id", shop::aws::BY_KIND_TIME, "kind", "at_ms").await.unwrap();
    let history = DynamoHistory::new(client.clone(), table.clone());
    let now = chrono::Utc::now();
    for n in 0..30 {
        let at = now - chrono::Duration::days(40 + n);
        let run = HistoryEntry::sync_run(
            "store_sync",
            &format!("j{n}"),
            &"st_1".into(),
            at,
            at,
            serde_json::json!({}),
        );
        history.append(&run).await.unwrap();
    }
    client
        .update_item()
        .table_name(&table)
        .key("id", s("sync_run#store_sync:j7"))
        .update_expression("SET body = :garbage")
        .expression_attribute_values(":garbage", s("not an entry"))
        .send()
        .await
        .expect("updated");
    assert!(history.recent(RecordKind::SyncRun, 30).await.is_err(), "the entry no longer decodes");

    let cutoff = now - chrono::Duration::days(30);
    assert_eq!(history.purge_before(RecordKind::SyncRun, cutoff, 25).await.unwrap(), 25);
    assert_eq!(history.purge_before(RecordKind::SyncRun, cutoff, 25).await.unwrap(), 5, "past it");
    assert!(history.recent(RecordKind::SyncRun, 30).await.unwrap().is_empty(), "the bad one went too");
}

/// The item `key` of `table` as DynamoDB holds it, read with the raw SDK client.
async fn raw_item(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    key: &[(&str, &str)],
) -> std::collections::HashMap<String, AttributeValue> {
    let mut request = client.get_item().table_name(table);
    for (name, value) in key {
        request = request.key(*name, AttributeValue::S((*value).to_owned()));
    }
    request.send().await.expect("read").item.expect("an item")
}

fn map<'a>(value: &'a AttributeValue, what: &str) -> &'a std::collections::HashMap<String, AttributeValue> {
    value.as_m().unwrap_or_else(|_| panic!("{what} is a map, not {value:?}"))
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

#[tokio::test]
async fn stores_are_native_items_an_operator_can_filter_on() {
    let client = aws_sdk_dynamodb::Client::new(&moto::sdk_config().await);
    let table = tables::table(&client, &[("id", KeyType::Hash)]).await.unwrap();
    let stores = DynamoStores::new(client.clone(), table.clone());
    stores.put(&store("st_1", Plan::Pro)).await.unwrap();
    stores.put(&store("st_2", Plan::Basic)).await.unwrap();
    let failed_at = chrono::DateTime::parse_from_rfc3339("2025-06-01T12:00:00Z").unwrap().to_utc();
    let failed = SyncState::Failed { failed_at, reason: "shopify unavailable".into() };
    stores.set_sync_state(&"st_1".into(), &failed).await.unwrap();

    let item = raw_item(&client, &table, &[("id", "st_1")]).await;
    assert_eq!(item["plan"], s("pro"), "the plan is its name");
    let state = map(&item["sync_state"], "sync_state");
    assert_eq!(state["status"], s("failed"));
    assert_eq!(state["reason"], s("shopify unavailable"));
    assert_eq!(state["failed_at"], s("2025-06-01T12:00:00Z"));
    let running = SyncState::Running { started_at: failed_at, pages: 3, products: 750 };
    stores.set_sync_state(&"st_2".into(), &running).await.unwrap();
    let item = raw_item(&client, &table, &[("id", "st_2")]).await;
    assert_eq!(map(&item["sync_state"], "sync_state")["products"], AttributeValue::N("750".into()));

    // The operator's question "whose last sync failed?" is a filter on the nested status.
    let out = client
        .scan()
        .table_name(&table)
        .filter_expression("sync_state.#status = :failed")
        .expression_attribute_names("#status", "status")
        .expression_attribute_values(":failed", s("failed"))
        .projection_expression("id")
        .send()
        .await
        .expect("scanned");
    assert_eq!(out.items(), [std::collections::HashMap::from([("id".to_owned(), s("st_1"))])]);
    assert_eq!(stores.get(&"st_1".into()).await.unwrap().unwrap().sync_state, failed, "and reads back");
}

#[tokio::test]
async fn a_corrupt_store_item_is_refused_naming_its_attribute() {
    let client = aws_sdk_dynamodb::Client::new(&moto::sdk_config().await);
    let table = tables::table(&client, &[("id", KeyType::Hash)]).await.unwrap();
    let stores = DynamoStores::new(client.clone(), table.clone());
    stores.put(&store("st_1", Plan::Basic)).await.unwrap();
    let cases = [
        ("sync_state", AttributeValue::M([("status".to_owned(), s("exploded"))].into())),
        ("sync_state", AttributeValue::N("1".into())),
        ("plan", s("gold")),
    ];
    for (attribute, value) in cases {
        client
            .update_item()
            .table_name(&table)
            .key("id", s("st_1"))
            .update_expression("SET #a = :v")
            .expression_attribute_names("#a", attribute)
            .expression_attribute_values(":v", value.clone())
            .send()
            .await
            .expect("updated");
        let refused = stores.get(&"st_1".into()).await;
        assert!(
            matches!(&refused, Err(shop::RepoError::Corrupt(m)) if m.contains(attribute)),
            "{attribute} = {value:?}: {refused:?}"
        );
        stores.put(&store("st_1", Plan::Basic)).await.unwrap();
    }
}

#[tokio::test]
async fn carts_hold_their_lines_as_a_list_of_maps() {
    use shop::{Cart, CartItem, CartRepository, CartStatus, aws::DynamoCarts};

    let client = aws_sdk_dynamodb::Client::new(&moto::sdk_config().await);
    let carts_table = tables::carts_table(&client).await.unwrap();
    let inventory_table = tables::table(&client, &[("variant_id", KeyType::Hash)]).await.unwrap();
    let carts = DynamoCarts::new(client.clone(), carts_table.clone(), inventory_table);
    let now = chrono::Utc::now();
    let cart = Cart {
        id: "c1".into(),
        store_id: "st_1".into(),
        items: vec![
            CartItem { variant_id: "v1".into(), quantity: 3 },
            CartItem { variant_id: "v2".into(), quantity: 1 },
        ],
        status: CartStatus::Active,
        stock_reserved: true,
        last_activity_at: now,
        expires_at: now + chrono::Duration::hours(1),
    };
    carts.put_cart(&cart).await.unwrap();

    let item = raw_item(&client, &carts_table, &[("id", "c1")]).await;
    let lines = item["items"].as_l().unwrap_or_else(|_| panic!("items is a list: {:?}", item["items"]));
    assert_eq!(lines.len(), 2);
    let first = map(&lines[0], "a line");
    assert_eq!((&first["variant_id"], &first["quantity"]), (&s("v1"), &AttributeValue::N("3".into())));
    // "Which carts hold v2?" reads inside the list.
    let out = client
        .scan()
        .table_name(&carts_table)
        .filter_expression("#items[1].variant_id = :v")
        .expression_attribute_names("#items", "items")
        .expression_attribute_values(":v", s("v2"))
        .send()
        .await
        .expect("scanned");
    assert_eq!(out.count(), 1);
    let idle = carts.idle_active(now + chrono::Duration::minutes(1), 10).await.unwrap();
    assert_eq!(
        idle.iter().map(|c| &c.as_ref().unwrap().items).collect::<Vec<_>>(),
        [&cart.items],
        "and reads back"
    );
}

#[tokio::test]
async fn products_customers_and_history_entries_are_maps() {
    use shop::aws::{DynamoCustomers, DynamoHistory};
    use shop::{Customer, CustomerRepository, History, HistoryEntry, Preferences, RecordKind};

    let client = aws_sdk_dynamodb::Client::new(&moto::sdk_config().await);
    let keys = [("store_id", KeyType::Hash), ("id", KeyType::Range)];
    let products_table = tables::table(&client, &keys).await.unwrap();
    let catalog = DynamoCatalog::new(client.clone(), products_table.clone());
    catalog.upsert_products(&[product(1), product(2)]).await.unwrap();
    let item =
        raw_item(&client, &products_table, &[("store_id", "st_1"), ("id", "gid://shopify/Product/1")]).await;
    let body = map(&item["body"], "a product's body");
    assert_eq!(body["title"], s("Product 1"));
    let variant = map(&body["variants"].as_l().expect("variants is a list")[0], "a variant");
    assert_eq!(map(&variant["price"], "a price")["minor"], AttributeValue::N("990".into()));
    // A product by handle is a filter inside the body.
    let out = client
        .query()
        .table_name(&products_table)
        .key_condition_expression("store_id = :store")
        .filter_expression("body.handle = :handle")
        .expression_attribute_values(":store", s("st_1"))
        .expression_attribute_values(":handle", s("p-2"))
        .send()
        .await
        .expect("queried");
    assert_eq!(out.items().iter().map(|i| &i["id"]).collect::<Vec<_>>(), [&s("gid://shopify/Product/2")]);
    assert_eq!(
        catalog.get_product(&"st_1".into(), &"gid://shopify/Product/1".into()).await.unwrap(),
        Some(product(1))
    );

    let customers_table = tables::table(&client, &keys).await.unwrap();
    let customers = DynamoCustomers::new(client.clone(), customers_table.clone());
    let ana = Customer {
        id: "c1".into(),
        store_id: "st_1".into(),
        name: "Ana".into(),
        email: None,
        phone: Some("+14155550123".parse().unwrap()),
        order_count: 2,
        total_spent_minor: 4200,
        preferences: Preferences { email_marketing: false, sms_marketing: true },
    };
    customers.upsert_customers(std::slice::from_ref(&ana)).await.unwrap();
    let item = raw_item(&client, &customers_table, &[("store_id", "st_1"), ("id", "c1")]).await;
    let body = map(&item["body"], "a customer's body");
    assert_eq!(body["order_count"], AttributeValue::N("2".into()));
    assert_eq!(map(&body["preferences"], "preferences")["sms_marketing"], AttributeValue::Bool(true));
    assert_eq!(customers.get_customer(&"st_1".into(), &"c1".into()).await.unwrap(), Some(ana));

    let history_table =
        tables::indexed_table(&client, "id", shop::aws::BY_KIND_TIME, "kind", "at_ms").await.unwrap();
    let history = DynamoHistory::new(client.clone(), history_table.clone());
    let at = chrono::Utc::now();
    let run =
        HistoryEntry::sync_run("store_sync", "j1", &"st_1".into(), at, at, serde_json::json!({"pages": 2}));
    history.append(&run).await.unwrap();
    let item = raw_item(&client, &history_table, &[("id", "sync_run#store_sync:j1")]).await;
    let detail = map(&map(&item["body"], "an entry's body")["detail"], "its detail");
    assert_eq!(detail["job"], s("store_sync"));
    assert_eq!(map(&detail["counts"], "its counts")["pages"], AttributeValue::N("2".into()));
    assert_eq!(history.recent(RecordKind::SyncRun, 10).await.unwrap(), [run], "and reads back");
}
