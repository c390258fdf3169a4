//! `jobctl versions`: the outside APIs' versions the jobs pin, and how long each is supported.
//!
//! Shopify supports a stable Admin API version for 12 months and then serves the oldest
//! supported one instead (the client logs and counts that); Square keeps a `Square-Version`
//! until it announces its retirement. An operator sees here when to move.

use chrono::{NaiveDate, Utc};
use serde_json::json;

use crate::output::Output;

/// Within this many days of its end a version is shown as due for an update.
const DUE_WITHIN_DAYS: i64 = 90;

/// One pinned version.
struct Pinned {
    api: &'static str,
    version: &'static str,
    /// The last day of support, when the provider publishes one.
    supported_until: Option<&'static str>,
    source: &'static str,
}

fn pinned() -> [Pinned; 2] {
    [
        Pinned {
            api: "Shopify Admin GraphQL",
            version: shop::shopify::API_VERSION,
            supported_until: Some(shop::shopify::API_VERSION_SUPPORTED_UNTIL),
            source: "shop::shopify::API_VERSION",
        },
        Pinned {
            api: "Square (Square-Version)",
            version: shop::square::SQUARE_VERSION,
            supported_until: None,
            source: "shop::square::SQUARE_VERSION",
        },
    ]
}

/// What is said of a version's support on `today`.
fn status(supported_until: Option<NaiveDate>, today: NaiveDate) -> (Option<i64>, &'static str) {
    let Some(until) = supported_until else {
        return (None, "supported until the provider announces its retirement");
    };
    let days = (until - today).num_days();
    let status = if days < 0 {
        "unsupported: the provider serves another version"
    } else if days <= DUE_WITHIN_DAYS {
        "supported, due for an update"
    } else {
        "supported"
    };
    (Some(days), status)
}

/// Prints the pinned versions.
pub fn versions(out: Output) {
    let today = Utc::now().date_naive();
    let rows: Vec<_> = pinned()
        .into_iter()
        .map(|p| {
            let until = p.supported_until.and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
            let (days_left, status) = status(until, today);
            (p, days_left, status)
        })
        .collect();
    if out.json {
        let apis: Vec<_> = rows
            .iter()
            .map(|(p, days_left, status)| {
                json!({"api": p.api, "version": p.version, "supported_until": p.supported_until,
                       "days_left": days_left, "status": status, "pinned_in": p.source})
            })
            .collect();
        out.json(&json!(apis));
        return;
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|(p, days_left, status)| {
            vec![
                p.api.to_owned(),
                p.version.to_owned(),
                p.supported_until.unwrap_or("-").to_owned(),
                days_left.map_or_else(|| "-".to_owned(), |d| d.to_string()),
                (*status).to_owned(),
            ]
        })
        .collect();
    out.table(&["API", "VERSION", "SUPPORTED UNTIL", "DAYS LEFT", "STATUS"], &table);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn a_version_is_due_in_its_last_90_days_and_unsupported_after_its_end() {
        let end = Some(day("2027-10-01"));
        assert_eq!(status(end, day("2026-12-07")), (Some(298), "supported"));
        assert_eq!(status(end, day("2027-07-03")).1, "supported, due for an update");
        assert_eq!(status(end, day("2027-10-01")), (Some(0), "supported, due for an update"));
        assert_eq!(status(end, day("2027-10-02")).1, "unsupported: the provider serves another version");
        assert_eq!(status(None, day("2026-12-07")).0, None);
    }
}
