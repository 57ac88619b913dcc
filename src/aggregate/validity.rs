//! Validity of feature values: how one value compares with what rules.yaml
//! expects of the feature (`min`, `max`, `categories`, a numeric reference).
//! (Prediction quality, from joined labels, is [`quality`](super::quality).)

use crate::config::FeatureSpec;
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

/// Checks `value` against `spec` (no spec: anything present is valid).
pub fn validate(value: &FeatureValue, spec: Option<&FeatureSpec>) -> Validity {
    let numeric = match value {
        FeatureValue::Missing => return Validity::Missing,
        FeatureValue::Number(x) => Some(*x),
        FeatureValue::Bool(b) => Some(f64::from(u8::from(*b))),
        FeatureValue::Category(_) => None,
    };
    let Some(spec) = spec else {
        return Validity::Valid(numeric);
    };
    if let Some(cats) = &spec.categories {
        return match value {
            FeatureValue::Category(c) if cats.iter().any(|k| k == c) => Validity::Valid(None),
            FeatureValue::Category(_) => Validity::Invalid(InvalidReason::UnseenCategory, None),
            _ => Validity::Invalid(InvalidReason::WrongType, numeric),
        };
    }
    let expects_number = spec.min.is_some() || spec.max.is_some() || spec.mean.is_some();
    match numeric {
        None if expects_number => Validity::Invalid(InvalidReason::WrongType, None),
        Some(x) if spec.min.is_some_and(|m| x < m) || spec.max.is_some_and(|m| x > m) => {
            Validity::Invalid(InvalidReason::OutOfRange, Some(x))
        }
        n => Validity::Valid(n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml_like: (Option<f64>, Option<f64>, Option<Vec<&str>>)) -> FeatureSpec {
        FeatureSpec {
            min: yaml_like.0,
            max: yaml_like.1,
            categories: yaml_like
                .2
                .map(|v| v.into_iter().map(String::from).collect()),
            ..FeatureSpec::default()
        }
    }

    #[test]
    fn verdicts() {
        use FeatureValue as F;
        use InvalidReason::*;
        let range = spec((Some(0.0), Some(120.0), None));
        let cats = spec((None, None, Some(vec!["DE", "FR"])));
        let cases: &[(F, Option<&FeatureSpec>, Validity)] = &[
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
        ];
        for (v, s, want) in cases {
            assert_eq!(validate(v, *s), *want, "{v:?} against {s:?}");
        }
    }
}
