//! A streaming CSV reader (RFC 4180).
//!
//! * Fields are separated by `,` and records by `\n`, `\r\n` or a lone `\r`.
//! * A field that starts with `"` is quoted: it ends at the next lone `"`,
//!   `""` inside it stands for one `"`, and it may hold commas and line
//!   breaks. After the closing quote only `,` or the end of the record may
//!   follow.
//! * A `"` inside an unquoted field is taken literally.
//! * Lines that are completely empty are skipped; a UTF-8 byte order mark at
//!   the start of the input is dropped.
//! * A record is held in one reused buffer, bounded by a maximum size, so
//!   memory does not depend on the input.

use std::io::{self, BufRead};

/// Largest record accepted by default (4 MiB).
pub const DEFAULT_MAX_RECORD_BYTES: usize = 4 * 1024 * 1024;

/// What stops the reader.
#[derive(Debug, thiserror::Error)]
pub enum CsvError {
    /// Reading the input failed.
    #[error("{0}")]
    Io(io::Error),
    /// The input is not well-formed CSV.
    #[error("line {line}: {message}")]
    Syntax {
        /// 1-based line where the problem is.
        line: u64,
        /// What is wrong.
        message: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a field.
    FieldStart,
    /// Inside an unquoted field.
    Unquoted,
    /// Inside a quoted field.
    Quoted,
    /// Just after a `"` inside a quoted field: either `""` or the end.
    QuoteInQuoted,
}

/// Reads CSV records one at a time from a buffered input.
#[derive(Debug)]
pub struct CsvReader<R> {
    input: R,
    record: Vec<u8>,
    ends: Vec<usize>,
    /// 1-based line the reader is on.
    next_line: u64,
    /// Line the current record started on.
    record_line: u64,
    bytes: u64,
    max_record_bytes: usize,
    /// A `\r` ended the previous record; skip a `\n` right after it.
    skip_lf: bool,
    at_start: bool,
    /// Bytes of the byte order mark matched so far.
    bom_seen: usize,
}

impl<R: BufRead> CsvReader<R> {
    /// A reader with the default record size limit.
    pub fn new(input: R) -> Self {
        Self::with_limit(input, DEFAULT_MAX_RECORD_BYTES)
    }

    /// A reader that rejects records longer than `max_record_bytes`.
    pub fn with_limit(input: R, max_record_bytes: usize) -> Self {
        CsvReader {
            input,
            record: Vec::new(),
            ends: Vec::new(),
            next_line: 1,
            record_line: 1,
            bytes: 0,
            max_record_bytes,
            skip_lf: false,
            at_start: true,
            bom_seen: 0,
        }
    }

    /// Number of fields of the current record.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether the current record has no fields (before the first read).
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Field `i` of the current record, unquoted.
    pub fn field(&self, i: usize) -> Option<&[u8]> {
        let end = *self.ends.get(i)?;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        self.record.get(start..end)
    }

    /// The fields of the current record.
    pub fn fields(&self) -> impl Iterator<Item = &[u8]> {
        (0..self.ends.len()).filter_map(|i| self.field(i))
    }

    /// 1-based line on which the current record starts.
    pub fn line(&self) -> u64 {
        self.record_line
    }

    /// Bytes consumed from the input so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes
    }

    /// Bytes held by the record buffers.
    pub fn buffer_bytes(&self) -> usize {
        self.record.capacity() + self.ends.capacity() * std::mem::size_of::<usize>()
    }

    fn syntax(&self, line: u64, message: impl Into<String>) -> CsvError {
        CsvError::Syntax {
            line,
            message: message.into(),
        }
    }

    /// Reads the next record. Returns `false` at the end of the input.
    pub fn read_record(&mut self) -> Result<bool, CsvError> {
        self.record.clear();
        self.ends.clear();
        self.record_line = self.next_line;
        let mut state = State::FieldStart;
        let mut quote_line = self.next_line;
        loop {
            let buf = match self.input.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(CsvError::Io(e)),
            };
            if buf.is_empty() {
                // End of input.
                if self.at_start && self.bom_seen > 0 {
                    self.at_start = false;
                    self.record
                        .extend_from_slice(&b"\xEF\xBB\xBF"[..self.bom_seen]);
                    state = State::Unquoted;
                }
                return match state {
                    State::Quoted => Err(self.syntax(
                        quote_line,
                        "quoted field is not closed before the end of the file",
                    )),
                    State::FieldStart if self.ends.is_empty() => Ok(false),
                    _ => {
                        self.ends.push(self.record.len());
                        Ok(true)
                    }
                };
            }
            let mut i = 0;
            if self.at_start {
                // The byte order mark may arrive in pieces.
                const BOM: &[u8] = b"\xEF\xBB\xBF";
                while i < buf.len() && self.bom_seen < BOM.len() && buf[i] == BOM[self.bom_seen] {
                    self.bom_seen += 1;
                    i += 1;
                }
                if self.bom_seen == BOM.len() {
                    self.at_start = false;
                } else if i < buf.len() {
                    // Not a byte order mark after all: what matched is data.
                    self.at_start = false;
                    if self.bom_seen > 0 {
                        self.record.extend_from_slice(&BOM[..self.bom_seen]);
                        state = State::Unquoted;
                    }
                }
            }
            if self.skip_lf {
                self.skip_lf = false;
                if buf.get(i) == Some(&b'\n') {
                    i += 1;
                }
            }
            let mut finished = false;
            while i < buf.len() {
                match state {
                    State::FieldStart | State::Unquoted => {
                        if state == State::FieldStart && buf[i] == b'"' {
                            state = State::Quoted;
                            quote_line = self.next_line;
                            i += 1;
                            continue;
                        }
                        let rest = &buf[i..];
                        let n = rest
                            .iter()
                            .position(|&b| matches!(b, b',' | b'\n' | b'\r'))
                            .unwrap_or(rest.len());
                        self.record.extend_from_slice(&rest[..n]);
                        i += n;
                        if n > 0 {
                            state = State::Unquoted;
                        }
                        let Some(&b) = buf.get(i) else { break };
                        i += 1;
                        if b == b',' {
                            self.ends.push(self.record.len());
                            state = State::FieldStart;
                        } else {
                            // A line break.
                            self.next_line += 1;
                            if b == b'\r' {
                                if i < buf.len() {
                                    if buf[i] == b'\n' {
                                        i += 1;
                                    }
                                } else {
                                    self.skip_lf = true;
                                }
                            }
                            if state == State::FieldStart && self.ends.is_empty() {
                                // An empty line: skip it.
                                self.record_line = self.next_line;
                                continue;
                            }
                            self.ends.push(self.record.len());
                            finished = true;
                            break;
                        }
                    }
                    State::Quoted => {
                        let rest = &buf[i..];
                        let n = rest.iter().position(|&b| b == b'"').unwrap_or(rest.len());
                        let chunk = &rest[..n];
                        self.next_line += chunk.iter().filter(|&&b| b == b'\n').count() as u64;
                        self.record.extend_from_slice(chunk);
                        i += n;
                        if i < buf.len() {
                            i += 1;
                            state = State::QuoteInQuoted;
                        }
                    }
                    State::QuoteInQuoted => {
                        let b = buf[i];
                        i += 1;
                        match b {
                            b'"' => {
                                self.record.push(b'"');
                                state = State::Quoted;
                            }
                            b',' => {
                                self.ends.push(self.record.len());
                                state = State::FieldStart;
                            }
                            b'\n' | b'\r' => {
                                self.next_line += 1;
                                if b == b'\r' {
                                    if i < buf.len() {
                                        if buf[i] == b'\n' {
                                            i += 1;
                                        }
                                    } else {
                                        self.skip_lf = true;
                                    }
                                }
                                self.ends.push(self.record.len());
                                finished = true;
                                break;
                            }
                            other => {
                                let shown = char::from(other).escape_default().to_string();
                                self.input.consume(i);
                                self.bytes += i as u64;
                                return Err(self.syntax(
                                    self.next_line,
                                    format!(
                                        "unexpected '{shown}' after the closing quote of field {}",
                                        self.ends.len() + 1
                                    ),
                                ));
                            }
                        }
                    }
                }
            }
            self.input.consume(i);
            self.bytes += i as u64;
            if self.record.len() > self.max_record_bytes {
                return Err(self.syntax(
                    self.record_line,
                    format!(
                        "record is longer than {} bytes (missing closing quote?)",
                        self.max_record_bytes
                    ),
                ));
            }
            if finished {
                return Ok(true);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// All records of `input`, as strings, with their start lines.
    fn parse(input: &[u8]) -> Result<Vec<(u64, Vec<String>)>, String> {
        parse_with_buffer(input, 8192)
    }

    fn parse_with_buffer(input: &[u8], cap: usize) -> Result<Vec<(u64, Vec<String>)>, String> {
        let mut r = CsvReader::new(io::BufReader::with_capacity(cap, input));
        let mut out = Vec::new();
        loop {
            match r.read_record() {
                Ok(true) => out.push((
                    r.line(),
                    r.fields()
                        .map(|f| String::from_utf8_lossy(f).into_owned())
                        .collect(),
                )),
                Ok(false) => return Ok(out),
                Err(e) => return Err(e.to_string()),
            }
        }
    }

    fn rows(input: &str) -> Vec<Vec<String>> {
        parse(input.as_bytes())
            .unwrap()
            .into_iter()
            .map(|(_, r)| r)
            .collect()
    }

    #[test]
    fn table_of_quoting_cases() {
        let cases: &[(&str, &[&[&str]])] = &[
            ("a,b,c\n", &[&["a", "b", "c"]]),
            ("a,b,c", &[&["a", "b", "c"]]),
            ("a,,c\n", &[&["a", "", "c"]]),
            (",\n", &[&["", ""]]),
            ("a,b\r\nc,d\r\n", &[&["a", "b"], &["c", "d"]]),
            ("a,b\rc,d", &[&["a", "b"], &["c", "d"]]),
            ("\"a,b\",c\n", &[&["a,b", "c"]]),
            ("\"say \"\"hi\"\"\",x\n", &[&["say \"hi\"", "x"]]),
            ("\"\"\n", &[&[""]]),
            ("\"\",\"\"\n", &[&["", ""]]),
            ("\"line1\nline2\",z\n", &[&["line1\nline2", "z"]]),
            ("\"cr\r\nlf\"\n", &[&["cr\r\nlf"]]),
            ("a\"b,c\n", &[&["a\"b", "c"]]),
            ("a,\"\"\"\"\n", &[&["a", "\""]]),
            ("a,b,\n", &[&["a", "b", ""]]),
            ("\n\na\n\n\nb\n", &[&["a"], &["b"]]),
            ("\u{feff}x,y\n", &[&["x", "y"]]),
            ("\"ü\",ß\n", &[&["ü", "ß"]]),
            ("", &[]),
            ("\u{feff}", &[]),
            ("\u{feff}\n", &[]),
            ("\u{feff}\"q\"", &[&["q"]]),
            ("\u{ff}x\n", &[&["\u{ff}x"]]),
        ];
        for (input, expected) in cases {
            let expected: Vec<Vec<String>> = expected
                .iter()
                .map(|r| r.iter().map(|s| s.to_string()).collect())
                .collect();
            assert_eq!(rows(input), expected, "input {input:?}");
            // The same with a tiny buffer: every state crosses a refill.
            let tiny: Vec<Vec<String>> = parse_with_buffer(input.as_bytes(), 1)
                .unwrap()
                .into_iter()
                .map(|(_, r)| r)
                .collect();
            assert_eq!(tiny, expected, "input {input:?} with a 1-byte buffer");
        }
    }

    #[test]
    fn a_partial_byte_order_mark_is_data() {
        for cap in [1, 2, 8192] {
            let got = parse_with_buffer(b"\xEF\xBBz,1\n", cap).unwrap();
            assert_eq!(got[0].1[0].as_bytes(), "\u{FFFD}z".as_bytes(), "cap {cap}");
            let got = parse_with_buffer(b"\xEF\xBB", cap).unwrap();
            assert_eq!(got.len(), 1, "cap {cap}");
        }
    }

    #[test]
    fn lines_of_records_count_embedded_line_breaks() {
        let got = parse(b"h1,h2\n\"a\nb\",1\n\nc,2\r\nd,3\n").unwrap();
        let lines: Vec<u64> = got.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, vec![1, 2, 5, 6]);
        let tiny = parse_with_buffer(b"h1,h2\n\"a\nb\",1\n\nc,2\r\nd,3\n", 1).unwrap();
        assert_eq!(tiny, got);
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let e = parse(b"a,b\n\"open,c\nd,e\n").unwrap_err();
        assert_eq!(
            e,
            "line 2: quoted field is not closed before the end of the file"
        );
        let e = parse(b"a,b\n\"x\"y,c\n").unwrap_err();
        assert_eq!(
            e,
            "line 2: unexpected 'y' after the closing quote of field 1"
        );
        let mut r = CsvReader::with_limit(&b"short\nthis record is long\n"[..], 10);
        assert!(r.read_record().unwrap());
        let e = r.read_record().unwrap_err().to_string();
        assert!(
            e.starts_with("line 2: record is longer than 10 bytes"),
            "{e}"
        );
    }

    #[test]
    fn bytes_read_reaches_the_input_length() {
        let input = b"a,b\n\"c\"\"\",d\r\n";
        let mut r = CsvReader::new(&input[..]);
        while r.read_record().unwrap() {}
        assert_eq!(r.bytes_read(), input.len() as u64);
    }
}
