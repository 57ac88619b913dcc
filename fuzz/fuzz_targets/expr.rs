//! Any text as an alert expression: never a panic, errors located inside
//! the text, and whatever parses prints back to an equal expression. The
//! same text is also tried as an annotation template.
#![no_main]

use libfuzzer_sys::fuzz_target;
use model_exporter::rules::expr::Expr;
use model_exporter::rules::template::Template;

fuzz_target!(|text: &str| {
    let len = text.chars().count();
    match Expr::parse(text) {
        Ok(e) => {
            let shown = e.to_string();
            assert_eq!(Expr::parse(&shown), Ok(e), "{text:?} -> {shown:?}");
        }
        Err(err) => assert!((1..=len + 1).contains(&err.column), "{text:?}: {err}"),
    }
    match Template::parse(text) {
        Ok(t) => {
            t.render(&Default::default(), 0.5);
        }
        Err(err) => assert!((1..=len + 1).contains(&err.column), "{text:?}: {err}"),
    }
});
