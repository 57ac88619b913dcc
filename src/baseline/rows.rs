//! The input readers of the baseline builder: CSV with a header row, and
//! JSON lines of flat rows or of inference events. Each reads its input
//! once per pass and hands every row, as values by column, to a `RowSink`
//! (the builder).

use std::fmt;
use std::io::{self, BufRead};

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::csv::{CsvError, CsvReader};
use super::error::BuildError;
use super::summary::{Cell, RowError};
use crate::ingest::event::{Body, FeatureValue, Outcome};
use crate::ingest::parse::{is_blank, parse_event};

/// Longest row (CSV record or JSON line) accepted.
pub const MAX_ROW_BYTES: usize = super::csv::DEFAULT_MAX_RECORD_BYTES;

/// What the readers hand the rows to.
pub(super) trait RowSink {
    /// The column of feature `name`, met at `line`; `None` when the feature
    /// is left out.
    fn feature(&mut self, name: &str, line: u64) -> Result<Option<usize>, BuildError>;

    /// The prediction's column; `None` when it is left out.
    fn prediction(&mut self) -> Option<usize>;

    /// The row starting at `line`, `bytes` into the input: its values by
    /// column, or what makes it bad.
    fn row(
        &mut self,
        line: u64,
        bytes: u64,
        row: Result<&[(usize, Cell<'_>)], RowError>,
    ) -> Result<(), BuildError>;

    /// An event of another type than `inference`, which is not a row.
    fn other_event(&mut self);
}

/// What every reader knows of its input.
struct Input {
    /// The input's name, in messages.
    source: String,
    /// The column (or key of a flat JSON row) holding the prediction.
    prediction: String,
    /// The prediction column was named by `--prediction-column`, so a CSV
    /// header must have it.
    prediction_named: bool,
}

/// Reads the rows of one input, in both passes, keeping what the second
/// pass needs from the first.
pub(super) struct RowReader {
    input: Input,
    layout: Layout,
}

enum Layout {
    Csv(CsvRows),
    Jsonl(JsonRows),
}

impl RowReader {
    /// A reader of CSV with a header row. `prediction_column` names the
    /// prediction's column; without it, `prediction` is used if present.
    pub(super) fn csv(source: &str, prediction_column: Option<&str>) -> RowReader {
        RowReader::new(source, prediction_column, Layout::Csv(CsvRows::default()))
    }

    /// A reader of JSON lines: flat rows, or inference events.
    pub(super) fn jsonl(source: &str, prediction_column: Option<&str>) -> RowReader {
        RowReader::new(
            source,
            prediction_column,
            Layout::Jsonl(JsonRows::default()),
        )
    }

    fn new(source: &str, prediction_column: Option<&str>, layout: Layout) -> RowReader {
        RowReader {
            input: Input {
                source: source.to_owned(),
                prediction: prediction_column.unwrap_or("prediction").to_owned(),
                prediction_named: prediction_column.is_some(),
            },
            layout,
        }
    }

    /// Reads the whole input, handing each row to `sink`. The second pass
    /// checks that the input still has the shape the first pass saw.
    pub(super) fn read(
        &mut self,
        input: impl BufRead,
        first_pass: bool,
        sink: &mut impl RowSink,
    ) -> Result<(), BuildError> {
        match &mut self.layout {
            Layout::Csv(csv) => csv.read(&self.input, input, first_pass, sink),
            Layout::Jsonl(json) => json.read(&self.input, input, sink),
        }
    }

    /// Approximate heap bytes kept between rows (the CSV header).
    pub(super) fn heap_bytes(&self) -> usize {
        match &self.layout {
            Layout::Csv(csv) => csv.heap_bytes(),
            Layout::Jsonl(_) => 0,
        }
    }
}

impl Input {
    fn io_error(&self, error: io::Error) -> BuildError {
        BuildError::Io {
            file: self.source.clone(),
            error,
        }
    }

    fn row_error(&self, line: u64, e: RowError) -> BuildError {
        BuildError::row(&self.source, line, e)
    }
}

/// What a CSV field is used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Skip,
    Column(usize),
}

/// The CSV reader's state: the header of the first pass, and what each
/// field is used for.
#[derive(Default)]
struct CsvRows {
    header: Vec<String>,
    roles: Vec<Role>,
}

impl CsvRows {
    fn heap_bytes(&self) -> usize {
        let header: usize = self.header.iter().map(|h| h.capacity() + 24).sum();
        header + self.roles.capacity() * std::mem::size_of::<Role>()
    }

    fn read(
        &mut self,
        input: &Input,
        reader: impl BufRead,
        first_pass: bool,
        sink: &mut impl RowSink,
    ) -> Result<(), BuildError> {
        let mut csv = CsvReader::new(reader);
        let fail = |e: CsvError| match e {
            CsvError::Io(e) => input.io_error(e),
            CsvError::Syntax { line, message } => input.row_error(line, RowError::new(message)),
        };
        match csv.read_record() {
            Ok(true) => {}
            Ok(false) => {
                return Err(BuildError::NoRows {
                    file: input.source.clone(),
                });
            }
            Err(e) => return Err(fail(e)),
        }
        self.header_row(input, &csv, first_pass, sink)?;
        let header_len = self.roles.len();
        loop {
            match csv.read_record() {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => return Err(fail(e)),
            }
            let line = csv.line();
            if csv.len() != header_len {
                let e = RowError::new(format!(
                    "row has {} fields, header has {header_len}",
                    csv.len()
                ));
                sink.row(line, csv.bytes_read(), Err(e))?;
                continue;
            }
            match self.cells(&csv) {
                Ok(cells) => sink.row(line, csv.bytes_read(), Ok(&cells))?,
                Err(e) => sink.row(line, csv.bytes_read(), Err(e))?,
            }
        }
        Ok(())
    }

    /// The values of the current record, by column.
    fn cells<'r, R: BufRead>(
        &self,
        csv: &'r CsvReader<R>,
    ) -> Result<Vec<(usize, Cell<'r>)>, RowError> {
        let mut cells = Vec::with_capacity(csv.len());
        for (i, field) in csv.fields().enumerate() {
            if let Role::Column(c) = self.roles[i] {
                match csv_cell(field) {
                    Ok(Cell::Missing) => {}
                    Ok(cell) => cells.push((c, cell)),
                    Err(m) => return Err(RowError::at(&self.header[i], m)),
                }
            }
        }
        Ok(cells)
    }

    /// Reads the header: in the first pass, the columns; in the second, a
    /// check that it has not changed.
    fn header_row<R: BufRead>(
        &mut self,
        input: &Input,
        csv: &CsvReader<R>,
        first_pass: bool,
        sink: &mut impl RowSink,
    ) -> Result<(), BuildError> {
        let line = csv.line();
        let mut names = Vec::with_capacity(csv.len());
        let mut seen = std::collections::HashSet::new();
        for (i, field) in csv.fields().enumerate() {
            let name = std::str::from_utf8(field).map_err(|_| {
                input.row_error(
                    line,
                    RowError::new(format!("header: column {} is not UTF-8", i + 1)),
                )
            })?;
            if name.is_empty() {
                return Err(input.row_error(
                    line,
                    RowError::new(format!("header: column {} has no name", i + 1)),
                ));
            }
            if !seen.insert(name) {
                return Err(input.row_error(
                    line,
                    RowError::at(name, "header: the name is used by two columns"),
                ));
            }
            names.push(name.to_owned());
        }
        if !first_pass {
            if names != self.header {
                return Err(BuildError::Changed {
                    file: input.source.clone(),
                    message: "the header is different".to_owned(),
                });
            }
            return Ok(());
        }
        if input.prediction_named && !names.contains(&input.prediction) {
            return Err(BuildError::Options(format!(
                "--prediction-column {:?}: {} has no such column (it has {})",
                input.prediction,
                input.source,
                names.join(", ")
            )));
        }
        let mut roles = Vec::with_capacity(names.len());
        for name in &names {
            let column = if *name == input.prediction {
                sink.prediction()
            } else {
                sink.feature(name, line)?
            };
            roles.push(column.map_or(Role::Skip, Role::Column));
        }
        self.roles = roles;
        self.header = names;
        Ok(())
    }
}

/// Shape of a JSON-lines file, fixed by its first non-blank line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JsonShape {
    Flat,
    Events,
}

/// The JSON-lines reader's state: the shape of the file.
#[derive(Default)]
struct JsonRows {
    shape: Option<JsonShape>,
}

impl JsonRows {
    fn read(
        &mut self,
        input: &Input,
        mut reader: impl BufRead,
        sink: &mut impl RowSink,
    ) -> Result<(), BuildError> {
        let mut buf = Vec::new();
        let mut line_no = 0u64;
        let mut bytes = 0u64;
        loop {
            let (n, too_long) =
                read_line(&mut reader, &mut buf, MAX_ROW_BYTES).map_err(|e| input.io_error(e))?;
            if n == 0 {
                break;
            }
            bytes += n as u64;
            line_no += 1;
            if too_long {
                let e = RowError::new(format!("line is longer than {MAX_ROW_BYTES} bytes"));
                sink.row(line_no, bytes, Err(e))?;
            } else if !is_blank(&buf) {
                let shape = *self.shape.get_or_insert_with(|| detect_shape(&buf));
                match shape {
                    JsonShape::Flat => flat_row(input, &buf, line_no, bytes, sink)?,
                    JsonShape::Events => event_row(&buf, line_no, bytes, sink)?,
                }
            }
        }
        Ok(())
    }
}

/// One line of a file of flat rows.
fn flat_row(
    input: &Input,
    line: &[u8],
    line_no: u64,
    bytes: u64,
    sink: &mut impl RowSink,
) -> Result<(), BuildError> {
    let row: FlatRow<'_> = match serde_json::from_slice(line) {
        Ok(r) => r,
        Err(e) => return sink.row(line_no, bytes, Err(json_error(&e))),
    };
    let mut cells = Vec::with_capacity(row.0.len());
    for (key, value) in row.0 {
        let cell = match value {
            FlatValue::Missing => continue,
            FlatValue::Number(x) => Cell::Number(x),
            FlatValue::Text(t) => Cell::Text(t),
            FlatValue::Nested(kind) => {
                let e = RowError::at(
                    &key,
                    format!(
                        "{kind} is not a feature value (a number, string, bool or null); \
                         an events file must start with an event"
                    ),
                );
                return sink.row(line_no, bytes, Err(e));
            }
        };
        let column = if key == input.prediction {
            sink.prediction()
        } else {
            sink.feature(&key, line_no)?
        };
        if let Some(c) = column {
            cells.push((c, cell));
        }
    }
    sink.row(line_no, bytes, Ok(&cells))
}

/// One line of an events file: an inference is a row, other events are
/// counted.
fn event_row(
    line: &[u8],
    line_no: u64,
    bytes: u64,
    sink: &mut impl RowSink,
) -> Result<(), BuildError> {
    let event = match parse_event(line) {
        Ok(e) => e,
        Err(r) => {
            let e = RowError::new(format!(
                "event rejected ({}): {}",
                r.reason.as_str(),
                r.detail
            ));
            return sink.row(line_no, bytes, Err(e));
        }
    };
    let Body::Inference(inference) = event.body else {
        sink.other_event();
        return Ok(());
    };
    let mut cells = Vec::with_capacity(inference.features.len() + 1);
    for (name, value) in &inference.features {
        let cell = match value {
            FeatureValue::Missing => continue,
            FeatureValue::Number(x) => Cell::Number(*x),
            FeatureValue::Bool(b) => Cell::Number(f64::from(u8::from(*b))),
            FeatureValue::Category(s) => Cell::Text(s.as_str().into()),
        };
        if !cell_is_finite(&cell) {
            return sink.row(
                line_no,
                bytes,
                Err(RowError::at(name, "not a finite number")),
            );
        }
        if let Some(c) = sink.feature(name, line_no)? {
            cells.push((c, cell));
        }
    }
    if let Some(p) = &inference.prediction {
        let cell = match p {
            Outcome::Number(x) => Cell::Number(*x),
            Outcome::Class(s) => Cell::Text(s.as_str().into()),
        };
        if !cell_is_finite(&cell) {
            let e = RowError::at("prediction", "not a finite number");
            return sink.row(line_no, bytes, Err(e));
        }
        if let Some(c) = sink.prediction() {
            cells.push((c, cell));
        }
    }
    sink.row(line_no, bytes, Ok(&cells))
}

fn cell_is_finite(cell: &Cell<'_>) -> bool {
    !matches!(cell, Cell::Number(x) if !x.is_finite())
}

/// Interprets one CSV field: empty or `NaN` is missing, `true`/`false` (any
/// case) are 1 and 0, a finite number is a number, anything else is text.
fn csv_cell(field: &[u8]) -> Result<Cell<'_>, String> {
    if field.is_empty() {
        return Ok(Cell::Missing);
    }
    let text = std::str::from_utf8(field)
        .map_err(|e| format!("not UTF-8 (at byte {})", e.valid_up_to()))?;
    let trimmed = text.trim();
    if trimmed.eq_ignore_ascii_case("true") {
        return Ok(Cell::Number(1.0));
    }
    if trimmed.eq_ignore_ascii_case("false") {
        return Ok(Cell::Number(0.0));
    }
    if trimmed.eq_ignore_ascii_case("nan") {
        return Ok(Cell::Missing);
    }
    match trimmed.parse::<f64>() {
        Ok(x) if x.is_finite() => Ok(Cell::Number(x)),
        Ok(_) => Err(format!("{trimmed:?} is not a finite number")),
        Err(_) => Ok(Cell::Text(text.into())),
    }
}

/// Reads one line (without its `\n`) into `buf`, keeping at most `max`
/// bytes. Returns the bytes consumed (0 at the end) and whether the line
/// was longer than `max`.
fn read_line(input: &mut impl BufRead, buf: &mut Vec<u8>, max: usize) -> io::Result<(usize, bool)> {
    buf.clear();
    let mut consumed = 0;
    let mut too_long = false;
    loop {
        let chunk = match input.fill_buf() {
            Ok(c) => c,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            break;
        }
        let (take, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (chunk.len(), false),
        };
        let content = &chunk[..if done { take - 1 } else { take }];
        if buf.len() + content.len() > max {
            too_long = true;
        } else if !too_long {
            buf.extend_from_slice(content);
        }
        input.consume(take);
        consumed += take;
        if done {
            break;
        }
    }
    if too_long {
        buf.clear();
    } else if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    Ok((consumed, too_long))
}

/// Events files start with an object that has a `features` object or a
/// `type` naming an event type; anything else is a flat row.
fn detect_shape(line: &[u8]) -> JsonShape {
    #[derive(Deserialize)]
    struct Probe {
        #[serde(default)]
        features: Option<serde_json::Value>,
        #[serde(rename = "type", default)]
        kind: Option<serde_json::Value>,
    }
    match serde_json::from_slice::<Probe>(line) {
        Ok(p) => {
            let features = matches!(p.features, Some(serde_json::Value::Object(_)));
            let typed = matches!(
                p.kind.as_ref().and_then(|k| k.as_str()),
                Some("inference" | "feedback" | "model" | "log")
            );
            if features || typed {
                JsonShape::Events
            } else {
                JsonShape::Flat
            }
        }
        Err(_) => JsonShape::Flat,
    }
}

fn json_error(e: &serde_json::Error) -> RowError {
    let msg = e.to_string();
    let msg = match msg.rfind(" at line ") {
        Some(i) => &msg[..i],
        None => &msg,
    };
    match e.column() {
        0 => RowError::new(format!("invalid JSON: {msg}")),
        c => RowError::new(format!("invalid JSON: {msg} (at character {c})")),
    }
}

/// A flat JSON row: keys and scalar values, borrowed where possible.
struct FlatRow<'a>(Vec<(std::borrow::Cow<'a, str>, FlatValue<'a>)>);

enum FlatValue<'a> {
    Missing,
    Number(f64),
    Text(std::borrow::Cow<'a, str>),
    Nested(&'static str),
}

struct Key<'a>(std::borrow::Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(v.into()))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(v.to_owned().into()))
            }
        }
        d.deserialize_str(V)
    }
}

impl<'de> Deserialize<'de> for FlatValue<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = FlatValue<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number, string, bool or null")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<FlatValue<'de>, E> {
                Ok(FlatValue::Number(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<FlatValue<'de>, E> {
                Ok(FlatValue::Number(v as f64))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<FlatValue<'de>, E> {
                Ok(FlatValue::Number(v as f64))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<FlatValue<'de>, E> {
                Ok(FlatValue::Number(f64::from(u8::from(v))))
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<FlatValue<'de>, E> {
                Ok(FlatValue::Text(v.into()))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<FlatValue<'de>, E> {
                Ok(FlatValue::Text(v.to_owned().into()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<FlatValue<'de>, E> {
                Ok(FlatValue::Missing)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<FlatValue<'de>, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(FlatValue::Nested("an array"))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FlatValue<'de>, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(FlatValue::Nested("an object"))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for FlatRow<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = FlatRow<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object (one row)")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FlatRow<'de>, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<Key<'de>, FlatValue<'de>>()? {
                    out.push((k.0, v));
                }
                Ok(FlatRow(out))
            }
        }
        d.deserialize_map(V)
    }
}
