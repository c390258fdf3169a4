//! Redaction of personal data and secrets in text that leaves the process (logs, DLQ attributes,
//! emails): emails keep their first letter and domain, phone numbers their last two digits,
//! tokens vanish.

/// Token prefixes of the systems we talk to (Shopify, Square, AWS, bearer headers).
const TOKEN_PREFIXES: &[&str] = &["shpat_", "shpca_", "shpss_", "sq0atp-", "sq0csp-", "EAAA", "AKIA", "ASIA"];

/// A word this long made of letters and digits (both) is taken for a secret.
const SECRET_MIN_LEN: usize = 24;

/// Masks emails, phone numbers and tokens in `text`.
///
/// ```
/// let text = jobkit::redact::redact("sms to +14155550123 for ana@example.com failed with shpat_abc123");
/// assert_eq!(text, "sms to +*********23 for a***@example.com failed with [REDACTED]");
/// ```
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        let start = rest.find(|c: char| !is_separator(c)).unwrap_or(rest.len());
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        let end = rest.find(is_separator).unwrap_or(rest.len());
        out.push_str(&redact_word(&rest[..end]));
        rest = &rest[end..];
    }
    out
}

fn is_separator(c: char) -> bool {
    c.is_whitespace()
        || matches!(c, '"' | '\'' | ',' | ';' | '(' | ')' | '[' | ']' | '{' | '}' | '<' | '>' | '=')
}

fn redact_word(word: &str) -> String {
    let trimmed = word.trim_end_matches(['.', ':', '!', '?']);
    let tail = &word[trimmed.len()..];
    if let Some(masked) = mask_email(trimmed).or_else(|| mask_phone(trimmed)) {
        return masked + tail;
    }
    if is_secret(trimmed) {
        return format!("[REDACTED]{tail}");
    }
    word.to_owned()
}

fn mask_email(word: &str) -> Option<String> {
    let (local, domain) = word.split_once('@')?;
    let first = local.chars().next()?;
    if !domain.contains('.') || domain.starts_with('.') {
        return None;
    }
    Some(format!("{first}***@{domain}"))
}

fn mask_phone(word: &str) -> Option<String> {
    let digits = word.chars().filter(char::is_ascii_digit).count();
    let phone_like = word.chars().all(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | '.' | '/'));
    if !phone_like || digits < 7 || !(word.starts_with('+') || digits >= 10) {
        return None;
    }
    let keep = word.len() - 2;
    let masked: String =
        word.char_indices().map(|(i, c)| if i < keep && c != '+' { '*' } else { c }).collect();
    Some(masked)
}

fn is_secret(word: &str) -> bool {
    // Job and message ids are UUIDs: they identify, they do not authorise.
    if uuid::Uuid::parse_str(word).is_ok() {
        return false;
    }
    if TOKEN_PREFIXES.iter().any(|p| word.starts_with(p)) {
        return true;
    }
    word.len() >= SECRET_MIN_LEN
        && word.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+' | '/'))
        && word.chars().any(|c| c.is_ascii_digit())
        && word.chars().any(|c| c.is_ascii_alphabetic())
        && !word.contains("--")
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn masks_personal_data_and_secrets() {
        assert_eq!(redact("to bob.smith@shop.io."), "to b***@shop.io.");
        assert_eq!(redact("{\"phone\":\"+447700900123\"}"), "{\"phone\":\"+**********23\"}");
        assert_eq!(redact("Authorization: Bearer sq0atp-123abc"), "Authorization: Bearer [REDACTED]");
        assert_eq!(redact("key=a1b2c3d4e5f6g7h8i9j0k1l2m3"), "key=[REDACTED]");
    }

    #[test]
    fn leaves_ordinary_text_alone() {
        let text = "store st_42 page 3 of 20: HTTP 503 at 2026-01-01T03:00:00Z";
        assert_eq!(redact(text), text);
        assert_eq!(
            redact("job-id 7f9c2ba4-e88f-11ea-adc1-0242ac120002"),
            "job-id 7f9c2ba4-e88f-11ea-adc1-0242ac120002"
        );
    }
}
