//! Property tests for the parsers that read untrusted input: event lines,
//! the stream framer, alert expressions, annotation templates, rules.yaml,
//! RFC 3339 timestamps and baseline files.
//!
//! Every property runs 256 cases from a fixed seed, so a run is reproducible
//! and CI is deterministic. `PROPTEST_CASES=N` and `PROPTEST_RNG_SEED=N`
//! override both for a longer or different exploration (see
//! docs/testing.md). A failure found that way is shrunk, printed, and
//! recorded in `tests/properties.proptest-regressions`; commit that file so
//! the case is replayed first on every later run.

use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest::test_runner::{FileFailurePersistence, RngSeed};
use serde_json::{Map, Value, json};

use model_exporter::DEFAULT_RULES_YAML;
use model_exporter::baseline::format::Baseline;
use model_exporter::config;
use model_exporter::ingest::event::{Body, EventKind};
use model_exporter::ingest::framing::{Frame, LineFramer};
use model_exporter::ingest::parse::{RejectReason, parse_event};
use model_exporter::ingest::timestamp::{format_rfc3339, parse_rfc3339};
use model_exporter::rules::expr::{CmpOp, Expr};
use model_exporter::rules::signal::{
    DriftMethod, DriftTarget, FeatureSel, FeatureStat, FeedbackMetric, LogLevel, Resource, Signal,
    ValueKind,
};
use model_exporter::rules::template::Template;

/// The fixed seed of every property (override with PROPTEST_RNG_SEED).
const SEED: u64 = 0x6d6f_6465_6c2d_6578;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        rng_seed: RngSeed::Fixed(SEED),
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------
// Event parser
// ---------------------------------------------------------------------------

/// The reasons the parser itself can give (TooLong and Truncated come from
/// the framing layer).
const PARSER_REASONS: [RejectReason; 6] = [
    RejectReason::InvalidUtf8,
    RejectReason::InvalidJson,
    RejectReason::WrongType,
    RejectReason::InvalidValue,
    RejectReason::UnknownType,
    RejectReason::MissingField,
];

const KNOWN_KEYS: [&str; 21] = [
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
    "unknown",
];

fn number() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(0.0),
        Just(-0.0),
        Just(1.0),
        Just(100.0),
        Just(-1.0),
        0.0..1.0f64,
        -10.0..200.0f64,
        any::<f64>().prop_filter("JSON has no NaN or infinity", |f| f.is_finite()),
    ]
}

fn json_number() -> impl Strategy<Value = Value> {
    prop_oneof![
        number().prop_map(|f| json!(f)),
        any::<i64>().prop_map(|i| json!(i)),
        any::<u64>().prop_map(|u| json!(u)),
    ]
}

fn json_string() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just("".to_string()),
        prop::sample::select(vec![
            "inference",
            "feedback",
            "model",
            "log",
            "metric",
            "debug",
            "info",
            "WARNING",
            "error",
            "critical",
            "loud",
            "1970-01-01T00:00:00Z",
            "2026-11-01T12:30:00.250+02:00",
            "1969-12-31T23:59:59Z",
            "2026-02-29T00:00:00Z",
            "yesterday",
        ])
        .prop_map(String::from),
        "\\PC{0,12}",
    ]
    .prop_map(Value::String)
}

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        json_number(),
        json_string(),
    ]
}

/// Any JSON value, a few levels deep, with keys mostly from the protocol.
fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(KNOWN_KEYS.to_vec()).prop_map(String::from),
        1 => prop::sample::select(vec!["cpu_percent", "memory_percent", "a", "b"])
            .prop_map(String::from),
        1 => "\\PC{0,6}",
    ]
}

/// A JSON object with known and unknown keys holding values of random type.
fn event_object() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::vec((key(), json_value()), 0..10).prop_map(|kv| kv.into_iter().collect())
}

fn expected_kind(obj: &Map<String, Value>) -> Option<EventKind> {
    match obj.get("type") {
        None | Some(Value::Null) => Some(EventKind::Inference),
        Some(Value::String(s)) => EventKind::ALL.into_iter().find(|k| k.as_str() == s),
        Some(_) => None,
    }
}

/// Checks what an accepted event must keep of its object.
fn check_accepted(obj: &Map<String, Value>, event: &model_exporter::ingest::event::Event) {
    let kind = expected_kind(obj).expect("accepted with an invalid type");
    assert_eq!(event.body.kind(), kind);
    match obj.get("model") {
        Some(Value::String(m)) if !m.is_empty() => assert_eq!(&event.model, m),
        _ => assert_eq!(event.model, "default"),
    }
    match obj.get("version") {
        Some(Value::String(v)) => assert_eq!(&event.version, v),
        _ => assert_eq!(event.version, ""),
    }
    match (obj.get("ts"), event.ts) {
        (None | Some(Value::Null), ts) => assert_eq!(ts, None),
        (Some(Value::Number(n)), Some(ts)) => {
            assert!(ts >= 0.0, "negative numeric ts accepted: {ts}");
            assert_eq!(ts, n.as_f64().unwrap());
        }
        (Some(Value::String(s)), Some(ts)) => assert_eq!(Some(ts), parse_rfc3339(s)),
        (v, ts) => panic!("ts {v:?} became {ts:?}"),
    }
    if let Body::Inference(i) = &event.body {
        match obj.get("latency_ms").and_then(Value::as_f64) {
            Some(ms) => {
                assert!(ms >= 0.0);
                assert_eq!(i.latency_seconds, Some(ms / 1000.0));
            }
            None => assert_eq!(i.latency_seconds, None),
        }
        match obj.get("confidence").and_then(Value::as_f64) {
            Some(c) => {
                assert!((0.0..=1.0).contains(&c));
                assert_eq!(i.confidence, Some(c));
            }
            None => assert_eq!(i.confidence, None),
        }
        for (_, v) in &i.counters {
            assert!(*v >= 0.0);
        }
        for r in [i.cpu_ratio, i.memory_ratio].into_iter().flatten() {
            assert!((0.0..=1.0).contains(&r));
        }
        let error = obj.get("error").and_then(Value::as_str).unwrap_or("");
        match obj.get("ok").and_then(Value::as_bool) {
            Some(ok) => assert_eq!(i.ok, ok),
            None => assert_eq!(i.ok, error.is_empty()),
        }
    }
}

fn check_rejected(reject: &model_exporter::ingest::parse::Reject) {
    assert!(
        PARSER_REASONS.contains(&reject.reason),
        "unexpected reason {:?}",
        reject.reason
    );
    assert!(RejectReason::ALL.contains(&reject.reason));
    assert!(!reject.detail.is_empty());
}

/// A valid inference event and the facts it must parse to.
fn valid_inference() -> impl Strategy<Value = (Value, f64, Option<f64>, Option<f64>)> {
    (
        0.0..1e7f64,
        prop::option::of(0.0..=1.0f64),
        prop::option::of(0.0..=100.0f64),
        // A model name is never empty (rejected: leave `model` out to mean
        // "default").
        "[a-z]{1,8}",
        prop::option::of(0u64..4_102_444_800),
    )
        .prop_map(|(ms, conf, cpu, model, ts)| {
            let mut v = json!({"model": model, "latency_ms": ms});
            if let Some(c) = conf {
                v["confidence"] = json!(c);
            }
            if let Some(p) = cpu {
                v["resources"] = json!({"cpu_percent": p});
            }
            if let Some(t) = ts {
                v["ts"] = json!(format_rfc3339(t as f64));
            }
            (v, ms, conf, cpu)
        })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn parser_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        match parse_event(&bytes) {
            Ok(_) => prop_assert!(std::str::from_utf8(&bytes).is_ok()),
            Err(r) => {
                check_rejected(&r);
                prop_assert_eq!(
                    r.reason == RejectReason::InvalidUtf8,
                    std::str::from_utf8(&bytes).is_err()
                );
            }
        }
    }

    #[test]
    fn parser_never_panics_on_json_like_text(text in "\\{[\"a-z0-9:,.{}\\[\\] eE+-]{0,60}") {
        match parse_event(text.as_bytes()) {
            Ok(_) => {}
            Err(r) => check_rejected(&r),
        }
    }

    #[test]
    fn parser_on_random_objects(obj in event_object()) {
        let line = serde_json::to_string(&obj).unwrap();
        match parse_event(line.as_bytes()) {
            Ok(event) => check_accepted(&obj, &event),
            Err(r) => {
                check_rejected(&r);
                prop_assert_ne!(r.reason, RejectReason::InvalidUtf8);
            }
        }
    }

    #[test]
    fn parser_rejects_every_non_object(v in prop_oneof![
        json_leaf(),
        prop::collection::vec(json_value(), 0..4).prop_map(Value::Array),
    ]) {
        let r = parse_event(v.to_string().as_bytes()).unwrap_err();
        prop_assert_eq!(r.reason, RejectReason::InvalidJson);
    }

    #[test]
    fn valid_inferences_are_accepted((v, ms, conf, cpu) in valid_inference()) {
        let line = v.to_string();
        let event = parse_event(line.as_bytes()).map_err(|r| TestCaseError::fail(format!("{line}: {r}")))?;
        let Body::Inference(i) = &event.body else {
            return Err(TestCaseError::fail("not an inference"));
        };
        prop_assert_eq!(i.latency_seconds, Some(ms / 1000.0));
        prop_assert_eq!(i.confidence, conf);
        prop_assert_eq!(i.cpu_ratio, cpu.map(|p| p / 100.0));
        if let Some(ts) = v.get("ts").and_then(Value::as_str) {
            let shown = event.ts.map(format_rfc3339);
            prop_assert_eq!(shown.as_deref(), Some(ts));
        }
        check_accepted(v.as_object().unwrap(), &event);
    }
}

// ---------------------------------------------------------------------------
// Line framer
// ---------------------------------------------------------------------------

#[derive(Debug, PartialEq)]
enum Out {
    Line(Vec<u8>),
    TooLong,
}

/// What the framer must produce: the stream split at '\n', each over-long
/// line replaced by one TooLong, an empty unterminated tail dropped.
fn expected_frames(stream: &[u8], limit: usize) -> Vec<Out> {
    let mut parts: Vec<&[u8]> = stream.split(|b| *b == b'\n').collect();
    let tail = parts.pop().unwrap_or_default();
    let mut out: Vec<Out> = parts
        .into_iter()
        .map(|l| {
            if l.len() > limit {
                Out::TooLong
            } else {
                Out::Line(l.to_vec())
            }
        })
        .collect();
    if tail.len() > limit {
        out.push(Out::TooLong);
    } else if !tail.is_empty() {
        out.push(Out::Line(tail.to_vec()));
    }
    out
}

fn stream() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![4 => Just(b'a'), 2 => Just(b'\n'), 1 => any::<u8>()],
        0..300,
    )
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn framing_is_independent_of_chunking(
        data in stream(),
        limit in 1usize..24,
        cuts in prop::collection::vec(1usize..40, 0..40),
        use_read_buf in any::<bool>(),
    ) {
        let mut framer = LineFramer::new(limit);
        let mut got = Vec::new();
        let mut rest: &[u8] = &data;
        let mut cuts = cuts.into_iter();
        while !rest.is_empty() {
            let n = cuts.next().unwrap_or(rest.len()).min(rest.len());
            let (chunk, tail) = rest.split_at(n);
            rest = tail;
            if use_read_buf {
                framer.read_buf().extend_from_slice(chunk);
            } else {
                framer.push(chunk);
            }
            prop_assert!(framer.buffered() <= limit + chunk.len());
            framer.drain_lines(|f| got.push(match f {
                Frame::Line(l) => Out::Line(l.to_vec()),
                Frame::TooLong => Out::TooLong,
            }));
            prop_assert!(framer.buffered() <= limit, "{} buffered, limit {}", framer.buffered(), limit);
        }
        match framer.finish() {
            Some(Frame::Line(l)) => got.push(Out::Line(l.to_vec())),
            Some(Frame::TooLong) => got.push(Out::TooLong),
            None => {}
        }
        prop_assert_eq!(got, expected_frames(&data, limit));
    }
}

// ---------------------------------------------------------------------------
// Alert expressions
// ---------------------------------------------------------------------------

/// Fragments that make up expressions, to reach deep into the parser.
const EXPR_TOKENS: [&str; 48] = [
    "p99",
    "p0",
    "p100",
    "p99.9",
    "p",
    "(",
    ")",
    ",",
    ".",
    "*",
    "latency",
    "feature",
    "counter",
    "log",
    "resource",
    "prediction",
    "confidence",
    "mean",
    "max",
    "rate",
    "ratio",
    "class_rate",
    "psi",
    "zscore",
    "error_rate",
    "model_age",
    ">",
    ">=",
    "<",
    "==",
    "!=",
    "=",
    "=>",
    " ",
    "5",
    "-3",
    "0.25",
    "1e-3",
    "e",
    "1e999",
    "ms",
    "%",
    "d",
    "\"",
    "'",
    "\\",
    "é",
    "\t",
];

fn expr_soup() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,30}",
        any::<String>(),
        prop::collection::vec(prop::sample::select(EXPR_TOKENS.to_vec()), 0..12)
            .prop_map(|t| t.concat()),
    ]
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9_][A-Za-z0-9_.-]{0,8}",
        "[a-z.*\"'\\\\ -]{1,6}",
        "\\PC{1,8}",
    ]
}

fn feature_sel() -> impl Strategy<Value = FeatureSel> {
    prop_oneof![
        1 => Just(FeatureSel::All),
        4 => prop_oneof![name(), Just(String::new())].prop_map(FeatureSel::Named),
    ]
}

fn signal() -> impl Strategy<Value = Signal> {
    let stat = prop::sample::select(vec![
        FeatureStat::Mean,
        FeatureStat::Stddev,
        FeatureStat::Zscore,
        FeatureStat::MissingRate,
        FeatureStat::InvalidRate,
    ]);
    let method = prop::sample::select(DriftMethod::ALL.to_vec());
    let feedback = prop::sample::select(vec![
        FeedbackMetric::Accuracy,
        FeedbackMetric::Precision,
        FeedbackMetric::Recall,
        FeedbackMetric::Mae,
        FeedbackMetric::Rmse,
    ]);
    prop_oneof![
        prop::sample::select(vec![
            Signal::RequestRate,
            Signal::ErrorRate,
            Signal::LatencyMean,
            Signal::LatencyMax,
            Signal::TimeSinceLastEvent,
            Signal::PredictionMean,
            Signal::PositiveRate,
            Signal::ConfidenceMean,
            Signal::LowConfidenceRate,
            Signal::ModelAge,
            Signal::ResourceMean(Resource::Cpu),
            Signal::ResourceMean(Resource::Memory),
        ]),
        (0.0..1.0f64)
            .prop_filter("quantile in (0, 1)", |q| *q > 0.0)
            .prop_map(|q| Signal::Quantile { q }),
        prop::sample::select(vec![0.5, 0.9, 0.95, 0.99, 0.999, 0.001, 0.0001])
            .prop_map(|q| Signal::Quantile { q }),
        name().prop_map(|class| Signal::ClassRate { class }),
        (stat, feature_sel()).prop_map(|(stat, feature)| Signal::FeatureStat { stat, feature }),
        (method, prop::option::of(feature_sel())).prop_map(|(method, sel)| Signal::Drift {
            method,
            target: sel.map_or(DriftTarget::Prediction, DriftTarget::Feature),
        }),
        feedback.prop_map(Signal::Feedback),
        (name(), name()).prop_map(|(numerator, denominator)| Signal::CounterRatio {
            numerator,
            denominator
        }),
        name().prop_map(|counter| Signal::CounterRate { counter }),
        prop::sample::select(LogLevel::ALL.to_vec()).prop_map(|level| Signal::LogRate { level }),
    ]
}

fn expr() -> impl Strategy<Value = Expr> {
    (
        signal(),
        prop::sample::select(vec![
            CmpOp::Gt,
            CmpOp::Ge,
            CmpOp::Lt,
            CmpOp::Le,
            CmpOp::Eq,
            CmpOp::Ne,
        ]),
        prop_oneof![
            number(),
            any::<f64>().prop_filter("finite", |f| f.is_finite())
        ],
    )
        .prop_map(|(signal, op, threshold)| {
            // A fraction's threshold lies in 0..=1: outside it the parser
            // refuses the rule, which could never fire.
            let threshold = if signal.value_kind() == ValueKind::Fraction
                && !(0.0..=1.0).contains(&threshold)
            {
                threshold.abs().fract()
            } else {
                threshold
            };
            Expr {
                signal,
                op,
                threshold,
            }
        })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn expr_parser_never_panics(text in expr_soup()) {
        match Expr::parse(&text) {
            Ok(e) => {
                // Whatever parses prints back to an equal expression.
                let shown = e.to_string();
                let again = Expr::parse(&shown);
                prop_assert_eq!(again, Ok(e), "{} -> {}", text, shown);
            }
            Err(err) => {
                let len = text.chars().count();
                prop_assert!(
                    (1..=len + 1).contains(&err.column),
                    "column {} outside 1..={} for {:?}: {}",
                    err.column, len + 1, text, err.message
                );
            }
        }
    }

    #[test]
    fn expr_display_round_trips(e in expr()) {
        let shown = e.to_string();
        prop_assert_eq!(Expr::parse(&shown), Ok(e), "{}", shown);
    }
}

// ---------------------------------------------------------------------------
// Templates
// ---------------------------------------------------------------------------

const TEMPLATE_TOKENS: [&str; 20] = [
    "{{",
    "}}",
    "{",
    "}",
    " ",
    "$value",
    "$labels.",
    "model",
    "9x",
    "|",
    "humanize",
    "humanizePercentage",
    "humanizeDuration",
    "printf",
    "\"",
    "%.2f",
    "%g",
    "%%",
    "%",
    "é",
];

proptest! {
    #![proptest_config(config())]

    #[test]
    fn templates_never_panic(
        text in prop_oneof![
            any::<String>(),
            prop::collection::vec(prop::sample::select(TEMPLATE_TOKENS.to_vec()), 0..14)
                .prop_map(|t| t.concat()),
        ],
        value in prop_oneof![number(), Just(f64::NAN), Just(f64::INFINITY), Just(-1e300)],
    ) {
        match Template::parse(&text) {
            Ok(t) => {
                prop_assert_eq!(t.source(), text.as_str());
                let labels: BTreeMap<String, String> =
                    [("model".to_string(), "fraud".to_string())].into_iter().collect();
                t.render(&labels, value);
            }
            Err(e) => {
                let len = text.chars().count();
                prop_assert!((1..=len + 1).contains(&e.column), "column {} for {:?}", e.column, text);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// rules.yaml
// ---------------------------------------------------------------------------

/// Checks that every error of `load(text)` points inside the file: line and
/// column 0 for whole-file errors, otherwise a line of the file (or the
/// empty line after a final newline) and a column within it, or just past
/// its end.
fn check_config(text: &str) -> Result<(), TestCaseError> {
    let Err(errors) = config::load("rules.yaml", text) else {
        return Ok(());
    };
    prop_assert!(!errors.0.is_empty(), "rejected without an error");
    let lines: Vec<usize> = config::yaml::lines(text)
        .iter()
        .map(|l| l.chars().count())
        .collect();
    for e in &errors.0 {
        prop_assert_eq!(&e.file, "rules.yaml");
        prop_assert!(!e.message.is_empty());
        if e.line == 0 {
            prop_assert_eq!(e.column, 0, "{}", e);
            continue;
        }
        let Some(len) = lines.get(e.line - 1) else {
            return Err(TestCaseError::fail(format!(
                "{e}: line past the end ({} lines)\n{text}",
                lines.len()
            )));
        };
        prop_assert!(
            (1..=len + 1).contains(&e.column),
            "{}: column outside the line of {} chars\n{}",
            e,
            len,
            text
        );
    }
    Ok(())
}

#[derive(Debug, Clone)]
enum Mutation {
    DeleteBytes { at: usize, len: usize },
    InsertBytes { at: usize, bytes: Vec<u8> },
    DuplicateLine { line: usize },
    DeleteLine { line: usize },
    SwapLines { a: usize, b: usize },
}

const YAML_SNIPPETS: [&str; 16] = [
    ":", "- ", "  ", "\n", "'", "\"", "#", "{", "}", "[", "]", "&a ", "*a", "---\n", "|\n", "\t",
];

fn mutation() -> impl Strategy<Value = Mutation> {
    let at = any::<prop::sample::Index>();
    prop_oneof![
        (at.clone(), 1usize..8).prop_map(|(at, len)| Mutation::DeleteBytes {
            at: at.index(usize::MAX),
            len
        }),
        (
            at.clone(),
            prop_oneof![
                prop::sample::select(YAML_SNIPPETS.to_vec()).prop_map(|s| s.as_bytes().to_vec()),
                prop::collection::vec(any::<u8>(), 1..4),
            ]
        )
            .prop_map(|(at, bytes)| Mutation::InsertBytes {
                at: at.index(usize::MAX),
                bytes
            }),
        at.clone().prop_map(|l| Mutation::DuplicateLine {
            line: l.index(usize::MAX)
        }),
        at.clone().prop_map(|l| Mutation::DeleteLine {
            line: l.index(usize::MAX)
        }),
        (at.clone(), at).prop_map(|(a, b)| Mutation::SwapLines {
            a: a.index(usize::MAX),
            b: b.index(usize::MAX)
        }),
    ]
}

fn mutate(text: &str, mutations: &[Mutation]) -> String {
    let mut bytes = text.as_bytes().to_vec();
    for m in mutations {
        match m {
            Mutation::DeleteBytes { at, len } => {
                let at = at % (bytes.len() + 1);
                let end = (at + len).min(bytes.len());
                bytes.drain(at..end);
            }
            Mutation::InsertBytes { at, bytes: new } => {
                let at = at % (bytes.len() + 1);
                bytes.splice(at..at, new.iter().copied());
            }
            Mutation::DuplicateLine { line }
            | Mutation::DeleteLine { line }
            | Mutation::SwapLines { a: line, .. } => {
                let mut lines: Vec<Vec<u8>> =
                    bytes.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect();
                let i = line % lines.len();
                match m {
                    Mutation::DuplicateLine { .. } => {
                        let l = lines[i].clone();
                        lines.insert(i, l);
                    }
                    Mutation::DeleteLine { .. } => {
                        lines.remove(i);
                    }
                    Mutation::SwapLines { b, .. } => {
                        let j = b % lines.len();
                        lines.swap(i, j);
                    }
                    _ => unreachable!(),
                }
                bytes = lines.join(&b'\n');
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

const YAML_TOKENS: [&str; 30] = [
    "groups:",
    "models:",
    "defaults:",
    "rules:",
    "- name: x",
    "expr: ",
    "error_rate > 5%",
    "p99(latency) > 1s",
    "for: 5m",
    "window: ",
    "severity: page",
    "labels:",
    "annotations:",
    "summary: ",
    "'{{ $value }}'",
    "\"",
    "'",
    ":",
    "- ",
    "  ",
    "\n",
    "#",
    "{",
    "}",
    "[",
    "]",
    "&a",
    "*a",
    "---",
    "|",
];

proptest! {
    #![proptest_config(config())]

    #[test]
    fn config_never_panics_on_text(
        text in prop_oneof![
            any::<String>(),
            prop::collection::vec(prop::sample::select(YAML_TOKENS.to_vec()), 0..30)
                .prop_map(|t| t.concat()),
        ]
    ) {
        check_config(&text)?;
    }

    #[test]
    fn config_never_panics_on_mutated_rules(
        mutations in prop::collection::vec(mutation(), 1..6)
    ) {
        let text = mutate(DEFAULT_RULES_YAML, &mutations);
        check_config(&text)?;
    }
}

#[test]
fn shipped_rules_load() {
    config::load("rules.yaml", DEFAULT_RULES_YAML).unwrap();
}

// ---------------------------------------------------------------------------
// RFC 3339
// ---------------------------------------------------------------------------

/// 9999-12-31T23:59:59.999Z in milliseconds, the last time formatted as is.
const MAX_MS: i64 = 253_402_300_799_999;

proptest! {
    #![proptest_config(config())]

    #[test]
    fn rfc3339_round_trips_milliseconds(ms in 0..=MAX_MS) {
        let t = ms as f64 / 1000.0;
        let s = format_rfc3339(t);
        prop_assert_eq!(s.len(), 24, "{}", s);
        prop_assert_eq!(parse_rfc3339(&s), Some(t), "{}", s);
    }

    #[test]
    fn rfc3339_format_is_total(t in any::<f64>()) {
        let s = format_rfc3339(t);
        let back = parse_rfc3339(&s).expect("formatted time does not parse");
        prop_assert!((0.0..=MAX_MS as f64 / 1000.0).contains(&back));
    }

    #[test]
    fn rfc3339_before_the_epoch_is_refused(
        (y, mo, d) in (0i64..=1969, 1i64..=12, 1i64..=28),
        (h, mi, s) in (0i64..24, 0i64..60, 0i64..60),
    ) {
        let text = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z");
        prop_assert_eq!(parse_rfc3339(&text), None, "{}", text);
    }

    #[test]
    fn rfc3339_parses_generated_times(
        // From 1971, so that no offset takes the time before the epoch.
        (y, mo, d) in (1971i64..=9999, 1i64..=12, 1i64..=28),
        (h, mi, s) in (0i64..24, 0i64..60, 0i64..60),
        frac in "(\\.[0-9]{1,9})?",
        sep in prop::sample::select(vec!['T', 't', ' ']),
        offset in prop_oneof![
            Just((None, 0i64)),
            (prop::sample::select(vec!['+', '-']), 0i64..24, 0i64..60)
                .prop_map(|(sign, oh, om)| (Some(sign), oh * 60 + om)),
        ],
    ) {
        let zone = match offset {
            (None, _) => "Z".to_string(),
            (Some(sign), m) => format!("{sign}{:02}:{:02}", m / 60, m % 60),
        };
        let text = format!("{y:04}-{mo:02}-{d:02}{sep}{h:02}:{mi:02}:{s:02}{frac}{zone}");
        let got = parse_rfc3339(&text).expect("valid time rejected");
        // Against the same time written in UTC without fraction.
        let utc = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z");
        let whole = parse_rfc3339(&utc).unwrap();
        let signed_offset = match offset {
            (Some('-'), m) => -(m * 60),
            (_, m) => m * 60,
        };
        let frac: f64 = if frac.is_empty() { 0.0 } else { format!("0{frac}").parse().unwrap() };
        let want = whole - signed_offset as f64 + frac;
        prop_assert!((got - want).abs() < 1e-6, "{}: {} != {}", text, got, want);
    }

    #[test]
    fn rfc3339_never_panics(text in prop_oneof![
        any::<String>(),
        "[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{0,4})?[Zz+-]?[0-9:]{0,6}",
    ]) {
        if let Some(t) = parse_rfc3339(&text) {
            prop_assert!(t.is_finite());
        }
    }
}

// ---------------------------------------------------------------------------
// Baselines
// ---------------------------------------------------------------------------

fn sample_baseline() -> Value {
    json!({
        "format": "model-exporter-baseline",
        "version": 1,
        "created_at": "2026-11-01T00:00:00.000Z",
        "source": "train.csv",
        "rows": 10,
        "features": {
            "age": {
                "type": "numeric", "count": 8, "missing": 2, "missing_rate": 0.2,
                "mean": 30.0, "std": 5.0, "min": 20.0, "max": 40.0,
                "edges": [20.0, 30.0, 40.0],
                "proportions": [0.0, 0.5, 0.5, 0.0]
            },
            "country": {
                "type": "categorical", "count": 10, "missing": 0, "missing_rate": 0.0,
                "categories": {"DE": 0.5, "US": 0.3}, "other": 0.2
            }
        },
        "prediction": {
            "type": "numeric", "count": 10, "missing": 0, "missing_rate": 0.0,
            "mean": 0.5, "std": 0.5, "min": 0.0, "max": 1.0,
            "edges": [0.0, 0.5, 1.0], "proportions": [0.0, 0.5, 0.5, 0.0]
        }
    })
}

/// Every JSON pointer of `v` (objects and arrays included).
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                pointers(x, format!("{at}/{k}"), out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                pointers(x, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
    out.push(at);
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn baseline_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        if let Err(e) = Baseline::from_slice("b.json", &bytes) {
            prop_assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn baseline_edits_never_panic_and_accepted_ones_round_trip(
        edits in prop::collection::vec((any::<prop::sample::Index>(), json_value()), 1..4)
    ) {
        let mut v = sample_baseline();
        for (i, new) in edits {
            let mut all = Vec::new();
            pointers(&v, String::new(), &mut all);
            let p = i.get(&all).clone();
            *v.pointer_mut(&p).unwrap() = new;
        }
        let text = v.to_string();
        match Baseline::from_slice("b.json", text.as_bytes()) {
            Ok(b) => {
                let again = Baseline::from_slice("b.json", b.to_json().as_bytes())
                    .map_err(|e| TestCaseError::fail(format!("{e}\n{}", b.to_json())))?;
                prop_assert_eq!(again, b);
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }
}
