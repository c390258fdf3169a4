//! Phone numbers in E.164 (`+` and 8 to 15 digits, no leading zero), masked when shown.

use std::{fmt, str::FromStr};

/// Why a phone number was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("phone number is not in E.164 form (+ and 8 to 15 digits, country code first): {reason}")]
pub struct PhoneError {
    reason: &'static str,
}

/// A validated E.164 phone number. `Display` and `Debug` mask all but the last two digits,
/// so a number never reaches a log or an email by accident; [`PhoneNumber::expose`] gives the
/// number itself to the SMS client.
///
/// ```
/// use shop::PhoneNumber;
/// let phone: PhoneNumber = "+14155550123".parse().unwrap();
/// assert_eq!(phone.to_string(), "+*********23");
/// assert_eq!(phone.expose(), "+14155550123");
/// assert!("4155550123".parse::<PhoneNumber>().is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// The full number, for the one place that needs it (the SMS request).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The number with all but the last two digits masked.
    pub fn masked(&self) -> String {
        let keep = self.0.len() - 2;
        self.0.char_indices().map(|(i, c)| if i == 0 || i >= keep { c } else { '*' }).collect()
    }
}

impl FromStr for PhoneNumber {
    type Err = PhoneError;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let refuse = |reason| Err(PhoneError { reason });
        let Some(digits) = raw.trim().strip_prefix('+') else { return refuse("it must start with +") };
        if !digits.chars().all(|c| c.is_ascii_digit()) {
            return refuse("only digits may follow the +");
        }
        if !(8..=15).contains(&digits.len()) {
            return refuse("it must have 8 to 15 digits");
        }
        if digits.starts_with('0') {
            return refuse("country codes do not start with 0");
        }
        Ok(Self(format!("+{digits}")))
    }
}

impl TryFrom<String> for PhoneNumber {
    type Error = PhoneError;

    fn try_from(raw: String) -> Result<Self, Self::Error> {
        raw.parse()
    }
}

impl From<PhoneNumber> for String {
    fn from(phone: PhoneNumber) -> Self {
        phone.0
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PhoneNumber({})", self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_e164_only() {
        for ok in ["+14155550123", "+447700900123", "+33612345678", " +4930123456 "] {
            assert!(ok.parse::<PhoneNumber>().is_ok(), "{ok}");
        }
        for bad in [
            "14155550123",
            "+1 415 555 0123",
            "+1-415-555-0123",
            "+0123456789",
            "+1234567",
            "+1234567890123456",
            "+",
            "",
        ] {
            assert!(bad.parse::<PhoneNumber>().is_err(), "{bad}");
        }
    }

    #[test]
    fn never_shows_the_number_in_logs() {
        let phone: PhoneNumber = "+447700900123".parse().unwrap();
        assert!(!format!("{phone} {phone:?}").contains("7700900"));
    }
}
