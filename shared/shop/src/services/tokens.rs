//! A store's token for a call to its provider, read again once when the provider refuses it.

use jobkit::{ErrorKind, JobError};

use crate::{declaration::Platform, ids::StoreId, ports::Credentials, secret::Secret};

/// Runs `call` with `store`'s token for `platform`. When the provider refuses the token
/// (`unauthorized`: a 401, as after the secret was rotated), the token is read again from the
/// source of truth ([`Credentials::refresh_token`], past any sealed copy or cache) and, if it
/// changed, `call` runs once more with it; otherwise the refusal stands.
///
/// # Errors
/// `unauthorized` (permanent) when the store has no token for `platform`; the credentials'
/// failures; whatever `call` returns.
pub(crate) async fn with_token<T, F, Fut>(
    credentials: &dyn Credentials,
    store: &StoreId,
    platform: Platform,
    mut call: F,
) -> Result<T, JobError>
where
    // A closure returning a future rather than an async closure: a job's future must be Send,
    // which an async closure's borrowing future cannot yet promise.
    F: FnMut(Secret) -> Fut,
    Fut: Future<Output = Result<T, JobError>>,
{
    let token = match platform {
        Platform::Shopify => credentials.shopify_token(store).await?,
        Platform::Square => credentials.square_token(store).await?,
    };
    let token = token.ok_or_else(|| missing(store, platform))?;
    match call(token.clone()).await {
        Err(refused) if refused.kind() == &ErrorKind::UNAUTHORIZED => {
            match credentials.refresh_token(store, platform).await? {
                Some(fresh) if fresh != token => {
                    tracing::info!(store = %store, platform = platform.name(), "token refused: trying the one read again");
                    call(fresh).await
                }
                Some(_) => Err(refused),
                None => Err(missing(store, platform)),
            }
        }
        other => other,
    }
}

fn missing(store: &StoreId, platform: Platform) -> JobError {
    let what = match platform {
        Platform::Shopify => "Shopify token (app uninstalled?)",
        Platform::Square => "POS token",
    };
    JobError::permanent(ErrorKind::UNAUTHORIZED, format!("store {store} has no {what}"))
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;
    use jobkit::{IntegrationError, IntegrationErrorKind};

    use super::*;
    use crate::ports::RepoResult;

    /// A store's Shopify token as first read, then as read again (a rotated secret).
    #[derive(Debug)]
    struct Rotated {
        first: &'static str,
        again: &'static str,
        refreshed: Mutex<u32>,
    }

    #[async_trait]
    impl Credentials for Rotated {
        async fn shopify_token(&self, _store: &StoreId) -> RepoResult<Option<Secret>> {
            Ok(Some(Secret::new(self.first)))
        }

        async fn square_token(&self, _store: &StoreId) -> RepoResult<Option<Secret>> {
            Ok(None)
        }

        async fn refresh_token(&self, _store: &StoreId, _platform: Platform) -> RepoResult<Option<Secret>> {
            *self.refreshed.lock().unwrap() += 1;
            Ok(Some(Secret::new(self.again)))
        }
    }

    /// Shopify as it answers: 401 to any token but `valid`, and `other` errors when given.
    async fn shopify(valid: &str, token: Secret, calls: &Mutex<Vec<String>>) -> Result<u32, JobError> {
        calls.lock().unwrap().push(token.expose().to_owned());
        if token.expose() == valid {
            Ok(7)
        } else {
            Err(IntegrationError::new("shopify", IntegrationErrorKind::Unauthorized, "401").into())
        }
    }

    fn rotated(first: &'static str, again: &'static str) -> Rotated {
        Rotated { first, again, refreshed: Mutex::new(0) }
    }

    #[tokio::test]
    async fn a_refused_token_is_read_again_and_the_call_made_once_more_with_the_new_one() {
        let credentials = rotated("shpat_old", "shpat_new");
        let calls = Mutex::new(Vec::new());
        let store = StoreId::from("st_1");
        let answer =
            with_token(&credentials, &store, Platform::Shopify, |t| shopify("shpat_new", t, &calls)).await;
        assert_eq!(answer.unwrap(), 7);
        assert_eq!(*calls.lock().unwrap(), ["shpat_old", "shpat_new"]);
    }

    #[tokio::test]
    async fn a_token_refused_again_after_reading_it_again_stands_refused_after_one_call() {
        let credentials = rotated("shpat_revoked", "shpat_revoked");
        let calls = Mutex::new(Vec::new());
        let store = StoreId::from("st_1");
        let answer =
            with_token(&credentials, &store, Platform::Shopify, |t| shopify("shpat_new", t, &calls)).await;
        assert_eq!(answer.unwrap_err().kind(), &ErrorKind::UNAUTHORIZED);
        assert_eq!(calls.lock().unwrap().len(), 1, "the same token is not tried twice");
        assert_eq!(*credentials.refreshed.lock().unwrap(), 1);
    }

    #[tokio::test]
    async fn only_a_refused_token_is_read_again() {
        let credentials = rotated("shpat_old", "shpat_new");
        let store = StoreId::from("st_1");
        let answer = with_token(&credentials, &store, Platform::Shopify, |_| async {
            Err::<u32, JobError>(
                IntegrationError::new("shopify", IntegrationErrorKind::Unavailable, "503").into(),
            )
        })
        .await;
        assert_eq!(answer.unwrap_err().kind(), &ErrorKind::UNAVAILABLE);
        assert_eq!(*credentials.refreshed.lock().unwrap(), 0);
        let none = with_token(&credentials, &store, Platform::Square, |_| async { Ok(1) }).await;
        assert_eq!(none.unwrap_err().kind(), &ErrorKind::UNAUTHORIZED, "no POS token");
    }
}
