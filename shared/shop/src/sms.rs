//! SMS texts kept within segment limits: GSM-7 texts carry 160 characters in one segment (153 a
//! segment when split), anything else is UCS-2 with 70 (67). A share text is cut to fit the
//! number of segments allowed, never mid-link.

/// How a text is encoded on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmsEncoding {
    /// The GSM 03.38 alphabet (some characters take two septets).
    Gsm7,
    /// Anything outside it.
    Ucs2,
}

/// Why a text cannot be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SmsTextError {
    /// The text is empty.
    #[error("the SMS text is empty")]
    Empty,
    /// The part that may not be cut (the link) alone is longer than the segments allowed.
    #[error("the link alone needs more than {0} SMS segment(s)")]
    LinkTooLong(u32),
}

/// A text that fits in a number of segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsText {
    text: String,
    encoding: SmsEncoding,
    segments: u32,
}

const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
const GSM7_EXTENDED: &str = "^{}\\[~]|€\u{c}";

fn septets(c: char) -> Option<u32> {
    if GSM7_BASIC.contains(c) {
        Some(1)
    } else if GSM7_EXTENDED.contains(c) {
        Some(2)
    } else {
        None
    }
}

/// The encoding and the length in its units (septets or UTF-16 code units).
fn measure(text: &str) -> (SmsEncoding, u32) {
    let gsm: Option<u32> = text.chars().map(septets).sum();
    match gsm {
        Some(units) => (SmsEncoding::Gsm7, units),
        None => (SmsEncoding::Ucs2, text.encode_utf16().count() as u32),
    }
}

fn capacity(encoding: SmsEncoding, segments: u32) -> u32 {
    match (encoding, segments) {
        (SmsEncoding::Gsm7, 1) => 160,
        (SmsEncoding::Gsm7, n) => 153 * n,
        (SmsEncoding::Ucs2, 1) => 70,
        (SmsEncoding::Ucs2, n) => 67 * n,
    }
}

fn segments_for(encoding: SmsEncoding, units: u32) -> u32 {
    (1..).find(|&n| capacity(encoding, n) >= units).unwrap_or(u32::MAX)
}

impl SmsText {
    /// `body` followed by a space and `link`, with `body` cut (ending in `...`) so that the whole
    /// fits in `max_segments`.
    ///
    /// # Errors
    /// When both are empty, or the link alone does not fit.
    pub fn compose(body: &str, link: &str, max_segments: u32) -> Result<Self, SmsTextError> {
        let body = body.trim();
        let full = [body, link].iter().filter(|s| !s.is_empty()).copied().collect::<Vec<_>>().join(" ");
        if full.is_empty() {
            return Err(SmsTextError::Empty);
        }
        let (encoding, units) = measure(&full);
        if units <= capacity(encoding, max_segments) {
            return Ok(Self { segments: segments_for(encoding, units), text: full, encoding });
        }
        let (_, link_units) = measure(link);
        if link_units + 2 > capacity(encoding, max_segments) {
            return Err(SmsTextError::LinkTooLong(max_segments));
        }
        // Drop characters from the end of the body until body + "... " + link fits.
        // Every character takes at least one unit: nothing past the capacity can stay.
        let mut cut: Vec<char> = body.chars().take(capacity(encoding, max_segments) as usize).collect();
        loop {
            // Three dots, not "…": the ellipsis is outside GSM-7 and would halve the room.
            let text = format!("{}... {link}", cut.iter().collect::<String>().trim_end());
            let (encoding, units) = measure(&text);
            if units <= capacity(encoding, max_segments) || cut.is_empty() {
                return Ok(Self { segments: segments_for(encoding, units), text, encoding });
            }
            cut.pop();
        }
    }

    /// The text to send.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Its encoding.
    pub fn encoding(&self) -> SmsEncoding {
        self.encoding
    }

    /// How many segments it takes.
    pub fn segments(&self) -> u32 {
        self.segments
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINK: &str = "https://acme.myshopify.com/products/red-shoe";

    #[test]
    fn short_texts_take_one_segment() {
        let sms = SmsText::compose("Red shoe, $49.00", LINK, 1).unwrap();
        assert_eq!(sms.as_str(), format!("Red shoe, $49.00 {LINK}"));
        assert_eq!((sms.encoding(), sms.segments()), (SmsEncoding::Gsm7, 1));
    }

    #[test]
    fn long_bodies_are_cut_before_the_link() {
        let body = "A very long product title ".repeat(20);
        let sms = SmsText::compose(&body, LINK, 1).unwrap();
        assert!(sms.as_str().ends_with(&format!("... {LINK}")), "{}", sms.as_str());
        assert_eq!(sms.segments(), 1);
        assert!(measure(sms.as_str()).1 <= 160);
    }

    #[test]
    fn non_gsm_characters_switch_to_ucs2_limits() {
        let sms = SmsText::compose(&"Chaussure rouge 👟 ".repeat(10), LINK, 2).unwrap();
        assert_eq!(sms.encoding(), SmsEncoding::Ucs2);
        assert!(sms.as_str().encode_utf16().count() <= 134);
        assert_eq!(sms.segments(), 2);
    }

    #[test]
    fn euro_sign_counts_as_two_septets() {
        assert_eq!(measure("€1"), (SmsEncoding::Gsm7, 3));
    }

    #[test]
    fn refuses_what_cannot_fit() {
        assert_eq!(SmsText::compose("", "", 1), Err(SmsTextError::Empty));
        let link = format!("https://x.io/{}", "a".repeat(200));
        assert_eq!(SmsText::compose("hi", &link, 1), Err(SmsTextError::LinkTooLong(1)));
    }
}
