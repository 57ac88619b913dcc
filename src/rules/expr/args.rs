//! The arguments of a signal's function, checked: a quantile's digits, a
//! single argument, a simple name, a feature selector, a counter's name.
//! Split from [`expr`](super) to keep the parser's file to its grammar.

use super::{Arg, ExprError, Tail, err};
use crate::rules::signal::FeatureSel;
use crate::rules::suggest::did_you_mean;

pub(super) fn parse_quantile(digits: &str, col: usize, name: &str) -> Result<f64, ExprError> {
    let valid = {
        let mut parts = digits.splitn(2, '.');
        let int = parts.next().unwrap_or("");
        let frac = parts.next();
        !int.is_empty()
            && int.chars().all(|c| c.is_ascii_digit())
            && frac.is_none_or(|f| !f.is_empty() && f.chars().all(|c| c.is_ascii_digit()))
    };
    if !valid {
        return err(
            col,
            format!("invalid quantile '{name}': write pNN or pNN.N, e.g. p99 or p99.9"),
        );
    }
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let int = int.trim_start_matches('0');
    let out_of_range = || {
        err(
            col,
            format!("quantile '{name}' is out of range: it must be above p0 and below p100"),
        )
    };
    if int.len() > 2 {
        return out_of_range();
    }
    // Shift the decimal point two places so that the value is the exact
    // nearest double to the decimal written (p99.9 -> 0.999, not 99.9 / 100).
    let text = format!("0.{int:0>2}{frac}");
    match text.parse::<f64>() {
        Ok(q) if q > 0.0 && q < 1.0 => Ok(q),
        Ok(_) => out_of_range(),
        Err(_) => err(col, format!("invalid quantile '{name}'")),
    }
}

pub(super) fn one_arg(name: &str, args: Vec<Arg>, end_col: usize) -> Result<Arg, ExprError> {
    let n = args.len();
    let mut it = args.into_iter();
    match (it.next(), it.next()) {
        (Some(a), None) => Ok(a),
        (None, _) => err(end_col - 1, format!("{name}() takes 1 argument, got none")),
        (Some(_), Some(b)) => err(b.col(), format!("{name}() takes 1 argument, got {n}")),
    }
}

/// Checks that `arg` is one of the simple words in `allowed`; entries with a
/// dot are only offered as suggestions.
pub(super) fn expect_simple(
    name: &str,
    arg: &Arg,
    allowed: &[&'static str],
) -> Result<&'static str, ExprError> {
    let written = arg.describe();
    if let Arg::Path { tail: None, .. } = arg
        && let Some(found) = allowed.iter().find(|a| **a == written)
    {
        return Ok(found);
    }
    let expected = allowed.join(", ");
    err(
        arg.col(),
        format!(
            "unknown argument '{written}' for {name}(), expected {expected}{}",
            did_you_mean(&written, allowed.iter().copied())
        ),
    )
}

/// `feature.X` / `feature.*` -> Some(sel); other args -> None.
pub(super) fn feature_sel(arg: &Arg) -> Result<Option<FeatureSel>, ExprError> {
    match arg {
        Arg::Path {
            head,
            tail: Some(tail),
            ..
        } if head == "feature" => Ok(Some(match tail {
            Tail::Star => FeatureSel::All,
            Tail::Name(n) => FeatureSel::Named(n.clone()),
        })),
        Arg::Path {
            head,
            tail: None,
            col,
            ..
        } if head == "feature" => err(
            *col,
            "expected 'feature.NAME' or 'feature.*', found 'feature'",
        ),
        _ => Ok(None),
    }
}

pub(super) fn counter_name(func: &str, arg: &Arg) -> Result<String, ExprError> {
    match arg {
        Arg::Path {
            head,
            tail: Some(Tail::Name(n)),
            ..
        } if head == "counter" => {
            if n.is_empty() {
                err(arg.col(), "empty counter name")
            } else {
                Ok(n.clone())
            }
        }
        Arg::Path {
            head,
            tail: Some(Tail::Star),
            tail_col,
            ..
        } if head == "counter" => err(
            *tail_col,
            format!("'counter.*' is not allowed in {func}(); name one counter"),
        ),
        Arg::Path {
            head,
            tail: Some(Tail::Star),
            tail_col,
            ..
        } if head == "feature" => err(
            *tail_col,
            format!(
                "'feature.*' is not allowed in {func}(); {func}() takes counters: counter.NAME"
            ),
        ),
        Arg::Path { head, col, .. } if head == "feature" => err(
            *col,
            format!("{func}() takes counters, not features: counter.NAME"),
        ),
        _ => {
            let written = arg.describe();
            let expected = if func == "rate" {
                "counter.NAME or log.LEVEL"
            } else {
                "counter.NAME"
            };
            let hint = match arg {
                Arg::Path {
                    head,
                    tail: Some(_),
                    ..
                } => {
                    let heads: &[&str] = if func == "rate" {
                        &["counter", "log"]
                    } else {
                        &["counter"]
                    };
                    did_you_mean(head, heads.iter().copied())
                }
                _ => String::new(),
            };
            err(
                arg.col(),
                format!("unknown argument '{written}' for {func}(), expected {expected}{hint}"),
            )
        }
    }
}
