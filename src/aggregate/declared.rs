//! The names the configuration declares, which the caps never fold.
//!
//! A model named in rules.yaml (a `models:` entry, or a rule's `model:`
//! matcher) and a feature of a model's baseline file or of its `features:`
//! expectations are *declared*: they are given their own series and
//! windows whatever `--limits.models` and `--limits.features` say, and take
//! no place under those caps (see [`capped`](super::capped)). Junk names
//! sent first cannot push them into `__other__`. Their number is bounded by
//! the configuration, not by what clients send.

use std::collections::HashMap;

use crate::config::{Config, ModelConfig};

/// A set of names looked up by the aggregator's fast hasher.
pub type Names = super::hash::HashSet<String>;

/// The declared names of one configuration. See the
/// [module documentation](self).
#[derive(Debug, Default)]
pub struct Declared {
    models: Names,
    /// The declared features of every configured model (`"*"` included).
    features: HashMap<String, Names>,
    none: Names,
}

/// The features a model's configuration declares: those of its baseline
/// file and of its `features:` block.
fn features_of(cfg: &ModelConfig) -> Names {
    let mut names: Names = cfg.features.keys().cloned().collect();
    if let Some(b) = &cfg.reference {
        names.extend(b.features.keys().cloned());
    }
    names
}

impl Declared {
    /// The names `config` declares.
    pub fn of_config(config: &Config) -> Declared {
        let mut models: Names = config
            .models
            .keys()
            .filter(|m| m.as_str() != "*")
            .cloned()
            .collect();
        for g in &config.groups {
            for r in &g.rules {
                if let Some(m) = &r.matchers.model {
                    models.insert(m.clone());
                }
            }
        }
        Declared {
            models,
            features: config
                .models
                .iter()
                .map(|(name, cfg)| (name.clone(), features_of(cfg)))
                .collect(),
            none: Names::default(),
        }
    }

    /// Whether `model` is declared.
    pub fn model(&self, model: &str) -> bool {
        self.models.contains(model)
    }

    /// The declared model names.
    pub fn models(&self) -> &Names {
        &self.models
    }

    /// The declared features of `model`: those of its own entry in
    /// rules.yaml, else of `"*"`'s, as for its other expectations.
    pub fn features(&self, model: &str) -> &Names {
        self.features
            .get(model)
            .or_else(|| self.features.get("*"))
            .unwrap_or(&self.none)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_and_features_named_by_the_configuration() {
        let config = crate::config::load(
            "t.yaml",
            "models:\n  fraud:\n    features:\n      age: {min: 0}\n  '*':\n    features:\n      \
             amount: {mean: 1, std: 2}\ngroups:\n  - name: g\n    rules:\n      - alert: A\n        \
             expr: error_rate > 1%\n        match: {model: reco}\n",
        )
        .unwrap();
        let d = Declared::of_config(&config);
        assert!(d.model("fraud") && d.model("reco"));
        assert!(!d.model("*") && !d.model("junk"));
        assert!(d.features("fraud").contains("age"));
        assert!(!d.features("fraud").contains("amount"));
        assert!(d.features("junk").contains("amount"));
    }
}
