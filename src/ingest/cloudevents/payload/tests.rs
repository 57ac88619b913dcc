use super::*;
use serde_json::json;

fn n(x: f64) -> FeatureValue {
    FeatureValue::Number(x)
}

fn names_of(row: &Row) -> Vec<&str> {
    row.iter().map(|(k, _)| k.as_str()).collect()
}

#[test]
fn v1_rows_lists_objects_and_scalars() {
    let features = ["age".to_owned(), "amount".to_owned()];
    let names = Names {
        features: &features,
        ..Names::default()
    };
    let i = inputs(
        &json!({"instances": [[35, 120.5, "DE"], [41, null, true]]}),
        &names,
    )
    .unwrap();
    assert_eq!(i.protocol, Protocol::V1);
    assert_eq!(i.rows.len(), 2);
    assert_eq!(
        i.rows[0],
        vec![
            ("age".into(), n(35.0)),
            ("amount".into(), n(120.5)),
            ("2".into(), FeatureValue::Category("DE".into())),
        ]
    );
    assert_eq!(i.rows[1][1].1, FeatureValue::Missing);
    assert_eq!(i.rows[1][2].1, FeatureValue::Bool(true));

    // Objects are named features, nested values are left out; `inputs`
    // works like `instances`.
    let i = inputs(
        &json!({"inputs": [{"age": 35, "tags": [1, 2], "country": "FR"}]}),
        &Names::default(),
    )
    .unwrap();
    assert_eq!(names_of(&i.rows[0]), ["age", "country"]);
    // A bare value is one feature.
    let i = inputs(&json!({"instances": ["a text", 3]}), &names).unwrap();
    assert_eq!(
        i.rows[0],
        vec![("age".into(), FeatureValue::Category("a text".into()))]
    );
    assert_eq!(i.rows[1], vec![("age".into(), n(3.0))]);
    // Rows wider than the limit, and images, give no features.
    let wide: Vec<u32> = (0..300).collect();
    let i = inputs(&json!({"instances": [wide, [[[0, 1], [2, 3]]]]}), &names).unwrap();
    assert_eq!(i.rows, vec![Row::new(), Row::new()]);
}

#[test]
fn columnar_inputs() {
    let i = inputs(
        &json!({"inputs": {"age": [35, 41], "country": ["DE", "FR"]}}),
        &Names::default(),
    )
    .unwrap();
    assert_eq!(i.rows.len(), 2);
    assert_eq!(
        i.rows[1][1],
        ("country".into(), FeatureValue::Category("FR".into()))
    );
    let r = inputs(
        &json!({"inputs": {"a": [1, 2], "b": [1]}}),
        &Names::default(),
    )
    .unwrap_err();
    assert_eq!(r.reason, RejectReason::InvalidValue);
    assert!(r.detail.contains("inputs.b has 1 values"), "{}", r.detail);
}

#[test]
fn v2_inputs_by_name_and_by_column() {
    let features = ["age".to_owned(), "income".to_owned()];
    let names = Names {
        features: &features,
        ..Names::default()
    };
    // One tensor of two rows of three columns (nested data), and a named
    // column tensor of strings.
    let p = json!({"inputs": [
        {"name": "input-0", "shape": [2, 3], "datatype": "FP32", "data": [[35, 51000, 120.5], [41, 62000, 80]]},
        {"name": "country", "shape": [2, 1], "datatype": "BYTES", "data": ["DE", "FR"]}
    ]});
    let i = inputs(&p, &names).unwrap();
    assert_eq!(i.protocol, Protocol::V2);
    assert_eq!(
        names_of(&i.rows[0]),
        ["age", "income", "input-0.2", "country"]
    );
    assert_eq!(i.rows[1][2].1, n(80.0));
    assert_eq!(i.rows[1][3].1, FeatureValue::Category("FR".into()));
    // The same values flat.
    let flat = json!({"inputs": [{"name": "x", "shape": [2, 2], "datatype": "INT64", "data": [1, 2, 3, 4]}]});
    let i = inputs(&flat, &Names::default()).unwrap();
    assert_eq!(
        i.rows[1],
        vec![("x.0".into(), n(3.0)), ("x.1".into(), n(4.0))]
    );
    // pandas-style columns: one tensor per feature.
    let pd = json!({"parameters": {"content_type": "pd"}, "inputs": [
        {"name": "age", "shape": [3], "datatype": "INT64", "data": [1, 2, 3]},
        {"name": "ok", "shape": [3], "datatype": "BOOL", "data": [true, false, true]}
    ]});
    let i = inputs(&pd, &Names::default()).unwrap();
    assert_eq!(i.rows.len(), 3);
    assert_eq!(
        i.rows[2],
        vec![
            ("age".into(), n(3.0)),
            ("ok".into(), FeatureValue::Bool(true))
        ]
    );
    // Without data (the binary extension): rows, no features.
    let bin = json!({"inputs": [{"name": "x", "shape": [4, 2], "datatype": "FP32", "parameters": {"binary_data_size": 32}}]});
    assert_eq!(
        inputs(&bin, &Names::default()).unwrap().rows,
        vec![Row::new(); 4]
    );
}

#[test]
fn v2_rejects() {
    use RejectReason::*;
    let cases: &[(Value, RejectReason, &str)] = &[
        (
            json!({"inputs": [{"name": "x", "shape": [2, 2], "data": [1, 2, 3]}]}),
            InvalidValue,
            "inputs[x]: shape [2, 2] holds 4 values, data has 3",
        ),
        (
            json!({"inputs": [{"name": "a", "shape": [2], "data": [1, 2]}, {"name": "b", "shape": [3], "data": [1, 2, 3]}]}),
            InvalidValue,
            "disagree on the batch size: a has 2 rows, b has 3",
        ),
        (
            json!({"inputs": [{"name": "x", "shape": [-1], "data": []}]}),
            InvalidValue,
            "whole numbers",
        ),
        (
            json!({"inputs": [{"name": "x", "shape": "2"}]}),
            WrongType,
            "inputs[x].shape must be a list",
        ),
        (
            json!({"inputs": [{"name": 3, "shape": [1]}]}),
            WrongType,
            "inputs[].name must be a string",
        ),
        (
            json!({"instances": {"a": 1}}),
            WrongType,
            "instances must be a list, found an object",
        ),
        (json!({"inputs": 7}), WrongType, "inputs must be a list"),
    ];
    for (p, reason, detail) in cases {
        let r = inputs(p, &Names::default()).unwrap_err();
        assert_eq!(r.reason, *reason, "{p}: {}", r.detail);
        assert!(r.detail.contains(detail), "{p}: {}", r.detail);
    }
    let r = outputs(
        &json!({"outputs": [{"name": "y", "shape": [2], "data": [1]}]}),
        &Names::default(),
    )
    .unwrap_err();
    assert!(r.detail.contains("outputs[y]"), "{}", r.detail);
    let r = outputs(&json!({"predictions": 3}), &Names::default()).unwrap_err();
    assert_eq!(r.reason, WrongType);
}

#[test]
fn anything_else_is_one_row_without_features() {
    for p in [
        json!({"prompt": "hello", "max_tokens": 5}),
        json!([1, 2]),
        json!("x"),
        Value::Null,
    ] {
        let i = inputs(&p, &Names::default()).unwrap();
        assert_eq!(
            (i.rows, i.protocol),
            (vec![Row::new()], Protocol::Other),
            "{p}"
        );
        let o = outputs(&p, &Names::default()).unwrap();
        assert_eq!(
            (o.rows, o.protocol),
            (vec![Output::default()], Protocol::Other),
            "{p}"
        );
    }
}

fn predicted(o: &Outputs) -> Vec<(Option<Outcome>, Option<f64>)> {
    o.rows
        .iter()
        .map(|r| (r.prediction.clone(), r.confidence))
        .collect()
}

#[test]
fn the_output_rule() {
    use Outcome::{Class, Number};
    let o = outputs(
        &json!({"predictions": [1, "cat", true, [0.7], [0.1, 0.7, 0.2], [2.5, -1.0], [0.5, 0.5], null, {"x": 1}]}),
        &Names::default(),
    )
    .unwrap();
    assert_eq!(o.protocol, Protocol::V1);
    assert_eq!(
        predicted(&o),
        vec![
            (Some(Number(1.0)), None),
            (Some(Class("cat".into())), None),
            (Some(Number(1.0)), None),
            (Some(Number(0.7)), None),
            // predict_proba: the top class and its probability
            (Some(Number(1.0)), Some(0.7)),
            // logits: the top class, no confidence
            (Some(Number(0.0)), None),
            // ties: the first
            (Some(Number(0.0)), Some(0.5)),
            (None, None),
            (Some(Number(1.0)), None),
        ]
    );
    // Class names, and object rows with named prediction and confidence.
    let classes = ["legit".to_owned(), "fraud".to_owned()];
    let names = Names {
        classes: &classes,
        prediction: Some("label"),
        confidence: Some("p"),
        ..Names::default()
    };
    let o = outputs(
        &json!({"predictions": [[0.2, 0.8], {"p": 0.9, "label": "fraud"}, {"label": 1, "p": [0.3, 0.6, 0.1]}]}),
        &names,
    )
    .unwrap();
    assert_eq!(
        predicted(&o),
        vec![
            (Some(Class("fraud".into())), Some(0.8)),
            (Some(Class("fraud".into())), Some(0.9)),
            (Some(Number(1.0)), Some(0.6)),
        ]
    );
}

#[test]
fn v2_outputs() {
    use Outcome::Number;
    let p = json!({"model_name": "fraud", "model_version": "3", "id": "x", "outputs": [
        {"name": "label", "shape": [2], "datatype": "INT64", "data": [1, 0]},
        {"name": "probabilities", "shape": [2, 2], "datatype": "FP32", "data": [0.1, 0.9, 0.8, 0.2]}
    ]});
    let o = outputs(&p, &Names::default()).unwrap();
    assert_eq!(o.protocol, Protocol::V2);
    assert_eq!(o.version.as_deref(), Some("3"));
    assert_eq!(
        predicted(&o),
        vec![(Some(Number(1.0)), None), (Some(Number(0.0)), None)]
    );
    let names = Names {
        confidence: Some("probabilities"),
        ..Names::default()
    };
    let o = outputs(&p, &names).unwrap();
    assert_eq!(
        predicted(&o),
        vec![
            (Some(Number(1.0)), Some(0.9)),
            (Some(Number(0.0)), Some(0.8))
        ]
    );
    let names = Names {
        prediction: Some("probabilities"),
        ..Names::default()
    };
    let o = outputs(&p, &names).unwrap();
    assert_eq!(
        predicted(&o),
        vec![
            (Some(Number(1.0)), Some(0.9)),
            (Some(Number(0.0)), Some(0.8))
        ]
    );
}

#[test]
fn error_responses() {
    for p in [
        json!({"error": "Model fraud is not ready"}),
        json!({"status": {"code": 500, "info": "boom", "reason": "MICROSERVICE_INTERNAL_ERROR", "status": "FAILURE"}}),
    ] {
        let o = outputs(&p, &Names::default()).unwrap();
        assert!(o.error && o.rows.is_empty(), "{p}");
    }
    let ok = json!({"status": {"code": 200, "status": "SUCCESS"}, "data": {"ndarray": [1]}});
    assert!(!outputs(&ok, &Names::default()).unwrap().error);
}

#[test]
fn seldon_messages() {
    let req = json!({"meta": {"puid": "p"}, "data": {"names": ["sepal_length", "sepal_width"], "ndarray": [[5.1, 3.5], [6.2, 2.9]]}});
    let i = inputs(&req, &Names::default()).unwrap();
    assert_eq!(i.protocol, Protocol::Seldon);
    assert_eq!(names_of(&i.rows[1]), ["sepal_length", "sepal_width"]);
    // A flat ndarray is one row; a tensor is rows of its shape.
    let i = inputs(&json!({"data": {"ndarray": [1, 2, 3]}}), &Names::default()).unwrap();
    assert_eq!(names_of(&i.rows[0]), ["0", "1", "2"]);
    let i = inputs(
        &json!({"data": {"tensor": {"shape": [2, 2], "values": [1, 2, 3, 4]}}}),
        &Names::default(),
    )
    .unwrap();
    assert_eq!(i.rows[1], vec![("0".into(), n(3.0)), ("1".into(), n(4.0))]);
    let resp =
        json!({"data": {"names": ["t:0", "t:1", "t:2"], "ndarray": [[0.1, 0.8, 0.1]]}, "meta": {}});
    let o = outputs(&resp, &Names::default()).unwrap();
    assert_eq!(o.protocol, Protocol::Seldon);
    assert_eq!(predicted(&o), vec![(Some(Outcome::Number(1.0)), Some(0.8))]);
    // jsonData is one row without features.
    let i = inputs(&json!({"jsonData": {"text": "hi"}}), &Names::default()).unwrap();
    assert_eq!(i.protocol, Protocol::Other);
}

#[test]
fn seldon_feedback() {
    let fb = json!({
        "request": {"data": {"ndarray": [[5.1, 3.5], [6.2, 2.9]]}},
        "response": {"data": {"ndarray": [[0.9, 0.1], [0.2, 0.8]]}},
        "truth": {"data": {"ndarray": [[1, 0], [1, 0]]}},
        "reward": 0.5
    });
    assert_eq!(
        feedback(&fb, &Names::default()).unwrap(),
        vec![
            (Outcome::Number(0.0), Outcome::Number(0.0)),
            (Outcome::Number(0.0), Outcome::Number(1.0)),
        ]
    );
    let r = feedback(&json!({"reward": 1}), &Names::default()).unwrap_err();
    assert_eq!(r.reason, RejectReason::MissingField);
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    /// JSON values shaped like payloads: objects with the keys the readers
    /// look for, tensors with shapes that may or may not fit their data.
    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (-3i64..300).prop_map(|n| json!(n)),
            (-1.0f64..2.0).prop_map(|x| json!(x)),
            "[a-z]{0,3}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 64, 6, |inner| {
            let key = prop_oneof![
                Just("instances"),
                Just("inputs"),
                Just("outputs"),
                Just("predictions"),
                Just("name"),
                Just("shape"),
                Just("data"),
                Just("datatype"),
                Just("ndarray"),
                Just("tensor"),
                Just("values"),
                Just("names"),
                Just("error"),
                Just("status"),
                Just("truth"),
                Just("response"),
                Just("model_version"),
                Just("x"),
            ];
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec((key, inner), 0..5).prop_map(|kv| {
                    Value::Object(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
                }),
            ]
        })
    }

    proptest! {
        #[test]
        fn the_readers_never_panic(v in value()) {
            let features = ["a".to_owned()];
            let classes = ["no".to_owned(), "yes".to_owned()];
            for names in [
                Names::default(),
                Names { features: &features, classes: &classes, prediction: Some("x"), confidence: Some("data") },
            ] {
                let _ = inputs(&v, &names);
                let _ = outputs(&v, &names);
                let _ = feedback(&v, &names);
                for wrapped in [json!({"inputs": [v.clone()]}), json!({"outputs": [v.clone()]}), json!({"data": v.clone()})] {
                    if let Ok(i) = inputs(&wrapped, &names) {
                        prop_assert!(i.rows.iter().all(|r| r.len() <= MAX_ROW_VALUES));
                    }
                    if let Ok(o) = outputs(&wrapped, &names) {
                        prop_assert!(o.rows.iter().all(|r| r.confidence.is_none_or(|c| (0.0..=1.0).contains(&c))));
                    }
                }
            }
        }
    }
}
