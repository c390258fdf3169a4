//! Durations as operators type and read them: `90s`, `15m`, `2h`, `1d`, `1h30m`.

use std::time::Duration;

/// A duration jobctl cannot read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("cannot read {0:?} as a duration: write a number and a unit, e.g. 90s, 15m, 2h, 1d or 1h30m")]
pub struct DurationError(pub String);

/// Parses `1h30m`-style durations (units `s`, `m`, `h`, `d`; at least one part).
///
/// # Errors
/// [`DurationError`] for anything else, zero included.
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    let error = || DurationError(text.to_owned());
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in text.trim().chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(error()),
        };
        let n: u64 = digits.parse().map_err(|_| error())?;
        total = n.checked_mul(unit).and_then(|s| total.checked_add(s)).ok_or_else(error)?;
        digits.clear();
    }
    if !digits.is_empty() || total == 0 {
        return Err(error());
    }
    Ok(Duration::from_secs(total))
}

/// `d` in its two largest units: `45s`, `2m 5s`, `1h 2m`, `3d 4h`.
pub fn format(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => two(s / 60, "m", s % 60, "s"),
        3600..86_400 => two(s / 3600, "h", s % 3600 / 60, "m"),
        _ => two(s / 86_400, "d", s % 86_400 / 3600, "h"),
    }
}

fn two(major: u64, major_unit: &str, minor: u64, minor_unit: &str) -> String {
    if minor == 0 {
        format!("{major}{major_unit}")
    } else {
        format!("{major}{major_unit} {minor}{minor_unit}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_from_units_and_combinations() {
        assert_eq!(parse("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse("1d"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
        for bad in ["", "0s", "15", "m", "2 h", "1.5h", "3w", "99999999999999999999d"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations_print_in_their_two_largest_units() {
        assert_eq!(format(Duration::from_secs(45)), "45s");
        assert_eq!(format(Duration::from_secs(125)), "2m 5s");
        assert_eq!(format(Duration::from_secs(3600)), "1h");
        assert_eq!(format(Duration::from_secs(3720)), "1h 2m");
        assert_eq!(format(Duration::from_secs(3 * 86_400 + 4 * 3600 + 5)), "3d 4h");
    }
}
