//! Prediction quality: the labelled pairs of a slice of time, and the
//! `accuracy`, `precision`, `recall`, `mae` and `rmse` signals they answer.
//!
//! [`QualitySlice`] accumulates (prediction, actual) pairs, as the label join
//! ([`join`](super::join)) hands them over, per slice of time; merged over a
//! window it answers the feedback signals. How a pair counts is decided pair
//! by pair: see [`QualitySlice`].

use crate::ingest::event::Outcome;
use crate::rules::signal::FeedbackMetric;
use crate::stats::F64;
use crate::stats::window::{Slice, SliceState, StateError};

/// Labels that mean the positive class (compared ignoring ASCII case, after
/// [`canonical_label`]); `true` and numbers equal to 1 become `"1"`.
pub const POSITIVE_LABELS: [&str; 3] = ["1", "positive", "yes"];

/// A label in canonical form: a number, or text compared as it is.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Label<'a> {
    Num(f64),
    Text(&'a str),
}

impl<'a> Label<'a> {
    fn of(o: &'a Outcome) -> Label<'a> {
        match o {
            Outcome::Number(x) => Label::Num(*x),
            Outcome::Class(s) => {
                let t = s.trim();
                if t.eq_ignore_ascii_case("true") {
                    Label::Num(1.0)
                } else if t.eq_ignore_ascii_case("false") {
                    Label::Num(0.0)
                } else {
                    match t.parse::<f64>() {
                        Ok(x) if x.is_finite() => Label::Num(x),
                        _ => Label::Text(t),
                    }
                }
            }
        }
    }

    /// Whether it is 0 or 1.
    fn is_binary(self) -> bool {
        matches!(self, Label::Num(x) if x == 0.0 || x == 1.0)
    }

    fn is_positive(self) -> bool {
        match self {
            Label::Num(x) => x == 1.0,
            Label::Text(t) => POSITIVE_LABELS.iter().any(|p| p.eq_ignore_ascii_case(t)),
        }
    }
}

/// The canonical text of a label, used to compare predictions with actuals:
/// surrounding whitespace is trimmed; text that parses as a finite number is
/// taken as that number (`"1.0"`, `" 1 "` and `1` all become `"1"`, `"0.50"`
/// becomes `"0.5"`, `-0` becomes `"0"`); `true` and `false` (any case) become
/// `"1"` and `"0"`. Other labels are kept as they are (case matters: `Cat` is
/// not `cat`). Two labels match when their canonical texts are equal.
pub fn canonical_label(o: &Outcome) -> String {
    match Label::of(o) {
        // Also -0.
        Label::Num(0.0) => "0".to_owned(),
        // `Display` for f64 is the shortest text that reads back the same and
        // prints integral values without a fraction ("1", not "1.0").
        Label::Num(x) => format!("{x}"),
        Label::Text(t) => t.to_owned(),
    }
}

/// How [`QualitySlice::record`] took a pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PairKind {
    /// Counted for accuracy, precision and recall.
    Classification,
    /// Counted for mae and rmse.
    Regression,
    /// Not counted (a non-finite number).
    Ignored,
}

/// Prediction quality of the labelled pairs of one slice of time.
///
/// # Classification or regression
///
/// Decided per pair:
///
/// * number vs number: **classification** when the actual is 0 or 1 and the
///   prediction lies in `[0, 1]` (a score or a 0/1 label); the prediction is
///   thresholded: positive (1) when `>= positive_threshold`. Otherwise
///   **regression**, with error `prediction − actual`. (A regression model
///   whose true values can be exactly 0 or 1 with predictions in `[0, 1]`
///   has those pairs counted as classification.)
/// * a class label on either side: **classification**. Both sides are
///   compared as [`canonical_label`]s; a numeric prediction in `[0, 1]`
///   facing an actual whose label is `"0"` or `"1"` (`0`, `1`, `true`,
///   `false`, …) is thresholded first, as above.
///
/// # Metrics
///
/// * `accuracy = correct / n_class`
/// * `precision = tp / (tp + fp)`, `recall = tp / (tp + fn)`, where the
///   positive class is a label in [`POSITIVE_LABELS`] (so `1`, `1.0`, `true`,
///   `positive`, `yes`). Multi-class labels with no positive class count for
///   accuracy only.
/// * `mae = Σ|e| / n_reg`, `rmse = √(Σe² / n_reg)`
///
/// Each is `None` when its denominator is zero; [`QualitySlice::samples_for`]
/// gives the denominator, for `min_samples`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct QualitySlice {
    /// Pairs taken as classification.
    pub n_class: u64,
    /// Of those, predicted class equal to the actual class.
    pub correct: u64,
    /// Predicted positive, actually positive.
    pub tp: u64,
    /// Predicted positive, actually negative.
    pub fp: u64,
    /// Predicted negative, actually positive.
    pub fn_: u64,
    /// Pairs taken as regression.
    pub n_reg: u64,
    /// Sum of absolute errors of the regression pairs.
    pub abs_err_sum: f64,
    /// Sum of squared errors of the regression pairs.
    pub sq_err_sum: f64,
}

impl QualitySlice {
    /// Records one (prediction, actual) pair; see the type's documentation
    /// for how it is taken.
    pub fn record(
        &mut self,
        prediction: &Outcome,
        actual: &Outcome,
        positive_threshold: f64,
    ) -> PairKind {
        if let (Outcome::Number(p), Outcome::Number(a)) = (prediction, actual)
            && !(p.is_finite() && a.is_finite())
        {
            return PairKind::Ignored;
        }
        let score = |x: f64| (0.0..=1.0).contains(&x);
        let threshold = |p: f64| Label::Num(if p >= positive_threshold { 1.0 } else { 0.0 });
        let act = Label::of(actual);
        let pred = match (prediction, act) {
            (Outcome::Number(p), act) if score(*p) && act.is_binary() => threshold(*p),
            (Outcome::Number(p), Label::Num(a)) if matches!(actual, Outcome::Number(_)) => {
                let e = p - a;
                self.n_reg += 1;
                self.abs_err_sum += e.abs();
                self.sq_err_sum += e * e;
                return PairKind::Regression;
            }
            _ => Label::of(prediction),
        };
        if matches!(pred, Label::Num(x) if !x.is_finite())
            || matches!(act, Label::Num(x) if !x.is_finite())
        {
            return PairKind::Ignored;
        }
        self.n_class += 1;
        if pred == act {
            self.correct += 1;
        }
        match (pred.is_positive(), act.is_positive()) {
            (true, true) => self.tp += 1,
            (true, false) => self.fp += 1,
            (false, true) => self.fn_ += 1,
            (false, false) => {}
        }
        PairKind::Classification
    }

    /// Share of classification pairs predicted right.
    pub fn accuracy(&self) -> Option<f64> {
        ratio(self.correct, self.n_class)
    }

    /// Share of positive predictions that were positive.
    pub fn precision(&self) -> Option<f64> {
        ratio(self.tp, self.tp.saturating_add(self.fp))
    }

    /// Share of positives that were predicted positive.
    pub fn recall(&self) -> Option<f64> {
        ratio(self.tp, self.tp.saturating_add(self.fn_))
    }

    /// Mean absolute error of the regression pairs.
    pub fn mae(&self) -> Option<f64> {
        (self.n_reg > 0).then(|| self.abs_err_sum / self.n_reg as f64)
    }

    /// Root mean squared error of the regression pairs.
    pub fn rmse(&self) -> Option<f64> {
        (self.n_reg > 0).then(|| (self.sq_err_sum / self.n_reg as f64).max(0.0).sqrt())
    }

    /// The value of `metric`.
    pub fn value(&self, metric: FeedbackMetric) -> Option<f64> {
        match metric {
            FeedbackMetric::Accuracy => self.accuracy(),
            FeedbackMetric::Precision => self.precision(),
            FeedbackMetric::Recall => self.recall(),
            FeedbackMetric::Mae => self.mae(),
            FeedbackMetric::Rmse => self.rmse(),
        }
    }

    /// The number of pairs `metric` is computed from (its denominator):
    /// `n_class` for accuracy, `tp + fp` for precision, `tp + fn` for recall,
    /// `n_reg` for mae and rmse.
    pub fn samples_for(&self, metric: FeedbackMetric) -> u64 {
        match metric {
            FeedbackMetric::Accuracy => self.n_class,
            FeedbackMetric::Precision => self.tp.saturating_add(self.fp),
            FeedbackMetric::Recall => self.tp.saturating_add(self.fn_),
            FeedbackMetric::Mae | FeedbackMetric::Rmse => self.n_reg,
        }
    }
}

fn ratio(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

/// `[n_class, correct, tp, fp, fn, n_reg, abs_err_sum, sq_err_sum]`.
pub type QualityState = (u64, u64, u64, u64, u64, u64, F64, F64);

impl SliceState for QualitySlice {
    type State = QualityState;

    fn to_state(&self) -> Option<QualityState> {
        (*self != QualitySlice::default()).then_some((
            self.n_class,
            self.correct,
            self.tp,
            self.fp,
            self.fn_,
            self.n_reg,
            F64(self.abs_err_sum),
            F64(self.sq_err_sum),
        ))
    }

    fn from_state(s: QualityState) -> Result<Self, StateError> {
        let (n_class, correct, tp, fp, fn_, n_reg, abs, sq) = s;
        if correct > n_class || tp.saturating_add(fp).saturating_add(fn_) > n_class {
            return Err(StateError::Exceeds {
                total: n_class,
                what: "classified pairs",
            });
        }
        Ok(QualitySlice {
            n_class,
            correct,
            tp,
            fp,
            fn_,
            n_reg,
            abs_err_sum: abs.0,
            sq_err_sum: sq.0,
        })
    }
}

impl Slice for QualitySlice {
    fn merge_from(&mut self, other: &Self) {
        self.n_class = self.n_class.saturating_add(other.n_class);
        self.correct = self.correct.saturating_add(other.correct);
        self.tp = self.tp.saturating_add(other.tp);
        self.fp = self.fp.saturating_add(other.fp);
        self.fn_ = self.fn_.saturating_add(other.fn_);
        self.n_reg = self.n_reg.saturating_add(other.n_reg);
        self.abs_err_sum += other.abs_err_sum;
        self.sq_err_sum += other.sq_err_sum;
    }

    fn clear(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::window::SlidingWindow;
    use std::time::Duration;

    fn num(x: f64) -> Outcome {
        Outcome::Number(x)
    }

    fn class(s: &str) -> Outcome {
        Outcome::Class(s.to_owned())
    }

    #[test]
    fn canonical_labels() {
        assert_eq!(canonical_label(&num(1.0)), "1");
        assert_eq!(canonical_label(&num(-0.0)), "0");
        assert_eq!(canonical_label(&num(0.25)), "0.25");
        assert_eq!(canonical_label(&class(" 1.0 ")), "1");
        assert_eq!(canonical_label(&class("0.50")), "0.5");
        assert_eq!(canonical_label(&class("TRUE")), "1");
        assert_eq!(canonical_label(&class("false")), "0");
        assert_eq!(canonical_label(&class("Cat")), "Cat");
        assert_eq!(canonical_label(&class("NaN")), "NaN");
        assert_eq!(canonical_label(&class("")), "");
    }

    #[test]
    fn classification_and_regression_are_told_apart() {
        let mut q = QualitySlice::default();
        use PairKind::*;
        let t = 0.5;
        assert_eq!(q.record(&num(0.8), &num(1.0), t), Classification);
        assert_eq!(q.record(&num(1.0), &num(0.0), t), Classification);
        assert_eq!(q.record(&num(0.3), &num(2.0), t), Regression);
        assert_eq!(q.record(&num(1.5), &num(1.0), t), Regression);
        assert_eq!(q.record(&class("cat"), &class("cat"), t), Classification);
        assert_eq!(q.record(&num(1.0), &class("1.0"), t), Classification);
        assert_eq!(q.record(&num(0.9), &class("true"), t), Classification);
        assert_eq!(q.record(&class("1"), &num(1.0), t), Classification);
        assert_eq!(q.record(&num(f64::NAN), &num(1.0), t), Ignored);
        assert_eq!(q.record(&class("x"), &num(f64::INFINITY), t), Ignored);
        assert_eq!((q.n_class, q.n_reg), (6, 2));
        // 0.8→1 vs 1 ✓, 1→1 vs 0 ✗, cat ✓, 1 vs 1 ✓, 0.9→1 vs 1 ✓, 1 vs 1 ✓.
        assert_eq!(q.correct, 5);
        assert_eq!((q.tp, q.fp, q.fn_), (4, 1, 0));
    }

    #[test]
    fn metrics_on_a_small_table() {
        // prediction score, actual; threshold 0.5.
        let table = [
            (0.9, 1.0), // tp
            (0.6, 1.0), // tp
            (0.7, 0.0), // fp
            (0.2, 1.0), // fn
            (0.1, 0.0), // tn
            (0.4, 0.0), // tn
            (0.5, 1.0), // tp (threshold is inclusive)
            (0.3, 0.0), // tn
        ];
        let mut q = QualitySlice::default();
        for (p, a) in table {
            q.record(&num(p), &num(a), 0.5);
        }
        assert_eq!((q.tp, q.fp, q.fn_, q.correct, q.n_class), (3, 1, 1, 6, 8));
        assert_eq!(q.accuracy(), Some(0.75));
        assert_eq!(q.precision(), Some(0.75));
        assert_eq!(q.recall(), Some(0.75));
        assert_eq!(q.mae(), None);
        assert_eq!(q.samples_for(FeedbackMetric::Precision), 4);
        assert_eq!(q.samples_for(FeedbackMetric::Recall), 4);
        // A different threshold changes the classes.
        let mut q9 = QualitySlice::default();
        for (p, a) in table {
            q9.record(&num(p), &num(a), 0.8);
        }
        assert_eq!((q9.tp, q9.fp, q9.fn_), (1, 0, 3));
        assert_eq!(q9.precision(), Some(1.0));
        assert_eq!(q9.recall(), Some(0.25));

        // Regression: errors 1, -2, 0, 3 → mae 1.5, rmse √(14/4).
        let mut r = QualitySlice::default();
        for (p, a) in [(11.0, 10.0), (3.0, 5.0), (7.0, 7.0), (103.0, 100.0)] {
            assert_eq!(r.record(&num(p), &num(a), 0.5), PairKind::Regression);
        }
        assert_eq!(r.mae(), Some(1.5));
        assert_eq!(r.rmse(), Some(3.5f64.sqrt()));
        assert_eq!(r.accuracy(), None);
        assert_eq!(r.precision(), None);
        assert_eq!(r.samples_for(FeedbackMetric::Rmse), 4);
        assert_eq!(r.value(FeedbackMetric::Mae), Some(1.5));

        // Multi-class labels: accuracy only.
        let mut m = QualitySlice::default();
        for (p, a) in [("cat", "cat"), ("dog", "cat"), ("bird", "bird")] {
            m.record(&class(p), &class(a), 0.5);
        }
        assert_eq!(m.accuracy(), Some(2.0 / 3.0));
        assert_eq!(m.precision(), None);
        assert_eq!(m.recall(), None);
    }

    #[test]
    fn quality_slices_merge_over_a_window() {
        let mut w =
            SlidingWindow::<QualitySlice>::new(Duration::from_secs(10), Duration::from_secs(60));
        let mut whole = QualitySlice::default();
        for i in 0..60 {
            let (p, a) = if i % 3 == 0 {
                (num(0.9), num(1.0))
            } else if i % 3 == 1 {
                (num(0.9), num(0.0))
            } else {
                (num(i as f64), num(i as f64 + 2.0))
            };
            w.current_mut(1000.0 + i as f64).record(&p, &a, 0.5);
            whole.record(&p, &a, 0.5);
        }
        let mut m = QualitySlice::default();
        w.merged(1059.0, Duration::from_secs(60), &mut m);
        assert_eq!(m, whole);
        assert_eq!(m.accuracy(), Some(0.5));
        assert_eq!(m.mae(), Some(2.0));
        assert_eq!(m.rmse(), Some(2.0));
        m.clear();
        assert_eq!(m, QualitySlice::default());
    }
}
