//! The fast path of the event parser: a scanner for the plain form most
//! events take, filling the same [`Raw`] wire form that serde_json would.
//!
//! It understands the known fields with their usual value types, strings
//! without escapes, and numbers in JSON syntax, and reads numbers exactly
//! as serde_json does (integers through `u64`, everything else correctly
//! rounded by the standard library). On anything else (an escape, an
//! unknown or duplicated field, an unusual type, a syntax error, a value a
//! field's reader would refuse) it gives up and returns `None`, and the line
//! goes through serde_json, which accepts it or produces the reject and its
//! message. So this path never decides that a line is bad.

use std::borrow::Cow;

use super::{Counters, Features, OutcomeWire, Raw, Resources, Timestamp};
use crate::ingest::event::{FeatureValue, Name, Outcome};
use crate::ingest::timestamp::parse_rfc3339;

/// The bit of the `seen` mask of each field the scanner knows.
fn field(key: &str) -> Option<u32> {
    Some(match key {
        "type" => 0,
        "model" => 1,
        "version" => 2,
        "ts" => 3,
        "id" => 4,
        "latency_ms" => 5,
        "ok" => 6,
        "error" => 7,
        "prediction" => 8,
        "confidence" => 9,
        "features" => 10,
        "counters" => 11,
        "resources" => 12,
        "actual" => 13,
        "trained_at" => 14,
        "loaded_at" => 15,
        "level" => 16,
        "component" => 17,
        "message" => 18,
        _ => return None,
    })
}

/// Scans `text` into the wire form, or `None` to leave it to serde_json.
#[inline]
pub(super) fn scan(text: &str) -> Option<Raw<'_>> {
    let mut s = Scanner {
        text,
        b: text.as_bytes(),
        i: 0,
    };
    let mut raw = Raw::default();
    let mut seen = 0u32;
    s.ws();
    s.eat(b'{')?;
    s.ws();
    if s.peek()? == b'}' {
        s.i += 1;
    } else {
        loop {
            s.ws();
            let key = s.string()?;
            s.ws();
            s.eat(b':')?;
            s.ws();
            let field = field(key)?;
            if seen & (1 << field) != 0 {
                return None;
            }
            seen |= 1 << field;
            match field {
                0 => raw.kind = s.opt_str()?,
                1 => raw.model = s.opt_str()?,
                2 => raw.version = s.opt_str()?,
                3 => raw.ts = s.opt_timestamp()?,
                4 => raw.id = s.opt_str()?,
                5 => raw.latency_ms = s.opt_number()?,
                6 => raw.ok = s.opt_bool()?,
                7 => raw.error = s.opt_str()?,
                8 => raw.prediction = s.opt_outcome()?,
                9 => raw.confidence = s.opt_number()?,
                10 => raw.features = s.opt_features()?,
                11 => raw.counters = s.opt_counters()?,
                12 => raw.resources = s.opt_resources()?,
                13 => raw.actual = s.opt_outcome()?,
                14 => raw.trained_at = s.opt_timestamp()?,
                15 => raw.loaded_at = s.opt_timestamp()?,
                16 => raw.level = s.opt_str()?,
                17 => raw.component = s.opt_str()?,
                _ => raw.message = s.opt_str()?,
            }
            s.ws();
            match s.next()? {
                b',' => {}
                b'}' => break,
                _ => return None,
            }
        }
    }
    s.ws();
    (s.i == s.b.len()).then_some(raw)
}

struct Scanner<'a> {
    text: &'a str,
    b: &'a [u8],
    i: usize,
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.i += 1;
        Some(c)
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.next()? == c).then_some(())
    }

    /// Skips JSON white space.
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    /// Consumes `lit` (`null`, `true`, `false`) if it is next.
    fn literal(&mut self, lit: &[u8]) -> bool {
        if self.b[self.i..].starts_with(lit) {
            self.i += lit.len();
            true
        } else {
            false
        }
    }

    /// `null`, consumed.
    fn null(&mut self) -> bool {
        self.peek() == Some(b'n') && self.literal(b"null")
    }

    /// A string without escapes or control characters.
    fn string(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.i;
        let len = self.b[start..]
            .iter()
            .position(|&c| c == b'"' || c == b'\\' || c < 0x20)?;
        if self.b[start + len] != b'"' {
            return None;
        }
        self.i = start + len + 1;
        // The text is valid UTF-8 and quotes are ASCII: this is a boundary.
        Some(&self.text[start..start + len])
    }

    /// A number in JSON syntax, read as serde_json reads it into an `f64`.
    fn number(&mut self) -> Option<f64> {
        let start = self.i;
        let negative = self.peek() == Some(b'-');
        if negative {
            self.i += 1;
        }
        let int_start = self.i;
        match self.next()? {
            b'0' => {}
            b'1'..=b'9' => {
                while let Some(b'0'..=b'9') = self.peek() {
                    self.i += 1;
                }
            }
            _ => return None,
        }
        let int_end = self.i;
        let mut float = false;
        if self.peek() == Some(b'.') {
            float = true;
            self.i += 1;
            self.digits()?;
        }
        if let Some(b'e' | b'E') = self.peek() {
            float = true;
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            self.digits()?;
        }
        let v = if float {
            self.text[start..self.i].parse::<f64>().ok()?
        } else {
            // Integers: through u64, as serde_json does (too large: give up).
            let m = self.text[int_start..int_end].parse::<u64>().ok()?;
            if negative {
                if m > i64::MAX as u64 {
                    return None;
                }
                -(m as f64)
            } else {
                m as f64
            }
        };
        // Out of range: serde_json rejects it, with its message.
        v.is_finite().then_some(v)
    }

    /// One or more digits.
    fn digits(&mut self) -> Option<()> {
        let start = self.i;
        while let Some(b'0'..=b'9') = self.peek() {
            self.i += 1;
        }
        (self.i > start).then_some(())
    }

    fn is_number_start(&self) -> bool {
        matches!(self.peek(), Some(b'-' | b'0'..=b'9'))
    }

    // Each `opt_*` reads a field's value: `Some(None)` for `null`, `None`
    // to give up.

    fn opt_str(&mut self) -> Option<Option<Cow<'a, str>>> {
        if self.null() {
            return Some(None);
        }
        Some(Some(Cow::Borrowed(self.string()?)))
    }

    fn opt_number(&mut self) -> Option<Option<f64>> {
        if self.null() {
            return Some(None);
        }
        Some(Some(self.number()?))
    }

    fn opt_bool(&mut self) -> Option<Option<bool>> {
        if self.null() {
            Some(None)
        } else if self.literal(b"true") {
            Some(Some(true))
        } else if self.literal(b"false") {
            Some(Some(false))
        } else {
            None
        }
    }

    fn opt_timestamp(&mut self) -> Option<Option<Timestamp>> {
        if self.null() {
            return Some(None);
        }
        if self.peek()? == b'"' {
            return Some(Some(Timestamp(parse_rfc3339(self.string()?)?)));
        }
        // Negative times are refused by the field's reader: leave it to it.
        if self.peek()? == b'-' {
            return None;
        }
        Some(Some(Timestamp(self.number()?)))
    }

    fn opt_outcome(&mut self) -> Option<Option<OutcomeWire>> {
        if self.null() {
            return Some(None);
        }
        let o = if self.peek()? == b'"' {
            Outcome::Class(self.string()?.to_owned())
        } else {
            Outcome::Number(self.number()?)
        };
        Some(Some(OutcomeWire(o)))
    }

    /// The members of an object, each read by `value`.
    fn object(&mut self, mut member: impl FnMut(&mut Self, &'a str) -> Option<()>) -> Option<()> {
        self.eat(b'{')?;
        self.ws();
        if self.peek()? == b'}' {
            self.i += 1;
            return Some(());
        }
        loop {
            self.ws();
            let key = self.string()?;
            self.ws();
            self.eat(b':')?;
            self.ws();
            member(self, key)?;
            self.ws();
            match self.next()? {
                b',' => {}
                b'}' => return Some(()),
                _ => return None,
            }
        }
    }

    fn opt_features(&mut self) -> Option<Option<Features>> {
        if self.null() {
            return Some(None);
        }
        let mut out = Vec::with_capacity(4);
        self.object(|s, key| {
            let v = match s.peek()? {
                b'"' => FeatureValue::Category(s.string()?.to_owned()),
                b'n' if s.null() => FeatureValue::Missing,
                b't' if s.literal(b"true") => FeatureValue::Bool(true),
                b'f' if s.literal(b"false") => FeatureValue::Bool(false),
                _ if s.is_number_start() => FeatureValue::Number(s.number()?),
                _ => return None,
            };
            out.push((Name::new(key), v));
            Some(())
        })?;
        Some(Some(Features(out)))
    }

    fn opt_counters(&mut self) -> Option<Option<Counters>> {
        if self.null() {
            return Some(None);
        }
        let mut out = Vec::with_capacity(2);
        self.object(|s, key| {
            let v = s.number()?;
            out.push((key.to_owned(), v));
            Some(())
        })?;
        Some(Some(Counters(out)))
    }

    fn opt_resources(&mut self) -> Option<Option<Resources>> {
        if self.null() {
            return Some(None);
        }
        let mut r = Resources {
            cpu_percent: None,
            memory_percent: None,
        };
        let (mut cpu, mut memory) = (false, false);
        self.object(|s, key| {
            let (seen, slot) = match key {
                "cpu_percent" => (&mut cpu, &mut r.cpu_percent),
                "memory_percent" => (&mut memory, &mut r.memory_percent),
                _ => return None,
            };
            if std::mem::replace(seen, true) {
                return None;
            }
            *slot = s.opt_number()?;
            Some(())
        })?;
        Some(Some(r))
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Raw, classify};
    use super::scan;
    use crate::ingest::event::Event;
    use crate::ingest::parse::Reject;

    /// The event serde_json alone makes of `text`.
    fn slow(text: &str) -> Result<Event, Reject> {
        let raw: Raw<'_> = serde_json::from_str(text).map_err(classify)?;
        raw.into_event()
    }

    /// Where the scanner accepts a line, serde_json must accept it too and
    /// make the same event (or the same reject) of it, bit for bit.
    fn agrees(text: &str) -> bool {
        let Some(raw) = scan(text) else {
            return false;
        };
        let fast = raw.into_event();
        let slow = slow(text);
        assert_eq!(
            format!("{fast:?}"),
            format!("{slow:?}"),
            "{text}: the scanner and serde_json differ"
        );
        true
    }

    #[test]
    fn plain_lines_take_the_fast_path_and_agree() {
        for line in [
            r#"{"model":"fraud","version":"v3","id":"r-17","latency_ms":52.3,"ok":true,"prediction":1,"confidence":0.91,"features":{"age":35,"income":51000,"amount":120.5}}"#,
            r#"{}"#,
            " { } ",
            r#"{"type":"feedback","model":"fraud","id":"r-17","actual":0}"#,
            r#"{"type":"model","model":"fraud","version":"v3","trained_at":"2026-11-01T00:00:00Z","loaded_at":1700000000.25}"#,
            r#"{"type":"log","model":"fraud","level":"error","component":"inference","message":"Feature missing"}"#,
            r#"{"prediction":"cat","features":{"c":"DE","b":true,"f":false,"m":null,"n":-0,"e":-1.5e-3,"z":0},"counters":{"shown":10,"clicked":2},"resources":{"cpu_percent":50,"memory_percent":25.5}}"#,
            r#"{"confidence":0.9638240513224593,"latency_ms":52.3,"ts":1700000000.123456}"#,
            "{\"model\" :\t\"a\" ,\r\n \"version\": null, \"ok\": null, \"error\": \"\"}",
            r#"{"latency_ms":-1}"#,
            r#"{"confidence":1.5}"#,
            r#"{"type":"metric"}"#,
            r#"{"type":"feedback","id":"x"}"#,
            r#"{"type":"log","level":"loud"}"#,
            r#"{"counters":{"a":-1}}"#,
            r#"{"resources":{"cpu_percent":101}}"#,
            r#"{"latency_ms":1e-400,"prediction":18446744073709551615,"features":{"big":-9223372036854775807}}"#,
            r#"{"model":"m\u00e9"}"#,
        ] {
            let fast = agrees(line);
            assert_eq!(fast, !line.contains('\\'), "{line}");
        }
    }

    #[test]
    fn unusual_lines_are_left_to_serde_json() {
        for line in [
            r#"{"model":"a","model":"b"}"#,
            r#"{"latency_ms":"12"}"#,
            r#"{"latency_ms":1e400}"#,
            r#"{"latency_ms":01}"#,
            r#"{"latency_ms":1.}"#,
            r#"{"latency_ms":.5}"#,
            r#"{"latency_ms":+1}"#,
            r#"{"latency_ms":NaN}"#,
            r#"{"prediction":18446744073709551616}"#,
            r#"{"ts":-5}"#,
            r#"{"ts":"yesterday"}"#,
            r#"{"features":[1,2]}"#,
            r#"{"features":{"a":[1]}}"#,
            r#"{"counters":{"a":null}}"#,
            r#"{"resources":{"cpu_percent":1,"cpu_percent":2}}"#,
            r#"{"resources":{"gpu_percent":1}}"#,
            r#"{"unknown_field":1}"#,
            r#"{"type":"log","metadata":{}}"#,
            r#"{} trailing"#,
            r#"{"model":"a",}"#,
            r#"{"model":"a""#,
            "{\"model\":\"a\tb\"}",
            r#"[1]"#,
        ] {
            assert!(scan(line).is_none(), "{line} should be left to serde_json");
        }
    }

    #[test]
    fn mutated_lines_agree_whenever_the_scanner_accepts_them() {
        let base = br#"{"model":"fraud","version":"v3","id":"r-17","latency_ms":52.3,"ok":true,"prediction":1,"confidence":0.91,"features":{"age":35,"income":51000,"amount":120.5},"ts":17.5}"#;
        let alphabet = b"{}[]:,\"\\ -+.eE0123456789tfnulrase";
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut rand = move |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        let mut accepted = 0;
        for _ in 0..20_000 {
            let mut line = base.to_vec();
            for _ in 0..1 + rand(3) {
                let at = rand(line.len());
                match rand(3) {
                    0 => line[at] = alphabet[rand(alphabet.len())],
                    1 => line.insert(at, alphabet[rand(alphabet.len())]),
                    _ => {
                        line.remove(at);
                    }
                }
            }
            if let Ok(text) = std::str::from_utf8(&line)
                && agrees(text)
            {
                accepted += 1;
            }
        }
        assert!(accepted > 1000, "only {accepted} mutated lines scanned");
    }
}
