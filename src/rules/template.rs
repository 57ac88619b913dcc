//! Annotation templates: literal text with `{{ $labels.NAME }}` and
//! `{{ $value }}` placeholders (whitespace inside the braces is optional).
//!
//! Anything else between `{{` and `}}` is an error located by column. A
//! label that is not set renders as the empty string; `$value` renders with
//! the shortest representation that reads back as the same number.

use std::collections::BTreeMap;

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// Literal text.
    Text(String),
    /// `{{ $labels.NAME }}`
    Label(String),
    /// `{{ $value }}`, optionally piped to a formatting function.
    Value(ValueFormat),
}

/// How `$value` is written: `{{ $value }}` as is, or through one of the
/// formatting functions Prometheus templates also have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueFormat {
    /// The shortest representation that reads back as the same number.
    Raw,
    /// `| humanize`: four significant digits with an SI prefix (`1.234k`).
    Humanize,
    /// `| humanizePercentage`: a ratio as a percentage (`12.35%`).
    Percentage,
    /// `| humanizeDuration`: seconds as a duration (`40d 0h 5m 3s`, `250ms`).
    Duration,
    /// `printf "%.Nf" $value` (also `%.Ng`, `%.Ne`): a fixed number of
    /// digits, with text around the verb.
    Printf {
        /// Text before the verb.
        prefix: String,
        /// `f`, `g` or `e`.
        verb: char,
        /// Digits after the point (or significant digits for `g`).
        precision: usize,
        /// Text after the verb.
        suffix: String,
    },
}

/// Parses a `printf` format with exactly one `%[.N]f|g|e` verb (and `%%`).
fn parse_printf(fmt: &str) -> Option<ValueFormat> {
    let mut prefix = String::new();
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            prefix.push(c);
            continue;
        }
        if chars.peek() == Some(&'%') {
            chars.next();
            prefix.push('%');
            continue;
        }
        let mut precision = 6;
        if chars.peek() == Some(&'.') {
            chars.next();
            let digits: String =
                std::iter::from_fn(|| chars.next_if(char::is_ascii_digit)).collect();
            precision = digits.parse().ok().filter(|p: &usize| *p <= 17)?;
        }
        let verb = chars.next().filter(|v| matches!(v, 'f' | 'g' | 'e'))?;
        let rest: String = chars.collect();
        if rest.replace("%%", "").contains('%') {
            return None;
        }
        return Some(ValueFormat::Printf {
            prefix,
            verb,
            precision,
            suffix: rest.replace("%%", "%"),
        });
    }
    None
}

impl ValueFormat {
    const FUNCTIONS: [(&'static str, ValueFormat); 3] = [
        ("humanize", ValueFormat::Humanize),
        ("humanizePercentage", ValueFormat::Percentage),
        ("humanizeDuration", ValueFormat::Duration),
    ];

    /// Writes `v` in this format.
    pub fn format(&self, v: f64) -> String {
        if !v.is_finite() {
            return v.to_string();
        }
        match self {
            ValueFormat::Raw => v.to_string(),
            ValueFormat::Printf {
                prefix,
                verb,
                precision,
                suffix,
            } => {
                let precision = *precision;
                let body = match verb {
                    'e' => format!("{v:.precision$e}"),
                    'g' => {
                        let digits = precision.max(1);
                        let mag = if v == 0.0 {
                            0
                        } else {
                            v.abs().log10().floor() as i64
                        };
                        let decimals = (digits as i64 - 1 - mag).clamp(0, 17) as usize;
                        let s = format!("{v:.decimals$}");
                        if s.contains('.') {
                            s.trim_end_matches('0').trim_end_matches('.').to_string()
                        } else {
                            s
                        }
                    }
                    _ => format!("{v:.precision$}"),
                };
                format!("{prefix}{body}{suffix}")
            }
            ValueFormat::Percentage => format!("{}%", sig4(v * 100.0)),
            ValueFormat::Humanize => {
                let a = v.abs();
                let (scale, prefix) = [
                    (1e12, "T"),
                    (1e9, "G"),
                    (1e6, "M"),
                    (1e3, "k"),
                    (1.0, ""),
                    (1e-3, "m"),
                    (1e-6, "u"),
                    (1e-9, "n"),
                ]
                .into_iter()
                .find(|(s, _)| a >= *s)
                .unwrap_or((1.0, ""));
                format!("{}{prefix}", sig4(v / scale))
            }
            ValueFormat::Duration => {
                let a = v.abs();
                let sign = if v < 0.0 { "-" } else { "" };
                if a < 1.0 {
                    return format!("{sign}{}ms", sig4(a * 1000.0));
                }
                let s = a.round() as u64;
                let (d, h, m, sec) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
                let mut out = sign.to_string();
                if d > 0 {
                    out += &format!("{d}d {h}h {m}m {sec}s");
                } else if h > 0 {
                    out += &format!("{h}h {m}m {sec}s");
                } else if m > 0 {
                    out += &format!("{m}m {sec}s");
                } else {
                    out += &format!("{}s", sig4(a));
                }
                out
            }
        }
    }
}

/// Four significant digits, without trailing zeros.
fn sig4(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let digits = (3 - v.abs().log10().floor() as i32).max(0) as usize;
    let s = format!("{v:.digits$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
}

/// An error in a template, displayed as `1:COLUMN: MESSAGE`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("1:{column}: {message}")]
pub struct TemplateError {
    /// 1-based column, in chars of the template text (counting every char,
    /// newlines included, as one column of a single line).
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

/// True for a valid label name, `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Template {
    /// Parses a template.
    ///
    /// # Errors
    /// A [`TemplateError`] for an unclosed `{{` or anything other than
    /// `$labels.NAME` or `$value` inside the braces.
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let chars: Vec<char> = text.chars().collect();
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut i = 0;
        while i < chars.len() {
            if chars[i] == '{' && chars.get(i + 1) == Some(&'{') {
                let open = i;
                let Some(close) = (i + 2..chars.len().saturating_sub(1))
                    .find(|&j| chars[j] == '}' && chars[j + 1] == '}')
                else {
                    return Err(TemplateError {
                        column: open + 1,
                        message: "unclosed '{{': missing '}}'".into(),
                    });
                };
                let inner: String = chars[i + 2..close].iter().collect();
                let lead = inner.chars().take_while(|c| c.is_whitespace()).count();
                let body = inner.trim();
                let body_col = i + 2 + lead + 1;
                let piped = body
                    .strip_prefix("$value")
                    .map(|rest| rest.trim_start())
                    .and_then(|rest| rest.strip_prefix('|'))
                    .map(str::trim);
                let printf = body
                    .strip_prefix("printf")
                    .filter(|r| r.starts_with(char::is_whitespace))
                    .map(str::trim)
                    .and_then(|r| r.strip_suffix("$value"))
                    .map(str::trim)
                    .and_then(|r| r.strip_prefix('"')?.strip_suffix('"'));
                let part = if body == "$value" {
                    Part::Value(ValueFormat::Raw)
                } else if let Some(fmt) = printf {
                    match parse_printf(fmt) {
                        Some(f) => Part::Value(f),
                        None => {
                            return Err(TemplateError {
                                column: body_col,
                                message: format!(
                                    "unsupported printf format \"{fmt}\": use one verb %f, %g or %e, with an optional precision such as %.2f"
                                ),
                            });
                        }
                    }
                } else if let Some(function) = piped {
                    match ValueFormat::FUNCTIONS.iter().find(|(n, _)| *n == function) {
                        Some((_, f)) => Part::Value(f.clone()),
                        None => {
                            return Err(TemplateError {
                                column: body_col,
                                message: format!(
                                    "unknown function '{function}' (expected humanize, humanizePercentage or humanizeDuration){}",
                                    super::suggest::did_you_mean(
                                        function,
                                        ValueFormat::FUNCTIONS.iter().map(|(n, _)| *n)
                                    )
                                ),
                            });
                        }
                    }
                } else if let Some(name) = body.strip_prefix("$labels.") {
                    if !is_label_name(name) {
                        return Err(TemplateError {
                            column: body_col + "$labels.".len(),
                            message: format!(
                                "invalid label name '{name}' in template: expected [a-zA-Z_][a-zA-Z0-9_]*"
                            ),
                        });
                    }
                    Part::Label(name.to_string())
                } else {
                    const SUPPORTED: &str = "only {{ $labels.NAME }}, {{ $value }} and {{ $value | FUNCTION }} are supported";
                    let (column, message) = if body.is_empty() {
                        (open + 1, format!("empty placeholder: {SUPPORTED}"))
                    } else {
                        (
                            body_col,
                            format!(
                                "unsupported template expression '{body}' ({SUPPORTED}){}",
                                super::suggest::did_you_mean(body, ["$value", "$labels"])
                            ),
                        )
                    };
                    return Err(TemplateError { column, message });
                };
                if !literal.is_empty() {
                    parts.push(Part::Text(std::mem::take(&mut literal)));
                }
                parts.push(part);
                i = close + 2;
            } else {
                literal.push(chars[i]);
                i += 1;
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Text(literal));
        }
        Ok(Template {
            source: text.to_string(),
            parts,
        })
    }

    /// The text the template was parsed from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The parsed pieces.
    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// Names of the labels the template refers to, in order of appearance.
    pub fn labels_used(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Label(n) => Some(n.as_str()),
            _ => None,
        })
    }

    /// Fills in the placeholders.
    pub fn render(&self, labels: &BTreeMap<String, String>, value: f64) -> String {
        let mut out = String::with_capacity(self.source.len());
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Label(n) => out.push_str(labels.get(n).map_or("", String::as_str)),
                Part::Value(f) => out.push_str(&f.format(value)),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> BTreeMap<String, String> {
        [("model", "fraud"), ("feature", "age")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn renders_labels_and_value() {
        let cases = [
            (
                "p99 of {{ $labels.model }} is {{ $value }}s",
                0.5,
                "p99 of fraud is 0.5s",
            ),
            ("{{$labels.feature}}/{{$labels.model}}", 1.0, "age/fraud"),
            ("{{   $value   }}", 0.0523, "0.0523"),
            ("missing: [{{ $labels.version }}]", 1.0, "missing: []"),
            ("no placeholders }} {", 1.0, "no placeholders }} {"),
            ("", 1.0, ""),
            ("é {{ $value }} ü", 2.0, "é 2 ü"),
        ];
        for (text, value, want) in cases {
            let t = Template::parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
            assert_eq!(t.render(&labels(), value), want, "{text:?}");
            assert_eq!(t.source(), text);
        }
    }

    #[test]
    fn labels_used() {
        let t = Template::parse("{{ $labels.a }} {{ $value }} {{ $labels.b }}").expect("valid");
        assert_eq!(t.labels_used().collect::<Vec<_>>(), ["a", "b"]);
    }

    #[test]
    fn errors_are_located() {
        let cases: &[(&str, usize, &str)] = &[
            ("x {{ $labels.model", 3, "unclosed '{{'"),
            ("x {{ $value }", 3, "unclosed"),
            (
                "{{ $valeu }}",
                4,
                "unsupported template expression '$valeu' (only {{ $labels.NAME }}, {{ $value }} and {{ $value | FUNCTION }} are supported), did you mean '$value'?",
            ),
            (
                "ab {{ .Value }}",
                7,
                "unsupported template expression '.Value'",
            ),
            ("{{ }}", 1, "empty placeholder"),
            (
                r#"{{ printf "%d" $value }}"#,
                4,
                "unsupported printf format",
            ),
            (
                "{{ $value | humanise }}",
                4,
                "unknown function 'humanise' (expected humanize, humanizePercentage or humanizeDuration), did you mean 'humanize'?",
            ),
            ("{{ $labels.9x }}", 12, "invalid label name '9x'"),
            ("{{ $labels. }}", 12, "invalid label name ''"),
            ("é{{ $labels.a-b }}", 13, "invalid label name 'a-b'"),
        ];
        for &(text, column, fragment) in cases {
            let e = Template::parse(text).expect_err(text);
            assert!(e.message.contains(fragment), "{text:?}: {:?}", e.message);
            assert_eq!(e.column, column, "{text:?}: {}", e.message);
        }
    }

    #[test]
    fn value_formats() {
        let l = BTreeMap::new();
        let cases: &[(&str, f64, &str)] = &[
            ("{{ $value }}", 0.1234567, "0.1234567"),
            ("{{$value|humanize}}", 1234.5678, "1.235k"),
            ("{{ $value | humanize }}", 0.000_25, "250u"),
            ("{{ $value | humanize }}", 42.0, "42"),
            ("{{ $value | humanizePercentage }}", 0.187_865, "18.79%"),
            (
                "{{ $value | humanizeDuration }}",
                3_456_019.63,
                "40d 0h 0m 20s",
            ),
            ("{{ $value | humanizeDuration }}", 0.8935, "893.5ms"),
            ("{{ $value | humanizeDuration }}", 95.0, "1m 35s"),
            ("{{ $value | humanizeDuration }}", 2.5, "2.5s"),
            ("{{ $value | humanize }}", f64::NAN, "NaN"),
            (r#"{{ printf "%.2f" $value }}"#, 0.489_876, "0.49"),
            (r#"PSI {{printf "%.3g" $value}}!"#, 0.489_876, "PSI 0.49!"),
            (r#"{{ printf "%.1f%%" $value }}"#, 12.345, "12.3%"),
            (r#"{{ printf "%.2e" $value }}"#, 12345.0, "1.23e4"),
        ];
        for &(text, v, want) in cases {
            assert_eq!(
                Template::parse(text).unwrap().render(&l, v),
                want,
                "{text} {v}"
            );
        }
    }

    #[test]
    fn label_names() {
        assert!(is_label_name("model"));
        assert!(is_label_name("_x1"));
        assert!(!is_label_name("1x"));
        assert!(!is_label_name(""));
        assert!(!is_label_name("a-b"));
    }
}
