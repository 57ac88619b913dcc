//! The `client` event's fields: what a client library dropped since its
//! last report (an additive extension of protocol v1, docs/events.md).

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

use crate::ingest::event::DropReason;

/// Largest count a report may carry: integers up to 2^53 are exact in the
/// counters' doubles.
const MAX_COUNT: f64 = 9_007_199_254_740_992.0;

/// A count: a whole number in [0, 2^53].
pub(super) struct Count(pub(super) u64);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Count;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a whole number >= 0")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Count, E> {
                if v as f64 <= MAX_COUNT {
                    Ok(Count(v))
                } else {
                    Err(E::invalid_value(de::Unexpected::Unsigned(v), &self))
                }
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Count, E> {
                Err(E::invalid_value(de::Unexpected::Signed(v), &self))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Count, E> {
                if (0.0..=MAX_COUNT).contains(&v) && v.fract() == 0.0 {
                    Ok(Count(v as u64))
                } else {
                    Err(E::invalid_value(de::Unexpected::Float(v), &self))
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// `dropped`: an object of reason -> count, summed by [`DropReason`]
/// (reasons this exporter does not know are summed as `other`).
pub(super) struct Dropped(pub(super) [u64; 6]);

impl<'de> Deserialize<'de> for Dropped {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Dropped;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of reason -> count")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Dropped, A::Error> {
                let mut out = [0u64; 6];
                while let Some((k, v)) = map.next_entry::<Cow<'de, str>, Count>()? {
                    let slot = &mut out[DropReason::parse(&k) as usize];
                    *slot = slot.saturating_add(v.0);
                }
                Ok(Dropped(out))
            }
        }
        d.deserialize_map(V)
    }
}

#[cfg(test)]
mod tests {
    use crate::ingest::event::{Body, DropReason};
    use crate::ingest::parse::{RejectReason, parse_event};

    fn report(line: &str) -> ([u64; 6], u64, String) {
        let e = parse_event(line.as_bytes()).unwrap_or_else(|r| panic!("{line}: {r}"));
        let Body::Client(r) = e.body else {
            panic!("{line}: not a client report")
        };
        (r.dropped, r.values_omitted, e.model.to_string())
    }

    fn rejected(line: &str) -> RejectReason {
        match parse_event(line.as_bytes()) {
            Ok(e) => panic!("{line}: accepted as {e:?}"),
            Err(r) => r.reason,
        }
    }

    #[test]
    fn reports_are_read_by_reason() {
        let (d, omitted, model) = report(
            r#"{"type":"client","model":"fraud","dropped":{"queue_full":3,"no_exporter":2,"too_large":1.0},"values_omitted":7}"#,
        );
        assert_eq!(model, "fraud");
        assert_eq!(d[DropReason::QueueFull as usize], 3);
        assert_eq!(d[DropReason::NoExporter as usize], 2);
        assert_eq!(d[DropReason::TooLarge as usize], 1);
        assert_eq!(omitted, 7);
        // The first report says nothing was lost; it still counts.
        let (d, omitted, _) = report(r#"{"type":"client","model":"m","dropped":{}}"#);
        assert_eq!((d, omitted), ([0; 6], 0));
        let (d, _, _) = report(r#"{"type":"client","model":"m"}"#);
        assert_eq!(d, [0; 6]);
    }

    #[test]
    fn unknown_reasons_are_summed_as_other() {
        let (d, _, _) =
            report(r#"{"type":"client","dropped":{"future_reason":4,"another":5,"queue_full":1}}"#);
        assert_eq!(d[DropReason::Other as usize], 9);
        assert_eq!(d[DropReason::QueueFull as usize], 1);
    }

    #[test]
    fn malformed_reports_are_rejected_with_their_reason() {
        for (line, reason) in [
            (
                r#"{"type":"client","dropped":{"queue_full":-1}}"#,
                RejectReason::InvalidValue,
            ),
            (
                r#"{"type":"client","dropped":{"queue_full":1.5}}"#,
                RejectReason::InvalidValue,
            ),
            (
                r#"{"type":"client","dropped":{"queue_full":1e300}}"#,
                RejectReason::InvalidValue,
            ),
            (
                r#"{"type":"client","dropped":{"queue_full":"3"}}"#,
                RejectReason::WrongType,
            ),
            (
                r#"{"type":"client","dropped":[1,2]}"#,
                RejectReason::WrongType,
            ),
            (
                r#"{"type":"client","values_omitted":-2}"#,
                RejectReason::InvalidValue,
            ),
            (
                r#"{"type":"client","values_omitted":true}"#,
                RejectReason::WrongType,
            ),
        ] {
            assert_eq!(rejected(line), reason, "{line}");
        }
    }
}
