//! Which model an event belongs to, and the names its configuration gives:
//! the `inference_logger` blocks of rules.yaml, indexed by the events' name
//! they claim, and swapped whole when the rules are reloaded.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use super::payload::Names;

/// `inference_logger`: how CloudEvents of an inference logger (KServe,
/// Seldon Core) become this model's events (docs/integrations.md).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InferenceLogger {
    /// The events' name (`ISVC`, or `ISVC/COMPONENT`) that is this model's;
    /// `None`: the model's own name.
    pub service: Option<String>,
    /// The version label; `None`: from the payload or the `endpoint`
    /// attribute.
    pub version: Option<String>,
    /// Names of positional feature values (v1 rows, wide v2 tensors), in
    /// order.
    pub features: Vec<String>,
    /// Names of the columns of a row of class scores, in order.
    pub classes: Vec<String>,
    /// The output tensor (or object row key) holding the prediction.
    pub prediction: Option<String>,
    /// The output tensor (or object row key) holding the confidence.
    pub confidence: Option<String>,
}

/// The rules' `inference_logger` blocks, ready to look up.
#[derive(Debug, Default)]
pub struct Mapping {
    /// Every model rules.yaml names (`"*"` included), with its block if it
    /// has one.
    blocks: HashMap<String, Option<InferenceLogger>>,
    /// The events' name claimed by a block's `service` -> the model.
    claims: HashMap<String, String>,
}

/// What the configuration says about the events of one name.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// The model label.
    pub model: &'a str,
    /// The configured version, if any.
    pub version: Option<&'a str>,
    /// Names of features, classes and outputs.
    pub names: Names<'a>,
}

impl Mapping {
    /// Indexes the models rules.yaml names (`"*"` included), each with its
    /// `inference_logger` block if it has one.
    pub fn new(blocks: HashMap<String, Option<InferenceLogger>>) -> Mapping {
        let claims = blocks
            .iter()
            .filter(|(model, _)| *model != "*")
            .filter_map(|(model, b)| {
                let service = b.as_ref()?.service.as_ref()?;
                Some((service.clone(), model.clone()))
            })
            .collect();
        Mapping { blocks, claims }
    }

    /// The model of the events named `name` (`ISVC` or `ISVC/COMPONENT`),
    /// and its configured names: the model whose block claims the name,
    /// else the model of that name, whose block is its own entry's, else
    /// the `"*"` entry's.
    pub fn target<'a>(&'a self, name: &'a str) -> Target<'a> {
        let model = self.claims.get(name).map_or(name, String::as_str);
        let block: Option<&InferenceLogger> = self
            .blocks
            .get(model)
            .or_else(|| self.blocks.get("*"))
            .and_then(Option::as_ref);
        Target {
            model,
            version: block.and_then(|b| b.version.as_deref()),
            names: block.map_or_else(Names::default, |b| Names {
                features: &b.features,
                classes: &b.classes,
                prediction: b.prediction.as_deref(),
                confidence: b.confidence.as_deref(),
            }),
        }
    }
}

/// The current [`Mapping`], shared by the HTTP listeners and replaced when
/// the rules are reloaded. Cloning shares it.
#[derive(Debug, Clone, Default)]
pub struct ModelMap(Arc<RwLock<Arc<Mapping>>>);

impl ModelMap {
    /// Shares `mapping`.
    pub fn new(mapping: Mapping) -> ModelMap {
        ModelMap(Arc::new(RwLock::new(Arc::new(mapping))))
    }

    /// Replaces the mapping by that of a newly loaded configuration.
    pub fn set(&self, mapping: Mapping) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(mapping);
    }

    /// The current mapping.
    pub fn get(&self) -> Arc<Mapping> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_by_claim_then_by_model_then_star() {
        let config = crate::config::load(
            "r.yaml",
            "models:\n  fraud:\n    inference_logger: {service: fraud-detector, version: v3, features: [a, b]}\n  reco: {}\n  \"*\":\n    inference_logger: {classes: [no, yes]}\n",
        )
        .unwrap();
        let map = ModelMap::new(config.inference_loggers());
        let m = map.get();
        let t = m.target("fraud-detector");
        assert_eq!((t.model, t.version), ("fraud", Some("v3")));
        assert_eq!(t.names.features, ["a", "b"]);
        // A model with an entry of its own but no block: no names.
        let t = m.target("reco");
        assert_eq!((t.model, t.version), ("reco", None));
        assert!(t.names.classes.is_empty());
        // Any other name: itself, with the "*" block.
        let t = m.target("iris/classifier");
        assert_eq!(t.model, "iris/classifier");
        assert_eq!(t.names.classes, ["no", "yes"]);
        // A reload replaces the whole mapping.
        map.set(crate::config::Config::default().inference_loggers());
        assert_eq!(map.get().target("fraud-detector").model, "fraud-detector");
        assert_eq!(
            m.target("fraud-detector").model,
            "fraud",
            "the old one stays whole"
        );
    }
}
