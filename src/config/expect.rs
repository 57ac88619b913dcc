//! The data-quality expectations of a model's features: what every value is
//! checked against (`invalid_rate`, `out_of_range_rate`, `unseen_rate`,
//! `missing_rate`; docs/rules.md, "Data quality").
//!
//! They come from rules.yaml's `features` and from the model's baseline
//! file, facet by facet, the explicit keys winning:
//!
//! | facet | from rules.yaml | else from the baseline |
//! |---|---|---|
//! | type | `categories` → text; `min`, `max`, `mean` or `std` → numbers | its `type` |
//! | range | `min` and/or `max`, when either is given | its `min` and `max` (numeric features) |
//! | categories | `categories` | its categories, when they are all the training data had (`other` is 0) |
//! | absent counts as missing | `required: true` | every feature the baseline describes |
//!
//! A baseline keeps only the top K categories of a feature and folds the
//! rest into `other`: when `other` is above 0, a category it does not list
//! may well have been seen in training, so no category is unseen for that
//! feature. Features the baseline describes were absent from training rows
//! only as missing values (its `missing_rate` counts them), so live events
//! without them count them as missing, which keeps `missing_rate` comparable
//! with the baseline's.
//!
//! [`Expectations::of_model`] is computed once per load of the rules, not
//! per event.

use std::collections::HashSet;

use super::types::{FeatureSpec, ModelConfig};
use crate::baseline::format::FeatureBaseline;

/// What the values of a feature should be.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Expected {
    /// Anything present is valid.
    #[default]
    Anything,
    /// Numbers (booleans count as 0 and 1), within `[min, max]` where given.
    Number {
        /// Smallest valid value.
        min: Option<f64>,
        /// Largest valid value.
        max: Option<f64>,
    },
    /// Text: one of `known` when that is given, any text otherwise.
    Category {
        /// The valid categories; `None`: not a closed set.
        known: Option<HashSet<String>>,
    },
}

/// The expectations of one feature.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Expectation {
    /// What its values should be.
    pub expected: Expected,
    /// When an event without the feature counts it as missing: its position
    /// in [`Expectations::required`].
    pub required: Option<usize>,
}

/// The expectations of every feature of a model that has any. Looked up
/// once per feature value, so keyed with the aggregator's fast hasher
/// (foldhash, seeded at random per process).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Expectations {
    by_name: std::collections::HashMap<String, Expectation, foldhash::fast::RandomState>,
    required: Vec<String>,
}

impl Expectations {
    /// The expectations of a model: its rules.yaml `features`, completed by
    /// its baseline file (see the [module documentation](self)).
    pub fn of_model(cfg: &ModelConfig) -> Expectations {
        let baseline = cfg.reference.as_deref();
        let mut names: Vec<&String> = cfg.features.keys().collect();
        if let Some(b) = baseline {
            names.extend(b.features.keys().filter(|n| !cfg.features.contains_key(*n)));
        }
        names.sort();
        let mut out = Expectations::default();
        for name in names {
            let explicit = cfg.features.get(name);
            let learned = baseline.and_then(|b| b.features.get(name));
            let required = explicit.is_some_and(|s| s.required) || learned.is_some();
            let e = Expectation {
                expected: expected(explicit, learned),
                required: required.then_some(out.required.len()),
            };
            if required {
                out.required.push(name.clone());
            }
            if e != Expectation::default() {
                out.by_name.insert(name.clone(), e);
            }
        }
        out
    }

    /// The expectations of feature `name`, if it has any.
    pub fn get(&self, name: &str) -> Option<&Expectation> {
        self.by_name.get(name)
    }

    /// The features an event must carry (else they count as missing), in
    /// the order of [`Expectation::required`].
    pub fn required(&self) -> &[String] {
        &self.required
    }

    /// Whether no feature has any expectation.
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

/// Type, range and categories from the explicit spec where it says, else
/// from the baseline.
fn expected(explicit: Option<&FeatureSpec>, baseline: Option<&FeatureBaseline>) -> Expected {
    let spec = explicit.cloned().unwrap_or_default();
    if let Some(cats) = spec.categories {
        return Expected::Category {
            known: Some(cats.into_iter().collect()),
        };
    }
    let explicit_range = spec.min.is_some() || spec.max.is_some();
    let explicit_number = explicit_range || spec.mean.is_some() || spec.std.is_some();
    match baseline {
        _ if explicit_range => Expected::Number {
            min: spec.min,
            max: spec.max,
        },
        Some(FeatureBaseline::Numeric(n)) => Expected::Number {
            min: Some(n.min),
            max: Some(n.max),
        },
        _ if explicit_number => Expected::Number {
            min: None,
            max: None,
        },
        Some(FeatureBaseline::Categorical(c)) => Expected::Category {
            known: (c.other == 0.0).then(|| c.categories.keys().cloned().collect()),
        },
        None => Expected::Anything,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load;

    /// The expectations of model `m` in a rules file whose `m` entry is
    /// `entry` (YAML, indented for the model's mapping), next to a baseline
    /// file written from `baseline` (JSON).
    fn of(entry: &str, baseline: &str) -> Expectations {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.json"), baseline).unwrap();
        let rules = dir.path().join("rules.yaml");
        std::fs::write(&rules, format!("models:\n  m:\n{entry}")).unwrap();
        let c = crate::config::load_file(&rules).unwrap_or_else(|e| panic!("{e}"));
        Expectations::of_model(&c.models["m"])
    }

    /// A baseline (format 1) with a numeric `age` in [18, 90], a closed
    /// categorical `country` and a truncated categorical `city`.
    const BASELINE: &str = r#"{"format":"model-exporter-baseline","version":1,"created_at":"2026-11-01T00:00:00Z",
        "source":"t.csv","rows":10,"features":{
        "age":{"type":"numeric","count":10,"missing":0,"missing_rate":0,"mean":40,"std":10,"min":18,"max":90,
               "edges":[18,40,90],"proportions":[0,0.5,0.5,0]},
        "country":{"type":"categorical","count":10,"missing":0,"missing_rate":0,"categories":{"DE":0.5,"FR":0.5},"other":0},
        "city":{"type":"categorical","count":10,"missing":0,"missing_rate":0,"categories":{"Berlin":0.6},"other":0.4}}}"#;

    #[test]
    fn the_baseline_fills_in_what_rules_yaml_does_not_say() {
        let e = of("    baseline: b.json\n", BASELINE);
        assert_eq!(
            e.get("age").unwrap().expected,
            Expected::Number {
                min: Some(18.0),
                max: Some(90.0)
            }
        );
        let Expected::Category { known: Some(k) } = &e.get("country").unwrap().expected else {
            panic!("{e:?}")
        };
        assert_eq!(k.len(), 2);
        assert!(k.contains("DE") && k.contains("FR"));
        // Truncated to the top K: not a closed set.
        assert_eq!(
            e.get("city").unwrap().expected,
            Expected::Category { known: None }
        );
        assert_eq!(e.required(), ["age", "city", "country"]);
        assert_eq!(e.get("city").unwrap().required, Some(1));
    }

    #[test]
    fn explicit_keys_win_facet_by_facet() {
        let e = of(
            "    baseline: b.json\n    features:\n      age: {min: 0}\n      country: {categories: [US]}\n      city: {mean: 1, std: 2}\n      extra: {required: true}\n      note: {}\n",
            BASELINE,
        );
        assert_eq!(
            e.get("age").unwrap().expected,
            Expected::Number {
                min: Some(0.0),
                max: None
            }
        );
        assert_eq!(
            e.get("country").unwrap().expected,
            Expected::Category {
                known: Some(HashSet::from(["US".to_owned()]))
            }
        );
        // An inline reference says "numbers"; the baseline has no range.
        assert_eq!(
            e.get("city").unwrap().expected,
            Expected::Number {
                min: None,
                max: None
            }
        );
        assert_eq!(e.get("extra").unwrap().expected, Expected::Anything);
        assert!(e.get("note").is_none());
        assert_eq!(e.required(), ["age", "city", "country", "extra"]);
    }

    #[test]
    fn without_a_baseline_only_rules_yaml_counts() {
        let c = load(
            "t.yaml",
            "models:\n  m:\n    features:\n      age: {min: 0, max: 120, required: true}\n      amount: {mean: 100, std: 50}\n",
        )
        .unwrap();
        let e = Expectations::of_model(&c.models["m"]);
        assert_eq!(e.required(), ["age"]);
        assert_eq!(
            e.get("amount").unwrap().expected,
            Expected::Number {
                min: None,
                max: None
            }
        );
        assert!(Expectations::of_model(&ModelConfig::default()).is_empty());
    }
}
