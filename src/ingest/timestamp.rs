//! RFC 3339 timestamps, as used by the `ts`, `trained_at` and `loaded_at`
//! fields, converted to seconds since the Unix epoch; and the check of
//! those timestamps against the time of receipt ([`check_times`]).

use std::time::Duration;

use super::event::{Body, Event};
use super::parse::{Reject, RejectReason};

/// Whether an event carries a client timestamp at all.
pub fn has_times(e: &Event) -> bool {
    e.ts.is_some()
        || matches!(&e.body, Body::Model(m) if m.trained_at.is_some() || m.loaded_at.is_some())
}

/// Checks an event's client timestamps against `now`, the time of
/// receipt: `ts` must be within `skew` of it; `trained_at` and
/// `loaded_at`, naturally in the past (a version is announced again when
/// its server reconnects), no more than `skew` ahead of it.
///
/// # Errors
/// An `invalid_value` [`Reject`] naming the field, its value and the time
/// of receipt.
pub fn check_times(e: &Event, now: f64, skew: Duration) -> Result<(), Reject> {
    let skew_secs = skew.as_secs_f64();
    let refuse = |field: &str, t: f64, how: &str| {
        Reject::new(
            RejectReason::InvalidValue,
            format!(
                "{field} {t} is {how} the time of receipt ({}) by more than --events.max-clock-skew ({}s)",
                format_rfc3339(now),
                skew_secs
            ),
        )
    };
    let near = |field: &str, t: f64| {
        if t > now + skew_secs {
            Err(refuse(field, t, "ahead of"))
        } else if t < now - skew_secs {
            Err(refuse(field, t, "behind"))
        } else {
            Ok(())
        }
    };
    if let Some(t) = e.ts {
        near("ts", t)?;
    }
    if let Body::Model(m) = &e.body {
        for (field, t) in [("trained_at", m.trained_at), ("loaded_at", m.loaded_at)] {
            if let Some(t) = t.filter(|t| *t > now + skew_secs) {
                return Err(refuse(field, t, "ahead of"));
            }
        }
    }
    Ok(())
}

/// Parses an RFC 3339 date-time such as `2026-11-01T00:00:00Z` or
/// `2026-11-01 12:30:00.250+02:00` into seconds since the epoch.
///
/// Accepts `T`, `t` or a space between date and time, optional fractional
/// seconds, and `Z`, `z` or a `±HH:MM` offset. Returns `None` for anything
/// else, including out-of-range fields and times before the epoch (as a
/// negative number of seconds is refused in the same fields).
pub fn parse_rfc3339(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    if b.len() < 20 {
        return None;
    }
    let num = |from: usize, len: usize| -> Option<i64> {
        let mut v = 0i64;
        for &c in b.get(from..from + len)? {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + i64::from(c - b'0');
        }
        Some(v)
    };
    let year = num(0, 4)?;
    let month = num(5, 2)?;
    let day = num(8, 2)?;
    let hour = num(11, 2)?;
    let minute = num(14, 2)?;
    let second = num(17, 2)?;
    if b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut i = 19;
    let mut frac = 0.0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        let mut scale = 0.1;
        while let Some(c) = b.get(i).filter(|c| c.is_ascii_digit()) {
            frac += f64::from(c - b'0') * scale;
            scale /= 10.0;
            i += 1;
        }
        if i == start {
            return None;
        }
    }
    let offset = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let (h, m) = (num(i + 1, 2)?, num(i + 4, 2)?);
            if h > 23 || m > 59 {
                return None;
            }
            let off = h * 3600 + m * 60;
            if *sign == b'+' { off } else { -off }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset;
    (secs >= 0).then_some(secs as f64 + frac)
}

/// Formats seconds since the epoch as RFC 3339 in UTC with milliseconds,
/// e.g. `2026-11-01T00:00:00.000Z`. Never panics: NaN is the epoch, and
/// times are clamped to years 1970 to 9999.
pub fn format_rfc3339(secs: f64) -> String {
    const MAX_MS: i64 = 253_402_300_799_999; // 9999-12-31T23:59:59.999Z
    let millis_total = if secs.is_nan() {
        0
    } else {
        // `as` saturates; the clamp keeps the year at four digits.
        ((secs * 1000.0).round() as i64).clamp(0, MAX_MS)
    };
    let (days, ms_of_day) = (
        millis_total.div_euclid(86_400_000),
        millis_total.rem_euclid(86_400_000),
    );
    let (y, m, d) = civil_from_days(days);
    let s = ms_of_day / 1000;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        s / 3600,
        s / 60 % 60,
        s % 60,
        ms_of_day % 1000
    )
}

/// The proleptic Gregorian date of a day number since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        2 => 28,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::parse_rfc3339;

    #[test]
    fn client_times_are_checked_against_receipt() {
        use super::check_times;
        use crate::ingest::parse::{RejectReason, parse_event};
        use std::time::Duration;
        let now = 1_793_491_200.0;
        let hour = Duration::from_secs(3600);
        let check = |line: &str| check_times(&parse_event(line.as_bytes()).unwrap(), now, hour);
        for ok in [
            r#"{"model":"m"}"#,
            r#"{"model":"m","ts":1793491200}"#,
            r#"{"model":"m","ts":1793487601}"#,
            r#"{"model":"m","ts":"2026-11-01T00:59:59Z"}"#,
            r#"{"type":"model","model":"m","trained_at":1,"loaded_at":2}"#,
            r#"{"type":"model","model":"m","trained_at":1793494799,"loaded_at":1793491000}"#,
        ] {
            assert!(check(ok).is_ok(), "{ok}");
        }
        for (bad, field) in [
            (r#"{"model":"m","ts":1e300}"#, "ts"),
            (r#"{"model":"m","ts":99999999999}"#, "ts"),
            (r#"{"model":"m","ts":"9999-12-31T23:59:59Z"}"#, "ts"),
            (r#"{"model":"m","ts":1}"#, "ts"),
            (r#"{"model":"m","ts":1793487599}"#, "ts"),
            (
                r#"{"type":"model","model":"m","trained_at":1e300}"#,
                "trained_at",
            ),
            (
                r#"{"type":"model","model":"m","loaded_at":99999999999}"#,
                "loaded_at",
            ),
        ] {
            let r = check(bad).unwrap_err();
            assert_eq!(r.reason, RejectReason::InvalidValue, "{bad}");
            assert!(r.detail.starts_with(field), "{bad}: {}", r.detail);
            assert!(r.detail.contains("--events.max-clock-skew"), "{}", r.detail);
        }
    }

    #[test]
    fn valid_timestamps() {
        let cases: &[(&str, f64)] = &[
            ("1970-01-01T00:00:00Z", 0.0),
            ("2026-11-01T00:00:00Z", 1_793_491_200.0),
            ("2000-02-29T12:00:00Z", 951_825_600.0),
            ("2026-11-01T02:00:00+02:00", 1_793_491_200.0),
            ("2026-10-31T22:30:00-01:30", 1_793_491_200.0),
            ("2026-11-01 00:00:00.25z", 1_793_491_200.25),
            ("1970-01-01T01:00:00+01:00", 0.0),
        ];
        for (s, want) in cases {
            assert_eq!(parse_rfc3339(s), Some(*want), "{s}");
        }
    }

    #[test]
    fn formatting_round_trips() {
        use super::format_rfc3339;
        assert_eq!(format_rfc3339(0.0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_rfc3339(1_793_491_200.25), "2026-11-01T00:00:00.250Z");
        assert_eq!(format_rfc3339(951_825_600.0), "2000-02-29T12:00:00.000Z");
        for t in [0.0, 1.5, 86_399.999, 1e9, 1_793_491_200.0, 4_102_444_800.0] {
            assert_eq!(parse_rfc3339(&format_rfc3339(t)), Some(t), "{t}");
        }
    }

    #[test]
    fn invalid_timestamps() {
        for s in [
            "",
            "2026-11-01",
            "2026-11-01T00:00:00",
            "2026-13-01T00:00:00Z",
            "2026-02-29T00:00:00Z",
            "2026-11-01T24:00:00Z",
            "2026-11-01T00:00:00.Z",
            "2026-11-01T00:00:00+2:00",
            "2026-11-01T00:00:00Zjunk",
            "2026/11/01T00:00:00Z",
            "２０２６-11-01T00:00:00Z",
            // Before the epoch, like a negative number of seconds.
            "1969-12-31T23:59:59Z",
            "1970-01-01T00:59:59+01:00",
            "0001-01-01T00:00:00Z",
        ] {
            assert_eq!(parse_rfc3339(s), None, "{s}");
        }
    }
}
