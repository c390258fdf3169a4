use jobkit::{ErrorKind, Job, JobContext, JobError, RetryPolicy, Wait, testing::TestHarness};

/// Fails with a message that names a customer, every time.
#[derive(Clone, Default)]
struct Failing;

impl Job for Failing {
    type Args = serde_json::Value;
    const NAME: &'static str = "failing";

    async fn perform(&self, _args: serde_json::Value, ctx: &mut JobContext) -> Result<(), JobError> {
        let attempt = ctx.meta().attempt;
        Err(JobError::retryable(
            ErrorKind::UNAVAILABLE,
            format!("sms to ana@example.com failed (try {attempt})"),
        ))
    }

    fn retry_policy() -> RetryPolicy {
        RetryPolicy::new().retry_on(
            [ErrorKind::UNAVAILABLE],
            Wait::Fixed(std::time::Duration::from_secs(60)),
            50,
        )
    }
}

#[tokio::test]
async fn the_error_email_is_sent_once_per_fingerprint_window_and_redacted() {
    let t = TestHarness::new();
    let runner = t.runner(Failing);
    t.enqueuer().perform_later::<Failing>(&serde_json::json!({"phone": "+14155550123"})).await.unwrap();

    for _ in 0..5 {
        t.run_once(&runner).await;
        t.clock().advance(chrono::Duration::seconds(60));
    }
    let emails = t.sent_emails();
    assert_eq!(emails.len(), 1, "five failures of one fingerprint inside the hour: one email");
    let email = &emails[0];
    assert!(email.subject.contains("failing") && email.subject.contains("unavailable"), "{}", email.subject);
    assert!(
        !email.text.contains("ana@example.com") && email.text.contains("a***@example.com"),
        "{}",
        email.text
    );
    assert!(!email.text.contains("4155550123"), "{}", email.text);

    t.clock().advance(chrono::Duration::hours(1));
    t.run_once(&runner).await;
    assert_eq!(t.sent_emails().len(), 2, "a new window, a new email");
}
