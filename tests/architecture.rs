//! The top-level modules form a DAG in the order of the data flow: each
//! module names only the modules [`ALLOWED`] lists for it, and those are
//! all listed before it, so no two modules import each other and lower
//! modules never name higher ones.
//!
//! The check reads the non-test code under src/ (test modules and items
//! under `#[cfg(test)]`, comments and string literals are skipped) and
//! finds every path into another top-level module: `crate::m`, the
//! members of `crate::{…}`, and `super::` paths that climb to the crate
//! root. On failure it prints every offending file:line.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The allowed imports of each top-level module, lowest first. A module
/// may name only the modules of its list, which must come before it;
/// `*` allows every module before it (the commands at the top).
const ALLOWED: &[(&str, &[&str])] = &[
    // Leaves.
    ("clock", &[]),
    ("shutdown", &[]),
    ("stats", &[]),
    ("http_client", &[]),
    ("webconfig", &[]),
    ("files", &[]),
    // Events in: types, parsing, listeners, batches and their sink.
    ("ingest", &["clock", "shutdown", "stats", "webconfig"]),
    // Reference baselines made from training data.
    ("baseline", &["ingest", "stats", "files"]),
    // The rule language, its evaluation, export and notification.
    (
        "rules",
        &["ingest", "stats", "clock", "shutdown", "http_client"],
    ),
    // rules.yaml.
    ("config", &["rules", "baseline", "ingest", "stats", "files"]),
    // Registry, rendering, JSON API, HTTP server.
    (
        "export",
        &[
            "config",
            "rules",
            "ingest",
            "stats",
            "shutdown",
            "webconfig",
        ],
    ),
    // Snapshot files, whatever their body.
    ("storage", &["stats", "clock"]),
    // The single writer: everything above.
    ("aggregate", &["*"]),
    // Commands and wiring.
    ("client", &["*"]),
    ("report", &["*"]),
    ("loadgen", &["*"]),
    ("cli", &["*"]),
    ("server", &["*"]),
    ("demo", &["*"]),
];

/// An import of another top-level module.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Edge {
    /// The module named.
    to: String,
    /// 1-based line.
    line: usize,
}

/// Blanks out comments, string and character literals (keeping line
/// breaks), so that only code is left.
fn code_only(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let blank = |out: &mut Vec<u8>, c: u8| out.push(if c == b'\n' { b'\n' } else { b' ' });
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        if c == b'/' && next == Some(b'/') {
            while i < b.len() && b[i] != b'\n' {
                out.push(b' ');
                i += 1;
            }
        } else if c == b'/' && next == Some(b'*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                    depth += 1;
                    out.extend_from_slice(b"  ");
                    i += 2;
                } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                    depth -= 1;
                    out.extend_from_slice(b"  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, b[i]);
                    i += 1;
                }
            }
        } else if (c == b'r' || (c == b'b' && next == Some(b'r')))
            && !b[..i]
                .last()
                .is_some_and(|p| p.is_ascii_alphanumeric() || *p == b'_')
            && raw_string_hashes(&b[i + usize::from(c == b'b') + 1..]).is_some()
        {
            let start = i + usize::from(c == b'b') + 1;
            let hashes = raw_string_hashes(&b[start..]).expect("checked");
            let mut end = b"\"".to_vec();
            end.extend(std::iter::repeat_n(b'#', hashes));
            let body = start + hashes + 1;
            let close = b[body..]
                .windows(end.len())
                .position(|w| w == end.as_slice())
                .map_or(b.len(), |p| body + p + end.len());
            for &x in &b[i..close] {
                blank(&mut out, x);
            }
            i = close;
        } else if c == b'"' {
            out.push(b' ');
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' && i + 1 < b.len() {
                    blank(&mut out, b[i]);
                    i += 1;
                }
                blank(&mut out, b[i]);
                i += 1;
            }
            if i < b.len() {
                out.push(b' ');
                i += 1;
            }
        } else if c == b'\'' && (next == Some(b'\\') || b.get(i + 2) == Some(&b'\'')) {
            // A character literal (a lifetime has no closing quote).
            let mut j = i + 1;
            if b[j] == b'\\' {
                j += 1;
            }
            j += 1;
            while j < b.len() && b[j] != b'\'' {
                j += 1;
            }
            for &x in &b[i..=j.min(b.len() - 1)] {
                blank(&mut out, x);
            }
            i = j + 1;
        } else {
            out.push(c);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The number of `#` of a raw string starting at `b` (after its `r`).
fn raw_string_hashes(b: &[u8]) -> Option<usize> {
    let hashes = b.iter().take_while(|c| **c == b'#').count();
    (b.get(hashes) == Some(&b'"')).then_some(hashes)
}

/// The lines of non-test code: an item under a column-0 `#[cfg(test)]`
/// (the test module, a test helper) is blanked out, up to the `}` closing
/// its first `{`, or its `;`. `code` has no comments or literals left.
fn without_tests(code: &str) -> Vec<&str> {
    let lines: Vec<&str> = code.lines().collect();
    let mut out = Vec::with_capacity(lines.len());
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim_end() != "#[cfg(test)]" {
            out.push(lines[i]);
            i += 1;
            continue;
        }
        out.push("");
        i += 1;
        while i < lines.len() && lines[i].starts_with("#[") {
            out.push("");
            i += 1;
        }
        // The item: up to the `}` that closes its first `{`, or its `;`.
        let mut depth = 0i32;
        let mut opened = false;
        while i < lines.len() {
            for c in lines[i].chars() {
                match c {
                    '{' => {
                        depth += 1;
                        opened = true;
                    }
                    '}' => depth -= 1,
                    _ => {}
                }
            }
            let end = (opened && depth <= 0) || (!opened && lines[i].trim_end().ends_with(';'));
            out.push("");
            i += 1;
            if end {
                break;
            }
        }
    }
    out
}

/// The identifier at the start of `s`.
fn ident(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The first segment of every path in a `{…}` group starting at `s` (just
/// after its `{`).
fn group_heads(s: &str) -> Vec<&str> {
    let mut heads = Vec::new();
    let mut depth = 1;
    let mut at_item = true;
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            ',' if depth == 1 => at_item = true,
            c if c.is_whitespace() => {}
            _ if at_item && depth == 1 => {
                heads.push(ident(&s[i..]));
                at_item = false;
            }
            _ => {}
        }
    }
    heads
}

/// Every top-level module named by the code of a file `depth` modules
/// below the crate root (src/m.rs and src/m/mod.rs are 1 deep, src/m/x.rs
/// 2), other than its own module `own`.
fn edges(source: &str, depth: usize, own: &str, modules: &BTreeSet<&str>) -> Vec<Edge> {
    let code = code_only(source);
    let joined = without_tests(&code).join("\n");
    let mut found = Vec::new();
    for (n, line) in joined.lines().enumerate() {
        let mut heads: Vec<&str> = Vec::new();
        for (at, _) in line.match_indices("crate::") {
            let before = line[..at].chars().next_back();
            if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$') {
                continue;
            }
            let rest = &line[at + "crate::".len()..];
            match rest.strip_prefix('{') {
                Some(group) => heads.extend(group_heads(group)),
                None => heads.push(ident(rest)),
            }
        }
        for (at, _) in line.match_indices("super::") {
            let before = line[..at].chars().next_back();
            if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let mut rest = &line[at..];
            let mut ups = 0;
            while let Some(r) = rest.strip_prefix("super::") {
                ups += 1;
                rest = r;
            }
            if ups >= depth {
                match rest.strip_prefix('{') {
                    Some(group) => heads.extend(group_heads(group)),
                    None => heads.push(ident(rest)),
                }
            }
        }
        for h in heads {
            if h != own && modules.contains(h) {
                found.push(Edge {
                    to: h.to_owned(),
                    line: n + 1,
                });
            }
        }
    }
    found
}

/// The top-level modules lib.rs declares.
fn declared_modules(lib: &str) -> Vec<String> {
    code_only(lib)
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let l = l.strip_prefix("pub ").unwrap_or(l);
            l.strip_prefix("mod ")?.strip_suffix(';').map(str::to_owned)
        })
        .collect()
}

/// Every .rs file under `dir`, sorted.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn allowed(module: &str) -> Vec<&'static str> {
    let at = ALLOWED
        .iter()
        .position(|(m, _)| *m == module)
        .unwrap_or_else(|| panic!("{module} is not in ALLOWED"));
    match ALLOWED[at].1 {
        ["*"] => ALLOWED[..at].iter().map(|(m, _)| *m).collect(),
        list => list.to_vec(),
    }
}

#[test]
fn the_table_lists_every_module_once_and_only_lower_ones() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).expect("src/lib.rs");
    let declared: BTreeSet<String> = declared_modules(&lib).into_iter().collect();
    let listed: BTreeSet<String> = ALLOWED.iter().map(|(m, _)| m.to_string()).collect();
    assert_eq!(
        declared, listed,
        "every module of src/lib.rs must have its place in ALLOWED"
    );
    assert_eq!(listed.len(), ALLOWED.len(), "a module is listed twice");
    for (i, (m, list)) in ALLOWED.iter().enumerate() {
        for dep in *list {
            if *dep == "*" {
                assert_eq!(list.len(), 1, "{m}: `*` stands alone");
                continue;
            }
            assert!(
                ALLOWED[..i].iter().any(|(lower, _)| lower == dep),
                "{m} may import {dep}, which is not listed before it"
            );
        }
    }
}

#[test]
fn modules_import_only_the_modules_below_them() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).expect("src/lib.rs");
    let declared = declared_modules(&lib);
    let modules: BTreeSet<&str> = declared.iter().map(String::as_str).collect();
    let mut offences = String::new();
    let mut files = 0;
    for module in &declared {
        let mut paths = Vec::new();
        let single = src.join(format!("{module}.rs"));
        if single.exists() {
            paths.push(single);
        }
        let dir = src.join(module);
        if dir.is_dir() {
            rust_files(&dir, &mut paths);
        }
        assert!(!paths.is_empty(), "no source for module {module}");
        let ok = allowed(module);
        for path in paths {
            let rel = path.strip_prefix(&src).expect("under src");
            let mut depth = rel.components().count();
            if rel.file_name().is_some_and(|f| f == "mod.rs") {
                depth -= 1;
            }
            let text = std::fs::read_to_string(&path).expect("readable source");
            files += 1;
            for e in edges(&text, depth, module, &modules) {
                if !ok.contains(&e.to.as_str()) {
                    let _ = writeln!(
                        offences,
                        "src/{}:{}: {module} -> {} (allowed: {})",
                        rel.display(),
                        e.line,
                        e.to,
                        if ok.is_empty() {
                            "none".to_owned()
                        } else {
                            ok.join(", ")
                        }
                    );
                }
            }
        }
    }
    assert!(files > 50, "only {files} files read under src/");
    assert!(
        offences.is_empty(),
        "imports against the module order (tests/architecture.rs, docs/architecture.md):\n{offences}"
    );
}

/// The scanner itself: paths in code are found, those in comments,
/// strings and test code are not.
#[test]
fn the_scanner_finds_paths_in_code_only() {
    let modules: BTreeSet<&str> = ["aggregate", "export", "ingest", "rules", "stats"].into();
    let source = r####"//! Uses [`crate::aggregate`] in a comment only.
use crate::stats::F64;
use crate::{export::metrics::Metrics, ingest::{Batch, event::Event}};
/* crate::aggregate in a block comment
   crate::aggregate */
const URL: &str = "crate::aggregate inside a string // not a comment";
const RAW: &str = r#"crate::aggregate " in a raw string"#;
fn f<'a>(x: &'a str) -> char { let _ = '"'; crate::rules::eval::tick(x) }
fn g() -> ingest_crate::aggregate::X { super::super::export::y() }
#[cfg(test)]
fn helper() { crate::aggregate::Options::new(); }
fn kept() { crate::rules::x() }
#[cfg(test)]
mod tests {
    use crate::aggregate::Aggregator;
}
fn h() { super::super::aggregate::z() }
"####;
    let found = |depth| -> Vec<(String, usize)> {
        edges(source, depth, "stats", &modules)
            .into_iter()
            .map(|e| (e.to, e.line))
            .collect()
    };
    let names = |v: &[(&str, usize)]| -> Vec<(String, usize)> {
        v.iter().map(|(m, l)| (m.to_string(), *l)).collect()
    };
    // In src/stats/x.rs (2 deep) `super::super::` is the crate root.
    assert_eq!(
        found(2),
        names(&[
            ("export", 3),
            ("ingest", 3),
            ("rules", 8),
            ("export", 9),
            ("rules", 12),
            ("aggregate", 17)
        ])
    );
    // Three deep, it is not.
    assert_eq!(
        found(3),
        names(&[("export", 3), ("ingest", 3), ("rules", 8), ("rules", 12)])
    );
}
