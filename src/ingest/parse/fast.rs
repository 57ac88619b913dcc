//! The fast path of the event parser: a scanner for the plain form most
//! events take, filling the same [`Fields`] that serde_json's path fills.
//!
//! It understands the known fields with their usual value types, strings
//! without escapes, and numbers in JSON syntax, and reads numbers exactly
//! as serde_json does (integers through `u64`, everything else correctly
//! rounded). On anything else (an escape, an unknown or duplicated field,
//! an unusual type, a syntax error, a value a field's reader would refuse,
//! invalid UTF-8) it gives up, and the line goes through serde_json, which
//! accepts it or produces the reject and its message. So this path never
//! decides that a line is bad.
//!
//! It reads the line as bytes. Outside strings it accepts only ASCII, so the
//! line is valid UTF-8 exactly when each of its strings is; a string is
//! checked only when it holds a byte above 0x7f (seen while looking for its
//! end, eight bytes at a time).

use super::{Fields, Resources};
use crate::ingest::event::{FeatureValue, Name, Outcome};
use crate::ingest::timestamp::parse_rfc3339;

/// The bit of the `seen` mask of each top-level field the scanner knows.
#[inline]
fn field(key: &[u8]) -> Option<u32> {
    Some(match key {
        b"type" => 0,
        b"model" => 1,
        b"version" => 2,
        b"ts" => 3,
        b"id" => 4,
        b"latency_ms" => 5,
        b"ok" => 6,
        b"error" => 7,
        b"prediction" => 8,
        b"confidence" => 9,
        b"features" => 10,
        b"counters" => 11,
        b"resources" => 12,
        b"actual" => 13,
        b"trained_at" => 14,
        b"loaded_at" => 15,
        b"level" => 16,
        b"component" => 17,
        b"message" => 18,
        _ => return None,
    })
}

/// A top-level key followed by its closing quote, as the two little-endian
/// words of the 16 bytes after the opening quote and the masks of the bytes
/// that count.
struct KeyPattern {
    words: [u64; 2],
    masks: [u64; 2],
    /// The length with the closing quote.
    len: usize,
}

/// The pattern of `name` (at most 15 bytes).
const fn pattern(name: &[u8]) -> KeyPattern {
    let mut p = KeyPattern {
        words: [0; 2],
        masks: [0; 2],
        len: name.len() + 1,
    };
    let mut i = 0;
    while i <= name.len() {
        let c = if i < name.len() { name[i] } else { b'"' };
        p.words[i / 8] |= (c as u64) << (i % 8 * 8);
        p.masks[i / 8] |= 0xff << (i % 8 * 8);
        i += 1;
    }
    p
}

/// The pattern of each field, by its bit in the `seen` mask (see [`field`]).
const KEYS: [KeyPattern; 19] = [
    pattern(b"type"),
    pattern(b"model"),
    pattern(b"version"),
    pattern(b"ts"),
    pattern(b"id"),
    pattern(b"latency_ms"),
    pattern(b"ok"),
    pattern(b"error"),
    pattern(b"prediction"),
    pattern(b"confidence"),
    pattern(b"features"),
    pattern(b"counters"),
    pattern(b"resources"),
    pattern(b"actual"),
    pattern(b"trained_at"),
    pattern(b"loaded_at"),
    pattern(b"level"),
    pattern(b"component"),
    pattern(b"message"),
];

/// The slot of [`KEY_SLOTS`] for a key starting with the first word `w`:
/// a multiplicative hash of its first three bytes (with the closing quote
/// for two-letter keys), which differ for every known key.
#[inline]
const fn key_slot(w: u64) -> usize {
    ((w as u32 & 0x00ff_ffff).wrapping_mul(0x4311_62a5) >> 27) as usize
}

/// The field whose key hashes to each slot (see [`key_slot`]), or 255.
const KEY_SLOTS: [u8; 32] = {
    let mut slots = [255u8; 32];
    let mut field = 0;
    while field < KEYS.len() {
        let slot = key_slot(KEYS[field].words[0]);
        assert!(slots[slot] == 255, "two known keys in one slot");
        slots[slot] = field as u8;
        field += 1;
    }
    slots
};

/// Scans `line` into `f`; false to leave the line to serde_json (`f` may
/// then hold part of the line's fields and is to be dropped).
#[inline]
pub(super) fn scan<'a>(line: &'a [u8], f: &mut Fields<'a>) -> bool {
    scan_fields(line, f).is_some()
}

#[inline]
fn scan_fields<'a>(line: &'a [u8], f: &mut Fields<'a>) -> Option<()> {
    let mut s = Scanner { b: line, i: 0 };
    let mut seen = 0u32;
    s.ws();
    s.eat(b'{')?;
    s.ws();
    if s.peek()? == b'}' {
        s.i += 1;
    } else {
        loop {
            s.ws();
            let field = match s.known_key() {
                Some(field) => field,
                None => s.other_key()?,
            };
            if s.token()? != b':' {
                return None;
            }
            s.ws();
            if seen & (1 << field) != 0 {
                return None;
            }
            seen |= 1 << field;
            match field {
                0 => f.kind = s.opt_str()?,
                1 => f.model = s.opt_str()?,
                2 => f.version = s.opt_str()?,
                3 => f.ts = s.opt_timestamp()?,
                4 => f.id = s.opt_str()?,
                5 => f.latency_ms = s.opt_number()?,
                6 => f.ok = s.opt_bool()?,
                7 => f.error = s.opt_str()?,
                8 => f.prediction = s.opt_outcome()?,
                9 => f.confidence = s.opt_number()?,
                10 => s.features(&mut f.features)?,
                11 => s.counters(&mut f.counters)?,
                12 => f.resources = s.opt_resources()?,
                13 => f.actual = s.opt_outcome()?,
                14 => f.trained_at = s.opt_timestamp()?,
                15 => f.loaded_at = s.opt_timestamp()?,
                16 => f.level = s.opt_str()?,
                17 => f.component = s.opt_str()?,
                _ => f.message = s.opt_str()?,
            }
            match s.token()? {
                b',' => {}
                b'}' => break,
                _ => return None,
            }
        }
    }
    s.ws();
    (s.i == s.b.len()).then_some(())
}

/// `0x01` in every byte of a word.
const ONES: u64 = 0x0101_0101_0101_0101;
/// The high bit of every byte of a word.
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Finds the end of a string's content starting at `b[start]`: the index
/// of the closing quote, and a word whose bytes' high bits are set if the
/// content may hold a byte above 0x7f (it may also say so for a byte after
/// the quote). `None` at a backslash, a control character or the end of
/// the line.
#[inline(always)]
fn string_end(b: &[u8], start: usize) -> Option<(usize, u64)> {
    let mut high = 0u64;
    let mut at = start;
    while at + 8 <= b.len() {
        let w = u64::from_le_bytes(b[at..at + 8].try_into().ok()?);
        high |= w;
        let quote = w ^ (ONES * u64::from(b'"'));
        let backslash = w ^ (ONES * u64::from(b'\\'));
        // Per byte: zero after the xor, or below 0x20. Borrows can only
        // mark bytes above a marked one, so the lowest mark is exact.
        let marks = ((quote.wrapping_sub(ONES) & !quote)
            | (backslash.wrapping_sub(ONES) & !backslash)
            | (w.wrapping_sub(ONES * 0x20) & !w))
            & HIGHS;
        if marks != 0 {
            let shift = marks.trailing_zeros() & !7;
            let end = at + (shift / 8) as usize;
            return ((w >> shift) as u8 == b'"').then_some((end, high));
        }
        at += 8;
    }
    string_end_bytewise(b, at, high)
}

/// The end of [`string_end`] for the last bytes of the line (fewer than
/// eight), one at a time.
#[cold]
#[inline(never)]
fn string_end_bytewise(b: &[u8], mut at: usize, mut high: u64) -> Option<(usize, u64)> {
    while let Some(&c) = b.get(at) {
        if c == b'"' {
            return Some((at, high));
        }
        if c == b'\\' || c < 0x20 {
            return None;
        }
        high |= u64::from(c);
        at += 1;
    }
    None
}

/// Exact powers of ten as `f64` (10^22 is the largest one).
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// Reads the JSON number at the start of `b` as serde_json (with
/// `float_roundtrip`) reads it into an `f64`: the value and the number of
/// bytes it takes. See [`read_number`].
#[cfg(test)]
fn number(b: &[u8]) -> Option<(f64, usize)> {
    let mut i = 0;
    read_number(b, &mut i).map(|v| (v, i))
}

/// Reads the JSON number at `b[*at]` as serde_json (with
/// `float_roundtrip`) reads it into an `f64`, and moves `*at` past it.
/// `None` if no number starts there, or for an integer serde_json would not
/// read through `i64`/`u64`, or for a value out of range (serde_json rejects
/// those, with its message); `*at` is then unspecified.
///
/// This handles the usual forms, an integer of up to 15 digits or a
/// fraction without exponent whose digits make an integer up to 2^53 with
/// at most 22 after the point, and leaves every other number to
/// [`read_number_general`]. Such an integer is below 2^53, so exact as an
/// `f64`, as serde_json's `u64`/`i64` is (`-0` gives `-0.0`, as there); such
/// a fraction is one division of exact `f64`s, correctly rounded.
#[inline(always)]
fn read_number(b: &[u8], at: &mut usize) -> Option<f64> {
    let start = *at;
    let negative = b.get(start) == Some(&b'-');
    let int_start = start + usize::from(negative);
    let mut i = int_start;
    let mut m = 0u64;
    accumulate_digits(b, &mut i, &mut m);
    let int_digits = i - int_start;
    if int_digits == 0 || int_digits > 15 || (int_digits > 1 && b[int_start] == b'0') {
        return read_number_general(b, at);
    }
    let mut frac_digits = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let from = i;
        accumulate_digits(b, &mut i, &mut m);
        frac_digits = i - from;
        if frac_digits == 0 || int_digits + frac_digits > 19 || m > 1 << 53 || frac_digits > 22 {
            return read_number_general(b, at);
        }
    }
    if let Some(b'e' | b'E') = b.get(i) {
        return read_number_general(b, at);
    }
    *at = i;
    // `m` is at most 2^53: as an `i64` it converts in one instruction.
    let v = m as i64 as f64 / POW10[frac_digits];
    Some(if negative { -v } else { v })
}

/// [`read_number`] for every number in JSON syntax.
///
/// Integers (no fraction, no exponent) go through `u64`, as serde_json
/// reads them, `-0` giving `-0.0`. Other numbers are correctly rounded:
/// with at most 19 digits, a mantissa up to 2^53 and a decimal exponent
/// within ±22, the mantissa and the power of ten are exact `f64`s and one
/// multiplication or division rounds correctly (Clinger's fast path);
/// anything else goes to the standard library's parser, which is what
/// serde_json's `float_roundtrip` amounts to.
#[cold]
#[inline(never)]
fn read_number_general(b: &[u8], at: &mut usize) -> Option<f64> {
    let start = *at;
    let b = b.get(start..)?;
    let negative = b.first() == Some(&b'-');
    let int_start = usize::from(negative);
    let mut i = int_start;
    let mut m = 0u64;
    accumulate_digits(b, &mut i, &mut m);
    if i == int_start {
        return None;
    }
    if b[int_start] == b'0' {
        // A leading zero is the whole integer part.
        i = int_start + 1;
        m = 0;
    }
    let int_end = i;
    let mut digits = int_end - int_start;
    let mut exp = 0i64;
    let mut float = false;
    if b.get(i) == Some(&b'.') {
        float = true;
        i += 1;
        let from = i;
        accumulate_digits(b, &mut i, &mut m);
        if i == from {
            return None;
        }
        digits += i - from;
        exp = -((i - from) as i64);
    }
    if let Some(b'e' | b'E') = b.get(i) {
        float = true;
        i += 1;
        let negative_exp = match b.get(i) {
            Some(b'-') => {
                i += 1;
                true
            }
            Some(b'+') => {
                i += 1;
                false
            }
            _ => false,
        };
        let from = i;
        let mut e = 0i64;
        while let Some(d) = b.get(i).map(|c| c.wrapping_sub(b'0')).filter(|&d| d < 10) {
            // Past this the value goes to the standard library anyway.
            if e < 1_000_000 {
                e = e * 10 + i64::from(d);
            }
            i += 1;
        }
        if i == from {
            return None;
        }
        exp += if negative_exp { -e } else { e };
    }
    *at = start + i;
    let v = if !float {
        if digits > 19 {
            // Maybe still a u64: the standard library decides.
            m = std::str::from_utf8(&b[int_start..int_end])
                .ok()?
                .parse::<u64>()
                .ok()?;
        }
        if negative {
            if m > i64::MAX as u64 {
                return None;
            }
            -(m as f64)
        } else {
            m as f64
        }
    } else if digits <= 19 && m <= 1 << 53 && (-22..=22).contains(&exp) {
        let v = if exp >= 0 {
            m as f64 * POW10[exp as usize]
        } else {
            m as f64 / POW10[(-exp) as usize]
        };
        if negative { -v } else { v }
    } else {
        std::str::from_utf8(&b[..i]).ok()?.parse::<f64>().ok()?
    };
    v.is_finite().then_some(v)
}

/// Reads the decimal digits at `b[*i..]` into `m` (`m * 10 + digit`,
/// wrapping: the caller counts the digits and decides whether `m` is exact),
/// moving `*i` past them.
#[inline(always)]
fn accumulate_digits(b: &[u8], i: &mut usize, m: &mut u64) {
    while let Some(d) = b.get(*i).map(|c| c.wrapping_sub(b'0')).filter(|&d| d < 10) {
        *m = m.wrapping_mul(10).wrapping_add(u64::from(d));
        *i += 1;
    }
}

/// `bytes` as a `str`, if valid UTF-8; `high` is false only if no byte is
/// above 0x7f.
#[inline]
fn utf8(bytes: &[u8], high: bool) -> Option<&str> {
    if high {
        std::str::from_utf8(bytes).ok()
    } else {
        // SAFETY: no byte of `bytes` is above 0x7f: it is ASCII, which is
        // valid UTF-8.
        Some(unsafe { std::str::from_utf8_unchecked(bytes) })
    }
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Scanner<'a> {
    #[inline]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    #[inline]
    fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.i += 1;
        Some(c)
    }

    #[inline]
    fn eat(&mut self, c: u8) -> Option<()> {
        (self.next()? == c).then_some(())
    }

    /// The next byte that is not JSON white space, consumed.
    #[inline(always)]
    fn token(&mut self) -> Option<u8> {
        let c = self.next()?;
        if c > b' ' {
            return Some(c);
        }
        self.i -= 1;
        self.ws();
        self.next()
    }

    /// Skips JSON white space.
    #[inline(always)]
    fn ws(&mut self) {
        while let Some(&c) = self.b.get(self.i) {
            // One comparison for the usual case, no white space.
            if c > b' ' || !matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
                break;
            }
            self.i += 1;
        }
    }

    /// A top-level key the scanner knows, at the opening quote, matched
    /// whole (with its closing quote) against [`KEYS`] and consumed; `None`
    /// (nothing consumed) for any other key, or too near the end of the line
    /// for two words, which [`field`] then decides.
    #[inline(always)]
    fn known_key(&mut self) -> Option<u32> {
        let rest = self.b.get(self.i..self.i + 17)?;
        if rest[0] != b'"' {
            return None;
        }
        let w0 = u64::from_le_bytes(rest[1..9].try_into().ok()?);
        let w1 = u64::from_le_bytes(rest[9..17].try_into().ok()?);
        let field = KEY_SLOTS[key_slot(w0)];
        let p = KEYS.get(usize::from(field))?;
        if ((w0 ^ p.words[0]) & p.masks[0]) | ((w1 ^ p.words[1]) & p.masks[1]) != 0 {
            return None;
        }
        self.i += 1 + p.len;
        Some(u32::from(field))
    }

    /// Consumes `lit` (`null`, `true`, `false`) if it is next.
    #[inline(always)]
    fn literal(&mut self, lit: &[u8]) -> bool {
        if self.b[self.i..].starts_with(lit) {
            self.i += lit.len();
            true
        } else {
            false
        }
    }

    /// `null`, consumed.
    #[inline(always)]
    fn null(&mut self) -> bool {
        self.peek() == Some(b'n') && self.literal(b"null")
    }

    /// The raw bytes of a string without escapes or control characters,
    /// and whether they may hold a byte above 0x7f.
    #[inline(always)]
    fn raw_string(&mut self) -> Option<(&'a [u8], bool)> {
        self.eat(b'"')?;
        let start = self.i;
        let (end, high) = string_end(self.b, start)?;
        self.i = end + 1;
        Some((&self.b[start..end], high & HIGHS != 0))
    }

    /// A top-level key [`Scanner::known_key`] did not match: read whole and
    /// looked up with [`field`] (kept out of the scanning loop).
    #[cold]
    #[inline(never)]
    fn other_key(&mut self) -> Option<u32> {
        field(self.key()?)
    }

    /// An object key compared with ASCII names only: not checked as UTF-8
    /// (a key with other bytes matches none and the line is given up).
    #[inline]
    fn key(&mut self) -> Option<&'a [u8]> {
        Some(self.raw_string()?.0)
    }

    /// A string without escapes or control characters, valid UTF-8.
    #[inline(always)]
    fn string(&mut self) -> Option<&'a str> {
        let (bytes, high) = self.raw_string()?;
        utf8(bytes, high)
    }

    /// A number, read as serde_json reads it into an `f64`.
    #[inline]
    fn number(&mut self) -> Option<f64> {
        read_number(self.b, &mut self.i)
    }

    // Each `opt_*` reads a field's value: `Some(None)` for `null`, `None`
    // to give up.

    #[inline(always)]
    fn opt_str(&mut self) -> Option<Option<&'a str>> {
        if self.null() {
            return Some(None);
        }
        Some(Some(self.string()?))
    }

    #[inline(always)]
    fn opt_number(&mut self) -> Option<Option<f64>> {
        if self.null() {
            return Some(None);
        }
        Some(Some(self.number()?))
    }

    #[inline(always)]
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

    fn opt_timestamp(&mut self) -> Option<Option<f64>> {
        if self.null() {
            return Some(None);
        }
        if self.peek()? == b'"' {
            return Some(Some(parse_rfc3339(self.string()?)?));
        }
        // Negative times are refused by the field's reader: leave it to it.
        if self.peek()? == b'-' {
            return None;
        }
        Some(Some(self.number()?))
    }

    #[inline(always)]
    fn opt_outcome(&mut self) -> Option<Option<Outcome>> {
        if self.null() {
            return Some(None);
        }
        Some(Some(if self.peek()? == b'"' {
            Outcome::Class(self.string()?.to_owned())
        } else {
            Outcome::Number(self.number()?)
        }))
    }

    /// The members of an object, each read by `member` (given the key as
    /// [`Scanner::raw_string`] returns it).
    #[inline]
    fn object(
        &mut self,
        mut member: impl FnMut(&mut Self, (&'a [u8], bool)) -> Option<()>,
    ) -> Option<()> {
        self.eat(b'{')?;
        self.ws();
        if self.peek()? == b'}' {
            self.i += 1;
            return Some(());
        }
        loop {
            self.ws();
            let key = self.raw_string()?;
            if self.token()? != b':' {
                return None;
            }
            self.ws();
            member(self, key)?;
            match self.token()? {
                b',' => {}
                b'}' => return Some(()),
                _ => return None,
            }
        }
    }

    /// `features` (`null` leaves `out` empty, as serde_json's path does).
    fn features(&mut self, out: &mut Vec<(Name, FeatureValue)>) -> Option<()> {
        if self.null() {
            return Some(());
        }
        *out = Vec::with_capacity(4);
        self.object(|s, key| {
            let v = match s.peek()? {
                b'-' | b'0'..=b'9' => FeatureValue::Number(s.number()?),
                b'"' => FeatureValue::Category(s.string()?.to_owned()),
                b'n' if s.null() => FeatureValue::Missing,
                b't' if s.literal(b"true") => FeatureValue::Bool(true),
                b'f' if s.literal(b"false") => FeatureValue::Bool(false),
                _ => return None,
            };
            out.push((Name::new(utf8(key.0, key.1)?), v));
            Some(())
        })
    }

    /// `counters` (`null` leaves `out` empty, as serde_json's path does).
    fn counters(&mut self, out: &mut Vec<(String, f64)>) -> Option<()> {
        if self.null() {
            return Some(());
        }
        *out = Vec::with_capacity(2);
        self.object(|s, key| {
            let v = s.number()?;
            out.push((utf8(key.0, key.1)?.to_owned(), v));
            Some(())
        })
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
            let (seen, slot) = match key.0 {
                b"cpu_percent" => (&mut cpu, &mut r.cpu_percent),
                b"memory_percent" => (&mut memory, &mut r.memory_percent),
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
    use super::super::{Fields, parse_event, parse_slow};
    use super::{number, scan};
    use crate::ingest::event::Event;
    use crate::ingest::parse::Reject;
    use proptest::prelude::*;
    use proptest::test_runner::RngSeed;

    /// The event (or reject) the fast path makes of `line`, if it takes it.
    fn fast(line: &[u8]) -> Option<Result<Event, Reject>> {
        let mut f = Fields::default();
        if scan(line, &mut f) {
            Some(f.build())
        } else {
            None
        }
    }

    /// Where the scanner accepts a line, the general path (UTF-8 check and
    /// serde_json) must accept it too and make the same event (or the same
    /// reject) of it, bit for bit.
    fn agrees(line: impl AsRef<[u8]>) -> bool {
        let line = line.as_ref();
        let Some(fast) = fast(line) else {
            return false;
        };
        let slow = parse_slow(line);
        assert_eq!(
            format!("{fast:?}"),
            format!("{slow:?}"),
            "{:?}: the scanner and serde_json differ",
            String::from_utf8_lossy(line)
        );
        true
    }

    /// A scrambler for mutation tests: xorshift from a fixed seed.
    fn rng(mut seed: u64) -> impl FnMut(usize) -> usize {
        move |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        }
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
            assert!(
                fast(line.as_bytes()).is_none(),
                "{line} should be left to serde_json"
            );
        }
    }

    /// One to three random edits of `line`: a byte of `alphabet` written
    /// over one, or inserted, or a byte removed.
    fn mutate(line: &mut Vec<u8>, alphabet: &[u8], rand: &mut impl FnMut(usize) -> usize) {
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
    }

    #[test]
    fn mutated_lines_agree_whenever_the_scanner_accepts_them() {
        let base = br#"{"model":"fraud","version":"v3","id":"r-17","latency_ms":52.3,"ok":true,"prediction":1,"confidence":0.91,"features":{"age":35,"income":51000,"amount":120.5},"ts":17.5}"#;
        let alphabet = b"{}[]:,\"\\ -+.eE0123456789tfnulrase";
        let mut rand = rng(0x2545_f491_4f6c_dd1d);
        let mut accepted = 0;
        for _ in 0..20_000 {
            let mut line = base.to_vec();
            mutate(&mut line, alphabet, &mut rand);
            if std::str::from_utf8(&line).is_ok() && agrees(&line) {
                accepted += 1;
            }
        }
        assert!(accepted > 1000, "only {accepted} mutated lines scanned");
    }

    #[test]
    fn mutated_lines_with_other_bytes_agree_whenever_the_scanner_accepts_them() {
        // Keys in other orders, every event type, non-ASCII strings, numbers
        // near the limits of the fast number path; mutations that insert
        // bytes above 0x7f (mostly making the line invalid UTF-8).
        let bases: [&[u8]; 4] = [
            r#"{"features":{"âge":35,"city":"Zürich","x":-0,"y":4.9e-324,"z":0.000000000000000000000000123},"confidence":0.12345678901234567890123,"ts":"2026-11-01T00:00:00Z","latency_ms":9007199254740993.5,"prediction":"chat","id":"demande-é-17-assez-longue-pour-le-tas","model":"modèle","type":"inference"}"#.as_bytes(),
            r#"{"actual":"猫","id":"r-17","prediction":123456789012345678901,"ts":9007199254740993,"type":"feedback","model":"fraud"}"#.as_bytes(),
            r#"{"message":"Feature «embedding» missing","component":"inférence","level":"warning","loaded_at":1e22,"trained_at":1700000000.123456,"type":"log"}"#.as_bytes(),
            r#"{"counters":{"shown":10,"clïcked":2.5e3},"resources":{"memory_percent":25.5,"cpu_percent":1e1},"error":"délai dépassé","ok":false,"version":"v3-ü"}"#.as_bytes(),
        ];
        let alphabet = b"{}[]:,\"\\ -+.eE0123456789tfnul\x80\xa9\xbb\xc3\xe6\xf0\xff\x01";
        let mut rand = rng(0x9e37_79b9_7f4a_7c15);
        let (mut accepted, mut non_ascii) = (0, 0);
        for round in 0..20_000 {
            let mut line = bases[round % bases.len()].to_vec();
            mutate(&mut line, alphabet, &mut rand);
            if agrees(&line) {
                accepted += 1;
                non_ascii += usize::from(!line.is_ascii());
            }
        }
        assert!(accepted > 1000, "only {accepted} mutated lines scanned");
        assert!(non_ascii > 1000, "only {non_ascii} non-ASCII lines scanned");
    }

    #[test]
    fn non_ascii_strings_take_the_fast_path() {
        for line in [
            r#"{"model":"modèle","version":"ü","id":"日本語の長いリクエストID-0123456789"}"#,
            r#"{"features":{"âge":"très","城市":"東京","🙂":1},"counters":{"clïcks":1}}"#,
            r#"{"type":"log","component":"inférence","message":"«x»"}"#,
            r#"{"prediction":"é","model":"ab","version":"€"}"#,
        ] {
            assert!(agrees(line), "{line} should take the fast path");
        }
    }

    #[test]
    fn invalid_utf8_in_a_string_is_left_to_the_general_path() {
        for line in [
            &b"{\"model\":\"\xc3\x28\"}"[..],
            b"{\"model\":\"a long model name \xff with more after it\"}",
            b"{\"id\":\"\xe6\x97\"}",
            b"{\"features\":{\"a\xc3\":1}}",
            b"{\"features\":{\"a\":\"\xed\xa0\x80\"}}",
            b"{\"counters\":{\"\x80\":1}}",
            b"{\"type\":\"log\",\"message\":\"\xf0\x9f\x99\"}",
            b"{\"model\":\"ok\",\"version\":\"\xc0\xaf\"}",
            b"{\"m\xc3\":1}",
        ] {
            assert!(fast(line).is_none(), "{:?}", String::from_utf8_lossy(line));
            let at = std::str::from_utf8(line).unwrap_err().valid_up_to();
            let r = parse_event(line).unwrap_err();
            assert_eq!(r.reason, crate::ingest::parse::RejectReason::InvalidUtf8);
            assert_eq!(r.detail, format!("invalid UTF-8 at byte {at}"));
        }
    }

    #[test]
    fn string_ends_are_found_in_every_position() {
        // Each length up to 40, with the special byte (closing quote,
        // backslash, control character) at every offset in the word read.
        for len in 0..40 {
            let content = "abcdefghijklmnopqrstuvwxyz0123456789ABCD"[..len].to_owned();
            let line = format!(r#"{{"model":"{content}","id":"x"}}"#);
            if len == 0 {
                // An empty model name is rejected.
                assert!(matches!(fast(line.as_bytes()), Some(Err(_))), "{line}");
                continue;
            }
            let Some(Ok(e)) = fast(line.as_bytes()) else {
                panic!("{line}")
            };
            assert_eq!(e.model, &content[..]);
            for bad in ["\\n", "\t", "\u{1f}"] {
                let line = format!(r#"{{"model":"{content}{bad}tail","id":"x"}}"#);
                assert!(fast(line.as_bytes()).is_none(), "{line:?}");
            }
        }
    }

    /// `number` as the bits of the value and the length read, for tests.
    fn read(s: &str) -> Option<(u64, usize)> {
        number(s.as_bytes()).map(|(v, len)| (v.to_bits(), len))
    }

    #[test]
    fn numbers_edge_cases() {
        // Numbers with a fraction or an exponent: the standard library's
        // correctly rounded value, bit for bit.
        for s in [
            "0.0",
            "-0.0",
            "0e0",
            "-0e-0",
            "0e400",
            "1.5",
            "52.3",
            "0.91",
            "120.5",
            "0.1",
            "0.2",
            "0.3",
            "3.0e-5",
            "1E5",
            "1e+5",
            "1.0e-0",
            "9007199254740991.0",
            "9007199254740992.0",
            "9007199254740993.0",
            "9007199254740993e0",
            "9007199254740992e22",
            "9007199254740992e-22",
            "9007199254740992e23",
            "9007199254740992e-23",
            "1e22",
            "1e23",
            "1e-22",
            "1e-23",
            "123456789012345678e-5",
            "1234567890123456789e3",
            "9999999999999999999.5",
            "12345678901234567890.5",
            "0.000000000000000000000000001",
            "0.0000000000000000000000000000000000000000000000000000000001e50",
            "4.9406564584124654e-324",
            "5e-324",
            "2.4703282292062327e-324",
            "2.4703282292062328e-324",
            "1e-400",
            "-1e-400",
            "2.2250738585072011e-308",
            "2.2250738585072014e-308",
            "1.7976931348623157e308",
            "-1.7976931348623157e308",
            "1700000000.123456",
            "0.9638240513224593",
            "999999999999999.5",
            "9007199254740.992",
            "9007199254740.993",
            "0.0000000000000000000001",
            "0.00000000000000000000001",
            "1.0000000000000000000001",
            "-0.5",
            "1e0000000000000000000000000000001",
        ] {
            let want = s.parse::<f64>().unwrap();
            assert_eq!(read(s), Some((want.to_bits(), s.len())), "{s}");
            let with_tail = format!("{s},");
            assert_eq!(read(&with_tail), Some((want.to_bits(), s.len())), "{s}");
        }
        // Integers: through u64 as serde_json reads them.
        for (s, want) in [
            ("0", 0.0),
            ("-0", -0.0),
            ("1", 1.0),
            ("51000", 51000.0),
            ("-17", -17.0),
            ("999999999999999", 999_999_999_999_999.0),
            ("-999999999999999", -999_999_999_999_999.0),
            ("1000000000000000", 1_000_000_000_000_000.0),
            ("9007199254740993", 9_007_199_254_740_993u64 as f64),
            ("9999999999999999999", 9_999_999_999_999_999_999u64 as f64),
            ("18446744073709551615", u64::MAX as f64),
            ("-9223372036854775807", -9_223_372_036_854_775_807i64 as f64),
        ] {
            assert_eq!(read(s), Some((want.to_bits(), s.len())), "{s}");
            let serde: f64 = serde_json::from_str(s).unwrap();
            assert_eq!(serde.to_bits(), want.to_bits(), "{s}");
        }
        // Left to serde_json: out of range, or integers it does not read
        // through u64/i64, or not a number.
        for s in [
            "1e400",
            "-1e400",
            "1e99999999999999999999",
            "18446744073709551616",
            "-9223372036854775808",
            "-12345678901234567890",
            "",
            "-",
            "1.",
            ".5",
            "+1",
            "1e",
            "1e+",
            "-a",
            "1.e5",
        ] {
            assert_eq!(read(s), None, "{s}");
        }
        // A leading zero ends the number (the scanner then fails on the rest).
        assert_eq!(read("01"), Some((0.0f64.to_bits(), 1)));
        assert_eq!(read("-01.5"), Some(((-0.0f64).to_bits(), 2)));
    }

    /// JSON numbers with a fraction or an exponent, built from parts.
    fn decimal() -> impl Strategy<Value = String> {
        let digits = |max| prop::collection::vec(0u8..10, 1..max);
        let text = |d: Vec<u8>| {
            d.into_iter()
                .map(|d| char::from(b'0' + d))
                .collect::<String>()
        };
        let plain = (
            any::<bool>(),
            digits(25),
            prop::option::of(digits(40)),
            prop::option::of((0..3usize, prop_oneof![0..30i32, 0..400i32])),
        )
            .prop_filter("a fraction or an exponent", |(_, _, f, e)| {
                f.is_some() || e.is_some()
            })
            .prop_map(move |(neg, int, frac, exp)| {
                let mut s = String::from(if neg { "-" } else { "" });
                let int = text(int);
                s += if int.starts_with('0') { "0" } else { &int };
                if let Some(f) = frac {
                    s += ".";
                    s += &text(f);
                }
                if let Some((sign, e)) = exp {
                    s += ["e", "e+", "E-"][sign];
                    s += &e.to_string();
                }
                s
            });
        // Mantissas around 2^53, and subnormals.
        let near_2_53 = (-2000i64..2000, -30i32..30, 0usize..20).prop_map(|(d, e, point)| {
            let m = ((1i64 << 53) + d).to_string();
            let point = point.min(m.len() - 1);
            format!("{}.{}e{e}", &m[..m.len() - point], &m[m.len() - point..]).replace(".e", ".0e")
        });
        let subnormal =
            (1u64..100_000_000_000_000_000, -345i32..-300).prop_map(|(m, e)| format!("{m}e{e}"));
        prop_oneof![4 => plain, 1 => near_2_53, 1 => subnormal]
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 4096,
            rng_seed: RngSeed::Fixed(0x6e75_6d62_6572_7321),
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn numbers_read_as_the_standard_library_reads_them(s in decimal()) {
            let want = s.parse::<f64>().unwrap();
            let with_tail = format!("{s}}}");
            let got = read(&with_tail);
            if want.is_finite() {
                prop_assert_eq!(got, Some((want.to_bits(), s.len())), "{}", s);
            } else {
                prop_assert_eq!(got, None, "{}", s);
            }
        }
    }
}
