//! The POS client for Square's Customers and Orders APIs: customers page by page with a cursor,
//! and the completed orders of those customers summed up. 429 is retried after `Retry-After`
//! (up to a minute; a longer wait is left to the job's retry policy).
//!
//! Invariants: the API version is pinned ([`SQUARE_VERSION`]); the token goes in the
//! `Authorization` header only and never into an error or a log; a redirect is not followed
//! but answered with a permanent error.

use std::{collections::HashMap, sync::Arc, time::Duration};

use jobkit::{IntegrationError, IntegrationErrorKind};
use serde::{Deserialize, de::DeserializeOwned};

use crate::{
    customer::{Customer, Preferences},
    ids::{CustomerId, StoreId},
    phone::PhoneNumber,
    secret::Secret,
    shopify::{Pacer, TokioPacer},
};

/// The `Square-Version` every request sends.
pub const SQUARE_VERSION: &str = "2025-10-16";
const SOURCE: &str = "square";
const PRODUCTION: &str = "https://connect.squareup.com";

/// How the client reaches Square.
#[derive(Debug, Clone)]
pub struct SquareConfig {
    /// The API's base URL (the sandbox, or a stub in tests). Defaults to production.
    pub base_url: String,
    /// Tries of one request when rate limited or unavailable. Defaults to 4.
    pub max_tries: u32,
    /// The request timeout. Defaults to 30 s.
    pub timeout: Duration,
}

impl Default for SquareConfig {
    fn default() -> Self {
        Self { base_url: PRODUCTION.to_owned(), max_tries: 4, timeout: Duration::from_secs(30) }
    }
}

/// One page of customers with their order history summed up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerPage {
    /// The profiles.
    pub customers: Vec<Customer>,
    /// The next page's cursor.
    pub next_cursor: Option<String>,
}

/// The Square client.
#[derive(Debug, Clone)]
pub struct SquareClient {
    http: reqwest::Client,
    config: SquareConfig,
    pacer: Arc<dyn Pacer>,
}

fn error(kind: IntegrationErrorKind, message: impl Into<String>) -> IntegrationError {
    IntegrationError::new(SOURCE, kind, message)
}

#[derive(Deserialize)]
struct CustomersResponse {
    #[serde(default)]
    customers: Vec<SquareCustomer>,
    cursor: Option<String>,
}

#[derive(Deserialize)]
struct SquareCustomer {
    id: String,
    given_name: Option<String>,
    family_name: Option<String>,
    email_address: Option<String>,
    phone_number: Option<String>,
    preferences: Option<SquarePreferences>,
}

#[derive(Deserialize)]
struct SquarePreferences {
    #[serde(default)]
    email_unsubscribed: bool,
}

#[derive(Deserialize)]
struct OrdersResponse {
    #[serde(default)]
    orders: Vec<SquareOrder>,
    cursor: Option<String>,
}

#[derive(Deserialize)]
struct SquareOrder {
    customer_id: Option<String>,
    total_money: Option<SquareMoney>,
}

#[derive(Deserialize)]
struct SquareMoney {
    amount: i64,
}

impl SquareClient {
    /// A client with `config`.
    ///
    /// # Errors
    /// If the HTTP client cannot be built.
    pub fn new(config: SquareConfig) -> Result<Self, IntegrationError> {
        Self::with_pacer(config, Arc::new(TokioPacer))
    }

    /// A client waiting through `pacer`.
    ///
    /// # Errors
    /// If the HTTP client cannot be built.
    pub fn with_pacer(config: SquareConfig, pacer: Arc<dyn Pacer>) -> Result<Self, IntegrationError> {
        let http = crate::http::client(SOURCE, config.timeout)?;
        Ok(Self { http, config, pacer })
    }

    /// One page of customers after `cursor`, with the completed orders at `location` counted and
    /// summed per customer.
    ///
    /// # Errors
    /// A classified [`IntegrationError`] (rate limited past the tries and outages are
    /// recoverable, a refused token is not).
    pub async fn customers_page(
        &self,
        store: &StoreId,
        location: &str,
        token: &Secret,
        cursor: Option<&str>,
    ) -> Result<CustomerPage, IntegrationError> {
        let mut query = vec![("limit", "100".to_owned())];
        if let Some(cursor) = cursor {
            query.push(("cursor", cursor.to_owned()));
        }
        let page: CustomersResponse =
            self.call(token, reqwest::Method::GET, "/v2/customers", &query, None).await?;
        let ids: Vec<String> = page.customers.iter().map(|c| c.id.clone()).collect();
        let history = self.order_history(location, token, &ids).await?;
        let customers = page
            .customers
            .into_iter()
            .map(|c| {
                let (order_count, total_spent_minor) = history.get(&c.id).copied().unwrap_or((0, 0));
                let name = [c.given_name, c.family_name].into_iter().flatten().collect::<Vec<_>>().join(" ");
                Customer {
                    id: CustomerId::from(c.id),
                    store_id: store.clone(),
                    name,
                    email: c.email_address,
                    // A number that is not E.164 is kept out rather than guessed at.
                    phone: c.phone_number.and_then(|p| p.parse::<PhoneNumber>().ok()),
                    order_count,
                    total_spent_minor,
                    preferences: Preferences {
                        email_marketing: !c.preferences.is_some_and(|p| p.email_unsubscribed),
                        sms_marketing: false,
                    },
                }
            })
            .collect();
        Ok(CustomerPage { customers, next_cursor: page.cursor.filter(|c| !c.is_empty()) })
    }

    /// Completed orders per customer id: (count, total in minor units).
    async fn order_history(
        &self,
        location: &str,
        token: &Secret,
        customers: &[String],
    ) -> Result<HashMap<String, (u32, i64)>, IntegrationError> {
        let mut history: HashMap<String, (u32, i64)> = HashMap::new();
        if customers.is_empty() {
            return Ok(history);
        }
        let mut cursor: Option<String> = None;
        loop {
            let body = serde_json::json!({
                "location_ids": [location],
                "limit": 500,
                "cursor": cursor,
                "query": {"filter": {
                    "customer_filter": {"customer_ids": customers},
                    "state_filter": {"states": ["COMPLETED"]}
                }}
            });
            let page: OrdersResponse =
                self.call(token, reqwest::Method::POST, "/v2/orders/search", &[], Some(&body)).await?;
            for order in page.orders {
                let Some(customer) = order.customer_id else { continue };
                let entry = history.entry(customer).or_default();
                entry.0 += 1;
                entry.1 += order.total_money.map_or(0, |m| m.amount);
            }
            match page.cursor.filter(|c| !c.is_empty()) {
                Some(next) => cursor = Some(next),
                None => return Ok(history),
            }
        }
    }

    async fn call<T: DeserializeOwned>(
        &self,
        token: &Secret,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&serde_json::Value>,
    ) -> Result<T, IntegrationError> {
        let url = format!("{}{path}", self.config.base_url.trim_end_matches('/'));
        let mut tries = 0;
        loop {
            tries += 1;
            let mut request = self
                .http
                .request(method.clone(), &url)
                .query(query)
                .bearer_auth(token.expose())
                .header("Square-Version", SQUARE_VERSION);
            if let Some(body) = body {
                request = request.json(body);
            }
            let (failure, wait) = match request.send().await {
                Err(e) => {
                    let kind = if e.is_timeout() {
                        IntegrationErrorKind::Timeout
                    } else {
                        IntegrationErrorKind::Unavailable
                    };
                    (error(kind, format!("request failed: {}", e.without_url())), Duration::from_secs(1))
                }
                Ok(response) => {
                    if let Some(redirect) = crate::http::redirect_error(SOURCE, &response) {
                        return Err(redirect);
                    }
                    let status = response.status().as_u16();
                    let retry_after = crate::http::retry_after(response.headers());
                    let text = response.text().await.unwrap_or_default();
                    match status {
                        200..=299 => {
                            return serde_json::from_str(&text).map_err(|e| {
                                error(
                                    IntegrationErrorKind::Unexpected,
                                    format!("unreadable answer from {path}: {e}"),
                                )
                            });
                        }
                        401 | 403 => {
                            return Err(error(
                                IntegrationErrorKind::Unauthorized,
                                format!("HTTP {status}: the access token was refused"),
                            ));
                        }
                        404 => {
                            return Err(error(
                                IntegrationErrorKind::NotFound,
                                format!("HTTP {status} from {path}"),
                            ));
                        }
                        429 | 500..=599 => {
                            let failure = if status == 429 {
                                error(IntegrationErrorKind::RateLimited, "HTTP 429: rate limited")
                            } else {
                                error(IntegrationErrorKind::Unavailable, format!("HTTP {status} from {path}"))
                            };
                            // A wait past the cap is the job's retry policy's to make, not ours.
                            let Some(wait) = retry_after.wait_or(Duration::from_secs(2)) else {
                                return Err(failure
                                    .with_detail("retry_after", "past the cap, left to the job's policy"));
                            };
                            (failure, wait)
                        }
                        _ => {
                            let snippet: String = text.chars().take(200).collect();
                            return Err(error(
                                IntegrationErrorKind::InvalidInput,
                                format!("HTTP {status}: {snippet}"),
                            ));
                        }
                    }
                }
            };
            if tries >= self.config.max_tries {
                return Err(failure);
            }
            self.pacer.wait(wait).await;
        }
    }
}
