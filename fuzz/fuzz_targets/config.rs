//! Any text as rules.yaml: never a panic, and every error inside the file
//! (line and column 0 for whole-file errors). Seed the corpus with the
//! shipped rules.yaml (scripts/fuzz.sh does).
#![no_main]

use libfuzzer_sys::fuzz_target;
use model_exporter::config;

fuzz_target!(|text: &str| {
    let Err(errors) = config::load("rules.yaml", text) else {
        return;
    };
    assert!(!errors.0.is_empty());
    let lines: Vec<usize> = config::yaml::lines(text)
        .iter()
        .map(|l| l.chars().count())
        .collect();
    for e in &errors.0 {
        if e.line == 0 {
            assert_eq!(e.column, 0, "{e}");
            continue;
        }
        let len = lines
            .get(e.line - 1)
            .unwrap_or_else(|| panic!("{e}: past the last line"));
        assert!(
            (1..=len + 1).contains(&e.column),
            "{e}: line has {len} chars"
        );
    }
});
