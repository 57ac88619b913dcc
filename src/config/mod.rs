//! rules.yaml, loaded strictly with every error located.

pub mod yaml;
