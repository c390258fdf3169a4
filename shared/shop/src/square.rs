//! The POS client for Square's Customers and Orders APIs: customers page by page with a cursor,
//! and the completed orders of those customers summed up, searched [`ORDERS_SEARCH_CUSTOMERS`]
//! customers at a time (Square's limit) and each search paged by its own cursor. 429 is retried
//! after `Retry-After` (up to a minute; a longer wait is left to the job's retry policy).
//!
//! Invariants: the API version is pinned ([`SQUARE_VERSION`]) and every request keeps within
//! the limits Square publishes for it (the constants below name their source); the token goes
//! in the `Authorization` header only and never into an error or a log; a redirect is not
//! followed but answered with a permanent error.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::Duration,
};

use jobkit::{IntegrationError, IntegrationErrorKind, SetAside};
use serde::{Deserialize, de::DeserializeOwned};

use crate::{
    customer::{Customer, Preferences},
    ids::{CustomerId, StoreId},
    phone::PhoneNumber,
    secret::Secret,
    shopify::{Pacer, TokioPacer},
};

/// The `Square-Version` every request sends: the newest Square's own SDK pins (npm `square`
/// 46.0.0, 2026-09-20: `BaseClient.js` sends `"Square-Version": options.version ?? "2026-09-16"`).
pub const SQUARE_VERSION: &str = "2026-09-16";

/// Customers asked for per `ListCustomers` page: its maximum. "If the specified limit is less
/// than 1 or greater than 100, Square returns a `400 VALUE_TOO_LOW` or `400 VALUE_TOO_HIGH`
/// error" (npm `square` 46.0.0, `api/resources/customers/client/requests/ListCustomersRequest.d.ts`).
const CUSTOMERS_PER_PAGE: u32 = 100;

/// Customer ids per `SearchOrders` request: `SearchOrdersCustomerFilter.customer_ids` takes
/// "Max: 10 customer ids" (npm `square` 46.0.0, `api/types/SearchOrdersCustomerFilter.d.ts`;
/// Square's API reference, object `SearchOrdersCustomerFilter`). Square refuses more with a 400,
/// which is permanent: a page's 100 ids in one search sent every store over 10 customers to
/// the DLQ.
pub const ORDERS_SEARCH_CUSTOMERS: usize = 10;

/// Orders asked for per `SearchOrders` page: its maximum, "Default: `500` Max: `1000`" (npm
/// `square` 46.0.0, `api/resources/orders/client/requests/SearchOrdersRequest.d.ts`). Square may
/// answer with fewer and a cursor, which is followed.
const ORDERS_PER_PAGE: u32 = 1000;
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
    /// What could not be read, by id, with why: customers (without an id, or with a field of
    /// the wrong type), left out of `customers`; orders (an amount that is not an integer...),
    /// left out of their customer's totals.
    pub set_aside: Vec<SetAside>,
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
    /// Each customer as it came, read one by one ([`SquareCustomer`]): one that does not read
    /// is set aside, not the page.
    #[serde(default)]
    customers: Vec<serde_json::Value>,
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
    /// Each order as it came, read one by one ([`SquareOrder`]).
    #[serde(default)]
    orders: Vec<serde_json::Value>,
    cursor: Option<String>,
}

#[derive(Deserialize)]
struct SquareOrder {
    customer_id: Option<String>,
    state: Option<String>,
    total_money: Option<SquareMoney>,
    #[serde(default)]
    tenders: Vec<SquareTender>,
}

#[derive(Deserialize)]
struct SquareTender {
    customer_id: Option<String>,
}

impl SquareOrder {
    /// Whose order it is: the order's customer, else the first customer a tender names (an
    /// order rung up without a customer but paid on a customer's card on file).
    ///
    /// One owner per order, because Square's customer filter matches "the order `customer_id`
    /// and any tender `customer_id`" (`SearchOrdersCustomerFilter`): an order one customer paid
    /// for another comes back in both customers' searches and must be counted once.
    fn owner(&self) -> Option<&str> {
        self.customer_id
            .as_deref()
            .or_else(|| self.tenders.iter().find_map(|t| t.customer_id.as_deref()))
            .filter(|id| !id.is_empty())
    }
}

/// Square's error body: `{"errors": [{"category", "code", "detail", "field"}]}` (npm `square`
/// 46.0.0, `api/types/Error_.d.ts`).
#[derive(Deserialize)]
struct SquareErrors {
    #[serde(default)]
    errors: Vec<SquareErrorBody>,
}

#[derive(Deserialize)]
struct SquareErrorBody {
    code: Option<String>,
    field: Option<String>,
    detail: Option<String>,
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
    /// A customer that cannot be read is not an error but returned in
    /// [`CustomerPage::set_aside`] with its id (or, without one, `created_at:<when>`), and its
    /// orders are not searched; an order that cannot be read is returned there too, with its id,
    /// and its customer's totals are those of the others. A phone number that is not E.164 is
    /// only left out of the profile.
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
        let mut query = vec![("limit", CUSTOMERS_PER_PAGE.to_string())];
        if let Some(cursor) = cursor {
            query.push(("cursor", cursor.to_owned()));
        }
        let page: CustomersResponse =
            self.call(token, reqwest::Method::GET, "/v2/customers", &query, None).await?;
        let mut set_aside = Vec::new();
        let mut readable = Vec::with_capacity(page.customers.len());
        for value in page.customers {
            let id = customer_id(&value);
            match serde_json::from_value::<SquareCustomer>(value) {
                Ok(customer) if !customer.id.trim().is_empty() => readable.push(customer),
                Ok(_) => set_aside.push(SetAside::new(id, "unreadable customer: an empty id")),
                Err(e) => set_aside.push(SetAside::new(id, format_args!("unreadable customer: {e}"))),
            }
        }
        let ids: Vec<String> = readable.iter().map(|c| c.id.clone()).collect();
        let (history, orders_set_aside) = self.order_history(location, token, &ids).await?;
        set_aside.extend(orders_set_aside);
        let customers = readable
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
        Ok(CustomerPage { customers, set_aside, next_cursor: page.cursor.filter(|c| !c.is_empty()) })
    }

    /// Completed orders per customer id: (count, total in minor units).
    ///
    /// The ids are searched [`ORDERS_SEARCH_CUSTOMERS`] at a time, each search walked to its
    /// last page with the same body but the cursor (Square: "when retrieving additional pages
    /// using a cursor, you must use the original query"). An order counts for its owner only,
    /// and only in the search of the batch that holds the owner: an order another customer
    /// paid for also comes back in the payer's search, and its owner may be in another batch
    /// or on another page of customers, whose own search counts it.
    ///
    /// An order that cannot be read is set aside (returned with why, once) unless it names an
    /// owner outside the batch (that owner's search sets it aside); it is not counted.
    async fn order_history(
        &self,
        location: &str,
        token: &Secret,
        customers: &[String],
    ) -> Result<(HashMap<String, (u32, i64)>, Vec<SetAside>), IntegrationError> {
        let mut history: HashMap<String, (u32, i64)> = HashMap::new();
        let mut set_aside = Vec::new();
        let mut reported = HashSet::new();
        for batch in customers.chunks(ORDERS_SEARCH_CUSTOMERS) {
            let mut cursor: Option<String> = None;
            loop {
                let mut body = serde_json::json!({
                    "location_ids": [location],
                    "limit": ORDERS_PER_PAGE,
                    "query": {"filter": {
                        "customer_filter": {"customer_ids": batch},
                        "state_filter": {"states": ["COMPLETED"]}
                    }}
                });
                if let Some(cursor) = &cursor {
                    body["cursor"] = serde_json::Value::from(cursor.as_str());
                }
                let page: OrdersResponse =
                    self.call(token, reqwest::Method::POST, "/v2/orders/search", &[], Some(&body)).await?;
                for value in &page.orders {
                    let in_batch = |owner: &str| batch.iter().any(|id| id == owner);
                    let order = match SquareOrder::deserialize(value) {
                        Ok(order) => order,
                        Err(e) => {
                            if raw_owner(value).is_none_or(in_batch) {
                                let id = value.get("id").and_then(serde_json::Value::as_str);
                                let id = id.filter(|id| !id.is_empty()).unwrap_or("(order without id)");
                                if reported.insert(id.to_owned()) {
                                    set_aside.push(SetAside::new(id, format_args!("unreadable order: {e}")));
                                }
                            }
                            continue;
                        }
                    };
                    // The state filter asked for completed orders; one that says otherwise is
                    // not counted rather than trusted.
                    if order.state.as_deref().is_some_and(|state| state != "COMPLETED") {
                        continue;
                    }
                    let Some(owner) = order.owner().filter(|owner| in_batch(owner)) else {
                        continue;
                    };
                    let entry = history.entry(owner.to_owned()).or_default();
                    entry.0 = entry.0.saturating_add(1);
                    entry.1 = entry.1.saturating_add(order.total_money.as_ref().map_or(0, |m| m.amount));
                }
                match page.cursor.filter(|c| !c.is_empty()) {
                    // The same cursor again would walk the same page forever.
                    Some(next) if cursor.as_deref() == Some(next.as_str()) => {
                        return Err(error(
                            IntegrationErrorKind::Unexpected,
                            "the orders search answered with the cursor it was given",
                        ));
                    }
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
        }
        Ok((history, set_aside))
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
                        _ => return Err(refused(status, path, &text)),
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

/// The id a customer is reported by when it cannot be read: its `id`, else
/// `created_at:<when>`, else `(customer without id)`.
fn customer_id(value: &serde_json::Value) -> String {
    let text =
        |key: &str| value.get(key).and_then(serde_json::Value::as_str).filter(|s| !s.trim().is_empty());
    match (text("id"), text("created_at")) {
        (Some(id), _) => id.to_owned(),
        (None, Some(at)) => format!("created_at:{at}"),
        (None, None) => "(customer without id)".to_owned(),
    }
}

/// Whose an order that cannot be read says it is, as [`SquareOrder::owner`] reads it, where
/// the raw answer says so.
fn raw_owner(value: &serde_json::Value) -> Option<&str> {
    fn id(v: &serde_json::Value) -> Option<&str> {
        v.get("customer_id").and_then(serde_json::Value::as_str).filter(|s| !s.is_empty())
    }
    id(value).or_else(|| value.get("tenders")?.as_array()?.iter().find_map(id))
}

/// A request Square refused (a 4xx other than those above): permanent, with Square's first
/// error's code and field in the message and the details, so the DLQ says which limit it was.
fn refused(status: u16, path: &str, text: &str) -> IntegrationError {
    let first = serde_json::from_str::<SquareErrors>(text).ok().and_then(|e| e.errors.into_iter().next());
    let Some(first) = first else {
        let snippet: String = text.chars().take(200).collect();
        return error(IntegrationErrorKind::InvalidInput, format!("HTTP {status} from {path}: {snippet}"));
    };
    let code = first.code.unwrap_or_default();
    let field = first.field.as_deref().map(|field| format!(" ({field})")).unwrap_or_default();
    let detail = first
        .detail
        .as_deref()
        .map(|detail| format!(": {}", detail.chars().take(200).collect::<String>()))
        .unwrap_or_default();
    let message = format!("HTTP {status} from {path}: {code}{field}{detail}");
    let mut failure = error(IntegrationErrorKind::InvalidInput, message).with_detail("code", code);
    if let Some(field) = first.field {
        failure = failure.with_detail("field", field);
    }
    failure
}
