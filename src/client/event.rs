//! Encoding events as JSON lines, by hand: no allocation beyond the line.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use super::Client;

/// A model output or a ground-truth value.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A number: score, probability, regression value, 0/1 label.
    Number(f64),
    /// A class label.
    Class(String),
}

impl From<f64> for Outcome {
    fn from(v: f64) -> Self {
        Outcome::Number(v)
    }
}

impl From<i64> for Outcome {
    fn from(v: i64) -> Self {
        Outcome::Number(v as f64)
    }
}

impl From<&str> for Outcome {
    fn from(v: &str) -> Self {
        Outcome::Class(v.to_owned())
    }
}

impl From<String> for Outcome {
    fn from(v: String) -> Self {
        Outcome::Class(v)
    }
}

impl Outcome {
    pub(super) fn push_json(&self, out: &mut String) {
        match self {
            Outcome::Number(v) => push_json_num(out, *v),
            Outcome::Class(c) => push_json_str(out, c),
        }
    }
}

/// A feature value.
#[derive(Debug, Clone, PartialEq)]
pub enum FeatureValue {
    /// Numeric.
    Number(f64),
    /// Categorical.
    Category(String),
    /// Boolean.
    Bool(bool),
    /// Missing (sent as `null`).
    Missing,
}

impl From<f64> for FeatureValue {
    fn from(v: f64) -> Self {
        FeatureValue::Number(v)
    }
}

impl From<i64> for FeatureValue {
    fn from(v: i64) -> Self {
        FeatureValue::Number(v as f64)
    }
}

impl From<bool> for FeatureValue {
    fn from(v: bool) -> Self {
        FeatureValue::Bool(v)
    }
}

impl From<&str> for FeatureValue {
    fn from(v: &str) -> Self {
        FeatureValue::Category(v.to_owned())
    }
}

impl<T: Into<FeatureValue>> From<Option<T>> for FeatureValue {
    fn from(v: Option<T>) -> Self {
        v.map_or(FeatureValue::Missing, Into::into)
    }
}

/// Appends `s` as a JSON string.
pub(super) fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Appends a number; JSON has no NaN or infinity, so those become `null`.
pub(super) fn push_json_num(out: &mut String, v: f64) {
    if v.is_finite() {
        let _ = write!(out, "{v}");
    } else {
        out.push_str("null");
    }
}

/// An `inference` event being built; [`InferenceBuilder::send`] sends it.
pub struct InferenceBuilder<'c> {
    client: &'c Client,
    line: String,
    features: String,
    counters: String,
    started: Option<Instant>,
    has_latency: bool,
    /// Values left out (a confidence outside [0, 1], a negative count).
    omitted: u64,
}

impl<'c> InferenceBuilder<'c> {
    pub(super) fn new(client: &'c Client, model: &str) -> Self {
        let mut line = String::with_capacity(192);
        line.push_str("{\"model\":");
        push_json_str(&mut line, model);
        InferenceBuilder {
            client,
            line,
            features: String::new(),
            counters: String::new(),
            started: None,
            has_latency: false,
            omitted: 0,
        }
    }

    pub(super) fn timed(mut self, started: Instant) -> Self {
        self.started = Some(started);
        self
    }

    fn field(&mut self, name: &str) {
        self.line.push_str(",\"");
        self.line.push_str(name);
        self.line.push_str("\":");
    }

    /// The model version.
    pub fn version(mut self, v: &str) -> Self {
        self.field("version");
        push_json_str(&mut self.line, v);
        self
    }

    /// The request id, to join feedback later.
    pub fn id(mut self, id: &str) -> Self {
        self.field("id");
        push_json_str(&mut self.line, id);
        self
    }

    /// The serving latency (otherwise measured from [`Client::start`]).
    pub fn latency(mut self, d: Duration) -> Self {
        self.field("latency_ms");
        push_json_num(&mut self.line, d.as_secs_f64() * 1000.0);
        self.has_latency = true;
        self
    }

    /// The request failed with this error class.
    pub fn error(mut self, class: &str) -> Self {
        self.field("error");
        push_json_str(&mut self.line, class);
        self
    }

    /// The model output.
    pub fn prediction(mut self, p: impl Into<Outcome>) -> Self {
        self.field("prediction");
        p.into().push_json(&mut self.line);
        self
    }

    /// The confidence of the output, in [0, 1]; another value is left out
    /// of the event and counted in [`Stats::values_omitted`](super::Stats)
    /// (NaN is sent as a missing value).
    pub fn confidence(mut self, c: f64) -> Self {
        if c.is_finite() && !(0.0..=1.0).contains(&c) {
            self.omitted += 1;
            return self;
        }
        self.field("confidence");
        push_json_num(&mut self.line, c);
        self
    }

    /// One input feature.
    pub fn feature(mut self, name: &str, value: impl Into<FeatureValue>) -> Self {
        self.features
            .push(if self.features.is_empty() { '{' } else { ',' });
        push_json_str(&mut self.features, name);
        self.features.push(':');
        match value.into() {
            FeatureValue::Number(v) => push_json_num(&mut self.features, v),
            FeatureValue::Category(c) => push_json_str(&mut self.features, &c),
            FeatureValue::Bool(b) => self.features.push_str(if b { "true" } else { "false" }),
            FeatureValue::Missing => self.features.push_str("null"),
        }
        self
    }

    /// A business count, e.g. `counter("clicked", 2.0)`; a negative or
    /// non-finite count is left out and counted in
    /// [`Stats::values_omitted`](super::Stats).
    pub fn counter(mut self, name: &str, value: f64) -> Self {
        if !(value.is_finite() && value >= 0.0) {
            self.omitted += 1;
            return self;
        }
        self.counters
            .push(if self.counters.is_empty() { '{' } else { ',' });
        push_json_str(&mut self.counters, name);
        self.counters.push(':');
        push_json_num(&mut self.counters, value);
        self
    }

    /// The line as it would be sent.
    pub fn encode(mut self) -> String {
        self.finish();
        self.line
    }

    fn finish(&mut self) {
        if let (Some(t), false) = (self.started, self.has_latency) {
            self.field("latency_ms");
            push_json_num(&mut self.line, t.elapsed().as_secs_f64() * 1000.0);
        }
        if !self.features.is_empty() {
            self.features.push('}');
            self.field("features");
            let f = std::mem::take(&mut self.features);
            self.line.push_str(&f);
        }
        if !self.counters.is_empty() {
            self.counters.push('}');
            self.field("counters");
            let c = std::mem::take(&mut self.counters);
            self.line.push_str(&c);
        }
        self.line.push('}');
    }

    /// Sends the event (never blocks, never fails; see [`Client::stats`]).
    pub fn send(mut self) {
        self.finish();
        self.client.send_counted(self.line.as_bytes(), self.omitted);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::event::{Body, FeatureValue as F, Outcome as O};
    use crate::ingest::parse::parse_event;

    #[test]
    fn encoded_events_parse_as_sent() {
        let c = Client::unixgram("/nonexistent");
        let line = c
            .inference("fr\"aud\n")
            .version("v3")
            .id("r-1")
            .latency(Duration::from_micros(52_300))
            .prediction("cat")
            .confidence(0.91)
            .feature("age", 35i64)
            .feature("country", "DE")
            .feature("flag", true)
            .feature("gone", None::<f64>)
            .feature("nan", f64::NAN)
            .counter("clicked", 2.0)
            .error("timeout")
            .encode();
        let e = parse_event(line.as_bytes()).unwrap_or_else(|r| panic!("{line}: {r}"));
        assert_eq!(e.model, "fr\"aud\n");
        assert_eq!(e.version, "v3");
        let Body::Inference(i) = e.body else { panic!() };
        assert!((i.latency_seconds.unwrap() - 0.0523).abs() < 1e-12);
        assert_eq!(i.prediction, Some(O::Class("cat".into())));
        assert_eq!(i.error.as_deref(), Some("timeout"));
        assert!(!i.ok);
        assert_eq!(
            i.features,
            vec![
                ("age".into(), F::Number(35.0)),
                ("country".into(), F::Category("DE".into())),
                ("flag".into(), F::Bool(true)),
                ("gone".into(), F::Missing),
                ("nan".into(), F::Missing),
            ]
        );
        assert_eq!(i.counters, vec![("clicked".into(), 2.0)]);
    }

    #[test]
    fn a_timed_request_measures_its_latency() {
        let c = Client::unixgram("/nonexistent");
        let b = c.start("m");
        std::thread::sleep(Duration::from_millis(5));
        let line = b.prediction(1i64).encode();
        let Body::Inference(i) = parse_event(line.as_bytes()).unwrap().body else {
            panic!()
        };
        assert!(i.latency_seconds.unwrap() >= 0.005);
    }

    #[test]
    fn no_exporter_is_counted_not_raised() {
        let c = Client::unixgram("/nonexistent/sock");
        c.inference("m").send();
        c.feedback("m", "id", 1i64);
        c.flush();
        assert_eq!((c.stats().no_exporter, c.stats().pending), (2, 0));
        let s = Client::unix_stream("/nonexistent/sock");
        s.inference("m").send();
        s.inference("m").send();
        s.flush();
        assert_eq!(s.stats().no_exporter, 2);
        assert_eq!(s.stats().sent, 0);
    }
}
