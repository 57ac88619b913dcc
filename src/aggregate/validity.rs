//! Validity of feature values: how one value compares with what is expected
//! of the feature ([`Expectation`]: rules.yaml's `min`, `max`,
//! `categories` or numeric reference, else the baseline's type, range and
//! categories; see [`crate::config::expect`]).
//! (Prediction quality, from joined labels, is [`quality`](super::quality).)

use crate::config::{Expectation, Expected};
use crate::ingest::event::FeatureValue;

/// Why a value is invalid: the `reason` label of `model_feature_invalid_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvalidReason {
    /// A string where a number is expected, or a number where a category is.
    WrongType,
    /// A number outside `[min, max]`.
    OutOfRange,
    /// A category not in `categories`.
    UnseenCategory,
}

impl InvalidReason {
    /// Every reason, in label order.
    pub const ALL: [InvalidReason; 3] = [
        InvalidReason::WrongType,
        InvalidReason::OutOfRange,
        InvalidReason::UnseenCategory,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            InvalidReason::WrongType => "wrong_type",
            InvalidReason::OutOfRange => "out_of_range",
            InvalidReason::UnseenCategory => "unseen_category",
        }
    }
}

/// The verdict on one feature value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Validity {
    /// As expected; the numeric value (bools as 0/1) when there is one.
    Valid(Option<f64>),
    /// `null`, or a required feature that was not sent.
    Missing,
    /// Present but not as expected; the numeric value when there is one.
    Invalid(InvalidReason, Option<f64>),
}

/// Checks `value` against `expect` (none: anything present is valid).
pub fn validate(value: &FeatureValue, expect: Option<&Expectation>) -> Validity {
    let numeric = match value {
        FeatureValue::Missing => return Validity::Missing,
        FeatureValue::Number(x) => Some(*x),
        FeatureValue::Bool(b) => Some(f64::from(u8::from(*b))),
        FeatureValue::Category(_) => None,
    };
    match (expect.map(|e| &e.expected), value, numeric) {
        (None | Some(Expected::Anything), _, n) => Validity::Valid(n),
        (Some(Expected::Category { known }), FeatureValue::Category(c), _) => {
            if known.as_ref().is_none_or(|k| k.contains(c.as_str())) {
                Validity::Valid(None)
            } else {
                Validity::Invalid(InvalidReason::UnseenCategory, None)
            }
        }
        (Some(Expected::Category { .. }), _, n) => Validity::Invalid(InvalidReason::WrongType, n),
        (Some(Expected::Number { .. }), _, None) => {
            Validity::Invalid(InvalidReason::WrongType, None)
        }
        (Some(Expected::Number { min, max }), _, Some(x)) => {
            if min.is_some_and(|m| x < m) || max.is_some_and(|m| x > m) {
                Validity::Invalid(InvalidReason::OutOfRange, Some(x))
            } else {
                Validity::Valid(Some(x))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn number(min: Option<f64>, max: Option<f64>) -> Expectation {
        Expectation {
            expected: Expected::Number { min, max },
            required: None,
        }
    }

    fn category(known: Option<&[&str]>) -> Expectation {
        Expectation {
            expected: Expected::Category {
                known: known.map(|k| k.iter().map(|s| s.to_string()).collect()),
            },
            required: None,
        }
    }

    #[test]
    fn verdicts() {
        use FeatureValue as F;
        use InvalidReason::*;
        let range = number(Some(0.0), Some(120.0));
        let cats = category(Some(&["DE", "FR"]));
        let open = category(None);
        let any_number = number(None, None);
        let cases: &[(F, Option<&Expectation>, Validity)] = &[
            (F::Number(5.0), None, Validity::Valid(Some(5.0))),
            (F::Category("x".into()), None, Validity::Valid(None)),
            (F::Missing, Some(&range), Validity::Missing),
            (F::Number(35.0), Some(&range), Validity::Valid(Some(35.0))),
            (F::Number(120.0), Some(&range), Validity::Valid(Some(120.0))),
            (
                F::Number(-1.0),
                Some(&range),
                Validity::Invalid(OutOfRange, Some(-1.0)),
            ),
            (
                F::Number(121.0),
                Some(&range),
                Validity::Invalid(OutOfRange, Some(121.0)),
            ),
            (F::Bool(true), Some(&range), Validity::Valid(Some(1.0))),
            (
                F::Category("35".into()),
                Some(&range),
                Validity::Invalid(WrongType, None),
            ),
            (F::Category("DE".into()), Some(&cats), Validity::Valid(None)),
            (
                F::Category("US".into()),
                Some(&cats),
                Validity::Invalid(UnseenCategory, None),
            ),
            (
                F::Number(1.0),
                Some(&cats),
                Validity::Invalid(WrongType, Some(1.0)),
            ),
            (F::Category("XX".into()), Some(&open), Validity::Valid(None)),
            (
                F::Bool(false),
                Some(&open),
                Validity::Invalid(WrongType, Some(0.0)),
            ),
            (
                F::Number(-1e9),
                Some(&any_number),
                Validity::Valid(Some(-1e9)),
            ),
            (
                F::Category("1".into()),
                Some(&any_number),
                Validity::Invalid(WrongType, None),
            ),
            (F::Missing, None, Validity::Missing),
        ];
        for (v, s, want) in cases {
            assert_eq!(validate(v, *s), *want, "{v:?} against {s:?}");
        }
    }
}
