//! [`Name`]: an immutable string that keeps short values inline.
//!
//! Model names, versions, request ids and feature names are almost always
//! short. Parsing an event into `String`s cost one heap allocation for each
//! (and a free on the aggregator's thread, which contends on the allocator's
//! locks); a [`Name`] of at most [`Name::INLINE`] bytes needs none. Longer
//! values are kept in a boxed `str`.

use std::borrow::{Borrow, Cow};
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;

/// A string of any length; values of up to [`Name::INLINE`] bytes are stored
/// without a heap allocation. Compares, orders and hashes like the `str` it
/// holds, and dereferences to it.
#[derive(Clone)]
pub struct Name(Repr);

#[derive(Clone)]
enum Repr {
    Inline { len: u8, bytes: [u8; Name::INLINE] },
    Heap(Box<str>),
}

impl Name {
    /// Longest value kept inline, in bytes (a UUID fits).
    pub const INLINE: usize = 38;

    /// A name holding `s`.
    #[inline(always)]
    pub fn new(s: &str) -> Name {
        if s.len() <= Name::INLINE {
            let mut bytes = [0u8; Name::INLINE];
            copy_short(&mut bytes, s.as_bytes());
            Name(Repr::Inline {
                len: s.len() as u8,
                bytes,
            })
        } else {
            Name(Repr::Heap(s.into()))
        }
    }

    /// The value.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            // SAFETY: `bytes[..len]` is always a copy of a whole `str`
            // (`new` copies one; `truncate` cuts at a char boundary).
            Repr::Inline { len, bytes } => unsafe {
                std::str::from_utf8_unchecked(&bytes[..*len as usize])
            },
            Repr::Heap(s) => s,
        }
    }

    /// Shortens the value to `len` bytes.
    ///
    /// # Panics
    /// If `len` is not on a char boundary, as [`String::truncate`] does.
    pub fn truncate(&mut self, len: usize) {
        if len >= self.len() {
            return;
        }
        assert!(self.is_char_boundary(len), "truncate inside a character");
        *self = Name::new(&self.as_str()[..len]);
    }
}

/// Copies `src` (at most [`Name::INLINE`] bytes) to the start of `dst`,
/// which holds zeros. Up to 32 bytes, the bytes are gathered from at most
/// two loads of fixed size (overlapping ones where the length is not a
/// power of two) into words stored at fixed offsets; `copy_from_slice` with
/// a length only known at run time calls `memcpy`, which costs more than
/// the copy for names this short.
#[inline(always)]
fn copy_short(dst: &mut [u8; Name::INLINE], src: &[u8]) {
    let n = src.len();
    match n {
        0 => {}
        1..=3 => {
            let v = u32::from(src[0])
                | u32::from(src[n / 2]) << (8 * (n / 2))
                | u32::from(src[n - 1]) << (8 * (n - 1));
            dst[..4].copy_from_slice(&v.to_le_bytes());
        }
        4..=8 => {
            let lo = u32::from_le_bytes(src[..4].try_into().expect("4 bytes"));
            let hi = u32::from_le_bytes(src[n - 4..].try_into().expect("4 bytes"));
            let v = u64::from(lo) | u64::from(hi) << (8 * (n - 4));
            dst[..8].copy_from_slice(&v.to_le_bytes());
        }
        9..=16 => {
            let lo = u64::from_le_bytes(src[..8].try_into().expect("8 bytes"));
            let hi = u64::from_le_bytes(src[n - 8..].try_into().expect("8 bytes"));
            dst[..8].copy_from_slice(&lo.to_le_bytes());
            dst[8..16].copy_from_slice(&(hi >> (8 * (16 - n))).to_le_bytes());
        }
        17..=32 => {
            let lo = u128::from_le_bytes(src[..16].try_into().expect("16 bytes"));
            let hi = u128::from_le_bytes(src[n - 16..].try_into().expect("16 bytes"));
            dst[..16].copy_from_slice(&lo.to_le_bytes());
            dst[16..32].copy_from_slice(&(hi >> (8 * (32 - n))).to_le_bytes());
        }
        _ => dst[..n].copy_from_slice(src),
    }
}

impl Default for Name {
    fn default() -> Name {
        Name::new("")
    }
}

impl Deref for Name {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Name {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for Name {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl From<&str> for Name {
    fn from(s: &str) -> Name {
        Name::new(s)
    }
}

impl From<String> for Name {
    fn from(s: String) -> Name {
        if s.len() <= Name::INLINE {
            Name::new(&s)
        } else {
            Name(Repr::Heap(s.into_boxed_str()))
        }
    }
}

impl From<Cow<'_, str>> for Name {
    fn from(s: Cow<'_, str>) -> Name {
        match s {
            Cow::Borrowed(b) => Name::new(b),
            Cow::Owned(o) => o.into(),
        }
    }
}

impl From<Name> for String {
    fn from(n: Name) -> String {
        match n.0 {
            Repr::Heap(s) => s.into_string(),
            Repr::Inline { .. } => n.as_str().to_owned(),
        }
    }
}

impl From<&Name> for String {
    fn from(n: &Name) -> String {
        n.as_str().to_owned()
    }
}

impl PartialEq for Name {
    #[inline]
    fn eq(&self, other: &Name) -> bool {
        match (&self.0, &other.0) {
            // Unused inline bytes are always zero (`new` fills them, and
            // `truncate` makes a new name), and a value has one form only
            // (inline exactly when it fits), so comparing the whole fixed-size
            // representation is comparing the values, without a `memcmp` call.
            (Repr::Inline { len: a, bytes: x }, Repr::Inline { len: b, bytes: y }) => {
                a == b && same_bytes(x, y)
            }
            (Repr::Heap(x), Repr::Heap(y)) => x == y,
            _ => false,
        }
    }
}

impl Eq for Name {}

/// `x == y` as five 8-byte comparisons (the last overlapping), which the
/// compiler otherwise leaves to a `memcmp` call for this odd size.
#[inline]
fn same_bytes(x: &[u8; Name::INLINE], y: &[u8; Name::INLINE]) -> bool {
    const _: () = assert!(Name::INLINE >= 32 && Name::INLINE <= 40);
    let word = |b: &[u8; Name::INLINE], at: usize| {
        u64::from_ne_bytes(b[at..at + 8].try_into().expect("8 bytes"))
    };
    let diff = |at: usize| word(x, at) ^ word(y, at);
    (diff(0) | diff(8) | diff(16) | diff(24) | diff(Name::INLINE - 8)) == 0
}

impl PartialEq<str> for Name {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Name {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for Name {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other.as_str()
    }
}

impl PartialEq<Name> for str {
    fn eq(&self, other: &Name) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<Name> for &str {
    fn eq(&self, other: &Name) -> bool {
        *self == other.as_str()
    }
}

impl PartialEq<Name> for String {
    fn eq(&self, other: &Name) -> bool {
        self.as_str() == other.as_str()
    }
}

impl PartialOrd for Name {
    fn partial_cmp(&self, other: &Name) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Name {
    fn cmp(&self, other: &Name) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl Hash for Name {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn short_and_long_values_round_trip() {
        for s in [
            "",
            "fraud",
            "é",
            &"x".repeat(Name::INLINE),
            &"y".repeat(Name::INLINE + 1),
        ] {
            let n = Name::from(s);
            assert_eq!(n, s);
            assert_eq!(n.len(), s.len());
            assert_eq!(String::from(n.clone()), s);
            assert_eq!(Name::from(s.to_owned()), n);
            assert_eq!(format!("{n}|{n:?}"), format!("{s}|{s:?}"));
        }
        assert!(matches!(Name::from("fraud").0, Repr::Inline { .. }));
        assert!(matches!(
            Name::from("z".repeat(Name::INLINE + 1)).0,
            Repr::Heap(_)
        ));
    }

    #[test]
    fn every_inline_length_is_copied_whole() {
        let ascii = "0123456789abcdefghijklmnopqrstuvwxyzABCDEF";
        let text = "é0123456789abcdefghijklmnopqrstuvwxyzABCD";
        for len in 0..=Name::INLINE {
            for s in [&ascii[..len], text.get(..len).unwrap_or("é")] {
                let n = Name::new(s);
                let Repr::Inline { bytes, .. } = &n.0 else {
                    panic!("length {len} not inline")
                };
                // The bytes after the value stay zero.
                assert!(bytes[s.len()..].iter().all(|&b| b == 0), "length {len}");
                assert_eq!(n, s, "length {len}");
                assert_eq!(n.len(), s.len());
            }
        }
    }

    #[test]
    fn hashes_and_orders_like_str() {
        let mut m: HashMap<Name, u32> = HashMap::new();
        m.insert("a".into(), 1);
        m.insert("b".repeat(60).into(), 2);
        assert_eq!(m.get("a"), Some(&1));
        assert_eq!(m.get("b".repeat(60).as_str()), Some(&2));
        let (a, b, ab) = (Name::from("a"), Name::from("b"), Name::from("ab"));
        assert!(a < b);
        assert!(ab > a);
        assert!(ab < b);
    }

    #[test]
    fn equal_exactly_when_the_values_are() {
        let values = [
            String::new(),
            "a".into(),
            "ab".into(),
            "b".into(),
            "x".repeat(Name::INLINE),
            "x".repeat(Name::INLINE + 1),
            "x".repeat(Name::INLINE + 2),
        ];
        for a in &values {
            for b in &values {
                let (na, nb) = (Name::from(a.as_str()), Name::from(b.clone()));
                assert_eq!(na == nb, a == b, "{a:?} {b:?}");
            }
        }
        // A name cut back to an inline length equals one made inline.
        let mut cut = Name::from("y".repeat(Name::INLINE + 5));
        cut.truncate(3);
        assert_eq!(cut, Name::from("yyy"));
        let mut cut = Name::from("abcdef");
        cut.truncate(2);
        assert_eq!(cut, Name::from("ab"));
        assert_ne!(cut, Name::from("abc"));
    }

    #[test]
    fn truncate_cuts_at_a_char_boundary() {
        let mut n = Name::from("ééé".repeat(20));
        n.truncate(4);
        assert_eq!(n, "éé");
        assert!(matches!(n.0, Repr::Inline { .. }));
        n.truncate(10);
        assert_eq!(n, "éé");
    }

    #[test]
    #[should_panic(expected = "inside a character")]
    fn truncate_inside_a_char_panics() {
        Name::from("é").truncate(1);
    }
}
