//! Prometheus-style durations (`500ms`, `1h30m`, `2d`), as rules.yaml and
//! the command-line flags write them.

use std::time::Duration;

use crate::rules::suggest::did_you_mean;

/// The units, largest first, with their length in milliseconds.
const UNITS: [(&str, u64); 7] = [
    ("y", 365 * 86_400_000),
    ("w", 7 * 86_400_000),
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

/// Why a text is not a duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Nothing at all.
    #[error("empty duration")]
    Empty,
    /// A bare number such as `10`.
    #[error("duration '{0}' has no unit; write e.g. '{0}s' (units: ms, s, m, h, d, w, y)")]
    NoUnit(String),
    /// Something else where a number should start.
    #[error(
        "invalid duration '{text}': expected a whole number at '{rest}' (e.g. 500ms, 10s, 5m, 1h30m)"
    )]
    ExpectedNumber {
        /// The duration as written.
        text: String,
        /// What follows where the number should be.
        rest: String,
    },
    /// A number with a fraction.
    #[error(
        "invalid duration '{0}': fractions are not allowed; use a smaller unit (e.g. 1m30s, 1500ms)"
    )]
    Fraction(String),
    /// A number without a unit after it, in a longer text.
    #[error("invalid duration '{text}': '{digits}' has no unit (ms, s, m, h, d, w, y)")]
    MissingUnit {
        /// The duration as written.
        text: String,
        /// The number without a unit.
        digits: String,
    },
    /// A unit other than `y w d h m s ms`.
    #[error(
        "invalid duration '{text}': unknown unit '{unit}' (expected ms, s, m, h, d, w or y){hint}"
    )]
    UnknownUnit {
        /// The duration as written.
        text: String,
        /// The unknown unit.
        unit: String,
        /// `, did you mean 'X'?` when a unit is close, else empty.
        hint: String,
    },
    /// Units out of order, or one given twice.
    #[error(
        "invalid duration '{0}': units must go from largest to smallest, each once (e.g. 1h30m)"
    )]
    Order(String),
    /// A number that does not fit in 64 bits.
    #[error("invalid duration '{0}': number too large")]
    NumberTooLarge(String),
    /// A total of more than 2^64 milliseconds.
    #[error("invalid duration '{0}': too large")]
    TooLarge(String),
}

/// Parses a Prometheus-style duration: one or more `NUMBER UNIT` pairs with
/// integer numbers and units `y w d h m s ms` in that order, each at most
/// once (`500ms`, `1h30m`, `2d`). `0` alone is the zero duration.
///
/// # Errors
/// A [`DurationError`] saying what is wrong.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if text.is_empty() {
        return Err(DurationError::Empty);
    }
    if text.parse::<f64>().is_ok() {
        return Err(DurationError::NoUnit(text.to_owned()));
    }
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    let mut total: u64 = 0;
    let mut last_unit: Option<usize> = None;
    while i < chars.len() {
        let start = i;
        while i < chars.len() && chars[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return Err(DurationError::ExpectedNumber {
                text: text.to_owned(),
                rest: chars[i..].iter().collect(),
            });
        }
        let digits: String = chars[start..i].iter().collect();
        if chars.get(i) == Some(&'.') {
            return Err(DurationError::Fraction(text.to_owned()));
        }
        let ustart = i;
        while i < chars.len() && chars[i].is_alphabetic() {
            i += 1;
        }
        let unit: String = chars[ustart..i].iter().collect();
        let Some(idx) = UNITS.iter().position(|(u, _)| *u == unit) else {
            if unit.is_empty() {
                return Err(DurationError::MissingUnit {
                    text: text.to_owned(),
                    digits,
                });
            }
            return Err(DurationError::UnknownUnit {
                text: text.to_owned(),
                hint: did_you_mean(&unit, UNITS.iter().map(|(u, _)| *u)),
                unit,
            });
        };
        if last_unit.is_some_and(|l| idx <= l) {
            return Err(DurationError::Order(text.to_owned()));
        }
        last_unit = Some(idx);
        let n: u64 = digits
            .parse()
            .map_err(|_| DurationError::NumberTooLarge(text.to_owned()))?;
        total = n
            .checked_mul(UNITS[idx].1)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| DurationError::TooLarge(text.to_owned()))?;
    }
    Ok(Duration::from_millis(total))
}

/// Formats a duration the way [`parse_duration`] reads it (`1h30m`, `500ms`,
/// `0s`), using units up to days.
pub fn format_duration(d: Duration) -> String {
    let mut ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, size) in &UNITS[2..] {
        let size = u128::from(*size);
        if ms >= size {
            out.push_str(&format!("{}{unit}", ms / size));
            ms %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let ok = [
            ("0", 0),
            ("0s", 0),
            ("500ms", 500),
            ("10s", 10_000),
            ("5m", 300_000),
            ("1h", 3_600_000),
            ("1d", 86_400_000),
            ("1w", 604_800_000),
            ("1y", 31_536_000_000),
            ("1h30m", 5_400_000),
            ("1m30s500ms", 90_500),
        ];
        for (text, ms) in ok {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_millis(ms)),
                "{text}"
            );
        }
        let bad = [
            ("", "empty"),
            ("10", "has no unit; write e.g. '10s'"),
            ("1.5h", "fractions are not allowed"),
            ("5 m", "'5' has no unit"),
            ("5mn", "unknown unit 'mn'"),
            ("5sec", "unknown unit 'sec'"),
            ("30m1h", "largest to smallest"),
            ("1m1m", "largest to smallest"),
            ("m", "expected a whole number"),
            ("-5m", "expected a whole number"),
            ("99999999999999999999s", "too large"),
            ("9999999999999y", "too large"),
        ];
        for (text, fragment) in bad {
            let e = parse_duration(text).expect_err(text).to_string();
            assert!(e.contains(fragment), "{text}: {e}");
        }
        for ms in [0, 1, 500, 1000, 90_500, 5_400_000, 86_400_000, 90_061_001] {
            let d = Duration::from_millis(ms);
            assert_eq!(parse_duration(&format_duration(d)), Ok(d), "{ms}");
        }
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
    }
}
