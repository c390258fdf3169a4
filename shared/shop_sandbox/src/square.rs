//! Square on loopback, held to the contract Square publishes for the version the client pins:
//! `GET /v2/customers` (ListCustomers) and `POST /v2/orders/search` (SearchOrders) with a bearer
//! token, each documented limit refused as Square refuses it: HTTP 400 with Square's body
//! `{"errors": [{"category": "INVALID_REQUEST_ERROR", "code", "detail", "field"}]}`.
//!
//! The limits are read from Square's own SDK, npm `square` 46.0.0 (published 2026-09-20, which
//! pins `Square-Version` 2026-09-16), whose types carry the API reference's text; the codes are its
//! `api/types/ErrorCode.d.ts`, described in its `legacy/doc/models/error-code.md`. They are written
//! here from that source and not taken from the client's constants: a sandbox that shares the
//! client's assumptions passes a wrong one twice (ARCHITECTURE.md, "Outside APIs").
//!
//! The orders of a POS fixture: customer `i` has `i % 5` orders, most of them completed; some are
//! paid by another customer (the customer on the tender), some name their customer on the tender
//! only, as Square's customer filter matches both. A POS fixture has no locations of its own:
//! every location asked for holds all its orders, and a search over several answers each once.

use std::hash::{DefaultHasher, Hash, Hasher};

use hyper::{HeaderMap, Method, StatusCode};
use serde_json::{Map, Value, json};

use super::{Answer, FixturePos, State, reply};

/// The `Square-Version` header, when sent, is a date, `YYYY-MM-DD`; another is refused with
/// `INVALID_SQUARE_VERSION_FORMAT`, "The provided Square-Version is incorrectly formatted"
/// (`ErrorCode`). Without the header Square answers in the application's default version.
const SQUARE_VERSION_FORMAT: &str = "%Y-%m-%d";

/// ListCustomers' `limit`: "If the specified limit is less than 1 or greater than 100, Square
/// returns a `400 VALUE_TOO_LOW` or `400 VALUE_TOO_HIGH` error. The default value is 100." (npm
/// `square` 46.0.0, `api/resources/customers/client/requests/ListCustomersRequest.d.ts`; API
/// reference, Customers API, ListCustomers.)
const LIST_CUSTOMERS_LIMIT: std::ops::RangeInclusive<i64> = 1..=100;
/// ListCustomers' `limit` when none is sent (same source).
const LIST_CUSTOMERS_DEFAULT_LIMIT: i64 = 100;

/// SearchOrders' `location_ids`: "Max: 10 location IDs." (npm `square` 46.0.0,
/// `api/resources/orders/client/requests/SearchOrdersRequest.d.ts`; API reference, Orders API,
/// SearchOrders.) More: `ARRAY_LENGTH_TOO_LONG`, "The provided array has too many elements".
const SEARCH_ORDERS_MAX_LOCATION_IDS: usize = 10;
/// SearchOrders' `location_ids` are required: "`SearchOrders` requests need to specify which
/// locations to search" (the SDK's `orders.search`, `api/resources/orders/client/Client.d.ts`);
/// the API reference of version 2020-08-26 wrote it as "Min: 1 location IDs". None sent:
/// `MISSING_REQUIRED_PARAMETER`; an empty list: `ARRAY_LENGTH_TOO_SHORT`.
const SEARCH_ORDERS_MIN_LOCATION_IDS: usize = 1;
/// `query.filter.customer_filter.customer_ids`: "Max: 10 customer ids." (npm `square` 46.0.0,
/// `api/types/SearchOrdersCustomerFilter.d.ts`; API reference, object SearchOrdersCustomerFilter.)
/// More: `ARRAY_LENGTH_TOO_LONG`.
const SEARCH_ORDERS_MAX_CUSTOMER_IDS: usize = 10;
/// `query.filter.source_filter.source_names`: "Max: 10 source names." (npm `square` 46.0.0,
/// `api/types/SearchOrdersSourceFilter.d.ts`.) More: `ARRAY_LENGTH_TOO_LONG`.
const SEARCH_ORDERS_MAX_SOURCE_NAMES: usize = 10;
/// SearchOrders' `limit`: "Default: `500` Max: `1000`" (`SearchOrdersRequest.d.ts`). Over it:
/// `VALUE_TOO_HIGH`, "The provided value is greater than the supported maximum". The reference
/// names no minimum, but below 1 is no page size: `VALUE_TOO_LOW`.
const SEARCH_ORDERS_LIMIT: std::ops::RangeInclusive<i64> = 1..=1000;
/// SearchOrders' `limit` when none is sent (same source).
const SEARCH_ORDERS_DEFAULT_LIMIT: i64 = 500;
/// `query.filter.state_filter.states` is required (`states: Square.OrderState[]`, not optional,
/// in `api/types/SearchOrdersStateFilter.d.ts`), each an `OrderState` (`api/types/OrderState.d.ts`);
/// another value: `INVALID_ENUM_VALUE`.
const ORDER_STATES: [&str; 4] = ["OPEN", "COMPLETED", "CANCELED", "DRAFT"];
/// Orders in one answer at most, whatever the `limit`: Square may answer with fewer ("It is
/// possible to receive fewer results than the specified limit on a given page", API reference,
/// SearchOrders, version 2020-08-26), and a small page makes every client walk the cursor.
const ORDERS_PAGE_CAP: usize = 16;

/// What the sandbox's Square takes from a request.
pub(super) struct SquareRequest<'a> {
    /// The method.
    pub method: &'a Method,
    /// The path's segments after `square`.
    pub path: &'a [&'a str],
    /// The query string.
    pub query: Option<&'a str>,
    /// The headers.
    pub headers: &'a HeaderMap,
    /// The JSON body (`Null` when there is none or it is not JSON).
    pub body: &'a Value,
}

/// A refusal, answered in Square's `errors[]` shape.
struct Refusal {
    status: StatusCode,
    category: &'static str,
    code: &'static str,
    field: Option<String>,
    detail: String,
}

impl Refusal {
    /// A 400 `INVALID_REQUEST_ERROR` about `field`.
    fn invalid(code: &'static str, field: &str, detail: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            category: "INVALID_REQUEST_ERROR",
            code,
            field: Some(field.to_owned()).filter(|f| !f.is_empty()),
            detail: detail.into(),
        }
    }

    fn answer(self) -> Answer {
        let mut error = json!({"category": self.category, "code": self.code, "detail": self.detail});
        if let Some(field) = self.field {
            error["field"] = Value::String(field);
        }
        reply(self.status, &json!({"errors": [error]}))
    }
}

/// Answers a request under `/square`.
pub(super) fn answer(state: &State, request: &SquareRequest<'_>) -> Answer {
    let header = |name: &str| request.headers.get(name).map(|v| v.to_str().unwrap_or_default());
    if let Some(version) = header("square-version")
        && chrono::NaiveDate::parse_from_str(version, SQUARE_VERSION_FORMAT).is_err()
    {
        return Refusal::invalid(
            "INVALID_SQUARE_VERSION_FORMAT",
            "",
            format!("Square-Version {version:?} is not a date (YYYY-MM-DD)"),
        )
        .answer();
    }
    let token = header("authorization").and_then(|a| a.strip_prefix("Bearer "));
    let Some(fixture) = token.and_then(|token| state.fixtures.pos.get(token)) else {
        return Refusal {
            status: StatusCode::UNAUTHORIZED,
            category: "AUTHENTICATION_ERROR",
            code: "UNAUTHORIZED",
            field: None,
            detail: "This request could not be authorized.".to_owned(),
        }
        .answer();
    };
    let answered = match (request.method, request.path) {
        (&Method::GET, ["v2", "customers"]) => list_customers(fixture, request.query),
        (&Method::POST, ["v2", "orders", "search"]) => search_orders(fixture, request.body),
        _ => Err(Refusal {
            status: StatusCode::NOT_FOUND,
            category: "INVALID_REQUEST_ERROR",
            code: "NOT_FOUND",
            field: None,
            detail: format!("the sandbox's Square has no {} /{}", request.method, request.path.join("/")),
        }),
    };
    match answered {
        Ok(body) => reply(StatusCode::OK, &body),
        Err(refusal) => refusal.answer(),
    }
}

/// An integer field within `range`, `default` when absent.
fn limit(
    value: Option<&Value>,
    field: &str,
    range: &std::ops::RangeInclusive<i64>,
    default: i64,
) -> Result<usize, Refusal> {
    let limit = match value {
        None | Some(Value::Null) => default,
        Some(value) => value.as_i64().ok_or_else(|| {
            Refusal::invalid("EXPECTED_INTEGER", field, format!("Expected an integer value, got {value}"))
        })?,
    };
    if limit < *range.start() {
        return Err(Refusal::invalid(
            "VALUE_TOO_LOW",
            field,
            format!("`{field}` must be greater than or equal to {}, got {limit}", range.start()),
        ));
    }
    if limit > *range.end() {
        return Err(Refusal::invalid(
            "VALUE_TOO_HIGH",
            field,
            format!("`{field}` must be less than or equal to {}, got {limit}", range.end()),
        ));
    }
    // In range, so positive and small.
    Ok(usize::try_from(limit).unwrap_or(1))
}

/// A list of strings of at most `max` elements; `None` when absent or null.
fn strings<'a>(value: Option<&'a Value>, field: &str, max: usize) -> Result<Option<Vec<&'a str>>, Refusal> {
    let list = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(list)) => list,
        Some(other) => {
            return Err(Refusal::invalid("EXPECTED_ARRAY", field, format!("Expected an array, got {other}")));
        }
    };
    if list.len() > max {
        return Err(Refusal::invalid(
            "ARRAY_LENGTH_TOO_LONG",
            field,
            format!("`{field}` must have at most {max} elements, got {}", list.len()),
        ));
    }
    list.iter()
        .map(|item| {
            item.as_str().ok_or_else(|| {
                Refusal::invalid("INVALID_ARRAY_VALUE", field, format!("Expected a string, got {item}"))
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn customer_id(i: usize) -> String {
    format!("CUST{i:05}")
}

fn list_customers(fixture: &FixturePos, query: Option<&str>) -> Result<Value, Refusal> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query.unwrap_or_default())
        .map_err(|e| Refusal::invalid("BAD_REQUEST", "", format!("unreadable query: {e}")))?;
    let param = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    // A query parameter is text: a number that does not parse is not an integer.
    let limit_value = param("limit").map(|v| v.parse::<i64>().map_or_else(|_| json!(v), Value::from));
    let page = limit(limit_value.as_ref(), "limit", &LIST_CUSTOMERS_LIMIT, LIST_CUSTOMERS_DEFAULT_LIMIT)?;
    // The sandbox's cursors are offsets it handed out, always within the list.
    let start = match param("cursor") {
        None => 0,
        Some(cursor) => cursor
            .parse::<usize>()
            .ok()
            .filter(|start| *start < fixture.customers)
            .ok_or_else(|| Refusal::invalid("INVALID_CURSOR", "cursor", "The cursor is invalid."))?,
    };
    let end = start.saturating_add(page).min(fixture.customers);
    let customers: Vec<Value> = (start..end)
        .map(|i| {
            let given_name = ["Ada", "Grace", "Alan", "Edsger"][i % 4];
            json!({"id": customer_id(i), "given_name": given_name,
                   "family_name": format!("Customer{i}"), "email_address": format!("customer{i}@example.com"),
                   "phone_number": format!("+1415555{:04}", i % 10_000),
                   "preferences": {"email_unsubscribed": i % 5 == 0}})
        })
        .collect();
    let mut body = json!({"customers": customers});
    // Square leaves the cursor out of the last page.
    if end < fixture.customers {
        body["cursor"] = Value::String(end.to_string());
    }
    Ok(body)
}

/// An order of a POS fixture.
struct Order {
    id: String,
    /// The order's customer.
    customer: Option<String>,
    /// The customer on its tender (who paid).
    payer: Option<String>,
    state: &'static str,
    amount: i64,
}

impl Order {
    /// Whose order it is: its customer, else its payer.
    fn owner(&self) -> Option<&str> {
        self.customer.as_deref().or(self.payer.as_deref())
    }

    fn json(&self, location: &str) -> Value {
        let money = json!({"amount": self.amount, "currency": "USD"});
        let mut tender = json!({"id": format!("{}T", self.id), "type": "CARD", "amount_money": money});
        let mut order = Map::new();
        order.insert("id".into(), json!(self.id));
        order.insert("location_id".into(), json!(location));
        order.insert("state".into(), json!(self.state));
        order.insert("total_money".into(), money);
        // Square leaves unset fields out.
        if let Some(customer) = &self.customer {
            order.insert("customer_id".into(), json!(customer));
        }
        if let Some(payer) = &self.payer {
            tender["customer_id"] = json!(payer);
        }
        order.insert("tenders".into(), json!([tender]));
        Value::Object(order)
    }
}

/// Every order of the fixture, in a fixed order.
fn orders(fixture: &FixturePos) -> impl Iterator<Item = Order> {
    let n = fixture.customers;
    (0..n).flat_map(move |i| {
        (0..i % 5).map(move |k| {
            let state = match (i + k) % 7 {
                5 => "OPEN",
                6 => "CANCELED",
                _ => "COMPLETED",
            };
            let (customer, payer) = match (i + 2 * k) % 6 {
                // Paid by a customer usually in another search batch and on another page.
                0 => (Some(customer_id(i)), Some(customer_id((i + 37) % n))),
                // Rung up without a customer, paid on the customer's card on file.
                1 => (None, Some(customer_id(i))),
                _ => (Some(customer_id(i)), Some(customer_id(i))),
            };
            let amount = 1500 + 250 * k as i64 + 10 * (i % 13) as i64;
            Order { id: format!("ORD{i:05}{k}"), customer, payer, state, amount }
        })
    })
}

impl FixturePos {
    /// A customer's completed orders, as a client should sum them up from searches: count and
    /// total in cents. An order is its customer's, or when it names none, its payer's.
    pub fn completed_orders(&self, customer_id: &str) -> (u32, i64) {
        orders(self)
            .filter(|o| o.state == "COMPLETED" && o.owner() == Some(customer_id))
            .fold((0, 0), |(count, total), o| (count + 1, total + o.amount))
    }
}

/// The fingerprint of a search a cursor belongs to: its locations and query. "When retrieving
/// additional pages using a cursor, you must use the original query" (`SearchOrdersRequest.d.ts`).
fn fingerprint(body: &Value) -> String {
    let mut hasher = DefaultHasher::new();
    json!([body.get("location_ids"), body.get("query")]).to_string().hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

fn search_orders(fixture: &FixturePos, body: &Value) -> Result<Value, Refusal> {
    if !body.is_object() {
        return Err(Refusal::invalid("EXPECTED_JSON_BODY", "", "The request body is not a JSON object."));
    }
    let Some(locations) = strings(body.get("location_ids"), "location_ids", SEARCH_ORDERS_MAX_LOCATION_IDS)?
    else {
        return Err(Refusal::invalid(
            "MISSING_REQUIRED_PARAMETER",
            "location_ids",
            "Missing required parameter: `location_ids`",
        ));
    };
    if locations.len() < SEARCH_ORDERS_MIN_LOCATION_IDS {
        return Err(Refusal::invalid(
            "ARRAY_LENGTH_TOO_SHORT",
            "location_ids",
            format!("`location_ids` must have at least {SEARCH_ORDERS_MIN_LOCATION_IDS} element"),
        ));
    }
    let page = limit(body.get("limit"), "limit", &SEARCH_ORDERS_LIMIT, SEARCH_ORDERS_DEFAULT_LIMIT)?
        .min(ORDERS_PAGE_CAP);
    let filter = &body["query"]["filter"];
    let customers = strings(
        filter["customer_filter"].get("customer_ids"),
        "query.filter.customer_filter.customer_ids",
        SEARCH_ORDERS_MAX_CUSTOMER_IDS,
    )?
    .filter(|ids| !ids.is_empty());
    strings(
        filter["source_filter"].get("source_names"),
        "query.filter.source_filter.source_names",
        SEARCH_ORDERS_MAX_SOURCE_NAMES,
    )?;
    let states = match filter.get("state_filter") {
        None | Some(Value::Null) => None,
        Some(state_filter) => {
            let field = "query.filter.state_filter.states";
            let Some(states) = strings(state_filter.get("states"), field, usize::MAX)? else {
                return Err(Refusal::invalid(
                    "MISSING_REQUIRED_PARAMETER",
                    field,
                    format!("Missing required parameter: `{field}`"),
                ));
            };
            if let Some(unknown) = states.iter().find(|s| !ORDER_STATES.contains(*s)) {
                return Err(Refusal::invalid(
                    "INVALID_ENUM_VALUE",
                    field,
                    format!("`{unknown}` is not a valid enum value for `{field}`"),
                ));
            }
            Some(states)
        }
    };
    let search = fingerprint(body);
    let start = match body.get("cursor") {
        None | Some(Value::Null) => 0,
        Some(cursor) => cursor
            .as_str()
            .and_then(|c| c.split_once('.'))
            .filter(|(_, of)| *of == search)
            .and_then(|(start, _)| start.parse::<usize>().ok())
            .ok_or_else(|| Refusal::invalid("INVALID_CURSOR", "cursor", "The cursor is invalid."))?,
    };
    let matches = |o: &Order| {
        let by_customer = customers.as_ref().is_none_or(|ids| {
            [&o.customer, &o.payer].into_iter().flatten().any(|id| ids.contains(&id.as_str()))
        });
        let by_state = states.as_ref().is_none_or(|states| states.contains(&o.state));
        by_customer && by_state
    };
    let found: Vec<Order> = orders(fixture).filter(matches).collect();
    let end = start.saturating_add(page).min(found.len());
    let location = locations[0];
    let orders: Vec<Value> =
        found.get(start..end).unwrap_or_default().iter().map(|o| o.json(location)).collect();
    let mut answer = json!({"orders": orders});
    // Square leaves the cursor out of the last page.
    if end < found.len() {
        answer["cursor"] = Value::String(format!("{end}.{search}"));
    }
    Ok(answer)
}
