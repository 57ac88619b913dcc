//! The alert expression language: `SIGNAL OP NUMBER[UNIT]`.
//!
//! ```text
//! p99(latency) > 500ms
//! error_rate >= 5%
//! psi(feature.*) > 0.25
//! zscore(feature.amount) < -3
//! ratio(counter.clicks, counter.impressions) < 1.5%
//! ```
//!
//! * OP is one of `> >= < <= == !=`.
//! * NUMBER is a decimal number with an optional sign, fraction and exponent
//!   (`5`, `-3`, `0.25`, `1e-3`).
//! * UNIT is optional: `ms s m h d` are durations and scale the number to
//!   seconds; `%` divides it by 100. Durations are accepted only for signals
//!   measured in seconds ([`ValueKind::Seconds`]) and `%` only for signals that
//!   are fractions between 0 and 1 ([`ValueKind::Fraction`]); a bare number is
//!   always accepted.
//! * Whitespace is allowed between any two tokens.
//!
//! Names (features, counters, classes) are written unquoted when they match
//! `[A-Za-z0-9_][A-Za-z0-9_.-]*`, or as a quoted string (`"..."` or `'...'`,
//! with `\\`, `\"` and `\'` escapes) otherwise, e.g. `class_rate("not spam")`
//! or `mean(feature."unit price")`. `feature.*` selects every feature; the
//! rule is then evaluated once per feature.
//!
//! Errors carry the 1-based column (in chars) of the offending token and a
//! specific message, with a "did you mean" suggestion for misspelt names.

use std::fmt;

use super::signal::{BARE_SIGNALS, Function, NameDisplay, is_name_start, signal_names};
use super::suggest::did_you_mean;

mod args;
use args::{counter_name, expect_simple, feature_sel, one_arg, parse_quantile};

use super::signal::{DriftMethod, DriftTarget, FeatureStat, LogLevel, Resource, Signal, ValueKind};

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CmpOp {
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `==`
    Eq,
    /// `!=`
    Ne,
}

impl CmpOp {
    /// The operator as written in an expression (and in PromQL).
    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
        }
    }

    /// Applies the operator to `value OP threshold`. NaN compares false
    /// for every operator except `!=`.
    pub fn apply(self, value: f64, threshold: f64) -> bool {
        match self {
            CmpOp::Gt => value > threshold,
            CmpOp::Ge => value >= threshold,
            CmpOp::Lt => value < threshold,
            CmpOp::Le => value <= threshold,
            CmpOp::Eq => value == threshold,
            CmpOp::Ne => value != threshold,
        }
    }
}

impl fmt::Display for CmpOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A parsed alert expression: `signal op threshold`.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    /// The signal compared.
    pub signal: Signal,
    /// The comparison.
    pub op: CmpOp,
    /// The threshold, with units applied (seconds, or a fraction for `%`).
    pub threshold: f64,
}

impl Expr {
    /// Parses an expression.
    ///
    /// # Errors
    /// An [`ExprError`] locating the first problem found.
    pub fn parse(text: &str) -> Result<Expr, ExprError> {
        Parser::new(text).expr()
    }

    /// True when `value op threshold` holds.
    pub fn eval(&self, value: f64) -> bool {
        self.op.apply(value, self.threshold)
    }
}

impl std::str::FromStr for Expr {
    type Err = ExprError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Expr::parse(s)
    }
}

/// Canonical form: `SIGNAL OP NUMBER`, with an `s` suffix for signals in
/// seconds. It parses back to an equal [`Expr`].
impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.signal, self.op, self.threshold)?;
        if self.signal.value_kind() == ValueKind::Seconds {
            f.write_str("s")?;
        }
        Ok(())
    }
}

/// An error in an expression, displayed as `1:COLUMN: MESSAGE` (the
/// expression is one line).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("1:{column}: {message}")]
pub struct ExprError {
    /// 1-based column, in chars of the expression text, of the problem.
    pub column: usize,
    /// What is wrong, and how to fix it when that is known.
    pub message: String,
}

const UNITS: [&str; 6] = ["ms", "s", "m", "h", "d", "%"];

/// One function argument as written.
#[derive(Debug)]
enum Arg {
    /// `head` or `head.tail`; `tail` is `None` without a dot.
    Path {
        head: String,
        tail: Option<Tail>,
        col: usize,
        tail_col: usize,
    },
    /// A quoted string.
    Quoted { text: String, col: usize },
}

#[derive(Debug)]
enum Tail {
    Star,
    Name(String),
}

impl Arg {
    fn col(&self) -> usize {
        match self {
            Arg::Path { col, .. } | Arg::Quoted { col, .. } => *col,
        }
    }

    /// The argument as written (for messages).
    fn describe(&self) -> String {
        match self {
            Arg::Path { head, tail, .. } => match tail {
                None => head.clone(),
                Some(Tail::Star) => format!("{head}.*"),
                Some(Tail::Name(n)) => format!("{head}.{}", NameDisplay(n)),
            },
            Arg::Quoted { text, .. } => format!("{}", NameDisplay(text)),
        }
    }
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
}

fn err<T>(column: usize, message: impl Into<String>) -> Result<T, ExprError> {
    Err(ExprError {
        column,
        message: message.into(),
    })
}

impl Parser {
    fn new(text: &str) -> Parser {
        Parser {
            chars: text.chars().collect(),
            pos: 0,
        }
    }

    /// 1-based column of the current position.
    fn col(&self) -> usize {
        self.pos + 1
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn take_while(&mut self, f: impl Fn(char) -> bool) -> String {
        let start = self.pos;
        while self.peek().is_some_and(&f) {
            self.pos += 1;
        }
        self.chars[start..self.pos].iter().collect()
    }

    /// The rest of the current token, for messages.
    fn token_here(&self) -> String {
        let rest: String = self.chars[self.pos..]
            .iter()
            .take_while(|c| !c.is_whitespace())
            .collect();
        if rest.chars().count() > 20 {
            format!("{}...", rest.chars().take(20).collect::<String>())
        } else {
            rest
        }
    }

    fn expr(&mut self) -> Result<Expr, ExprError> {
        self.skip_ws();
        if self.peek().is_none() {
            return err(
                self.col(),
                "empty expression: expected SIGNAL OP NUMBER, e.g. 'error_rate > 5%'",
            );
        }
        let signal = self.signal()?;
        self.skip_ws();
        let op = self.op(&signal)?;
        self.skip_ws();
        let threshold = self.threshold(&signal)?;
        self.skip_ws();
        if self.peek().is_some() {
            return err(
                self.col(),
                format!(
                    "unexpected '{}' after the threshold; an expression is SIGNAL OP NUMBER[UNIT]",
                    self.token_here()
                ),
            );
        }
        Ok(Expr {
            signal,
            op,
            threshold,
        })
    }

    fn signal(&mut self) -> Result<Signal, ExprError> {
        let col = self.col();
        match self.peek() {
            Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
            _ => {
                return err(
                    col,
                    format!(
                        "expected a signal such as 'error_rate' or 'p99(latency)', found '{}'",
                        self.token_here()
                    ),
                );
            }
        }
        let name = self.take_while(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
        let after_name = self.pos;
        self.skip_ws();
        let args = if self.peek() == Some('(') {
            let open = self.col();
            self.pos += 1;
            Some(self.args(&name, open)?)
        } else {
            self.pos = after_name;
            None
        };

        if let Some(digits) = name
            .strip_prefix('p')
            .filter(|d| d.starts_with(|c: char| c.is_ascii_digit()))
        {
            let q = parse_quantile(digits, col, &name)?;
            let args = args.ok_or_else(|| ExprError {
                column: col,
                message: format!("'{name}' needs an argument: {name}(latency)"),
            })?;
            let arg = one_arg(&name, args, self.col())?;
            expect_simple(&name, &arg, &["latency"])?;
            return Ok(Signal::Quantile { q });
        }

        if let Some(bare) = BARE_SIGNALS.iter().find(|b| b.name == name) {
            if let Some(args) = args {
                let c = args.first().map_or(col + name.chars().count(), Arg::col);
                return err(c, format!("'{name}' takes no arguments"));
            }
            return Ok(bare.signal.clone());
        }

        let Some(function) = Function::from_name(&name) else {
            return err(
                col,
                format!(
                    "unknown signal '{name}'{}",
                    did_you_mean(&name, signal_names())
                ),
            );
        };
        let Some(args) = args else {
            return err(
                col,
                format!(
                    "'{name}' is a function and needs an argument, e.g. {}",
                    function.example()
                ),
            );
        };
        let end_col = self.col();
        match function {
            Function::Stat(FeatureStat::Mean) => {
                let arg = one_arg(&name, args, end_col)?;
                if let Some(sel) = feature_sel(&arg)? {
                    return Ok(Signal::FeatureStat {
                        stat: FeatureStat::Mean,
                        feature: sel,
                    });
                }
                if let Arg::Path {
                    head,
                    tail: Some(tail),
                    tail_col,
                    ..
                } = &arg
                    && head == "resource"
                {
                    return match tail {
                        Tail::Name(n) if n == "cpu" => Ok(Signal::ResourceMean(Resource::Cpu)),
                        Tail::Name(n) if n == "memory" => {
                            Ok(Signal::ResourceMean(Resource::Memory))
                        }
                        Tail::Name(n) => err(
                            *tail_col,
                            format!(
                                "unknown resource '{n}', expected 'cpu' or 'memory'{}",
                                did_you_mean(n, ["cpu", "memory"])
                            ),
                        ),
                        Tail::Star => err(
                            *tail_col,
                            "'resource.*' is not allowed; name 'resource.cpu' or 'resource.memory'",
                        ),
                    };
                }
                match expect_simple(
                    &name,
                    &arg,
                    &[
                        "latency",
                        "prediction",
                        "confidence",
                        "feature.NAME",
                        "resource.cpu",
                        "resource.memory",
                    ],
                )? {
                    "latency" => Ok(Signal::LatencyMean),
                    "prediction" => Ok(Signal::PredictionMean),
                    _ => Ok(Signal::ConfidenceMean),
                }
            }
            Function::Max => {
                let arg = one_arg(&name, args, end_col)?;
                expect_simple(&name, &arg, &["latency"])?;
                Ok(Signal::LatencyMax)
            }
            Function::Stat(stat) => {
                let arg = one_arg(&name, args, end_col)?;
                match feature_sel(&arg)? {
                    Some(feature) => Ok(Signal::FeatureStat { stat, feature }),
                    None => {
                        expect_simple(&name, &arg, &["feature.NAME", "feature.*"])?;
                        err(
                            arg.col(),
                            format!("{name}() takes a feature: feature.NAME or feature.*"),
                        )
                    }
                }
            }
            Function::Drift(method) => {
                let arg = one_arg(&name, args, end_col)?;
                if let Some(sel) = feature_sel(&arg)? {
                    return Ok(Signal::Drift {
                        method,
                        target: DriftTarget::Feature(sel),
                    });
                }
                expect_simple(&name, &arg, &["prediction", "feature.NAME", "feature.*"])?;
                Ok(Signal::Drift {
                    method,
                    target: DriftTarget::Prediction,
                })
            }
            Function::DriftPvalue(adjusted) => {
                if args.len() != 2 {
                    let c = args.get(2).map_or(end_col - 1, Arg::col);
                    return err(
                        c,
                        format!(
                            "{name}() takes 2 arguments (feature.NAME, feature.* or prediction, then a drift method), got {}",
                            args.len()
                        ),
                    );
                }
                let mut it = args.into_iter();
                let (Some(what), Some(how)) = (it.next(), it.next()) else {
                    return err(end_col, format!("{name}() takes 2 arguments"));
                };
                let target = match feature_sel(&what)? {
                    Some(sel) => DriftTarget::Feature(sel),
                    None => {
                        expect_simple(&name, &what, &["prediction", "feature.NAME", "feature.*"])?;
                        DriftTarget::Prediction
                    }
                };
                let methods = DriftMethod::ALL.map(DriftMethod::function);
                let method_name = expect_simple(&name, &how, &methods)?;
                let method = DriftMethod::ALL
                    .into_iter()
                    .find(|m| m.function() == method_name)
                    .expect("expect_simple returns one of the names");
                Ok(Signal::DriftPvalue {
                    method,
                    target,
                    adjusted,
                })
            }
            Function::ClassRate => {
                let arg = one_arg(&name, args, end_col)?;
                let class = match arg {
                    Arg::Quoted { text, col } => {
                        if text.is_empty() {
                            return err(col, "empty class name");
                        }
                        text
                    }
                    Arg::Path {
                        head, tail, col, ..
                    } => match tail {
                        None => head,
                        Some(Tail::Name(n)) => format!("{head}.{n}"),
                        Some(Tail::Star) => {
                            return err(
                                col,
                                "class_rate() takes one class name; '*' is not allowed",
                            );
                        }
                    },
                };
                Ok(Signal::ClassRate { class })
            }
            Function::Ratio => {
                if args.len() != 2 {
                    let c = args.get(2).map_or(end_col - 1, Arg::col);
                    return err(
                        c,
                        format!(
                            "ratio() takes 2 arguments (counter.A, counter.B), got {}",
                            args.len()
                        ),
                    );
                }
                let mut it = args.into_iter();
                let (Some(a), Some(b)) = (it.next(), it.next()) else {
                    return err(end_col, "ratio() takes 2 arguments");
                };
                let numerator = counter_name("ratio", &a)?;
                let denominator = counter_name("ratio", &b)?;
                Ok(Signal::CounterRatio {
                    numerator,
                    denominator,
                })
            }
            Function::Rate => {
                let arg = one_arg(&name, args, end_col)?;
                if let Arg::Path {
                    head,
                    tail: Some(tail),
                    tail_col,
                    ..
                } = &arg
                    && head == "log"
                {
                    return match tail {
                        Tail::Name(n) => {
                            match LogLevel::ALL.into_iter().find(|l| l.as_str() == n) {
                                Some(level) => Ok(Signal::LogRate { level }),
                                None => err(
                                    *tail_col,
                                    format!(
                                        "unknown log level '{n}', expected debug, info, warning, error or critical{}",
                                        did_you_mean(n, LogLevel::ALL.map(LogLevel::as_str))
                                    ),
                                ),
                            }
                        }
                        Tail::Star => err(
                            *tail_col,
                            "'log.*' is not allowed; name a level, e.g. log.error",
                        ),
                    };
                }
                Ok(Signal::CounterRate {
                    counter: counter_name("rate", &arg)?,
                })
            }
        }
    }

    /// Parses `arg, arg, ...)` after the opening parenthesis.
    fn args(&mut self, name: &str, open_col: usize) -> Result<Vec<Arg>, ExprError> {
        let mut args = Vec::new();
        self.skip_ws();
        if self.peek() == Some(')') {
            self.pos += 1;
            return Ok(args);
        }
        loop {
            self.skip_ws();
            args.push(self.arg()?);
            self.skip_ws();
            match self.peek() {
                Some(',') => self.pos += 1,
                Some(')') => {
                    self.pos += 1;
                    return Ok(args);
                }
                None => {
                    return err(
                        self.col(),
                        format!("missing ')' to close '{name}(' opened at column {open_col}"),
                    );
                }
                Some(c) => {
                    // `feature.mean radius`: a name with a space, unquoted.
                    if let (Some(Arg::Path { col, .. }), true) = (
                        args.last(),
                        is_name_start(c) && self.chars[self.pos - 1].is_whitespace(),
                    ) {
                        let start = col - 1;
                        let end = self.chars[start..]
                            .iter()
                            .position(|&c| c == ',' || c == ')')
                            .map_or(self.chars.len(), |n| start + n);
                        let written: String = self.chars[start..end].iter().collect();
                        let written = written.trim_end();
                        let quoted = match written.split_once('.') {
                            Some((head, tail)) => format!("{head}.\"{tail}\""),
                            None => format!("\"{written}\""),
                        };
                        return err(
                            self.col(),
                            format!(
                                "unexpected '{}' in the arguments of {name}(): a name with spaces must be quoted, e.g. {quoted}",
                                self.token_here()
                            ),
                        );
                    }
                    return err(
                        self.col(),
                        format!(
                            "unexpected '{}' in the arguments of {name}(); expected ',' or ')'",
                            self.token_here()
                        ),
                    );
                }
            }
        }
    }

    fn arg(&mut self) -> Result<Arg, ExprError> {
        let col = self.col();
        match self.peek() {
            Some(q @ ('"' | '\'')) => {
                let text = self.quoted(q)?;
                Ok(Arg::Quoted { text, col })
            }
            Some(c) if is_name_start(c) => {
                let head = self.take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'));
                if self.peek() != Some('.') {
                    return Ok(Arg::Path {
                        head,
                        tail: None,
                        col,
                        tail_col: self.col(),
                    });
                }
                self.pos += 1;
                let tail_col = self.col();
                let tail = match self.peek() {
                    Some('*') => {
                        self.pos += 1;
                        Tail::Star
                    }
                    Some(q @ ('"' | '\'')) => Tail::Name(self.quoted(q)?),
                    Some(c) if is_name_start(c) => {
                        Tail::Name(self.take_while(|c| {
                            c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')
                        }))
                    }
                    _ => {
                        return err(tail_col, format!("expected a name or '*' after '{head}.'"));
                    }
                };
                Ok(Arg::Path {
                    head,
                    tail: Some(tail),
                    col,
                    tail_col,
                })
            }
            None => err(col, "missing argument and ')'"),
            Some(c) => err(col, format!("expected an argument, found '{c}'")),
        }
    }

    /// A quoted string starting at the current quote char.
    fn quoted(&mut self, quote: char) -> Result<String, ExprError> {
        let start = self.col();
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.peek() {
                None => {
                    return err(
                        start,
                        format!("unterminated string: missing closing {quote}"),
                    );
                }
                Some('\\') => {
                    self.pos += 1;
                    match self.peek() {
                        Some(c @ ('\\' | '"' | '\'')) => {
                            out.push(c);
                            self.pos += 1;
                        }
                        _ => {
                            return err(
                                self.col(),
                                "invalid escape: only \\\\, \\\" and \\' are allowed",
                            );
                        }
                    }
                }
                Some(c) if c == quote => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    fn op(&mut self, signal: &Signal) -> Result<CmpOp, ExprError> {
        let col = self.col();
        let two: String = self.chars[self.pos..].iter().take(2).collect();
        let (op, len) = match two.as_str() {
            ">=" => (CmpOp::Ge, 2),
            "<=" => (CmpOp::Le, 2),
            "==" => (CmpOp::Eq, 2),
            "!=" => (CmpOp::Ne, 2),
            "=>" => return err(col, "unknown operator '=>', did you mean '>='?"),
            "=<" => return err(col, "unknown operator '=<', did you mean '<='?"),
            "<>" => return err(col, "unknown operator '<>', did you mean '!='?"),
            _ => match self.peek() {
                Some('>') => (CmpOp::Gt, 1),
                Some('<') => (CmpOp::Lt, 1),
                Some('=') => return err(col, "unknown operator '=', did you mean '=='?"),
                None => {
                    return err(
                        col,
                        format!(
                            "missing comparison operator after '{signal}': expected one of > >= < <= == !="
                        ),
                    );
                }
                Some(_) => {
                    return err(
                        col,
                        format!(
                            "expected a comparison operator (> >= < <= == !=) after '{signal}', found '{}'",
                            self.token_here()
                        ),
                    );
                }
            },
        };
        self.pos += len;
        Ok(op)
    }

    fn threshold(&mut self, signal: &Signal) -> Result<f64, ExprError> {
        let col = self.col();
        let mut text = String::new();
        if let Some(c @ ('-' | '+')) = self.peek() {
            text.push(c);
            self.pos += 1;
        }
        let int = self.take_while(|c| c.is_ascii_digit());
        text.push_str(&int);
        let mut frac = String::new();
        if self.peek() == Some('.') {
            self.pos += 1;
            frac = self.take_while(|c| c.is_ascii_digit());
            text.push('.');
            text.push_str(&frac);
        }
        if int.is_empty() && frac.is_empty() {
            self.pos = col - 1;
            if self.peek().is_none() {
                return err(
                    col,
                    "missing threshold: expected a number after the operator",
                );
            }
            return err(
                col,
                format!("expected a number, found '{}'", self.token_here()),
            );
        }
        // Exponent: only when 'e' is followed by digits (no unit starts with 'e').
        if matches!(self.peek(), Some('e' | 'E')) {
            let save = self.pos;
            let mut exp = String::from("e");
            self.pos += 1;
            if let Some(c @ ('-' | '+')) = self.peek() {
                exp.push(c);
                self.pos += 1;
            }
            let digits = self.take_while(|c| c.is_ascii_digit());
            if digits.is_empty() {
                self.pos = save;
            } else {
                exp.push_str(&digits);
                text.push_str(&exp);
            }
        }
        let value: f64 = match text.parse() {
            Ok(v) => v,
            Err(_) => return err(col, format!("invalid number '{text}'")),
        };
        if !value.is_finite() {
            return err(col, format!("number '{text}' is out of range"));
        }
        let number_end = self.pos;
        self.skip_ws();
        let unit_col = self.col();
        let unit = if self.peek() == Some('%') {
            self.pos += 1;
            "%".to_string()
        } else {
            self.take_while(|c| c.is_alphabetic())
        };
        if unit.is_empty() {
            if signal.value_kind() == ValueKind::Fraction && !(0.0..=1.0).contains(&value) {
                return err(
                    col,
                    format!(
                        "'{signal}' is a fraction between 0 and 1, so a threshold of {text} can never be crossed; did you mean {text}%?"
                    ),
                );
            }
            self.pos = number_end;
            return Ok(value);
        }
        let scaled = match unit.as_str() {
            "ms" => value / 1000.0,
            "s" => value,
            "m" => value * 60.0,
            "h" => value * 3600.0,
            "d" => value * 86400.0,
            "%" => value / 100.0,
            other => {
                let hint = match other {
                    "sec" | "secs" | "second" | "seconds" => ", did you mean 's'?".to_string(),
                    "min" | "mins" | "minute" | "minutes" => ", did you mean 'm'?".to_string(),
                    "hr" | "hrs" | "hour" | "hours" => ", did you mean 'h'?".to_string(),
                    "day" | "days" => ", did you mean 'd'?".to_string(),
                    "percent" | "pct" => ", did you mean '%'?".to_string(),
                    "us" | "ns" | "µs" => ", the smallest unit is 'ms'".to_string(),
                    "w" | "y" => ", write weeks and years in days ('d')".to_string(),
                    _ => did_you_mean(other, UNITS),
                };
                return err(
                    unit_col,
                    format!("unknown unit '{other}' (expected ms, s, m, h, d or %){hint}"),
                );
            }
        };
        let kind = signal.value_kind();
        if unit == "%" && kind != ValueKind::Fraction {
            return err(
                unit_col,
                format!(
                    "'%' makes no sense for '{signal}': it is not a fraction between 0 and 1; write a plain number"
                ),
            );
        }
        if unit != "%" && kind != ValueKind::Seconds {
            return err(
                unit_col,
                format!(
                    "duration unit '{unit}' makes no sense for '{signal}': durations apply only to latency, time_since_last_event and model_age{}",
                    if kind == ValueKind::Fraction {
                        "; for a fraction write a plain number or use %"
                    } else {
                        ""
                    }
                ),
            );
        }
        if !scaled.is_finite() {
            return err(col, format!("number '{text}{unit}' is out of range"));
        }
        Ok(scaled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::signal::FeatureSel;
    use crate::rules::signal::{DriftMethod, FeedbackMetric};

    fn named(n: &str) -> FeatureSel {
        FeatureSel::Named(n.to_string())
    }

    fn e(signal: Signal, op: CmpOp, threshold: f64) -> Expr {
        Expr {
            signal,
            op,
            threshold,
        }
    }

    /// Every row of the signal table, plus unit and whitespace variants.
    fn valid_cases() -> Vec<(&'static str, Expr)> {
        use CmpOp::*;
        use Signal::*;
        let fs = |stat, f: FeatureSel| FeatureStat { stat, feature: f };
        let drift = |method, target| Drift { method, target };
        vec![
            ("request_rate > 100", e(RequestRate, Gt, 100.0)),
            ("request_rate<0.5", e(RequestRate, Lt, 0.5)),
            ("error_rate > 5%", e(ErrorRate, Gt, 0.05)),
            ("error_rate >= 0.05", e(ErrorRate, Ge, 0.05)),
            ("p99(latency) > 500ms", e(Quantile { q: 0.99 }, Gt, 0.5)),
            ("p50(latency) <= 1s", e(Quantile { q: 0.5 }, Le, 1.0)),
            ("p95(latency) > 0.2", e(Quantile { q: 0.95 }, Gt, 0.2)),
            ("p99.9(latency) > 2s", e(Quantile { q: 0.999 }, Gt, 2.0)),
            ("p1(latency) < 1ms", e(Quantile { q: 0.01 }, Lt, 0.001)),
            (
                "  p99 ( latency )   >   500 ms  ",
                e(Quantile { q: 0.99 }, Gt, 0.5),
            ),
            ("mean(latency) > 1m", e(LatencyMean, Gt, 60.0)),
            ("max(latency) > 2h", e(LatencyMax, Gt, 7200.0)),
            (
                "time_since_last_event > 10m",
                e(TimeSinceLastEvent, Gt, 600.0),
            ),
            ("mean(prediction) > 0.7", e(PredictionMean, Gt, 0.7)),
            ("positive_rate > 15%", e(PositiveRate, Gt, 0.15)),
            (
                "class_rate(spam) > 40%",
                e(
                    ClassRate {
                        class: "spam".into(),
                    },
                    Gt,
                    0.4,
                ),
            ),
            (
                "class_rate(1) > 0.4",
                e(ClassRate { class: "1".into() }, Gt, 0.4),
            ),
            (
                "class_rate(\"not spam\") < 10%",
                e(
                    ClassRate {
                        class: "not spam".into(),
                    },
                    Lt,
                    0.1,
                ),
            ),
            (
                "class_rate('it\\'s') < 1",
                e(
                    ClassRate {
                        class: "it's".into(),
                    },
                    Lt,
                    1.0,
                ),
            ),
            ("mean(confidence) < 60%", e(ConfidenceMean, Lt, 0.6)),
            ("low_confidence_rate > 30%", e(LowConfidenceRate, Gt, 0.3)),
            (
                "mean(feature.amount) > 100",
                e(fs(self::FeatureStat::Mean, named("amount")), Gt, 100.0),
            ),
            (
                "mean(feature.*) > 100",
                e(fs(self::FeatureStat::Mean, FeatureSel::All), Gt, 100.0),
            ),
            (
                "stddev(feature.amount) > 3",
                e(fs(self::FeatureStat::Stddev, named("amount")), Gt, 3.0),
            ),
            (
                "zscore(feature.amount) < -3",
                e(fs(self::FeatureStat::Zscore, named("amount")), Lt, -3.0),
            ),
            (
                "zscore(feature.*) > +3",
                e(fs(self::FeatureStat::Zscore, FeatureSel::All), Gt, 3.0),
            ),
            (
                "missing_rate(feature.*) > 5%",
                e(
                    fs(self::FeatureStat::MissingRate, FeatureSel::All),
                    Gt,
                    0.05,
                ),
            ),
            (
                "invalid_rate(feature.user.age) > 1%",
                e(
                    fs(self::FeatureStat::InvalidRate, named("user.age")),
                    Gt,
                    0.01,
                ),
            ),
            (
                "mean(feature.\"unit price\") > 1",
                e(fs(self::FeatureStat::Mean, named("unit price")), Gt, 1.0),
            ),
            (
                "mean(feature.x-1) > 1e3",
                e(fs(self::FeatureStat::Mean, named("x-1")), Gt, 1000.0),
            ),
            (
                "psi(feature.*) > 0.25",
                e(
                    drift(DriftMethod::Psi, DriftTarget::Feature(FeatureSel::All)),
                    Gt,
                    0.25,
                ),
            ),
            (
                "ks(feature.age) > 0.1",
                e(
                    drift(DriftMethod::Ks, DriftTarget::Feature(named("age"))),
                    Gt,
                    0.1,
                ),
            ),
            (
                "js(feature.*) > 0.1",
                e(
                    drift(DriftMethod::Js, DriftTarget::Feature(FeatureSel::All)),
                    Gt,
                    0.1,
                ),
            ),
            (
                "wasserstein(feature.amount) > 12.5",
                e(
                    drift(
                        DriftMethod::Wasserstein,
                        DriftTarget::Feature(named("amount")),
                    ),
                    Gt,
                    12.5,
                ),
            ),
            (
                "chi2_pvalue(feature.country) < 1%",
                e(
                    drift(
                        DriftMethod::Chi2Pvalue,
                        DriftTarget::Feature(named("country")),
                    ),
                    Lt,
                    0.01,
                ),
            ),
            (
                "psi(prediction) > 0.2",
                e(drift(DriftMethod::Psi, DriftTarget::Prediction), Gt, 0.2),
            ),
            (
                "ks(prediction) > 0.2",
                e(drift(DriftMethod::Ks, DriftTarget::Prediction), Gt, 0.2),
            ),
            (
                "js(prediction) > 0.2",
                e(drift(DriftMethod::Js, DriftTarget::Prediction), Gt, 0.2),
            ),
            (
                "wasserstein(prediction) > 0.2",
                e(
                    drift(DriftMethod::Wasserstein, DriftTarget::Prediction),
                    Gt,
                    0.2,
                ),
            ),
            (
                "chi2_pvalue(prediction) < 0.01",
                e(
                    drift(DriftMethod::Chi2Pvalue, DriftTarget::Prediction),
                    Lt,
                    0.01,
                ),
            ),
            (
                "accuracy < 80%",
                e(Feedback(FeedbackMetric::Accuracy), Lt, 0.8),
            ),
            (
                "precision < 0.8",
                e(Feedback(FeedbackMetric::Precision), Lt, 0.8),
            ),
            ("recall < 70%", e(Feedback(FeedbackMetric::Recall), Lt, 0.7)),
            ("mae > 3.5", e(Feedback(FeedbackMetric::Mae), Gt, 3.5)),
            ("rmse > 4", e(Feedback(FeedbackMetric::Rmse), Gt, 4.0)),
            ("model_age > 30d", e(ModelAge, Gt, 2_592_000.0)),
            (
                "ratio(counter.clicks, counter.impressions) < 1.5%",
                e(
                    CounterRatio {
                        numerator: "clicks".into(),
                        denominator: "impressions".into(),
                    },
                    Lt,
                    0.015,
                ),
            ),
            (
                "ratio( counter.a ,counter.b ) == 1",
                e(
                    CounterRatio {
                        numerator: "a".into(),
                        denominator: "b".into(),
                    },
                    Eq,
                    1.0,
                ),
            ),
            (
                "rate(counter.orders) < 0.1",
                e(
                    CounterRate {
                        counter: "orders".into(),
                    },
                    Lt,
                    0.1,
                ),
            ),
            (
                "rate(log.error) > 1",
                e(
                    LogRate {
                        level: LogLevel::Error,
                    },
                    Gt,
                    1.0,
                ),
            ),
            (
                "rate(log.debug) != 0",
                e(
                    LogRate {
                        level: LogLevel::Debug,
                    },
                    Ne,
                    0.0,
                ),
            ),
            (
                "rate(log.info) > 1",
                e(
                    LogRate {
                        level: LogLevel::Info,
                    },
                    Gt,
                    1.0,
                ),
            ),
            (
                "rate(log.warning) > 1",
                e(
                    LogRate {
                        level: LogLevel::Warning,
                    },
                    Gt,
                    1.0,
                ),
            ),
            (
                "rate(log.critical) > 0",
                e(
                    LogRate {
                        level: LogLevel::Critical,
                    },
                    Gt,
                    0.0,
                ),
            ),
            (
                "mean(resource.cpu) > 90%",
                e(ResourceMean(Resource::Cpu), Gt, 0.9),
            ),
            (
                "mean(resource.memory) > 0.8",
                e(ResourceMean(Resource::Memory), Gt, 0.8),
            ),
        ]
    }

    #[test]
    fn valid_expressions_parse() {
        for (text, want) in valid_cases() {
            let got = Expr::parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
            assert_eq!(got, want, "{text:?}");
        }
    }

    #[test]
    fn display_round_trips_for_the_whole_table() {
        for (text, _) in valid_cases() {
            let Ok(parsed) = Expr::parse(text) else {
                continue;
            };
            let shown = parsed.to_string();
            let back =
                Expr::parse(&shown).unwrap_or_else(|e| panic!("{shown:?} (from {text:?}): {e}"));
            assert_eq!(back, parsed, "{text:?} -> {shown:?}");
            // Canonical form is a fixed point.
            assert_eq!(back.to_string(), shown);
        }
    }

    #[test]
    fn canonical_forms() {
        let cases = [
            ("p99 ( latency )>500ms", "p99(latency) > 0.5s"),
            ("p99.9(latency) > 2s", "p99.9(latency) > 2s"),
            ("error_rate>5%", "error_rate > 0.05"),
            ("model_age > 30d", "model_age > 2592000s"),
            (
                "mean(feature.\"unit price\") > 1",
                "mean(feature.\"unit price\") > 1",
            ),
            ("class_rate('a\"b') > 1", "class_rate(\"a\\\"b\") > 1"),
            ("psi(feature.*)>0.25", "psi(feature.*) > 0.25"),
        ];
        for (text, want) in cases {
            assert_eq!(
                Expr::parse(text).map(|e| e.to_string()),
                Ok(want.to_string()),
                "{text:?}"
            );
        }
    }

    #[test]
    fn class_names_with_a_dot_not_followed_by_a_name_round_trip() {
        for class in ["_.-", "a.", "a..b", "a.-b", "a.b", "a.b.", "a-.b"] {
            let e = Expr {
                signal: Signal::ClassRate {
                    class: class.into(),
                },
                op: CmpOp::Gt,
                threshold: 0.0,
            };
            let shown = e.to_string();
            assert_eq!(Expr::parse(&shown), Ok(e), "{shown}");
        }
        let shown = Expr::parse("class_rate(\"a.\") > 0").unwrap().to_string();
        assert_eq!(shown, "class_rate(\"a.\") > 0");
    }

    #[test]
    fn quantile_display_is_exact_for_many_quantiles() {
        for digits in [
            "1", "5", "10", "25", "33.3", "50", "75", "90", "95", "99", "99.5", "99.9", "99.99",
            "99.999",
        ] {
            let text = format!("p{digits}(latency) > 1s");
            let parsed = Expr::parse(&text).expect("valid");
            assert_eq!(parsed.to_string(), text);
        }
    }

    #[test]
    fn names_are_stable() {
        let cases = [
            ("p99(latency) > 1", "p99_latency"),
            ("p99.9(latency) > 1", "p99_9_latency"),
            ("error_rate > 1", "error_rate"),
            ("psi(feature.*) > 1", "psi"),
            ("psi(prediction) > 1", "prediction_psi"),
            ("mean(feature.a) > 1", "feature_mean"),
            ("missing_rate(feature.a) > 1", "missing_rate"),
            ("mean(resource.cpu) > 1", "mean_cpu"),
            ("rate(log.error) > 1", "log_rate"),
            ("ratio(counter.a, counter.b) > 1", "counter_ratio"),
        ];
        for (text, name) in cases {
            assert_eq!(
                Expr::parse(text).expect("valid").signal.name(),
                name,
                "{text}"
            );
        }
        // Every name is snake_case.
        for (text, _) in valid_cases() {
            let Ok(expr) = Expr::parse(text) else {
                continue;
            };
            let name = expr.signal.name();
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{name}"
            );
        }
    }

    #[test]
    fn per_feature_and_eval() {
        assert!(
            Expr::parse("psi(feature.*) > 0.2")
                .expect("valid")
                .signal
                .is_per_feature()
        );
        assert!(
            Expr::parse("missing_rate(feature.*) > 0.2")
                .expect("valid")
                .signal
                .is_per_feature()
        );
        assert!(
            !Expr::parse("psi(feature.age) > 0.2")
                .expect("valid")
                .signal
                .is_per_feature()
        );
        assert!(
            !Expr::parse("psi(prediction) > 0.2")
                .expect("valid")
                .signal
                .is_per_feature()
        );
        assert!(
            !Expr::parse("error_rate > 0.2")
                .expect("valid")
                .signal
                .is_per_feature()
        );

        let x = Expr::parse("p99(latency) > 500ms").expect("valid");
        assert!(x.eval(0.6));
        assert!(!x.eval(0.5));
        assert!(!x.eval(f64::NAN));
        let ops = [
            ("> 1", [false, false, true]),
            (">= 1", [false, true, true]),
            ("< 1", [true, false, false]),
            ("<= 1", [true, true, false]),
            ("== 1", [false, true, false]),
            ("!= 1", [true, false, true]),
        ];
        for (op, want) in ops {
            let x = Expr::parse(&format!("mae {op}")).expect("valid");
            assert_eq!([x.eval(0.0), x.eval(1.0), x.eval(2.0)], want, "{op}");
        }
    }

    #[test]
    fn errors_are_located_and_specific() {
        // (input, column, fragment of the message)
        let cases: &[(&str, usize, &str)] = &[
            ("", 1, "empty expression"),
            ("   ", 4, "empty expression"),
            (
                "p99(latncy) > 500ms",
                5,
                "unknown argument 'latncy' for p99(), expected latency, did you mean 'latency'?",
            ),
            (
                "p99(latency)",
                13,
                "missing comparison operator after 'p99(latency)'",
            ),
            ("p99(latency) 5", 14, "expected a comparison operator"),
            ("error_rate = 5%", 12, "did you mean '=='?"),
            ("error_rate => 5%", 12, "did you mean '>='?"),
            ("error_rate <> 5%", 12, "did you mean '!='?"),
            ("error_rate >", 13, "missing threshold"),
            ("error_rate > abc", 14, "expected a number, found 'abc'"),
            ("error_rate > .", 14, "expected a number"),
            ("error_rate > 1e999", 14, "out of range"),
            (
                "error_rate > 5",
                14,
                "'error_rate' is a fraction between 0 and 1, so a threshold of 5 can never be crossed; did you mean 5%?",
            ),
            (
                "missing_rate(feature.age) < -0.5",
                29,
                "did you mean -0.5%?",
            ),
            (
                "psi(feature.mean radius) > 0.2",
                18,
                "unexpected 'radius)' in the arguments of psi(): a name with spaces must be quoted, e.g. feature.\"mean radius\"",
            ),
            ("p99(latency) > 5 mn", 18, "unknown unit 'mn'"),
            (
                "p99(latency) > 5min",
                17,
                "unknown unit 'min' (expected ms, s, m, h, d or %), did you mean 'm'?",
            ),
            ("p99(latency) > 5sec", 17, "did you mean 's'?"),
            ("p99(latency) > 5w", 17, "in days"),
            (
                "error_rate > 500ms",
                17,
                "duration unit 'ms' makes no sense for 'error_rate'",
            ),
            (
                "request_rate > 5%",
                17,
                "'%' makes no sense for 'request_rate'",
            ),
            ("rate(counter.a) > 5%", 20, "'%' makes no sense"),
            ("p99(latency) > 5%", 17, "'%' makes no sense"),
            (
                "error_rate > 5% extra",
                17,
                "unexpected 'extra' after the threshold",
            ),
            ("error_rate > 0.05 5", 19, "unexpected '5'"),
            ("p0(latency) > 1", 1, "quantile 'p0' is out of range"),
            ("p100(latency) > 1", 1, "quantile 'p100' is out of range"),
            ("p100.5(latency) > 1", 1, "out of range"),
            ("p99.(latency) > 1", 1, "invalid quantile 'p99.'"),
            ("p9.9.9(latency) > 1", 1, "invalid quantile"),
            ("p99 > 1", 1, "'p99' needs an argument: p99(latency)"),
            (
                "p99(latency, latency) > 1",
                14,
                "p99() takes 1 argument, got 2",
            ),
            ("p99() > 1", 5, "p99() takes 1 argument, got none"),
            (
                "eror_rate > 5%",
                1,
                "unknown signal 'eror_rate', did you mean 'error_rate'?",
            ),
            ("latency > 1s", 1, "unknown signal 'latency'"),
            ("stdev(feature.a) > 1", 1, "did you mean 'stddev'?"),
            ("3 > 1", 1, "expected a signal"),
            ("error_rate(x) > 1", 12, "'error_rate' takes no arguments"),
            (
                "mean > 1",
                1,
                "'mean' is a function and needs an argument, e.g. mean(latency)",
            ),
            ("mean(latencyy) > 1", 6, "did you mean 'latency'?"),
            (
                "mean(resource.cpuu) > 1",
                15,
                "unknown resource 'cpuu', expected 'cpu' or 'memory', did you mean 'cpu'?",
            ),
            ("mean(resource.*) > 1", 15, "'resource.*' is not allowed"),
            (
                "mean(feature) > 1",
                6,
                "expected 'feature.NAME' or 'feature.*'",
            ),
            (
                "mean(feature.) > 1",
                14,
                "expected a name or '*' after 'feature.'",
            ),
            (
                "max(feature.a) > 1",
                5,
                "unknown argument 'feature.a' for max(), expected latency",
            ),
            (
                "stddev(latency) > 1",
                8,
                "unknown argument 'latency' for stddev(), expected feature.NAME, feature.*",
            ),
            ("psi(predictoin) > 1", 5, "did you mean 'prediction'?"),
            (
                "ratio(feature.*, counter.b) > 1",
                15,
                "'feature.*' is not allowed in ratio()",
            ),
            (
                "ratio(counter.*, counter.b) > 1",
                15,
                "'counter.*' is not allowed",
            ),
            (
                "ratio(feature.a, counter.b) > 1",
                7,
                "ratio() takes counters, not features",
            ),
            ("ratio(counter.a) > 1", 16, "ratio() takes 2 arguments"),
            (
                "ratio(counter.a, counter.b, counter.c) > 1",
                29,
                "ratio() takes 2 arguments (counter.A, counter.B), got 3",
            ),
            (
                "ratio(countr.a, counter.b) > 1",
                7,
                "did you mean 'counter'?",
            ),
            ("rate(log.warn) > 1", 10, "unknown log level 'warn'"),
            ("rate(log.eror) > 1", 10, "did you mean 'error'?"),
            ("rate(log.*) > 1", 10, "'log.*' is not allowed"),
            (
                "rate(errors) > 1",
                6,
                "unknown argument 'errors' for rate(), expected counter.NAME or log.LEVEL",
            ),
            (
                "rate(counter.a > 1",
                16,
                "unexpected '>' in the arguments of rate()",
            ),
            (
                "rate(counter.a",
                15,
                "missing ')' to close 'rate(' opened at column 5",
            ),
            ("class_rate(\"spam) > 1", 12, "unterminated string"),
            ("class_rate('it''s') < 1", 16, "unexpected"),
            ("class_rate(\"\") > 1", 12, "empty class name"),
            ("class_rate(a\\b) > 1", 13, "unexpected"),
            ("mean(,) > 1", 6, "expected an argument, found ','"),
            ("mean(", 6, "missing argument"),
        ];
        for &(text, column, fragment) in cases {
            match Expr::parse(text) {
                Ok(x) => panic!("{text:?} parsed as {x:?}"),
                Err(e) => {
                    assert!(
                        e.message.contains(fragment),
                        "{text:?}: message {:?} lacks {fragment:?}",
                        e.message
                    );
                    assert_eq!(e.column, column, "{text:?}: {}", e.message);
                }
            }
        }
    }

    #[test]
    fn columns_count_chars_not_bytes() {
        let e = Expr::parse("class_rate(\"é\") > 5 zz").expect_err("trailing");
        assert_eq!(e.column, 21);
        assert_eq!(
            e.to_string(),
            "1:21: unknown unit 'zz' (expected ms, s, m, h, d or %)"
        );
    }

    #[test]
    fn no_panic_on_odd_input() {
        let inputs = [
            "((((",
            ")",
            "p",
            "p.",
            "p9",
            "p99(",
            "p99(latency",
            "\"",
            "feature.*",
            "mean(feature.'",
            "rate(log.)",
            "é > 1",
            "error_rate > -",
            "error_rate > 1e",
            "error_rate > 1e+",
            "error_rate > 5 %%",
        ];
        for text in inputs {
            let _ = Expr::parse(text);
        }
        // "1e" without exponent digits is 1 followed by an unknown unit "e".
        assert!(Expr::parse("mae > 1e").is_err());
    }
}
