//! Payloads: a request's rows of features and a response's rows of
//! predictions, from the KServe v1 protocol, the Open Inference Protocol
//! (v2), TensorFlow's columnar form and Seldon's protocol. The rules are
//! those of docs/integrations.md ("Rows").

use serde_json::{Map, Value};

use super::envelope::json_type;
use crate::ingest::event::{FeatureValue, Name, Outcome};
use crate::ingest::parse::{Reject, RejectReason};

/// Rows wider than this give no features (images, embeddings).
pub const MAX_ROW_VALUES: usize = 256;

/// The protocol a payload was read as (the `protocol` label of
/// `model_exporter_cloudevents_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// KServe v1 (`instances`, `predictions`) or TensorFlow's columnar form.
    V1,
    /// The Open Inference Protocol (`inputs`/`outputs` tensors).
    V2,
    /// Seldon's protocol (`data` with `ndarray` or `tensor`).
    Seldon,
    /// Any other JSON: one row, without features or prediction.
    Other,
}

impl Protocol {
    /// Every protocol, in label order.
    pub const ALL: [Protocol; 4] = [
        Protocol::V1,
        Protocol::V2,
        Protocol::Seldon,
        Protocol::Other,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::V1 => "v1",
            Protocol::V2 => "v2",
            Protocol::Seldon => "seldon",
            Protocol::Other => "other",
        }
    }
}

/// What the model's configuration says about names (its
/// `inference_logger`), borrowed for one payload.
#[derive(Debug, Clone, Copy, Default)]
pub struct Names<'a> {
    /// Names of positional values, in order.
    pub features: &'a [String],
    /// Names of the columns of a row of class scores.
    pub classes: &'a [String],
    /// The output (or row key) holding the prediction.
    pub prediction: Option<&'a str>,
    /// The output (or row key) holding the confidence.
    pub confidence: Option<&'a str>,
}

/// One row's feature values.
pub type Row = Vec<(Name, FeatureValue)>;

/// A request payload, read.
#[derive(Debug, Clone, PartialEq)]
pub struct Inputs {
    /// One entry per inference.
    pub rows: Vec<Row>,
    /// How it was read.
    pub protocol: Protocol,
}

/// One row's output.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Output {
    /// The prediction, when the row gives one.
    pub prediction: Option<Outcome>,
    /// Its confidence, in [0, 1].
    pub confidence: Option<f64>,
}

/// A response payload, read.
#[derive(Debug, Clone, PartialEq)]
pub struct Outputs {
    /// One entry per inference; empty for an error response.
    pub rows: Vec<Output>,
    /// The payload is an error (`error`, or a Seldon `FAILURE` status).
    pub error: bool,
    /// The model version the payload names (v2 `model_version`).
    pub version: Option<String>,
    /// How it was read.
    pub protocol: Protocol,
}

fn wrong_type(what: &str, expected: &str, found: &Value) -> Reject {
    Reject::new(
        RejectReason::WrongType,
        format!("{what} must be {expected}, found {}", json_type(found)),
    )
}

/// The feature names of positional columns: the configured list, then the
/// position. Made once per payload and cloned into rows (a clone of a
/// short [`Name`] does not allocate).
struct Columns<'a> {
    configured: &'a [String],
    /// Names of columns not in the configured list, made on first use.
    positional: Vec<Name>,
    /// A prefix for positional names (`TENSOR.`), or none.
    prefix: String,
}

impl<'a> Columns<'a> {
    fn new(configured: &'a [String], prefix: String) -> Columns<'a> {
        Columns {
            configured,
            positional: Vec::new(),
            prefix,
        }
    }

    fn name(&mut self, i: usize) -> Name {
        if let Some(n) = self.configured.get(i) {
            return Name::new(n);
        }
        let k = i - self.configured.len();
        while self.positional.len() <= k {
            let j = self.configured.len() + self.positional.len();
            self.positional
                .push(Name::from(format!("{}{j}", self.prefix)));
        }
        self.positional[k].clone()
    }
}

/// A scalar as a feature value; `None` for lists and objects.
fn feature(v: &Value) -> Option<FeatureValue> {
    Some(match v {
        Value::Number(n) => FeatureValue::Number(n.as_f64()?),
        Value::String(s) => FeatureValue::Category(s.clone()),
        Value::Bool(b) => FeatureValue::Bool(*b),
        Value::Null => FeatureValue::Missing,
        Value::Array(_) | Value::Object(_) => return None,
    })
}

/// A row of positional values (a list, or a slice of a tensor), named by
/// `columns`; a row wider than [`MAX_ROW_VALUES`] gives no features.
fn positional_row<'v>(
    values: impl ExactSizeIterator<Item = &'v Value>,
    columns: &mut Columns<'_>,
    row: &mut Row,
) {
    if values.len() > MAX_ROW_VALUES {
        return;
    }
    for (i, v) in values.enumerate() {
        if let Some(f) = feature(v) {
            row.push((columns.name(i), f));
        }
    }
}

/// An object row: its scalar members are named features.
fn object_row(m: &Map<String, Value>) -> Row {
    m.iter()
        .filter_map(|(k, v)| Some((Name::new(k), feature(v)?)))
        .collect()
}

/// Reads a request payload into rows of features.
///
/// # Errors
/// A member of the wrong type, a tensor whose data does not fit its
/// shape, tensors or columns of different lengths.
pub fn inputs(payload: &Value, names: &Names<'_>) -> Result<Inputs, Reject> {
    let Value::Object(m) = payload else {
        return Ok(Inputs {
            rows: vec![Row::new()],
            protocol: Protocol::Other,
        });
    };
    if let Some(data) = seldon_data(m) {
        return Ok(Inputs {
            rows: seldon_rows(data, names)?,
            protocol: Protocol::Seldon,
        });
    }
    match m.get("instances").or_else(|| m.get("inputs")) {
        Some(Value::Array(items)) if is_v2(items) => Ok(Inputs {
            rows: v2_inputs(items, names)?,
            protocol: Protocol::V2,
        }),
        Some(Value::Array(items)) => Ok(Inputs {
            rows: v1_rows(items, names),
            protocol: Protocol::V1,
        }),
        Some(Value::Object(columns)) if m.contains_key("inputs") => Ok(Inputs {
            rows: columnar_rows(columns)?,
            protocol: Protocol::V1,
        }),
        Some(other) => Err(wrong_type(
            if m.contains_key("instances") {
                "instances"
            } else {
                "inputs"
            },
            "a list",
            other,
        )),
        None => Ok(Inputs {
            rows: vec![Row::new()],
            protocol: Protocol::Other,
        }),
    }
}

/// v2 tensors are objects with a `name` and a `shape`.
fn is_v2(items: &[Value]) -> bool {
    items.first().is_some_and(|t| {
        t.as_object()
            .is_some_and(|o| o.contains_key("name") && o.contains_key("shape"))
    })
}

/// v1 rows: an object is named features, a list positional values, a
/// scalar one value.
fn v1_rows(items: &[Value], names: &Names<'_>) -> Vec<Row> {
    let mut columns = Columns::new(names.features, String::new());
    items
        .iter()
        .map(|item| match item {
            Value::Object(o) => object_row(o),
            Value::Array(a) => {
                let mut row = Row::with_capacity(a.len().min(MAX_ROW_VALUES));
                positional_row(a.iter(), &mut columns, &mut row);
                row
            }
            scalar => feature(scalar)
                .map(|f| vec![(columns.name(0), f)])
                .unwrap_or_default(),
        })
        .collect()
}

/// TensorFlow's columnar form: `{"inputs": {"age": [35, 41], ...}}`; a
/// value that is not a list is a column of one row.
fn columnar_rows(columns: &Map<String, Value>) -> Result<Vec<Row>, Reject> {
    let len = |v: &Value| v.as_array().map_or(1, Vec::len);
    let n = columns.values().map(len).max().unwrap_or(1);
    if let Some((name, v)) = columns.iter().find(|(_, v)| len(v) != n) {
        return Err(Reject::new(
            RejectReason::InvalidValue,
            format!("inputs.{name} has {} values, other columns {n}", len(v)),
        ));
    }
    let mut rows = vec![Row::with_capacity(columns.len()); n];
    for (name, v) in columns {
        let name = Name::new(name);
        let values: Vec<&Value> = match v {
            Value::Array(a) => a.iter().collect(),
            scalar => vec![scalar],
        };
        for (row, v) in rows.iter_mut().zip(values) {
            if let Some(f) = feature(v) {
                row.push((name.clone(), f));
            }
        }
    }
    Ok(rows)
}

/// One v2 tensor, checked: its name, rows, values per row and values.
struct Tensor<'v> {
    name: &'v str,
    rows: usize,
    width: usize,
    /// Row-major; `None` when the tensor has no `data` (binary extension).
    values: Option<Vec<&'v Value>>,
}

impl<'v> Tensor<'v> {
    /// A tensor object of the list `list` (`inputs` or `outputs`).
    fn read(t: &'v Value, list: &str) -> Result<Tensor<'v>, Reject> {
        let o = t
            .as_object()
            .ok_or_else(|| wrong_type(&format!("an element of {list}"), "an object", t))?;
        let name = match o.get("name") {
            Some(Value::String(s)) => s.as_str(),
            Some(other) => return Err(wrong_type(&format!("{list}[].name"), "a string", other)),
            None => {
                return Err(Reject::new(
                    RejectReason::MissingField,
                    format!("a tensor of {list} has no name"),
                ));
            }
        };
        Tensor::parts(
            name,
            o.get("shape"),
            o.get("data"),
            &format!("{list}[{name}]"),
        )
    }

    /// A tensor of `shape` and row-major (flat or nested) `data`; `what`
    /// names it in messages.
    fn parts(
        name: &'v str,
        shape: Option<&'v Value>,
        data: Option<&'v Value>,
        what: &str,
    ) -> Result<Tensor<'v>, Reject> {
        let shape: Vec<usize> = match shape {
            Some(Value::Array(dims)) => dims
                .iter()
                .map(|d| {
                    d.as_u64().map(|d| d as usize).ok_or_else(|| {
                        Reject::new(
                            RejectReason::InvalidValue,
                            format!("{what}.shape must hold whole numbers >= 0, found {d}"),
                        )
                    })
                })
                .collect::<Result<_, _>>()?,
            Some(other) => return Err(wrong_type(&format!("{what}.shape"), "a list", other)),
            None => {
                return Err(Reject::new(
                    RejectReason::MissingField,
                    format!("{what} has no shape"),
                ));
            }
        };
        let (rows, width) = match shape.split_first() {
            None => (1, 1),
            Some((n, rest)) => (
                *n,
                rest.iter()
                    .try_fold(1usize, |a, d| a.checked_mul(*d))
                    .unwrap_or(usize::MAX),
            ),
        };
        let values = match data {
            None => None,
            Some(data) => {
                let mut flat = Vec::new();
                flatten(data, &mut flat);
                if Some(flat.len()) != rows.checked_mul(width) {
                    return Err(Reject::new(
                        RejectReason::InvalidValue,
                        format!(
                            "{what}: shape {shape:?} holds {} values, data has {}",
                            rows.saturating_mul(width),
                            flat.len()
                        ),
                    ));
                }
                Some(flat)
            }
        };
        Ok(Tensor {
            name,
            rows,
            width,
            values,
        })
    }

    /// The values of row `i`.
    fn row(&self, i: usize) -> Option<&[&'v Value]> {
        self.values
            .as_deref()
            .map(|v| &v[i * self.width..(i + 1) * self.width])
    }
}

/// Row-major values of nested lists.
fn flatten<'v>(v: &'v Value, out: &mut Vec<&'v Value>) {
    match v {
        Value::Array(a) => a.iter().for_each(|x| flatten(x, out)),
        scalar => out.push(scalar),
    }
}

/// Tensors of a list, checked to agree on the number of rows.
fn tensors<'v>(items: &'v [Value], list: &str) -> Result<(Vec<Tensor<'v>>, usize), Reject> {
    let tensors: Vec<Tensor<'v>> = items
        .iter()
        .map(|t| Tensor::read(t, list))
        .collect::<Result<_, _>>()?;
    let rows = tensors.first().map_or(1, |t| t.rows);
    if let Some(t) = tensors.iter().find(|t| t.rows != rows) {
        return Err(Reject::new(
            RejectReason::InvalidValue,
            format!(
                "{list} disagree on the batch size: {} has {rows} rows, {} has {}",
                tensors[0].name, t.name, t.rows
            ),
        ));
    }
    Ok((tensors, rows))
}

/// v2 inputs: a one-value-per-row tensor is the feature of its name; the
/// columns of wider tensors are named by the configured list, in order over
/// those tensors, then `TENSOR.j`.
fn v2_inputs(items: &[Value], names: &Names<'_>) -> Result<Vec<Row>, Reject> {
    let (tensors, n) = tensors(items, "inputs")?;
    let mut rows = vec![Row::new(); n];
    let mut configured = names.features;
    for t in &tensors {
        if t.values.is_none() || t.width > MAX_ROW_VALUES {
            continue;
        }
        if t.width == 1 {
            let name = Name::new(t.name);
            for (i, row) in rows.iter_mut().enumerate() {
                if let Some(f) = t.row(i).and_then(|v| feature(v[0])) {
                    row.push((name.clone(), f));
                }
            }
            continue;
        }
        let mut columns = Columns::new(configured, format!("{}.", t.name));
        for (i, row) in rows.iter_mut().enumerate() {
            if let Some(values) = t.row(i) {
                positional_row(values.iter().copied(), &mut columns, row);
            }
        }
        configured = configured.get(t.width..).unwrap_or_default();
    }
    Ok(rows)
}

/// Seldon's `data`, when the payload is a Seldon message.
fn seldon_data(m: &Map<String, Value>) -> Option<&Map<String, Value>> {
    m.get("data")?.as_object().filter(|d| {
        d.contains_key("ndarray") || d.contains_key("tensor") || d.contains_key("names")
    })
}

/// The rows of Seldon's `data`: `ndarray` rows (a flat `ndarray` is one
/// row) or a `tensor` of `shape` and row-major `values`, named by
/// `data.names`, else the configured list.
fn seldon_rows(data: &Map<String, Value>, names: &Names<'_>) -> Result<Vec<Row>, Reject> {
    let given: Vec<String> = match data.get("names") {
        Some(Value::Array(a)) => a
            .iter()
            .map(|n| {
                n.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| wrong_type("data.names[]", "a string", n))
            })
            .collect::<Result<_, _>>()?,
        None | Some(Value::Null) => Vec::new(),
        Some(other) => return Err(wrong_type("data.names", "a list", other)),
    };
    let configured = if given.is_empty() {
        names.features
    } else {
        &given
    };
    let mut columns = Columns::new(configured, String::new());
    let mut rows = Vec::new();
    for_each_seldon_row(data, |values| {
        let mut row = Row::with_capacity(values.len().min(MAX_ROW_VALUES));
        positional_row(values.iter().copied(), &mut columns, &mut row);
        rows.push(row);
    })?;
    Ok(rows)
}

/// Calls `f` with the values of each row of Seldon's `data`.
fn for_each_seldon_row<'v>(
    data: &'v Map<String, Value>,
    mut f: impl FnMut(&[&'v Value]),
) -> Result<(), Reject> {
    if let Some(nd) = data.get("ndarray") {
        let Value::Array(items) = nd else {
            return Err(wrong_type("data.ndarray", "a list", nd));
        };
        if items.iter().all(|i| !i.is_array()) {
            f(&items.iter().collect::<Vec<_>>());
            return Ok(());
        }
        let mut flat = Vec::new();
        for item in items {
            flat.clear();
            flatten(item, &mut flat);
            f(&flat);
        }
        return Ok(());
    }
    if let Some(tensor) = data.get("tensor") {
        let Value::Object(t) = tensor else {
            return Err(wrong_type("data.tensor", "an object", tensor));
        };
        // Seldon's `values` is the v2 tensor's `data`.
        let t = Tensor::parts("tensor", t.get("shape"), t.get("values"), "data.tensor")?;
        for i in 0..t.rows {
            if let Some(values) = t.row(i) {
                f(values);
            }
        }
    }
    Ok(())
}

/// Reads a response payload into rows of predictions.
///
/// # Errors
/// A member of the wrong type, a tensor whose data does not fit its shape.
pub fn outputs(payload: &Value, names: &Names<'_>) -> Result<Outputs, Reject> {
    let mut out = Outputs {
        rows: Vec::new(),
        error: false,
        version: None,
        protocol: Protocol::Other,
    };
    let Value::Object(m) = payload else {
        out.rows.push(Output::default());
        return Ok(out);
    };
    let failed = m
        .get("status")
        .and_then(|s| s.get("status"))
        .and_then(Value::as_str)
        == Some("FAILURE");
    if m.contains_key("error") || failed {
        out.error = true;
        out.protocol = if failed {
            Protocol::Seldon
        } else {
            Protocol::Other
        };
        return Ok(out);
    }
    if let Some(data) = seldon_data(m) {
        out.protocol = Protocol::Seldon;
        for_each_seldon_row(data, |values| {
            out.rows.push(scores(values.iter().copied(), names))
        })?;
        return Ok(out);
    }
    match m.get("outputs").or_else(|| m.get("predictions")) {
        Some(Value::Array(items)) if is_v2(items) => {
            out.protocol = Protocol::V2;
            out.version = m
                .get("model_version")
                .and_then(Value::as_str)
                .filter(|v| !v.is_empty())
                .map(str::to_owned);
            out.rows = v2_outputs(items, names)?;
        }
        Some(Value::Array(items)) => {
            out.protocol = Protocol::V1;
            out.rows = items.iter().map(|v| outcome(v, names)).collect();
        }
        Some(Value::Object(columns)) => {
            out.protocol = Protocol::V1;
            let column = names
                .prediction
                .and_then(|p| columns.get(p))
                .or_else(|| columns.values().next());
            out.rows = match column {
                Some(Value::Array(a)) => a.iter().map(|v| outcome(v, names)).collect(),
                Some(v) => vec![outcome(v, names)],
                None => vec![Output::default()],
            };
        }
        Some(other) => {
            let what = if m.contains_key("outputs") {
                "outputs"
            } else {
                "predictions"
            };
            return Err(wrong_type(what, "a list", other));
        }
        None => out.rows.push(Output::default()),
    }
    Ok(out)
}

/// v2 outputs: the prediction from the tensor named `names.prediction`
/// (else the first), the confidence from the one named `names.confidence`.
fn v2_outputs(items: &[Value], names: &Names<'_>) -> Result<Vec<Output>, Reject> {
    let (tensors, n) = tensors(items, "outputs")?;
    let named = |name: Option<&str>| name.and_then(|p| tensors.iter().find(|t| t.name == p));
    let prediction = named(names.prediction).or(tensors.first());
    let confidence = named(names.confidence);
    Ok((0..n)
        .map(|i| {
            let mut out = prediction
                .and_then(|t| t.row(i))
                .map(|v| scores(v.iter().copied(), names))
                .unwrap_or_default();
            if let Some(c) = confidence.and_then(|t| t.row(i)) {
                out.confidence = confidence_of(c.iter().copied());
            }
            out
        })
        .collect())
}

/// One row's output value, by the rule of docs/integrations.md.
fn outcome(v: &Value, names: &Names<'_>) -> Output {
    match v {
        Value::Array(a) => scores(a.iter(), names),
        Value::Object(o) => {
            let key = names
                .prediction
                .and_then(|p| o.get(p))
                .or_else(|| o.values().next());
            let mut out = key.map(|v| outcome(v, names)).unwrap_or_default();
            if let Some(c) = names.confidence.and_then(|c| o.get(c)) {
                out.confidence = match c {
                    Value::Array(a) => confidence_of(a.iter()),
                    v => confidence_of(std::iter::once(v)),
                };
            }
            out
        }
        scalar => Output {
            prediction: prediction(scalar),
            confidence: None,
        },
    }
}

/// A scalar as a prediction.
fn prediction(v: &Value) -> Option<Outcome> {
    match v {
        Value::Number(n) => n.as_f64().map(Outcome::Number),
        Value::String(s) => Some(Outcome::Class(s.clone())),
        Value::Bool(b) => Some(Outcome::Number(f64::from(u8::from(*b)))),
        _ => None,
    }
}

/// A row of values: one value is read as itself; two or more numbers are
/// class scores: the largest one's index (or class name) and, when every
/// score is in [0, 1], that score as the confidence.
fn scores<'v>(
    values: impl ExactSizeIterator<Item = &'v Value> + Clone,
    names: &Names<'_>,
) -> Output {
    let len = values.len();
    if len == 1 {
        let mut values = values;
        let v = values.next().expect("one value");
        return outcome(v, names);
    }
    let mut best: Option<(usize, f64)> = None;
    for (i, v) in values.clone().enumerate() {
        let Some(x) = v.as_f64() else {
            return Output::default();
        };
        if best.is_none_or(|(_, b)| x > b) {
            best = Some((i, x));
        }
    }
    let Some((i, _)) = best else {
        return Output::default();
    };
    let prediction = match names.classes.get(i) {
        Some(c) => Outcome::Class(c.clone()),
        None => Outcome::Number(i as f64),
    };
    Output {
        prediction: Some(prediction),
        confidence: confidence_of(values),
    }
}

/// A confidence: one number in [0, 1], or the largest of scores that are
/// all in [0, 1].
fn confidence_of<'v>(values: impl Iterator<Item = &'v Value>) -> Option<f64> {
    let mut top: Option<f64> = None;
    for v in values {
        let x = v.as_f64().filter(|x| (0.0..=1.0).contains(x))?;
        top = Some(top.map_or(x, |t: f64| t.max(x)));
    }
    top
}

/// A Seldon feedback's rows: the truth (`actual`) and the prediction of
/// the response, row by row; rows without either are left out.
///
/// # Errors
/// A Seldon message of the wrong shape inside; a feedback without truth
/// or response.
pub fn feedback(payload: &Value, names: &Names<'_>) -> Result<Vec<(Outcome, Outcome)>, Reject> {
    let part = |key: &str| -> Result<Vec<Output>, Reject> {
        match payload.get(key) {
            Some(v) if v.is_object() => Ok(outputs(v, names)?.rows),
            _ => Ok(Vec::new()),
        }
    };
    let (truth, response) = (part("truth")?, part("response")?);
    let rows: Vec<(Outcome, Outcome)> = truth
        .into_iter()
        .zip(response)
        .filter_map(|(t, r)| Some((t.prediction?, r.prediction?)))
        .collect();
    if rows.is_empty() {
        return Err(Reject::new(
            RejectReason::MissingField,
            "a feedback needs `truth` and `response` with a value per row",
        ));
    }
    Ok(rows)
}

#[cfg(test)]
mod tests;
