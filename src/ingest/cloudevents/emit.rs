//! What a request and its response, or a half left alone, become: one
//! inference event per row, with the model and version of the mapping.

use super::envelope::Envelope;
use super::mapping::Mapping;
use super::pairing::{Body, Done, HalfEvent};
use super::payload::{Inputs, Output, Outputs, Row};
use crate::ingest::batch::Batch;
use crate::ingest::event::{self, Event, FeatureValue, Inference, Name, Outcome};

/// Error class of a request whose response never came although its
/// events' name delivers responses (KServe logs none for a failure).
pub const NO_RESPONSE: &str = "no_response";

/// Error class of a response whose payload is an error.
pub const MODEL_ERROR: &str = "model_error";

/// The latency of a pair, in seconds: the difference of the events' `time`
/// attributes when both have one and the response's is not earlier, else
/// of their arrival times; `None` when the response arrived first.
pub fn latency(request: &HalfEvent, response: &HalfEvent) -> Option<f64> {
    if let (Some(a), Some(b)) = (request.envelope.time, response.envelope.time)
        && b >= a
    {
        return Some(b - a);
    }
    response
        .arrived
        .checked_duration_since(request.arrived)
        .map(|d| d.as_secs_f64())
}

/// Appends the events of a pair, or of a half alone, to `batch`.
pub fn emit(done: Done, mapping: &Mapping, batch: &mut Batch) {
    match done {
        Done::Pair { request, response } => {
            let latency = latency(&request, &response);
            let request = *request;
            let (Body::Request(inputs), Body::Response(outputs)) = (request.body, response.body)
            else {
                unreachable!("a pair is a request and a response")
            };
            rows(
                &request.envelope,
                Some(inputs),
                Some(outputs),
                latency,
                None,
                mapping,
                batch,
            );
        }
        Done::Alone { half, failed, .. } => {
            let (inputs, outputs) = match half.body {
                Body::Request(i) => (Some(i), None),
                Body::Response(o) => (None, Some(o)),
            };
            let error = failed.then_some(NO_RESPONSE);
            rows(&half.envelope, inputs, outputs, None, error, mapping, batch);
        }
    }
}

/// One event per row: as many as the request or the response has rows, at
/// least one.
fn rows(
    envelope: &Envelope,
    inputs: Option<Inputs>,
    outputs: Option<Outputs>,
    latency: Option<f64>,
    error: Option<&str>,
    mapping: &Mapping,
    batch: &mut Batch,
) {
    let name = envelope.name();
    let target = mapping.target(&name);
    let (model, version) = model_version(envelope, target.model, target.version, outputs.as_ref());
    let error = error.or(outputs.as_ref().filter(|o| o.error).map(|_| MODEL_ERROR));
    let features: Vec<Row> = inputs.map(|i| i.rows).unwrap_or_default();
    let predictions: Vec<Output> = outputs.map(|o| o.rows).unwrap_or_default();
    let n = features.len().max(predictions.len()).max(1);
    let id = envelope.pairing_id();
    batch.reserve(n);
    let mut features = features.into_iter();
    let mut predictions = predictions.into_iter();
    for i in 0..n {
        let out = predictions.next().unwrap_or_default();
        let id = if n == 1 {
            Name::new(id)
        } else {
            Name::from(format!("{id}:{i}"))
        };
        batch.push(Event {
            model: model.clone(),
            version: version.clone(),
            ts: None,
            body: event::Body::Inference(Inference {
                id: Some(id),
                latency_seconds: latency,
                ok: error.is_none(),
                error: error.map(str::to_owned),
                prediction: out.prediction,
                confidence: out.confidence,
                features: features.next().unwrap_or_default(),
                ..Inference::default()
            }),
        });
    }
}

/// The model and version labels: the version configured, else the one the
/// response names, else the `endpoint` attribute.
fn model_version(
    envelope: &Envelope,
    model: &str,
    configured: Option<&str>,
    outputs: Option<&Outputs>,
) -> (Name, Name) {
    let version = configured
        .or_else(|| outputs.and_then(|o| o.version.as_deref()))
        .unwrap_or(&envelope.endpoint);
    (Name::new(model), Name::new(version))
}

/// Appends the `feedback` events of a Seldon feedback: each row's truth,
/// with the prediction the response held.
pub fn feedback(
    envelope: &Envelope,
    rows: Vec<(Outcome, Outcome)>,
    mapping: &Mapping,
    batch: &mut Batch,
) {
    let name = envelope.name();
    let target = mapping.target(&name);
    let (model, version) = model_version(envelope, target.model, target.version, None);
    batch.extend(rows.into_iter().map(|(actual, prediction)| Event {
        model: model.clone(),
        version: version.clone(),
        ts: None,
        body: event::Body::Feedback(event::Feedback {
            id: None,
            actual,
            prediction: Some(prediction),
        }),
    }));
}

/// An inference or feedback event as a line of the event protocol
/// (docs/events.md), for the prediction log.
pub fn to_line(e: &Event) -> Vec<u8> {
    use serde_json::{Map, Value, json};
    let outcome = |o: &Outcome| match o {
        Outcome::Number(x) => json!(x),
        Outcome::Class(c) => json!(c),
    };
    let mut o = Map::new();
    o.insert("model".into(), json!(e.model.as_str()));
    if !e.version.is_empty() {
        o.insert("version".into(), json!(e.version.as_str()));
    }
    match &e.body {
        event::Body::Inference(i) => {
            if let Some(id) = &i.id {
                o.insert("id".into(), json!(id.as_str()));
            }
            if let Some(l) = i.latency_seconds {
                o.insert("latency_ms".into(), json!(l * 1000.0));
            }
            o.insert("ok".into(), json!(i.ok));
            if let Some(err) = &i.error {
                o.insert("error".into(), json!(err));
            }
            if let Some(p) = &i.prediction {
                o.insert("prediction".into(), outcome(p));
            }
            if let Some(c) = i.confidence {
                o.insert("confidence".into(), json!(c));
            }
            let features: Map<String, Value> = i
                .features
                .iter()
                .map(|(k, v)| {
                    let v = match v {
                        FeatureValue::Number(x) => json!(x),
                        FeatureValue::Category(c) => json!(c),
                        FeatureValue::Bool(b) => json!(b),
                        FeatureValue::Missing => Value::Null,
                    };
                    (k.to_string(), v)
                })
                .collect();
            if !features.is_empty() {
                o.insert("features".into(), Value::Object(features));
            }
        }
        event::Body::Feedback(f) => {
            o.insert("type".into(), json!("feedback"));
            o.insert("actual".into(), outcome(&f.actual));
            if let Some(p) = &f.prediction {
                o.insert("prediction".into(), outcome(p));
            }
        }
        event::Body::Model(_) | event::Body::Log(_) | event::Body::Client(_) => {}
    }
    serde_json::to_vec(&Value::Object(o)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::ingest::cloudevents::envelope::Half;
    use crate::ingest::cloudevents::pairing::Unpaired;
    use crate::ingest::cloudevents::payload::Protocol;

    fn envelope(half: Half, time: Option<f64>) -> Envelope {
        Envelope {
            half,
            id: "r1".into(),
            time,
            service: "fraud-detector".into(),
            component: "predictor".into(),
            namespace: String::new(),
            endpoint: "default".into(),
            request_id: None,
        }
    }

    fn request(rows: usize, at: Instant, time: Option<f64>) -> HalfEvent {
        HalfEvent {
            envelope: envelope(Half::Request, time),
            arrived: at,
            body: Body::Request(Inputs {
                rows: (0..rows)
                    .map(|i| vec![("age".into(), FeatureValue::Number(i as f64))])
                    .collect(),
                protocol: Protocol::V1,
            }),
        }
    }

    fn response(rows: usize, at: Instant, time: Option<f64>, error: bool) -> HalfEvent {
        HalfEvent {
            envelope: envelope(Half::Response, time),
            arrived: at,
            body: Body::Response(Outputs {
                rows: (0..rows)
                    .map(|i| Output {
                        prediction: Some(Outcome::Number(i as f64)),
                        confidence: Some(0.9),
                    })
                    .collect(),
                error,
                version: Some("7".into()),
                protocol: Protocol::V2,
            }),
        }
    }

    fn mapping(rules: &str) -> Mapping {
        crate::config::load("r.yaml", rules)
            .unwrap()
            .inference_loggers()
    }

    fn inference(e: &Event) -> &Inference {
        match &e.body {
            event::Body::Inference(i) => i,
            other => panic!("not an inference: {other:?}"),
        }
    }

    #[test]
    fn latency_from_times_else_arrivals() {
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_millis(40);
        assert_eq!(
            latency(
                &request(1, t0, Some(10.0)),
                &response(1, t1, Some(10.25), false)
            ),
            Some(0.25)
        );
        // The response's time is earlier: arrival times.
        assert_eq!(
            latency(
                &request(1, t0, Some(10.0)),
                &response(1, t1, Some(9.0), false)
            ),
            Some(0.04)
        );
        assert_eq!(
            latency(&request(1, t0, None), &response(1, t1, Some(9.0), false)),
            Some(0.04)
        );
        // The response arrived first and no times: unknown.
        assert_eq!(
            latency(&request(1, t1, None), &response(1, t0, None, false)),
            None
        );
    }

    #[test]
    fn a_batch_is_one_event_per_row() {
        let t0 = Instant::now();
        let m = mapping("models:\n  fraud:\n    inference_logger: {service: fraud-detector}\n");
        let mut batch = Batch::new();
        let done = Done::Pair {
            request: Box::new(request(3, t0, Some(1.0))),
            response: response(3, t0, Some(1.5), false),
        };
        emit(done, &m, &mut batch);
        assert_eq!(batch.len(), 3);
        for (k, e) in batch.iter().enumerate() {
            assert_eq!((e.model.as_str(), e.version.as_str()), ("fraud", "7"));
            let i = inference(e);
            assert_eq!(i.id.as_deref(), Some(format!("r1:{k}").as_str()));
            assert_eq!(i.latency_seconds, Some(0.5));
            assert!(i.ok);
            assert_eq!(i.prediction, Some(Outcome::Number(k as f64)));
            assert_eq!(
                i.features,
                vec![("age".into(), FeatureValue::Number(k as f64))]
            );
        }
    }

    #[test]
    fn errors_and_lone_halves() {
        let t0 = Instant::now();
        let m = mapping("models:\n  fraud-detector:\n    inference_logger: {version: v3}\n");
        let mut batch = Batch::new();
        // An error response: the request's rows failed.
        emit(
            Done::Pair {
                request: Box::new(request(2, t0, None)),
                response: response(0, t0, None, true),
            },
            &m,
            &mut batch,
        );
        // A request whose response never came, from a name that answers.
        emit(
            Done::Alone {
                half: request(1, t0, None),
                reason: Unpaired::Expired,
                failed: true,
            },
            &m,
            &mut batch,
        );
        // A response alone.
        emit(
            Done::Alone {
                half: response(1, t0, None, false),
                reason: Unpaired::Expired,
                failed: false,
            },
            &m,
            &mut batch,
        );
        let got: Vec<(bool, Option<&str>, bool, Option<f64>)> = batch
            .iter()
            .map(|e| {
                let i = inference(e);
                (
                    i.ok,
                    i.error.as_deref(),
                    i.features.is_empty(),
                    i.latency_seconds,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (false, Some(MODEL_ERROR), false, Some(0.0)),
                (false, Some(MODEL_ERROR), false, Some(0.0)),
                (false, Some(NO_RESPONSE), false, None),
                (true, None, true, None),
            ]
        );
        assert!(
            batch
                .iter()
                .all(|e| e.model == "fraud-detector" && e.version == "v3")
        );
    }

    #[test]
    fn lines_parse_back_into_the_same_events() {
        let t0 = Instant::now();
        let m = mapping("");
        let mut batch = Batch::new();
        emit(
            Done::Pair {
                request: Box::new(request(2, t0, Some(1.0))),
                response: response(2, t0, Some(1.25), false),
            },
            &m,
            &mut batch,
        );
        let mut env = envelope(Half::Feedback, None);
        env.component = "classifier".into();
        feedback(
            &env,
            vec![(Outcome::Class("a".into()), Outcome::Number(0.0))],
            &m,
            &mut batch,
        );
        for e in &batch {
            let line = to_line(e);
            let back = crate::ingest::parse::parse_event(&line).unwrap();
            assert_eq!(&back, e, "{}", String::from_utf8_lossy(&line));
        }
    }

    #[test]
    fn seldon_feedback_events() {
        let m = mapping("");
        let mut batch = Batch::new();
        let mut env = envelope(Half::Feedback, None);
        env.component = "classifier".into();
        feedback(
            &env,
            vec![(Outcome::Number(1.0), Outcome::Number(0.0))],
            &m,
            &mut batch,
        );
        assert_eq!(batch[0].model, "fraud-detector/classifier");
        assert_eq!(batch[0].version, "default");
        assert!(
            matches!(&batch[0].body, event::Body::Feedback(f) if f.actual == Outcome::Number(1.0))
        );
    }
}
