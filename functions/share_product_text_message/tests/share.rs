//! share_product_text_message on the embedded backend: texts land in an SMS outbox folder.

use std::sync::{
    Arc,
    atomic::{AtomicU32, Ordering},
};

use async_trait::async_trait;
use jobkit::{
    ErrorKind, IntegrationError, IntegrationErrorKind,
    message::OutgoingMessage,
    ports::Queue,
    runner::{DlqReason, RecordStatus},
    testing::TestHarness,
};
use share_product_text_message::{ShareArgs, ShareProductTextMessage};
use shop::{
    CatalogRepository, History, Money, PhoneNumber, Plan, Product, RecordKind, SmsSender, SmsText, Store,
    StoreRepository, SyncState, Variant, embedded::ShopDb, services::ProductSharer, sms_outbox::SmsOutbox,
};

const PHONE: &str = "+14155550123";

/// Fails the first `n` sends with an outage, then sends to the outbox.
#[derive(Debug)]
struct Flaky {
    outbox: Arc<SmsOutbox>,
    failures_left: AtomicU32,
}

#[async_trait]
impl SmsSender for Flaky {
    async fn opted_out(&self, phone: &PhoneNumber) -> Result<bool, IntegrationError> {
        self.outbox.opted_out(phone).await
    }

    async fn send(&self, phone: &PhoneNumber, text: &SmsText) -> Result<String, IntegrationError> {
        if self.failures_left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
            return Err(IntegrationError::new("sns", IntegrationErrorKind::Unavailable, "503 from SNS"));
        }
        self.outbox.send(phone, text).await
    }
}

struct World {
    t: TestHarness,
    outbox: Arc<SmsOutbox>,
    runner: jobkit::runner::BatchRunner<ShareProductTextMessage>,
    db: ShopDb,
}

async fn world(name: &str, failures: u32) -> World {
    let db = ShopDb::in_memory().unwrap();
    db.put(&Store {
        id: "st_42".into(),
        shopify_domain: "acme.myshopify.com".parse().unwrap(),
        pos_location_id: None,
        plan: Plan::Basic,
        sync_state: SyncState::Never,
    })
    .await
    .unwrap();
    db.upsert_products(&[Product {
        id: "gid://shopify/Product/1".into(),
        store_id: "st_42".into(),
        title: "Red Shoe".into(),
        handle: "red-shoe".into(),
        variants: vec![Variant {
            id: "gid://shopify/ProductVariant/1".into(),
            sku: None,
            price: Money { minor: 4990, currency: "USD".into() },
            inventory: 3,
        }],
    }])
    .await
    .unwrap();
    let folder = std::env::temp_dir().join(format!("sms-outbox-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&folder);
    let outbox = Arc::new(SmsOutbox::new(folder));
    let sms = Arc::new(Flaky { outbox: outbox.clone(), failures_left: AtomicU32::new(failures) });
    let sharer = ProductSharer::new(Arc::new(db.clone()), sms);
    let job = ShareProductTextMessage::new(Arc::new(db.clone()), sharer, Arc::new(db.clone()));
    let t = TestHarness::new();
    let runner = t.runner(job);
    World { t, outbox, runner, db }
}

fn share(id: &str, product: &str) -> ShareArgs {
    ShareArgs {
        share_id: id.into(),
        store_id: "st_42".into(),
        product_id: product.into(),
        phone: PHONE.parse().unwrap(),
    }
}

#[tokio::test]
async fn a_share_texts_title_price_and_link_once_per_share_id() {
    let w = world("once", 0).await;
    let enqueuer = w.t.enqueuer();
    enqueuer
        .perform_later::<ShareProductTextMessage>(&share("sh_1", "gid://shopify/Product/1"))
        .await
        .unwrap();
    // The same share request enqueued again (a new job id): still one text.
    enqueuer
        .perform_later::<ShareProductTextMessage>(&share("sh_1", "gid://shopify/Product/1"))
        .await
        .unwrap();
    let report = w.t.drain(&w.runner).await;
    assert_eq!((report.succeeded(), report.count(|s| *s == RecordStatus::Duplicate)), (1, 1));

    let sent = w.outbox.sent().unwrap();
    assert_eq!(sent.len(), 1);
    assert!(
        sent[0].contains("Red Shoe - from 49.90 USD https://acme.myshopify.com/products/red-shoe"),
        "{}",
        sent[0]
    );
    assert!(
        sent[0].contains("To: +*********23") && !sent[0].contains("4155550123"),
        "the number is masked: {}",
        sent[0]
    );
    let audit = w.db.recent(RecordKind::AuditLog, 10).await.unwrap();
    assert_eq!(audit.len(), 1, "one audit entry per text");
    assert_eq!(audit[0].id, "product_shared:sh_1");
    assert_eq!(audit[0].detail["detail"]["phone"], "+*********23", "masked in the audit too");
}

#[tokio::test]
async fn an_sms_outage_is_retried_and_the_text_still_goes_out_once() {
    let w = world("outage", 1).await;
    w.t.enqueuer()
        .perform_later::<ShareProductTextMessage>(&share("sh_2", "gid://shopify/Product/1"))
        .await
        .unwrap();
    let report = w.t.drain(&w.runner).await;
    assert_eq!((report.retried(), report.succeeded()), (1, 1));
    assert_eq!(w.outbox.sent().unwrap().len(), 1);
}

#[tokio::test]
async fn gone_products_opted_out_numbers_and_invalid_phones_go_to_the_dlq() {
    let w = world("refused", 0).await;
    let enqueuer = w.t.enqueuer();
    enqueuer
        .perform_later::<ShareProductTextMessage>(&share("sh_3", "gid://shopify/Product/404"))
        .await
        .unwrap();
    assert_eq!(
        w.t.run_once(&w.runner).await[0].status,
        RecordStatus::DeadLettered(DlqReason::Discarded, ErrorKind::NOT_FOUND)
    );

    w.outbox.opt_out(&PHONE.parse().unwrap());
    enqueuer
        .perform_later::<ShareProductTextMessage>(&share("sh_4", "gid://shopify/Product/1"))
        .await
        .unwrap();
    assert_eq!(
        w.t.run_once(&w.runner).await[0].status,
        RecordStatus::DeadLettered(DlqReason::Discarded, shop::policy::OPTED_OUT)
    );

    let body = r#"{"share_id":"sh_5","store_id":"st_42","product_id":"gid://shopify/Product/1","phone":"415-555-0123"}"#;
    w.t.queue()
        .send(
            &TestHarness::queue_name::<ShareProductTextMessage>(),
            OutgoingMessage { body: body.into(), ..Default::default() },
        )
        .await
        .unwrap();
    assert_eq!(
        w.t.run_once(&w.runner).await[0].status,
        RecordStatus::DeadLettered(DlqReason::Discarded, ErrorKind::INVALID_ARGUMENTS)
    );
    let dead = w.t.dead_letter_errors::<ShareProductTextMessage>();
    let reason = &dead.last().unwrap().as_ref().expect("the error is recorded").message;
    assert!(reason.contains("E.164"), "the reason names the problem: {reason}");
    assert!(w.outbox.sent().unwrap().is_empty());
}
