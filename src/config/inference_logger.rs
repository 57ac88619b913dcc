//! A model's `inference_logger` block: how the CloudEvents of an inference
//! logger (KServe, Seldon Core) become this model's events. The mapping is
//! described in docs/integrations.md.
//!
//! ```yaml
//! models:
//!   fraud:
//!     inference_logger:
//!       service: fraud-detector          # the events' name (InferenceService[/component])
//!       version: v3
//!       features: [age, income, amount]  # names of positional values
//!       classes: [legit, fraud]          # names of class-score columns
//!       prediction: label                # output tensor (or row key) of the prediction
//!       confidence: probability          # output tensor (or row key) of the confidence
//! ```

use super::load::ModelDraft;
use super::reader::{Keys, Loader};
use super::yaml::{Node, NodeKind};
use crate::ingest::cloudevents::InferenceLogger;

const KEYS: &Keys<InferenceLogger> = &[
    ("service", Loader::logger_service),
    ("version", Loader::logger_version),
    ("features", Loader::logger_features),
    ("classes", Loader::logger_classes),
    ("prediction", Loader::logger_prediction),
    ("confidence", Loader::logger_confidence),
];

impl Loader {
    /// `inference_logger` of a model.
    pub(super) fn model_inference_logger(&mut self, v: &Node, m: &mut ModelDraft) {
        let mut logger = InferenceLogger::default();
        let what = format!("inference_logger of model '{}'", m.name);
        let fields = self.fields(v, &what, KEYS, &mut logger);
        if m.name == "*"
            && let Some(at) = fields.get("service")
        {
            self.error(
                at,
                "service cannot be given under \"*\": it names the events of one model",
            );
        }
        m.model.inference_logger = Some(logger);
    }

    fn logger_service(&mut self, v: &Node, l: &mut InferenceLogger) {
        l.service = self.name_value(v, "service");
    }

    fn logger_version(&mut self, v: &Node, l: &mut InferenceLogger) {
        l.version = self.string(v, "version");
    }

    fn logger_features(&mut self, v: &Node, l: &mut InferenceLogger) {
        l.features = self
            .distinct_strings(v, "features", "feature")
            .unwrap_or_default();
    }

    fn logger_classes(&mut self, v: &Node, l: &mut InferenceLogger) {
        l.classes = self
            .distinct_strings(v, "classes", "class")
            .unwrap_or_default();
    }

    fn logger_prediction(&mut self, v: &Node, l: &mut InferenceLogger) {
        l.prediction = self.name_value(v, "prediction");
    }

    fn logger_confidence(&mut self, v: &Node, l: &mut InferenceLogger) {
        l.confidence = self.name_value(v, "confidence");
    }

    /// A non-empty string.
    fn name_value(&mut self, v: &Node, what: &str) -> Option<String> {
        let s = self.string(v, what)?;
        if s.is_empty() {
            self.error(v, format!("{what} must not be empty"));
            return None;
        }
        Some(s)
    }

    /// Two models may not claim the same events: each `inference_logger`
    /// block claims its `service`, or its model's own name. `models` is the
    /// `models` mapping, already read (so its problems are reported).
    pub(super) fn check_inference_logger_services(&mut self, models: &Node) {
        let NodeKind::Map(entries) = &models.kind else {
            return;
        };
        let mut claimed: Vec<(String, String)> = Vec::new();
        for (k, v) in entries {
            let Some(model) = k.as_scalar() else { continue };
            let Some(block) = child(v, "inference_logger") else {
                continue;
            };
            let service = child(block.1, "service");
            let name = match service.and_then(|(_, s)| s.as_scalar()) {
                Some(s) => s.to_owned(),
                None => model.to_owned(),
            };
            if model == "*" {
                continue;
            }
            let at = service.map_or(block.0, |(_, s)| s);
            match claimed.iter().find(|(n, _)| *n == name) {
                Some((_, first)) => self.error(
                    at,
                    format!(
                        "the events named '{name}' are already model '{first}''s (inference_logger.service)"
                    ),
                ),
                None => claimed.push((name, model.to_owned())),
            }
        }
    }
}

/// The key node and value of `key` in a mapping node.
fn child<'n>(node: &'n Node, key: &str) -> Option<(&'n Node, &'n Node)> {
    let NodeKind::Map(entries) = &node.kind else {
        return None;
    };
    entries
        .iter()
        .find(|(k, _)| k.as_scalar() == Some(key))
        .map(|(k, v)| (k, v))
}

#[cfg(test)]
mod tests {
    use crate::config::load;
    use crate::ingest::cloudevents::InferenceLogger;

    fn errors(text: &str) -> Vec<String> {
        match load("r.yaml", text) {
            Ok(_) => Vec::new(),
            Err(e) => e.0.iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn the_block_loads() {
        let c = load(
            "r.yaml",
            "models:\n  fraud:\n    inference_logger:\n      service: fraud-detector\n      version: v3\n      features: [age, amount]\n      classes: [legit, fraud]\n      prediction: label\n      confidence: proba\n  other: {inference_logger: {}}\n",
        )
        .unwrap();
        assert_eq!(
            c.models["fraud"].inference_logger,
            Some(InferenceLogger {
                service: Some("fraud-detector".into()),
                version: Some("v3".into()),
                features: vec!["age".into(), "amount".into()],
                classes: vec!["legit".into(), "fraud".into()],
                prediction: Some("label".into()),
                confidence: Some("proba".into()),
            })
        );
        assert_eq!(
            c.models["other"].inference_logger,
            Some(InferenceLogger::default())
        );
        assert_eq!(
            c.models.get("x").and_then(|m| m.inference_logger.clone()),
            None
        );
    }

    #[test]
    fn mistakes_are_located() {
        let cases: &[(&str, &str)] = &[
            (
                "models:\n  a:\n    inference_logger: {servise: x}\n",
                "r.yaml:3:24: unknown key 'servise' in inference_logger of model 'a', did you mean 'service'?",
            ),
            (
                "models:\n  a:\n    inference_logger: {features: [x, x]}\n",
                "r.yaml:3:38: duplicate feature 'x'",
            ),
            (
                "models:\n  a:\n    inference_logger: {features: []}\n",
                "r.yaml:3:34: features must not be empty",
            ),
            (
                "models:\n  a:\n    inference_logger: {classes: x}\n",
                "r.yaml:3:33: classes must be a list of strings, found a scalar",
            ),
            (
                "models:\n  a:\n    inference_logger: {prediction: ''}\n",
                "r.yaml:3:36: prediction must not be empty",
            ),
            (
                "models:\n  \"*\":\n    inference_logger: {service: x}\n",
                "r.yaml:3:33: service cannot be given under \"*\"",
            ),
            (
                "models:\n  a:\n    inference_logger: {service: s}\n  b:\n    inference_logger: {service: s}\n",
                "r.yaml:5:33: the events named 's' are already model 'a''s",
            ),
            (
                "models:\n  a:\n    inference_logger: {service: b}\n  b:\n    inference_logger: {}\n",
                "r.yaml:5:5: the events named 'b' are already model 'a''s",
            ),
        ];
        for (text, want) in cases {
            let got = errors(text);
            assert!(
                got.iter().any(|e| e.starts_with(want)),
                "{text}\nwanted {want}\ngot {got:?}"
            );
        }
        // A model named like another's service, without a block, claims
        // nothing.
        assert!(errors("models:\n  a:\n    inference_logger: {service: b}\n  b: {}\n").is_empty());
    }
}
