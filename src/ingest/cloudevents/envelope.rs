//! The CloudEvent around a payload: its attributes, read from `ce-*`
//! headers (binary content mode) or from a JSON object (structured mode,
//! `application/cloudevents+json`), and the payload itself as JSON.

use hyper::HeaderMap;
use hyper::header::CONTENT_TYPE;
use serde_json::{Map, Value};

use crate::ingest::parse::{Reject, RejectReason};
use crate::ingest::timestamp::parse_rfc3339;

/// Which half of an inference, or feedback, an event is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Half {
    /// `*.inference.request`: what the model was asked.
    Request,
    /// `*.inference.response`: what it answered.
    Response,
    /// `*.feedback` (Seldon): ground truth for earlier answers.
    Feedback,
}

impl Half {
    /// From the `type` attribute: any type ending in `.inference.request`,
    /// `.inference.response` or `.feedback`.
    fn of_type(t: &str) -> Option<Half> {
        if t.ends_with(".inference.request") {
            Some(Half::Request)
        } else if t.ends_with(".inference.response") {
            Some(Half::Response)
        } else if t.ends_with(".feedback") {
            Some(Half::Feedback)
        } else {
            None
        }
    }

    /// The label value of this half in self-metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Half::Request => "request",
            Half::Response => "response",
            Half::Feedback => "feedback",
        }
    }
}

/// The attributes of one CloudEvent that the mapping uses.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    /// From `type`.
    pub half: Half,
    /// `id`: unique per event (KServe: shared by a request and its response).
    pub id: String,
    /// `time`, seconds since the epoch.
    pub time: Option<f64>,
    /// `inferenceservicename`: the InferenceService or SeldonDeployment.
    pub service: String,
    /// `component` (KServe) or `modelid` (Seldon's graph node); may be empty.
    pub component: String,
    /// `namespace`; may be empty.
    pub namespace: String,
    /// `endpoint`; may be empty.
    pub endpoint: String,
    /// `requestid` (Seldon): shared by a request and its response.
    pub request_id: Option<String>,
}

impl Envelope {
    /// What pairs a request with its response: Seldon's `requestid`, else
    /// the `id`.
    pub fn pairing_id(&self) -> &str {
        self.request_id.as_deref().unwrap_or(&self.id)
    }

    /// The events' name: the service, with `/COMPONENT` when the component
    /// is not the predictor.
    pub fn name(&self) -> String {
        match self.component.as_str() {
            "" | "predictor" => self.service.clone(),
            c => format!("{}/{c}", self.service),
        }
    }
}

/// Whether a `Content-Type` is the structured mode's.
pub fn is_structured(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| {
            t.trim()
                .eq_ignore_ascii_case("application/cloudevents+json")
        })
}

/// Reads one CloudEvent: the structured mode when the content type says
/// so, else the binary mode. Returns its attributes and its payload.
///
/// # Errors
/// A missing or malformed attribute, an unknown type, or a payload that is
/// not JSON, each with its reason.
pub fn read(headers: &HeaderMap, body: &[u8]) -> Result<(Envelope, Value), Reject> {
    if is_structured(headers) {
        read_structured(body)
    } else {
        read_binary(headers, body)
    }
}

/// Binary mode: attributes in `ce-NAME` headers, the body is the payload.
fn read_binary(headers: &HeaderMap, body: &[u8]) -> Result<(Envelope, Value), Reject> {
    let attr = |name: &str| -> Result<Option<&str>, Reject> {
        match headers.get(format!("ce-{name}")) {
            None => Ok(None),
            Some(v) => v.to_str().map(|s| Some(s.trim())).map_err(|_| {
                Reject::new(
                    RejectReason::InvalidUtf8,
                    format!("header ce-{name} is not ASCII text"),
                )
            }),
        }
    };
    let envelope = envelope(attr, "header ce-")?;
    let payload = json_payload(
        body,
        headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()),
    )?;
    Ok((envelope, payload))
}

/// Structured mode: one JSON object with the attributes, and the payload
/// in `data` (JSON) or `data_base64`.
fn read_structured(body: &[u8]) -> Result<(Envelope, Value), Reject> {
    let mut event: Map<String, Value> = match parse_json(body, "the structured CloudEvent")? {
        Value::Object(m) => m,
        _ => {
            return Err(Reject::new(
                RejectReason::InvalidJson,
                "a structured CloudEvent must be a JSON object",
            ));
        }
    };
    let attr = |name: &str| -> Result<Option<&str>, Reject> {
        match event.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(other) => Err(Reject::new(
                RejectReason::WrongType,
                format!(
                    "attribute {name} must be a string, found {}",
                    json_type(other)
                ),
            )),
        }
    };
    let envelope = envelope(attr, "attribute ")?;
    let payload = match (event.remove("data"), event.remove("data_base64")) {
        (Some(_), Some(_)) => {
            return Err(Reject::new(
                RejectReason::InvalidJson,
                "a structured CloudEvent has data or data_base64, not both",
            ));
        }
        // A JSON payload is the value itself; a string holding JSON (sent
        // as text) is read as the JSON it holds.
        (Some(Value::String(s)), None) => {
            parse_json(s.as_bytes(), "data").unwrap_or(Value::String(s))
        }
        (Some(v), None) => v,
        (None, Some(Value::String(b64))) => {
            let bytes = crate::webconfig::base64_decode(b64.trim()).ok_or_else(|| {
                Reject::new(RejectReason::InvalidJson, "data_base64 is not base64")
            })?;
            parse_json(&bytes, "the payload in data_base64")?
        }
        (None, Some(other)) => {
            return Err(Reject::new(
                RejectReason::WrongType,
                format!("data_base64 must be a string, found {}", json_type(&other)),
            ));
        }
        (None, None) => Value::Null,
    };
    Ok((envelope, payload))
}

/// The envelope from an attribute reader; `place` says where attributes
/// are, for messages (`header ce-` or `attribute `).
fn envelope<'a>(
    attr: impl Fn(&str) -> Result<Option<&'a str>, Reject>,
    place: &str,
) -> Result<Envelope, Reject> {
    let required = |name: &str| -> Result<&'a str, Reject> {
        match attr(name)? {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(Reject::new(
                RejectReason::MissingField,
                format!("no {place}{name}: not a CloudEvent"),
            )),
        }
    };
    let spec = required("specversion")?;
    if spec != "1.0" && spec != "0.3" {
        return Err(Reject::new(
            RejectReason::InvalidValue,
            format!("unsupported CloudEvents specversion {spec:?} (1.0 or 0.3)"),
        ));
    }
    let id = required("id")?;
    required("source")?;
    let kind = required("type")?;
    let half = Half::of_type(kind).ok_or_else(|| {
        Reject::new(
            RejectReason::UnknownType,
            format!(
                "CloudEvent type {kind:?} is not an inference request, response or feedback (*.inference.request, *.inference.response, *.feedback)"
            ),
        )
    })?;
    let time = match attr("time")? {
        None | Some("") => None,
        Some(t) => Some(parse_rfc3339(t).ok_or_else(|| {
            Reject::new(
                RejectReason::InvalidValue,
                format!("{place}time {t:?} is not an RFC 3339 time"),
            )
        })?),
    };
    let service = attr("inferenceservicename")?.filter(|s| !s.is_empty()).ok_or_else(|| {
        Reject::new(
            RejectReason::MissingField,
            format!(
                "no {place}inferenceservicename: the event does not say which InferenceService (or SeldonDeployment) it is from"
            ),
        )
    })?;
    let text =
        |name: &str| -> Result<String, Reject> { Ok(attr(name)?.unwrap_or_default().to_owned()) };
    let component = match attr("component")? {
        Some(c) if !c.is_empty() => c.to_owned(),
        _ => text("modelid")?,
    };
    Ok(Envelope {
        half,
        id: id.to_owned(),
        time,
        service: service.to_owned(),
        component,
        namespace: text("namespace")?,
        endpoint: text("endpoint")?,
        request_id: attr("requestid")?
            .filter(|r| !r.is_empty())
            .map(str::to_owned),
    })
}

/// The body of a binary-mode event as JSON, whatever its content type
/// says: KServe's logger gives the response the request's content type,
/// and clients often send JSON as `application/x-www-form-urlencoded`.
fn json_payload(body: &[u8], content_type: Option<&str>) -> Result<Value, Reject> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    parse_json(body, "the payload").map_err(|mut r| {
        if let Some(ct) = content_type {
            r.detail.push_str(&format!(" (Content-Type {ct})"));
        }
        r
    })
}

/// Parses JSON text, rejecting with the reason the socket parser would give.
fn parse_json(bytes: &[u8], what: &str) -> Result<Value, Reject> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        Reject::new(
            RejectReason::InvalidUtf8,
            format!("{what} is not UTF-8 (at byte {})", e.valid_up_to()),
        )
    })?;
    serde_json::from_str(text).map_err(|e| {
        let reason = if e.to_string().starts_with("number out of range") {
            RejectReason::InvalidValue
        } else {
            RejectReason::InvalidJson
        };
        Reject::new(reason, format!("{what} is not JSON: {e}"))
    })
}

/// The JSON type of a value, for messages.
pub fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::{HeaderName, HeaderValue};

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    /// The attributes KServe 0.18 and later send with a request.
    const KSERVE: &[(&str, &str)] = &[
        ("Ce-Component", "predictor"),
        ("Ce-Endpoint", ""),
        ("Ce-Id", "5b1c1a4e-6e8e-4b6b-9b0e-0c2f6f1f9a01"),
        ("Ce-Inferenceservicename", "fraud"),
        ("Ce-Metadata", "{}"),
        ("Ce-Namespace", "models"),
        ("Ce-Recordedtime", "2026-11-29T12:00:00.003Z"),
        ("Ce-Source", "fraud-predictor-7d9f-x2x"),
        ("Ce-Specversion", "1.0"),
        ("Ce-Time", "2026-11-29T12:00:00.001Z"),
        ("Ce-Type", "org.kubeflow.serving.inference.request"),
        ("Content-Type", "application/json"),
    ];

    #[test]
    fn binary_mode_kserve() {
        let (e, p) = read(&headers(KSERVE), br#"{"instances":[[1,2]]}"#).unwrap();
        assert_eq!(e.half, Half::Request);
        assert_eq!(e.service, "fraud");
        assert_eq!(e.component, "predictor");
        assert_eq!(e.name(), "fraud");
        assert_eq!(e.pairing_id(), "5b1c1a4e-6e8e-4b6b-9b0e-0c2f6f1f9a01");
        assert_eq!(e.namespace, "models");
        assert_eq!(e.time, Some(1_795_953_600.001));
        assert_eq!(p["instances"][0][1], 2);
        let mut t = KSERVE.to_vec();
        t[3] = ("Ce-Inferenceservicename", "fraud");
        t[0] = ("Ce-Component", "transformer");
        assert_eq!(
            read(&headers(&t), b"{}").unwrap().0.name(),
            "fraud/transformer"
        );
    }

    #[test]
    fn binary_mode_seldon() {
        let h = headers(&[
            ("Ce-Endpoint", "default"),
            ("Ce-Id", "0a4f"),
            ("Ce-Inferenceservicename", "iris"),
            ("Ce-Modelid", "classifier"),
            ("Ce-Namespace", "seldon"),
            ("Ce-Protocol", "seldon"),
            ("Ce-Requestid", "puid-1"),
            ("Ce-Source", "http://iris-default:8000/"),
            ("Ce-Specversion", "1.0"),
            ("Ce-Time", "2026-11-29T12:00:00Z"),
            ("Ce-Type", "io.seldon.serving.inference.response"),
            ("Content-Type", "application/json"),
        ]);
        let (e, _) = read(&h, b"{}").unwrap();
        assert_eq!(e.half, Half::Response);
        assert_eq!(e.name(), "iris/classifier");
        assert_eq!(e.pairing_id(), "puid-1");
        assert_eq!(e.endpoint, "default");
    }

    #[test]
    fn structured_mode() {
        let h = headers(&[(
            "Content-Type",
            "application/cloudevents+json; charset=utf-8",
        )]);
        let body = br#"{"specversion":"1.0","id":"a","source":"s","type":"org.kubeflow.serving.inference.response","inferenceservicename":"fraud","datacontenttype":"application/json","data":{"predictions":[1]}}"#;
        let (e, p) = read(&h, body).unwrap();
        assert_eq!(e.half, Half::Response);
        assert_eq!(p["predictions"][0], 1);
        // data_base64, and data holding JSON text
        let body = br#"{"specversion":"1.0","id":"a","source":"s","type":"x.inference.request","inferenceservicename":"m","data_base64":"eyJpbnN0YW5jZXMiOlsxXX0="}"#;
        assert_eq!(read(&h, body).unwrap().1["instances"][0], 1);
        let body = br#"{"specversion":"1.0","id":"a","source":"s","type":"x.inference.request","inferenceservicename":"m","data":"{\"instances\":[2]}"}"#;
        assert_eq!(read(&h, body).unwrap().1["instances"][0], 2);
    }

    #[test]
    fn rejects() {
        use RejectReason::*;
        let without = |name: &str| -> Vec<(&'static str, &'static str)> {
            KSERVE
                .iter()
                .copied()
                .filter(|(k, _)| !k.eq_ignore_ascii_case(name))
                .collect()
        };
        let with = |name: &'static str, value: &'static str| -> Vec<(&'static str, &'static str)> {
            let mut h = without(name);
            h.push((name, value));
            h
        };
        let structured = [("Content-Type", "application/cloudevents+json")];
        type Case = (
            Vec<(&'static str, &'static str)>,
            &'static [u8],
            RejectReason,
            &'static str,
        );
        let cases: Vec<Case> = vec![
            (without("Ce-Id"), b"{}", MissingField, "no header ce-id"),
            (without("Ce-Specversion"), b"{}", MissingField, "specversion"),
            (without("Ce-Source"), b"{}", MissingField, "source"),
            (with("Ce-Specversion", "2.0"), b"{}", InvalidValue, "specversion"),
            (with("Ce-Type", "com.example.other"), b"{}", UnknownType, "com.example.other"),
            (with("Ce-Time", "yesterday"), b"{}", InvalidValue, "RFC 3339"),
            (without("Ce-Inferenceservicename"), b"{}", MissingField, "InferenceService"),
            (KSERVE.to_vec(), b"{\"instances\":", InvalidJson, "(Content-Type application/json)"),
            (KSERVE.to_vec(), b"\xff", InvalidUtf8, "not UTF-8"),
            (KSERVE.to_vec(), b"[1e999]", InvalidValue, "number out of range"),
            (structured.to_vec(), b"[]", InvalidJson, "JSON object"),
            (
                structured.to_vec(),
                br#"{"specversion":"1.0","id":7,"source":"s","type":"x.feedback","inferenceservicename":"m"}"#,
                WrongType,
                "attribute id must be a string, found a number",
            ),
            (
                structured.to_vec(),
                br#"{"specversion":"1.0","id":"i","source":"s","type":"x.feedback","inferenceservicename":"m","data_base64":"!!"}"#,
                InvalidJson,
                "base64",
            ),
        ];
        for (h, body, reason, detail) in cases {
            let r = read(&headers(&h), body).unwrap_err();
            assert_eq!(r.reason, reason, "{h:?}: {}", r.detail);
            assert!(r.detail.contains(detail), "{}", r.detail);
        }
        // An empty body is an empty payload, not an error.
        assert_eq!(read(&headers(KSERVE), b"").unwrap().1, Value::Null);
    }
}
