//! What a scrape is answered with: the Prometheus text format or
//! OpenMetrics, chosen from the `Accept` header ([`Format::negotiate`]),
//! and the conversion from the one to the other ([`to_openmetrics`]).
//!
//! Every family is encoded once, in the Prometheus text format; an
//! OpenMetrics answer is that text converted line by line: counters' family
//! names lose `_total` (their samples keep it), `untyped` becomes `unknown`,
//! a family named in seconds or bytes gets its `# UNIT` line, `"` in help
//! texts is escaped, timestamps become seconds, and the exposition ends
//! with `# EOF`.

/// Content type of OpenMetrics text, as served.
pub const OPENMETRICS_FORMAT: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// An exposition format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `text/plain; version=0.0.4`.
    Text,
    /// `application/openmetrics-text; version=1.0.0`.
    OpenMetrics,
}

impl Format {
    /// The format an `Accept` header prefers: OpenMetrics when its media
    /// type (version 1.0.0, 0.0.1 or none) has a higher quality than the
    /// text format (or `*/*`), else text. Without the header, text.
    pub fn negotiate(accept: Option<&str>) -> Format {
        let Some(accept) = accept else {
            return Format::Text;
        };
        let (mut om, mut text) = (0.0f64, 0.0f64);
        for range in accept.split(',') {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or_default().to_ascii_lowercase();
            let mut q = 1.0;
            let mut version = None;
            for p in parts {
                let Some((k, v)) = p.split_once('=') else {
                    continue;
                };
                match k.trim().to_ascii_lowercase().as_str() {
                    "q" => q = v.trim().parse().unwrap_or(0.0),
                    "version" => version = Some(v.trim().trim_matches('"').to_owned()),
                    _ => {}
                }
            }
            match media.as_str() {
                "application/openmetrics-text"
                    if matches!(version.as_deref(), None | Some("1.0.0") | Some("0.0.1")) =>
                {
                    om = om.max(q);
                }
                "text/plain" | "*/*" | "text/*" => text = text.max(q),
                _ => {}
            }
        }
        if om > 0.0 && om > text {
            Format::OpenMetrics
        } else {
            Format::Text
        }
    }
}

/// Converts an exposition in the Prometheus text format (as
/// [`super::metrics::Metrics::encode`] writes it) to OpenMetrics text.
pub fn to_openmetrics(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + text.len() / 16 + 16);
    // A family's HELP waits for its TYPE, which decides its name.
    let mut help: Option<(&[u8], &[u8])> = None;
    for line in text.split(|&b| b == b'\n') {
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix(b"# HELP ") {
            flush_help(&mut out, help.take());
            let (name, h) = split_once(rest, b' ').unwrap_or((rest, b""));
            help = Some((name, h));
        } else if let Some(rest) = line.strip_prefix(b"# TYPE ") {
            let (name, kind) = split_once(rest, b' ').unwrap_or((rest, b"untyped"));
            let (family, kind): (&[u8], &[u8]) = match kind {
                b"counter" => match name.strip_suffix(b"_total") {
                    Some(f) => (f, b"counter"),
                    // An OpenMetrics counter's samples end in _total.
                    None => (name, b"unknown"),
                },
                b"untyped" => (name, b"unknown"),
                k => (name, k),
            };
            match help.take() {
                Some((h_name, h)) if h_name == name => flush_help(&mut out, Some((family, h))),
                other => flush_help(&mut out, other),
            }
            push_line(&mut out, &[b"# TYPE ", family, b" ", kind]);
            for unit in [&b"seconds"[..], b"bytes"] {
                if family.len() > unit.len()
                    && family.ends_with(unit)
                    && family[family.len() - unit.len() - 1] == b'_'
                {
                    push_line(&mut out, &[b"# UNIT ", family, b" ", unit]);
                }
            }
        } else if line.starts_with(b"#") {
            // Other comments have no place in OpenMetrics.
        } else {
            flush_help(&mut out, help.take());
            sample(&mut out, line);
        }
    }
    flush_help(&mut out, help.take());
    out.extend_from_slice(b"# EOF\n");
    out
}

/// Writes a pending HELP line, with `"` escaped as OpenMetrics wants.
fn flush_help(out: &mut Vec<u8>, help: Option<(&[u8], &[u8])>) {
    let Some((name, text)) = help else {
        return;
    };
    out.extend_from_slice(b"# HELP ");
    out.extend_from_slice(name);
    out.push(b' ');
    let mut escaped = false;
    for &b in text {
        if b == b'"' && !escaped {
            out.push(b'\\');
        }
        escaped = b == b'\\' && !escaped;
        out.push(b);
    }
    out.push(b'\n');
}

/// Copies a sample line; a timestamp (milliseconds in the text format)
/// becomes seconds.
fn sample(out: &mut Vec<u8>, line: &[u8]) {
    // The value and timestamp follow the series, whose label values may
    // hold spaces: split after the closing brace, if any.
    let series_end = match line.iter().position(|&b| b == b'{') {
        Some(_) => closing_brace(line).map_or(line.len(), |i| i + 1),
        None => line.iter().position(|&b| b == b' ').unwrap_or(line.len()),
    };
    let (series, rest) = line.split_at(series_end);
    let mut fields = rest.split(|&b| b == b' ').filter(|f| !f.is_empty());
    let (Some(value), ts) = (fields.next(), fields.next()) else {
        push_line(out, &[line]);
        return;
    };
    match ts.and_then(|t| std::str::from_utf8(t).ok()?.parse::<i64>().ok()) {
        Some(ms) => {
            let secs = format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000));
            push_line(out, &[series, b" ", value, b" ", secs.as_bytes()]);
        }
        None => push_line(out, &[series, b" ", value]),
    }
}

/// Index of the `}` closing the label set, skipping quoted values.
fn closing_brace(line: &[u8]) -> Option<usize> {
    let (mut quoted, mut escaped) = (false, false);
    for (i, &b) in line.iter().enumerate() {
        match b {
            _ if escaped => escaped = false,
            b'\\' if quoted => escaped = true,
            b'"' => quoted = !quoted,
            b'}' if !quoted => return Some(i),
            _ => {}
        }
    }
    None
}

fn split_once(s: &[u8], sep: u8) -> Option<(&[u8], &[u8])> {
    let i = s.iter().position(|&b| b == sep)?;
    Some((&s[..i], &s[i + 1..]))
}

fn push_line(out: &mut Vec<u8>, parts: &[&[u8]]) {
    for p in parts {
        out.extend_from_slice(p);
    }
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiates_like_prometheus_asks() {
        // What Prometheus 2.x sends by default.
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        let cases = [
            (None, Format::Text),
            (Some(prometheus), Format::OpenMetrics),
            (Some("*/*"), Format::Text),
            (Some("text/plain;version=0.0.4"), Format::Text),
            (Some("application/openmetrics-text"), Format::OpenMetrics),
            (
                Some("application/openmetrics-text; version=1.0.0; q=0.4, text/plain; q=0.5"),
                Format::Text,
            ),
            (
                Some("text/plain;q=0.2, application/openmetrics-text;q=0.3"),
                Format::OpenMetrics,
            ),
            (
                Some("application/openmetrics-text;version=2.0.0"),
                Format::Text,
            ),
            (Some("application/openmetrics-text;q=0"), Format::Text),
            (Some("application/json"), Format::Text),
        ];
        for (accept, want) in cases {
            assert_eq!(Format::negotiate(accept), want, "{accept:?}");
        }
    }

    /// A golden conversion: every kind of family, help texts with quotes
    /// and escapes, label values with spaces and braces, a timestamp.
    #[test]
    fn converts_text_to_openmetrics() {
        let text = concat!(
            "# HELP model_requests_total Requests, by \"outcome\" \\\\ and a\\nnewline.\n",
            "# TYPE model_requests_total counter\n",
            "model_requests_total{model=\"a b}\",outcome=\"ok\"} 3\n",
            "# HELP model_request_duration_seconds Latency.\n",
            "# TYPE model_request_duration_seconds histogram\n",
            "model_request_duration_seconds_bucket{le=\"0.1\"} 1\n",
            "model_request_duration_seconds_bucket{le=\"+Inf\"} 2\n",
            "model_request_duration_seconds_sum 0.3\n",
            "model_request_duration_seconds_count 2\n",
            "# HELP process_resident_memory_bytes Resident memory size in bytes.\n",
            "# TYPE process_resident_memory_bytes gauge\n",
            "process_resident_memory_bytes 1.2e+07\n",
            "# HELP odd A counter without _total.\n",
            "# TYPE odd counter\n",
            "odd 1\n",
            "# TYPE legacy untyped\n",
            "legacy{a=\"x\"} NaN 1700000000123\n",
            "\n",
        );
        let want = concat!(
            "# HELP model_requests Requests, by \\\"outcome\\\" \\\\ and a\\nnewline.\n",
            "# TYPE model_requests counter\n",
            "model_requests_total{model=\"a b}\",outcome=\"ok\"} 3\n",
            "# HELP model_request_duration_seconds Latency.\n",
            "# TYPE model_request_duration_seconds histogram\n",
            "# UNIT model_request_duration_seconds seconds\n",
            "model_request_duration_seconds_bucket{le=\"0.1\"} 1\n",
            "model_request_duration_seconds_bucket{le=\"+Inf\"} 2\n",
            "model_request_duration_seconds_sum 0.3\n",
            "model_request_duration_seconds_count 2\n",
            "# HELP process_resident_memory_bytes Resident memory size in bytes.\n",
            "# TYPE process_resident_memory_bytes gauge\n",
            "# UNIT process_resident_memory_bytes bytes\n",
            "process_resident_memory_bytes 1.2e+07\n",
            "# HELP odd A counter without _total.\n",
            "# TYPE odd unknown\n",
            "odd 1\n",
            "# TYPE legacy unknown\n",
            "legacy{a=\"x\"} NaN 1700000000.123\n",
            "# EOF\n",
        );
        assert_eq!(
            String::from_utf8(to_openmetrics(text.as_bytes())).unwrap(),
            want
        );
        assert_eq!(to_openmetrics(b""), b"# EOF\n");
    }
}
