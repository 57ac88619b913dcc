//! The signal vocabulary of the alert expressions: what a rule can measure
//! ([`Signal`] and its parts), how each signal is written, and what its
//! value measures ([`ValueKind`]). The parser is in [`expr`](super::expr).
//!
//! The signals written without arguments are listed once, in
//! [`BARE_SIGNALS`]; the functions (`mean`, `psi`, ...) in [`Function`].

use std::fmt;

/// Which features a per-feature signal looks at.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FeatureSel {
    /// `feature.*`: every feature the model has sent; one evaluation each.
    All,
    /// `feature.NAME`: one feature.
    Named(String),
}

/// A statistic over one feature's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FeatureStat {
    /// `mean(feature.X)`
    Mean,
    /// `stddev(feature.X)`
    Stddev,
    /// `zscore(feature.X)`: window mean against the reference, in reference std.
    Zscore,
    /// `missing_rate(feature.X)`: fraction of events where it is null/absent.
    MissingRate,
    /// `invalid_rate(feature.X)`: fraction with wrong type, out of range or
    /// an unseen category.
    InvalidRate,
    /// `out_of_range_rate(feature.X)`: fraction of numbers outside the
    /// expected range (rules.yaml's `min`/`max`, else the baseline's).
    OutOfRangeRate,
    /// `unseen_rate(feature.X)`: fraction of categories not among the
    /// expected ones (rules.yaml's `categories`, else the baseline's).
    UnseenRate,
}

impl FeatureStat {
    /// The function name in the expression language.
    pub fn function(self) -> &'static str {
        match self {
            FeatureStat::Mean => "mean",
            FeatureStat::Stddev => "stddev",
            FeatureStat::Zscore => "zscore",
            FeatureStat::MissingRate => "missing_rate",
            FeatureStat::InvalidRate => "invalid_rate",
            FeatureStat::OutOfRangeRate => "out_of_range_rate",
            FeatureStat::UnseenRate => "unseen_rate",
        }
    }

    /// Whether it is a share of the feature's events (data quality) rather
    /// than a statistic of its values.
    pub fn is_rate(self) -> bool {
        !matches!(
            self,
            FeatureStat::Mean | FeatureStat::Stddev | FeatureStat::Zscore
        )
    }
}

pub use crate::stats::drift::DriftMethod;

/// What a drift function measures.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DriftTarget {
    /// `psi(feature.X)` / `psi(feature.*)`
    Feature(FeatureSel),
    /// `psi(prediction)`
    Prediction,
}

/// A metric computed from joined feedback (ground truth).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FeedbackMetric {
    /// `accuracy`
    Accuracy,
    /// `precision`
    Precision,
    /// `recall`
    Recall,
    /// `mae` (mean absolute error)
    Mae,
    /// `rmse` (root mean squared error)
    Rmse,
}

/// Log levels, as in `rate(log.LEVEL)`: the event protocol's levels.
pub use crate::ingest::event::LogLevel;

/// A resource of the model server for `mean(resource.X)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resource {
    /// `resource.cpu`
    Cpu,
    /// `resource.memory`
    Memory,
}

impl Resource {
    /// The resource's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Resource::Cpu => "cpu",
            Resource::Memory => "memory",
        }
    }
}

/// What a signal's value measures, which decides the units a threshold may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValueKind {
    /// Seconds: duration units (`ms s m h d`) allowed.
    Seconds,
    /// A fraction between 0 and 1: `%` allowed.
    Fraction,
    /// Anything else (per-second rates, statistics, distances): bare numbers only.
    Number,
}

/// A signal computed over a rule's window.
#[derive(Debug, Clone, PartialEq)]
pub enum Signal {
    /// `request_rate`: requests per second.
    RequestRate,
    /// `error_rate`: errors / requests.
    ErrorRate,
    /// `pNN(latency)`: latency quantile in seconds; `q` in (0, 1), e.g. 0.99.
    Quantile {
        /// The quantile, strictly between 0 and 1.
        q: f64,
    },
    /// `mean(latency)` in seconds.
    LatencyMean,
    /// `max(latency)` in seconds.
    LatencyMax,
    /// `time_since_last_event`: seconds since the model last sent anything.
    TimeSinceLastEvent,
    /// `mean(prediction)`
    PredictionMean,
    /// `positive_rate`: fraction of predictions at or above the positive threshold.
    PositiveRate,
    /// `class_rate(NAME)`: fraction of predictions of that class.
    ClassRate {
        /// The class name.
        class: String,
    },
    /// `mean(confidence)`
    ConfidenceMean,
    /// `low_confidence_rate`: fraction of answers below the low-confidence threshold.
    LowConfidenceRate,
    /// `mean|stddev|zscore|missing_rate|invalid_rate(feature.X)`
    FeatureStat {
        /// The statistic.
        stat: FeatureStat,
        /// The feature(s).
        feature: FeatureSel,
    },
    /// `psi|ks|js|wasserstein|chi2_pvalue(feature.X | prediction)`
    Drift {
        /// The drift measure.
        method: DriftMethod,
        /// What drifts.
        target: DriftTarget,
    },
    /// `drift_pvalue(feature.X | prediction, METHOD)` and
    /// `drift_pvalue_adjusted(…)`: the p-value of a drift method's value
    /// under no drift, at the window's and the reference's sizes
    /// ([`crate::stats::significance`]); adjusted, Holm's adjustment across
    /// the model version's features.
    DriftPvalue {
        /// The drift measure whose significance is read.
        method: DriftMethod,
        /// What drifts.
        target: DriftTarget,
        /// Holm-adjusted across the version's features.
        adjusted: bool,
    },
    /// `accuracy`, `precision`, `recall`, `mae`, `rmse`
    Feedback(FeedbackMetric),
    /// `model_age`: seconds since the loaded version was trained.
    ModelAge,
    /// `ratio(counter.A, counter.B)`: increase of A / increase of B.
    CounterRatio {
        /// Counter A.
        numerator: String,
        /// Counter B.
        denominator: String,
    },
    /// `rate(counter.A)`: per-second increase.
    CounterRate {
        /// The counter.
        counter: String,
    },
    /// `rate(log.LEVEL)`: log events per second at that level.
    LogRate {
        /// The level.
        level: LogLevel,
    },
    /// `mean(resource.cpu|memory)`: utilisation ratio.
    ResourceMean(Resource),
}

impl Signal {
    /// True when the rule is evaluated once per feature (`feature.*`).
    pub fn is_per_feature(&self) -> bool {
        matches!(
            self,
            Signal::FeatureStat {
                feature: FeatureSel::All,
                ..
            } | Signal::Drift {
                target: DriftTarget::Feature(FeatureSel::All),
                ..
            } | Signal::DriftPvalue {
                target: DriftTarget::Feature(FeatureSel::All),
                ..
            }
        )
    }

    /// The feature selection, for signals about features.
    pub fn feature(&self) -> Option<&FeatureSel> {
        match self {
            Signal::FeatureStat { feature, .. } => Some(feature),
            Signal::Drift {
                target: DriftTarget::Feature(feature),
                ..
            }
            | Signal::DriftPvalue {
                target: DriftTarget::Feature(feature),
                ..
            } => Some(feature),
            _ => None,
        }
    }

    /// What the value measures (decides the units a threshold may use).
    pub fn value_kind(&self) -> ValueKind {
        if let Some(bare) = self.bare() {
            return bare.kind;
        }
        match self {
            Signal::Quantile { .. } | Signal::LatencyMean | Signal::LatencyMax => {
                ValueKind::Seconds
            }
            Signal::ClassRate { .. }
            | Signal::ConfidenceMean
            | Signal::CounterRatio { .. }
            | Signal::ResourceMean(_)
            | Signal::Drift {
                method: DriftMethod::Chi2Pvalue,
                ..
            }
            | Signal::DriftPvalue { .. } => ValueKind::Fraction,
            Signal::FeatureStat { stat, .. } if stat.is_rate() => ValueKind::Fraction,
            _ => ValueKind::Number,
        }
    }

    /// A stable snake_case name of the kind of signal, usable as a metric
    /// label value. Arguments (feature, counter, class names) are not part of
    /// it; they belong in their own labels.
    pub fn name(&self) -> String {
        match self {
            Signal::Quantile { q } => format!("p{}_latency", quantile_digits(*q).replace('.', "_")),
            Signal::LatencyMean => "mean_latency".into(),
            Signal::LatencyMax => "max_latency".into(),
            Signal::PredictionMean => "mean_prediction".into(),
            Signal::ClassRate { .. } => "class_rate".into(),
            Signal::ConfidenceMean => "mean_confidence".into(),
            Signal::FeatureStat { stat, .. } => match stat {
                FeatureStat::Mean => "feature_mean".into(),
                FeatureStat::Stddev => "feature_stddev".into(),
                FeatureStat::Zscore => "feature_zscore".into(),
                rate => rate.function().into(),
            },
            Signal::Drift { method, target } => match target {
                DriftTarget::Feature(_) => method.function().into(),
                DriftTarget::Prediction => format!("prediction_{}", method.function()),
            },
            Signal::DriftPvalue {
                method,
                target,
                adjusted,
            } => {
                let what = match target {
                    DriftTarget::Feature(_) => "",
                    DriftTarget::Prediction => "prediction_",
                };
                let adjusted = if *adjusted { "_adjusted" } else { "" };
                format!("{what}{}_pvalue{adjusted}", method.function())
            }
            Signal::CounterRatio { .. } => "counter_ratio".into(),
            Signal::CounterRate { .. } => "counter_rate".into(),
            Signal::LogRate { .. } => "log_rate".into(),
            Signal::ResourceMean(r) => format!("mean_{}", r.as_str()),
            // Written without arguments: named as written.
            _ => self.to_string(),
        }
    }

    /// The entry of a signal written without arguments in [`BARE_SIGNALS`];
    /// `None` for a signal with arguments.
    pub fn bare(&self) -> Option<&'static BareSignal> {
        BARE_SIGNALS.iter().find(|b| b.signal == *self)
    }
}

/// A signal written without arguments: its name in an expression (also its
/// [`Signal::name`]) and what its value measures.
#[derive(Debug)]
pub struct BareSignal {
    /// The name, e.g. `error_rate`.
    pub name: &'static str,
    /// The signal.
    pub signal: Signal,
    /// What its value measures.
    pub kind: ValueKind,
}

/// Every signal written without arguments, in the order they are offered as
/// suggestions.
pub static BARE_SIGNALS: [BareSignal; 11] = [
    bare_signal("request_rate", Signal::RequestRate, ValueKind::Number),
    bare_signal("error_rate", Signal::ErrorRate, ValueKind::Fraction),
    bare_signal(
        "time_since_last_event",
        Signal::TimeSinceLastEvent,
        ValueKind::Seconds,
    ),
    bare_signal("positive_rate", Signal::PositiveRate, ValueKind::Fraction),
    bare_signal(
        "low_confidence_rate",
        Signal::LowConfidenceRate,
        ValueKind::Fraction,
    ),
    bare_signal(
        "accuracy",
        Signal::Feedback(FeedbackMetric::Accuracy),
        ValueKind::Fraction,
    ),
    bare_signal(
        "precision",
        Signal::Feedback(FeedbackMetric::Precision),
        ValueKind::Fraction,
    ),
    bare_signal(
        "recall",
        Signal::Feedback(FeedbackMetric::Recall),
        ValueKind::Fraction,
    ),
    bare_signal(
        "mae",
        Signal::Feedback(FeedbackMetric::Mae),
        ValueKind::Number,
    ),
    bare_signal(
        "rmse",
        Signal::Feedback(FeedbackMetric::Rmse),
        ValueKind::Number,
    ),
    bare_signal("model_age", Signal::ModelAge, ValueKind::Seconds),
];

const fn bare_signal(name: &'static str, signal: Signal, kind: ValueKind) -> BareSignal {
    BareSignal { name, signal, kind }
}

/// A function of the expression language, besides the quantiles `pNN`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    /// A statistic: `mean` (of latency, prediction, confidence, a resource or
    /// a feature) and the feature statistics `stddev`, `zscore`,
    /// `missing_rate`, `invalid_rate`, `out_of_range_rate`, `unseen_rate`.
    Stat(FeatureStat),
    /// `max(latency)`
    Max,
    /// A drift measure: `psi`, `ks`, `js`, `wasserstein`, `chi2_pvalue`.
    Drift(DriftMethod),
    /// `drift_pvalue(feature.X, METHOD)`; `true`: `drift_pvalue_adjusted`.
    DriftPvalue(bool),
    /// `class_rate(NAME)`
    ClassRate,
    /// `ratio(counter.A, counter.B)`
    Ratio,
    /// `rate(counter.A)` or `rate(log.LEVEL)`
    Rate,
}

impl Function {
    /// Every function, in the order they are offered as suggestions.
    pub const ALL: [Function; 18] = [
        Function::Stat(FeatureStat::Mean),
        Function::Max,
        Function::Stat(FeatureStat::Stddev),
        Function::Stat(FeatureStat::Zscore),
        Function::Stat(FeatureStat::MissingRate),
        Function::Stat(FeatureStat::InvalidRate),
        Function::Stat(FeatureStat::OutOfRangeRate),
        Function::Stat(FeatureStat::UnseenRate),
        Function::Drift(DriftMethod::Psi),
        Function::Drift(DriftMethod::Ks),
        Function::Drift(DriftMethod::Js),
        Function::Drift(DriftMethod::Wasserstein),
        Function::Drift(DriftMethod::Chi2Pvalue),
        Function::DriftPvalue(false),
        Function::DriftPvalue(true),
        Function::ClassRate,
        Function::Ratio,
        Function::Rate,
    ];

    /// The function's name in an expression.
    pub fn name(self) -> &'static str {
        match self {
            Function::Stat(stat) => stat.function(),
            Function::Max => "max",
            Function::Drift(method) => method.function(),
            Function::DriftPvalue(false) => "drift_pvalue",
            Function::DriftPvalue(true) => "drift_pvalue_adjusted",
            Function::ClassRate => "class_rate",
            Function::Ratio => "ratio",
            Function::Rate => "rate",
        }
    }

    /// A typical call, shown when the function is written without one.
    pub fn example(self) -> &'static str {
        match self {
            Function::Stat(FeatureStat::Mean) => "mean(latency)",
            Function::Stat(FeatureStat::Stddev) => "stddev(feature.amount)",
            Function::Stat(FeatureStat::Zscore) => "zscore(feature.amount)",
            Function::Stat(FeatureStat::MissingRate) => "missing_rate(feature.*)",
            Function::Stat(FeatureStat::InvalidRate) => "invalid_rate(feature.*)",
            Function::Stat(FeatureStat::OutOfRangeRate) => "out_of_range_rate(feature.*)",
            Function::Stat(FeatureStat::UnseenRate) => "unseen_rate(feature.country)",
            Function::Max => "max(latency)",
            Function::Drift(DriftMethod::Psi) => "psi(feature.*)",
            Function::Drift(DriftMethod::Ks) => "ks(feature.*)",
            Function::Drift(DriftMethod::Js) => "js(feature.*)",
            Function::Drift(DriftMethod::Wasserstein) => "wasserstein(feature.*)",
            Function::Drift(DriftMethod::Chi2Pvalue) => "chi2_pvalue(feature.*)",
            Function::DriftPvalue(false) => "drift_pvalue(feature.*, psi)",
            Function::DriftPvalue(true) => "drift_pvalue_adjusted(feature.*, psi)",
            Function::ClassRate => "class_rate(spam)",
            Function::Ratio => "ratio(counter.clicks, counter.impressions)",
            Function::Rate => "rate(counter.orders)",
        }
    }

    /// The function named `name`.
    pub fn from_name(name: &str) -> Option<Function> {
        Function::ALL.into_iter().find(|f| f.name() == name)
    }
}

/// The names offered as suggestions for an unknown signal: the bare
/// signals, the functions and the common quantiles.
pub fn signal_names() -> impl Iterator<Item = &'static str> {
    BARE_SIGNALS
        .iter()
        .map(|b| b.name)
        .chain(Function::ALL.map(Function::name))
        .chain(["p50", "p90", "p95", "p99"])
}

/// The digits of a quantile as written after `p`: 0.99 -> "99", 0.999 -> "99.9".
/// Shifts the decimal point of the shortest representation of `q`, so the
/// text parses back (with the parser's `parse_quantile`) to exactly `q`.
fn quantile_digits(q: f64) -> String {
    let shown = format!("{q}");
    let Some(frac) = shown.strip_prefix("0.") else {
        return format!("{}", q * 100.0);
    };
    let mut int: String = frac.chars().take(2).collect();
    while int.len() < 2 {
        int.push('0');
    }
    let int = int.trim_start_matches('0');
    let int = if int.is_empty() { "0" } else { int };
    let rest: String = frac.chars().skip(2).collect();
    if rest.is_empty() {
        int.to_string()
    } else {
        format!("{int}.{rest}")
    }
}

/// True when `name` can be written without quotes and reads back as itself.
/// An unquoted argument is read as a head, then after its first `.` a tail
/// that must start with a letter, digit or `_`, so `a.` or `a.-b` need quotes.
fn is_plain_name(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphanumeric() || c == '_' => {}
        _ => return false,
    }
    if let Some((_, tail)) = name.split_once('.')
        && !tail.starts_with(is_name_start)
    {
        return false;
    }
    chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Displays a name unquoted when it can be ([`is_plain_name`]), else quoted
/// with `\\` and `\"` escaped.
pub(crate) struct NameDisplay<'a>(pub(crate) &'a str);

impl fmt::Display for NameDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if is_plain_name(self.0) {
            return f.write_str(self.0);
        }
        f.write_str("\"")?;
        for c in self.0.chars() {
            if c == '"' || c == '\\' {
                f.write_str("\\")?;
            }
            write!(f, "{c}")?;
        }
        f.write_str("\"")
    }
}

impl fmt::Display for FeatureSel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FeatureSel::All => f.write_str("feature.*"),
            FeatureSel::Named(n) => write!(f, "feature.{}", NameDisplay(n)),
        }
    }
}

/// The signal as written in an expression; it parses back to itself.
impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(bare) = self.bare() {
            return f.write_str(bare.name);
        }
        match self {
            Signal::Quantile { q } => write!(f, "p{}(latency)", quantile_digits(*q)),
            Signal::LatencyMean => f.write_str("mean(latency)"),
            Signal::LatencyMax => f.write_str("max(latency)"),
            Signal::PredictionMean => f.write_str("mean(prediction)"),
            Signal::ClassRate { class } => write!(f, "class_rate({})", NameDisplay(class)),
            Signal::ConfidenceMean => f.write_str("mean(confidence)"),
            Signal::FeatureStat { stat, feature } => write!(f, "{}({feature})", stat.function()),
            Signal::Drift { method, target } => match target {
                DriftTarget::Feature(sel) => write!(f, "{}({sel})", method.function()),
                DriftTarget::Prediction => write!(f, "{}(prediction)", method.function()),
            },
            Signal::DriftPvalue {
                method,
                target,
                adjusted,
            } => {
                let function = Function::DriftPvalue(*adjusted).name();
                let method = method.function();
                match target {
                    DriftTarget::Feature(sel) => write!(f, "{function}({sel}, {method})"),
                    DriftTarget::Prediction => write!(f, "{function}(prediction, {method})"),
                }
            }
            Signal::CounterRatio {
                numerator,
                denominator,
            } => write!(
                f,
                "ratio(counter.{}, counter.{})",
                NameDisplay(numerator),
                NameDisplay(denominator)
            ),
            Signal::CounterRate { counter } => write!(f, "rate(counter.{})", NameDisplay(counter)),
            Signal::LogRate { level } => write!(f, "rate(log.{})", level.as_str()),
            Signal::ResourceMean(r) => write!(f, "mean(resource.{})", r.as_str()),
            // Written without arguments: shown above, from the table.
            _ => Ok(()),
        }
    }
}

/// True for a char that may start a name (or the part after its first `.`).
pub(crate) fn is_name_start(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_bare_signal_is_named_once_and_read_from_the_table() {
        let mut names = std::collections::BTreeSet::new();
        for b in &BARE_SIGNALS {
            assert!(names.insert(b.name), "{} twice", b.name);
            assert_eq!(b.signal.bare().map(|e| e.name), Some(b.name));
            assert_eq!(b.signal.to_string(), b.name);
            assert_eq!(b.signal.name(), b.name);
            assert_eq!(b.signal.value_kind(), b.kind);
            assert_eq!(Function::from_name(b.name), None, "{}", b.name);
        }
        for f in Function::ALL {
            assert_eq!(Function::from_name(f.name()), Some(f));
            assert!(f.example().starts_with(&format!("{}(", f.name())), "{f:?}");
        }
        assert_eq!(
            signal_names().count(),
            BARE_SIGNALS.len() + Function::ALL.len() + 4
        );
    }
}
