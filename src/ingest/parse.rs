//! The event parser: one JSON line in, one [`Event`] or one [`Reject`] out.
//!
//! Parsing borrows from the input where it can and validates every field
//! against the wire protocol: a line is accepted whole or rejected whole with
//! one reason from the fixed set in [`RejectReason`].

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};

use super::event::{
    Body, ClientReport, Event, FeatureValue, Feedback, Inference, LogLevel, LogLine, ModelLoaded,
    Name, Outcome,
};
use super::timestamp::parse_rfc3339;

/// Why an event was dropped: the `reason` label of
/// `model_exporter_events_rejected_total`. The set is fixed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectReason {
    /// The bytes are not UTF-8.
    InvalidUtf8,
    /// Not a JSON object (syntax error, a bare value, a duplicated field).
    InvalidJson,
    /// A field has the wrong JSON type.
    WrongType,
    /// A field has a value outside its domain (negative latency, confidence
    /// above 1, unknown log level, malformed timestamp, number out of range).
    InvalidValue,
    /// `type` is not one of the event types.
    UnknownType,
    /// A field the event type cannot do without is absent.
    MissingField,
    /// The line (or datagram) is longer than the configured limit.
    TooLong,
    /// A stream closed or timed out in the middle of a line that does not parse.
    Truncated,
}

impl RejectReason {
    /// Every reason, in label order.
    pub const ALL: [RejectReason; 8] = [
        RejectReason::InvalidUtf8,
        RejectReason::InvalidJson,
        RejectReason::WrongType,
        RejectReason::InvalidValue,
        RejectReason::UnknownType,
        RejectReason::MissingField,
        RejectReason::TooLong,
        RejectReason::Truncated,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::InvalidUtf8 => "invalid_utf8",
            RejectReason::InvalidJson => "invalid_json",
            RejectReason::WrongType => "wrong_type",
            RejectReason::InvalidValue => "invalid_value",
            RejectReason::UnknownType => "unknown_type",
            RejectReason::MissingField => "missing_field",
            RejectReason::TooLong => "too_long",
            RejectReason::Truncated => "truncated",
        }
    }

    /// Position in [`RejectReason::ALL`], for array-indexed counters.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// A rejected line: the reason and a human-readable detail.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}: {detail}", reason.as_str())]
pub struct Reject {
    /// The counted reason.
    pub reason: RejectReason,
    /// What exactly was wrong, for the log.
    pub detail: String,
}

impl Reject {
    /// A reject with the given reason and detail.
    pub fn new(reason: RejectReason, detail: impl Into<String>) -> Self {
        Reject {
            reason,
            detail: detail.into(),
        }
    }
}

/// Returns true when a line holds nothing but ASCII white space; such lines
/// are skipped silently rather than rejected.
pub fn is_blank(line: &[u8]) -> bool {
    line.iter().all(u8::is_ascii_whitespace)
}

/// Parses one event line (without its newline).
pub fn parse_event(line: &[u8]) -> Result<Event, Reject> {
    parse_event_noting(line, |_| {})
}

/// [`parse_event`], calling `unknown` with each top-level key of an
/// accepted event that is not a field of the protocol (`"latency"` meant as
/// `latency_ms`, `"featurs"`). Such keys are ignored, as the protocol says;
/// this lets the caller count them. Lines on the fast path have none (it
/// gives up on an unknown key), so only the general path looks.
pub fn parse_event_noting(line: &[u8], unknown: impl FnMut(&str)) -> Result<Event, Reject> {
    let mut fields = Fields::default();
    if fast::scan(line, &mut fields) {
        return fields.build();
    }
    let event = parse_slow(line)?;
    // parse_slow accepted it, so it is UTF-8 JSON.
    if let Ok(text) = std::str::from_utf8(line) {
        unknown_keys(text, unknown);
    }
    Ok(event)
}

/// The top-level keys of an event, as [`Raw`] names them.
const KNOWN_KEYS: [&str; 22] = [
    "type",
    "model",
    "version",
    "ts",
    "id",
    "latency_ms",
    "ok",
    "error",
    "prediction",
    "confidence",
    "features",
    "counters",
    "resources",
    "actual",
    "trained_at",
    "loaded_at",
    "level",
    "component",
    "message",
    "metadata",
    "dropped",
    "values_omitted",
];

/// Calls `f` with each top-level key of the JSON object `text` that is not
/// in [`KNOWN_KEYS`], skipping values without building them.
fn unknown_keys(text: &str, f: impl FnMut(&str)) {
    struct Keys<F>(F);
    impl<'de, F: FnMut(&str)> Visitor<'de> for Keys<F> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
            while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                map.next_value::<IgnoredAny>()?;
                if !KNOWN_KEYS.contains(&key.as_ref()) {
                    (self.0)(&key);
                }
            }
            Ok(())
        }
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let _ = de.deserialize_map(Keys(f));
}

/// The general path: UTF-8 check, then serde_json, which accepts every
/// valid event and gives each reject its reason and message.
fn parse_slow(line: &[u8]) -> Result<Event, Reject> {
    let text = std::str::from_utf8(line).map_err(|e| {
        Reject::new(
            RejectReason::InvalidUtf8,
            format!("invalid UTF-8 at byte {}", e.valid_up_to()),
        )
    })?;
    if text.trim_start().as_bytes().first() != Some(&b'{') {
        return Err(Reject::new(
            RejectReason::InvalidJson,
            "an event must be a JSON object",
        ));
    }
    let raw: Raw<'_> = serde_json::from_str(text).map_err(classify)?;
    raw.into_event()
}

fn classify(e: serde_json::Error) -> Reject {
    use serde_json::error::Category;
    let msg = e.to_string();
    let reason = match e.classify() {
        Category::Data if msg.starts_with("invalid type") => RejectReason::WrongType,
        Category::Data if msg.starts_with("duplicate field") => RejectReason::InvalidJson,
        Category::Data => RejectReason::InvalidValue,
        Category::Syntax if msg.starts_with("number out of range") => RejectReason::InvalidValue,
        Category::Syntax | Category::Eof | Category::Io => RejectReason::InvalidJson,
    };
    Reject::new(reason, msg)
}

fn invalid(detail: impl Into<String>) -> Reject {
    Reject::new(RejectReason::InvalidValue, detail)
}

mod client;
mod fast;

/// The wire form: every field of every type, borrowed where possible.
#[derive(Deserialize, Default)]
struct Raw<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    model: Option<Cow<'a, str>>,
    #[serde(borrow)]
    version: Option<Cow<'a, str>>,
    ts: Option<Timestamp>,
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    latency_ms: Option<f64>,
    ok: Option<bool>,
    #[serde(borrow)]
    error: Option<Cow<'a, str>>,
    prediction: Option<OutcomeWire>,
    confidence: Option<f64>,
    features: Option<Features>,
    counters: Option<Counters>,
    resources: Option<Resources>,
    actual: Option<OutcomeWire>,
    trained_at: Option<Timestamp>,
    loaded_at: Option<Timestamp>,
    #[serde(borrow)]
    level: Option<Cow<'a, str>>,
    #[serde(borrow)]
    component: Option<Cow<'a, str>>,
    #[serde(borrow)]
    message: Option<Cow<'a, str>>,
    #[allow(dead_code)]
    metadata: Option<Object>,
    dropped: Option<client::Dropped>,
    values_omitted: Option<client::Count>,
}

#[derive(Deserialize)]
struct Resources {
    cpu_percent: Option<f64>,
    memory_percent: Option<f64>,
}

fn percent_ratio(name: &str, v: Option<f64>) -> Result<Option<f64>, Reject> {
    match v {
        None => Ok(None),
        Some(p) if (0.0..=100.0).contains(&p) => Ok(Some(p / 100.0)),
        Some(p) => Err(invalid(format!(
            "resources.{name} must be in [0, 100], got {p}"
        ))),
    }
}

/// The fields of an event once read, whichever path read them: strings
/// borrowed (from the line, or from serde_json's wire form), everything else
/// in its final type. An absent `features` or `counters` is empty.
#[derive(Default)]
struct Fields<'a> {
    kind: Option<&'a str>,
    model: Option<&'a str>,
    version: Option<&'a str>,
    ts: Option<f64>,
    id: Option<&'a str>,
    latency_ms: Option<f64>,
    ok: Option<bool>,
    error: Option<&'a str>,
    prediction: Option<Outcome>,
    confidence: Option<f64>,
    features: Vec<(Name, FeatureValue)>,
    counters: Vec<(String, f64)>,
    resources: Option<Resources>,
    actual: Option<Outcome>,
    trained_at: Option<f64>,
    loaded_at: Option<f64>,
    level: Option<&'a str>,
    component: Option<&'a str>,
    message: Option<&'a str>,
    /// A `client` event's counts (read by serde_json only).
    client: Option<ClientReport>,
}

impl Raw<'_> {
    fn into_event(self) -> Result<Event, Reject> {
        let mut fields = Fields {
            kind: self.kind.as_deref(),
            model: self.model.as_deref(),
            version: self.version.as_deref(),
            ts: self.ts.map(|t| t.0),
            id: self.id.as_deref(),
            latency_ms: self.latency_ms,
            ok: self.ok,
            error: self.error.as_deref(),
            prediction: self.prediction.map(|p| p.0),
            confidence: self.confidence,
            features: self.features.map(|f| f.0).unwrap_or_default(),
            counters: self.counters.map(|c| c.0).unwrap_or_default(),
            resources: self.resources,
            actual: self.actual.map(|a| a.0),
            trained_at: self.trained_at.map(|t| t.0),
            loaded_at: self.loaded_at.map(|t| t.0),
            level: self.level.as_deref(),
            component: self.component.as_deref(),
            message: self.message.as_deref(),
            client: Some(ClientReport {
                dropped: self.dropped.map(|d| d.0).unwrap_or_default(),
                values_omitted: self.values_omitted.map_or(0, |c| c.0),
            }),
        };
        fields.build()
    }
}

impl Fields<'_> {
    /// Validates the fields and builds the event: every reject decided
    /// after reading (a value out of its domain, an unknown type, a missing
    /// field) is decided here, for both paths. It takes the values it keeps
    /// out of `self` rather than consuming it, so that the fields are not
    /// copied first.
    #[inline(always)]
    fn build(&mut self) -> Result<Event, Reject> {
        let model = match self.model {
            None | Some("") => Name::new("default"),
            Some(m) => Name::new(m),
        };
        let version = self.version.map(Name::new).unwrap_or_default();
        let body = match self.kind {
            None | Some("inference") => Body::Inference(Self::inference(
                self.id,
                self.latency_ms,
                self.ok,
                self.error,
                self.prediction.take(),
                self.confidence,
                std::mem::take(&mut self.features),
                std::mem::take(&mut self.counters),
                self.resources.take(),
            )?),
            Some("feedback") => {
                let actual = self.actual.take().ok_or_else(|| {
                    Reject::new(RejectReason::MissingField, "feedback needs `actual`")
                })?;
                if self.id.is_none() && self.prediction.is_none() {
                    return Err(Reject::new(
                        RejectReason::MissingField,
                        "feedback needs `id` (to join its inference) or `prediction`",
                    ));
                }
                Body::Feedback(Feedback {
                    id: self.id.map(Name::new),
                    actual,
                    prediction: self.prediction.take(),
                })
            }
            Some("model") => Body::Model(ModelLoaded {
                trained_at: self.trained_at,
                loaded_at: self.loaded_at,
            }),
            Some("log") => {
                let level = match self.level {
                    None => LogLevel::Info,
                    Some(l) => LogLevel::parse(l).ok_or_else(|| {
                        invalid(format!(
                            "unknown log level {l:?} (expected debug, info, warning, error or critical)"
                        ))
                    })?,
                };
                Body::Log(LogLine {
                    level,
                    component: self.component.unwrap_or_default().to_owned(),
                    message: self.message.unwrap_or_default().to_owned(),
                })
            }
            Some("client") => Body::Client(self.client.take().unwrap_or_default()),
            Some(other) => {
                return Err(Reject::new(
                    RejectReason::UnknownType,
                    format!(
                        "unknown event type {other:?} (expected inference, feedback, model, log or client)"
                    ),
                ));
            }
        };
        Ok(Event {
            model,
            version,
            ts: self.ts,
            body,
        })
    }

    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn inference(
        id: Option<&str>,
        latency_ms: Option<f64>,
        ok: Option<bool>,
        error: Option<&str>,
        prediction: Option<Outcome>,
        confidence: Option<f64>,
        features: Vec<(Name, FeatureValue)>,
        counters: Vec<(String, f64)>,
        resources: Option<Resources>,
    ) -> Result<Inference, Reject> {
        let latency_seconds = match latency_ms {
            Some(ms) if ms >= 0.0 && ms.is_finite() => Some(ms / 1000.0),
            Some(ms) => return Err(invalid(format!("latency_ms must be >= 0, got {ms}"))),
            None => None,
        };
        if let Some(c) = confidence
            && !(0.0..=1.0).contains(&c)
        {
            return Err(invalid(format!("confidence must be in [0, 1], got {c}")));
        }
        let error = error.filter(|e| !e.is_empty()).map(str::to_owned);
        let ok = ok.unwrap_or(error.is_none());
        if let Some((name, v)) = counters.iter().find(|(_, v)| *v < 0.0) {
            return Err(invalid(format!("counters.{name} must be >= 0, got {v}")));
        }
        let (cpu_ratio, memory_ratio) = match resources {
            Some(r) => (
                percent_ratio("cpu_percent", r.cpu_percent)?,
                percent_ratio("memory_percent", r.memory_percent)?,
            ),
            None => (None, None),
        };
        Ok(Inference {
            id: id.map(Name::new),
            latency_seconds,
            ok,
            error,
            prediction,
            confidence,
            features,
            counters,
            cpu_ratio,
            memory_ratio,
        })
    }
}

/// `ts`-like fields: unix seconds or an RFC 3339 string.
struct Timestamp(f64);

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Timestamp;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("unix seconds or an RFC 3339 string")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Timestamp, E> {
                if v.is_finite() && v >= 0.0 {
                    Ok(Timestamp(v))
                } else {
                    Err(E::invalid_value(de::Unexpected::Float(v), &self))
                }
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Timestamp, E> {
                Ok(Timestamp(v as f64))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Timestamp, E> {
                self.visit_f64(v as f64)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Timestamp, E> {
                parse_rfc3339(v)
                    .map(Timestamp)
                    .ok_or_else(|| E::invalid_value(de::Unexpected::Str(v), &self))
            }
        }
        d.deserialize_any(V)
    }
}

/// `prediction` and `actual`: a number or a class label.
struct OutcomeWire(Outcome);

impl<'de> Deserialize<'de> for OutcomeWire {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = OutcomeWire;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number or a class label")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<OutcomeWire, E> {
                Ok(OutcomeWire(Outcome::Number(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<OutcomeWire, E> {
                self.visit_f64(v as f64)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<OutcomeWire, E> {
                self.visit_f64(v as f64)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<OutcomeWire, E> {
                Ok(OutcomeWire(Outcome::Class(v.to_owned())))
            }
        }
        d.deserialize_any(V)
    }
}

/// `features`: an object of name -> number | string | bool | null.
struct Features(Vec<(Name, FeatureValue)>);

struct FeatureWire(FeatureValue);

impl<'de> Deserialize<'de> for FeatureWire {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = FeatureWire;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number, string, bool or null")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<FeatureWire, E> {
                Ok(FeatureWire(FeatureValue::Number(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<FeatureWire, E> {
                self.visit_f64(v as f64)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<FeatureWire, E> {
                self.visit_f64(v as f64)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<FeatureWire, E> {
                Ok(FeatureWire(FeatureValue::Category(v.to_owned())))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<FeatureWire, E> {
                Ok(FeatureWire(FeatureValue::Bool(v)))
            }
            fn visit_unit<E: de::Error>(self) -> Result<FeatureWire, E> {
                Ok(FeatureWire(FeatureValue::Missing))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Features {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Features;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of feature values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Features, A::Error> {
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(4));
                while let Some((k, v)) = map.next_entry::<Cow<'de, str>, FeatureWire>()? {
                    out.push((Name::from(k), v.0));
                }
                Ok(Features(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// `counters`: an object of name -> number.
struct Counters(Vec<(String, f64)>);

impl<'de> Deserialize<'de> for Counters {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Counters;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of counts")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Counters, A::Error> {
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(2));
                while let Some((k, v)) = map.next_entry::<Cow<'de, str>, f64>()? {
                    out.push((k.into_owned(), v));
                }
                Ok(Counters(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// `metadata`: any JSON object, not kept.
struct Object;

impl<'de> Deserialize<'de> for Object {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Object;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Object, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Object)
            }
        }
        d.deserialize_map(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(line: &str) -> Event {
        parse_event(line.as_bytes()).unwrap_or_else(|r| panic!("{line}: {r}"))
    }

    fn unknown_of(line: &str) -> Vec<String> {
        let mut seen = Vec::new();
        parse_event_noting(line.as_bytes(), |k| seen.push(k.to_owned()))
            .unwrap_or_else(|r| panic!("{line}: {r}"));
        seen
    }

    #[test]
    fn unknown_keys_are_noted_and_ignored() {
        // (line, unknown keys in order)
        let cases: &[(&str, &[&str])] = &[
            (r#"{"model":"m","latency_ms":5}"#, &[]),
            (r#"{"model":"m","latency":12}"#, &["latency"]),
            (
                r#"{"featurs":{"a":1},"model":"m","Model":"x","latency":[1,{"b":2}]}"#,
                &["featurs", "Model", "latency"],
            ),
            // An escaped key is compared decoded.
            (r#"{"model":"m","latency":1}"#, &["latency"]),
            // Every protocol field at once: none unknown.
            (
                r#"{"type":"inference","model":"m","version":"v","ts":1,"id":"i","latency_ms":1,"ok":false,"error":"e","prediction":1,"confidence":0.5,"features":{"a":1},"counters":{"c":1},"resources":{"cpu_percent":1},"actual":1,"metadata":{"k":"v"}}"#,
                &[],
            ),
        ];
        for (line, want) in cases {
            assert_eq!(unknown_of(line), *want, "{line}");
        }
        // The event still counts, its known fields read.
        let e = ok(r#"{"model":"m","latency":12,"ok":true}"#);
        assert_eq!(e.model, "m");
        // A rejected line notes nothing.
        let mut seen = 0;
        assert!(parse_event_noting(br#"{"latency":1,"ok":"yes"}"#, |_| seen += 1).is_err());
        assert_eq!(seen, 0);
    }

    #[test]
    fn spec_examples_parse() {
        let e = ok(
            r#"{"model":"fraud","version":"v3","id":"r-17","latency_ms":52.3,"ok":true,"prediction":1,"confidence":0.91,"features":{"age":35,"income":51000,"amount":120.5}}"#,
        );
        assert_eq!(e.model, "fraud");
        assert_eq!(e.version, "v3");
        let Body::Inference(i) = e.body else {
            panic!("not inference")
        };
        assert_eq!(i.id.as_deref(), Some("r-17"));
        assert!((i.latency_seconds.unwrap() - 0.0523).abs() < 1e-12);
        assert!(i.ok);
        assert_eq!(i.prediction, Some(Outcome::Number(1.0)));
        assert_eq!(i.confidence, Some(0.91));
        assert_eq!(
            i.features,
            vec![
                ("age".into(), FeatureValue::Number(35.0)),
                ("income".into(), FeatureValue::Number(51000.0)),
                ("amount".into(), FeatureValue::Number(120.5)),
            ]
        );

        let e = ok(r#"{"type":"feedback","model":"fraud","id":"r-17","actual":0}"#);
        assert_eq!(
            e.body,
            Body::Feedback(Feedback {
                id: Some("r-17".into()),
                actual: Outcome::Number(0.0),
                prediction: None
            })
        );

        let e = ok(
            r#"{"type":"model","model":"fraud","version":"v3","trained_at":"2026-11-01T00:00:00Z"}"#,
        );
        assert_eq!(
            e.body,
            Body::Model(ModelLoaded {
                trained_at: Some(1_793_491_200.0),
                loaded_at: None
            })
        );

        let e = ok(
            r#"{"type":"log","model":"fraud","level":"error","component":"inference","message":"Feature missing","metadata":{"feature":"embedding"}}"#,
        );
        assert_eq!(
            e.body,
            Body::Log(LogLine {
                level: LogLevel::Error,
                component: "inference".into(),
                message: "Feature missing".into()
            })
        );
    }

    #[test]
    fn defaults_and_derived_fields() {
        let e = ok("{}");
        assert_eq!(e.model, "default");
        assert_eq!(e.version, "");
        assert_eq!(e.ts, None);
        assert_eq!(
            e.body,
            Body::Inference(Inference {
                ok: true,
                ..Default::default()
            })
        );

        let Body::Inference(i) = ok(r#"{"error":"timeout"}"#).body else {
            panic!()
        };
        assert!(!i.ok);
        assert_eq!(i.error.as_deref(), Some("timeout"));

        let Body::Inference(i) = ok(r#"{"ok":false}"#).body else {
            panic!()
        };
        assert!(!i.ok);
        assert_eq!(i.error, None);

        let Body::Inference(i) = ok(
            r#"{"prediction":"cat","features":{"c":"DE","b":true,"m":null},"counters":{"shown":10,"clicked":2},"resources":{"cpu_percent":50,"memory_percent":25.5},"unknown_field":[1,2,{"x":null}]}"#,
        )
        .body
        else {
            panic!()
        };
        assert_eq!(i.prediction, Some(Outcome::Class("cat".into())));
        assert_eq!(i.features[0].1, FeatureValue::Category("DE".into()));
        assert_eq!(i.features[1].1, FeatureValue::Bool(true));
        assert_eq!(i.features[2].1, FeatureValue::Missing);
        assert_eq!(
            i.counters,
            vec![("shown".into(), 10.0), ("clicked".into(), 2.0)]
        );
        assert_eq!(i.cpu_ratio, Some(0.5));
        assert_eq!(i.memory_ratio, Some(0.255));

        assert_eq!(ok(r#"{"ts":1700000000.5}"#).ts, Some(1_700_000_000.5));
        assert_eq!(ok(r#"{"ts":"1970-01-01T00:01:00Z"}"#).ts, Some(60.0));
        assert_eq!(ok(r#"{"model":"m\u00e9"}"#).model, "mé");
        let Body::Log(l) = ok(r#"{"type":"log","level":"WARNING"}"#).body else {
            panic!()
        };
        assert_eq!(l.level, LogLevel::Warning);
    }

    #[test]
    fn rejects_table() {
        use RejectReason::*;
        let cases: &[(&[u8], RejectReason)] = &[
            (b"not json", InvalidJson),
            (b"{\"model\":", InvalidJson),
            (b"[1,2,3]", InvalidJson),
            (b"42", InvalidJson),
            (b"{\"latency_ms\": NaN}", InvalidJson),
            (b"{\"model\":\"a\",\"model\":\"b\"}", InvalidJson),
            (b"{} trailing", InvalidJson),
            (b"\xff\xfe\x00garbage", InvalidUtf8),
            (b"{\"model\":\"\xc3\x28\"}", InvalidUtf8),
            (b"{\"latency_ms\":\"12\"}", WrongType),
            (b"{\"model\":7}", WrongType),
            (b"{\"ok\":\"yes\"}", WrongType),
            (b"{\"features\":[1,2]}", WrongType),
            (b"{\"features\":{\"a\":[1]}}", WrongType),
            (b"{\"counters\":{\"a\":\"x\"}}", WrongType),
            (b"{\"prediction\":true}", WrongType),
            (b"{\"type\":\"log\",\"metadata\":\"x\"}", WrongType),
            (b"{\"latency_ms\":-1}", InvalidValue),
            (b"{\"latency_ms\":1e400}", InvalidValue),
            (b"{\"confidence\":1.5}", InvalidValue),
            (b"{\"counters\":{\"a\":-1}}", InvalidValue),
            (b"{\"resources\":{\"cpu_percent\":101}}", InvalidValue),
            (b"{\"ts\":\"yesterday\"}", InvalidValue),
            (b"{\"ts\":-5}", InvalidValue),
            (b"{\"ts\":\"1969-12-31T23:59:59Z\"}", InvalidValue),
            (b"{\"type\":\"log\",\"level\":\"loud\"}", InvalidValue),
            (b"{\"type\":\"metric\"}", UnknownType),
            (b"{\"type\":\"feedback\",\"id\":\"x\"}", MissingField),
            (b"{\"type\":\"feedback\",\"actual\":1}", MissingField),
        ];
        for (line, want) in cases {
            match parse_event(line) {
                Ok(e) => panic!("{:?} parsed as {e:?}", String::from_utf8_lossy(line)),
                Err(r) => assert_eq!(
                    r.reason,
                    *want,
                    "{:?}: {}",
                    String::from_utf8_lossy(line),
                    r.detail
                ),
            }
        }
    }

    #[test]
    fn numbers_are_read_exactly() {
        // The nearest double to the decimal written, not one ulp off.
        let Body::Inference(i) = ok(r#"{"confidence":0.9638240513224593,"latency_ms":52.3}"#).body
        else {
            panic!()
        };
        assert_eq!(i.confidence, Some(0.963_824_051_322_459_3));
        assert_eq!(i.latency_seconds, Some(52.3 / 1000.0));
        assert_eq!(
            ok(r#"{"ts":1700000000.123456}"#).ts,
            Some(1_700_000_000.123_456)
        );
    }

    #[test]
    fn blank_lines() {
        assert!(is_blank(b""));
        assert!(is_blank(b" \t\r"));
        assert!(!is_blank(b" {}"));
    }

    #[test]
    fn reasons_are_indexed_in_order() {
        for (i, r) in RejectReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
    }
}
