//! The documentation's own promises about itself: the README's index lists
//! every document once, and relative links between documents resolve.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Relative link targets (`](path)` or `](path#anchor)`) in a markdown text.
fn links(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("](") {
        rest = &rest[i + 2..];
        let Some(end) = rest.find(')') else { break };
        let target = &rest[..end];
        let path = target.split('#').next().unwrap_or_default();
        if !path.is_empty() && !path.contains("://") && !path.starts_with("mailto:") {
            out.push(path.to_owned());
        }
    }
    out
}

#[test]
fn the_readme_index_lists_every_document_once() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    for line in readme.lines().filter(|l| l.starts_with("- [docs/")) {
        let name = line["- [".len()..].split(']').next().unwrap().to_owned();
        *count.entry(name).or_default() += 1;
    }
    let mut docs: Vec<String> = std::fs::read_dir(root().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".md"))
        .map(|n| format!("docs/{n}"))
        .collect();
    docs.sort();
    let listed: Vec<String> = count.keys().cloned().collect();
    assert_eq!(
        listed, docs,
        "the README's documentation index and docs/ differ"
    );
    let twice: Vec<_> = count.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "listed more than once: {twice:?}");
}

#[test]
fn relative_links_resolve() {
    let mut files = vec![root().join("README.md")];
    for dir in ["docs", "deploy", "bench", "clients/python"] {
        let Ok(entries) = std::fs::read_dir(root().join(dir)) else {
            continue;
        };
        files.extend(
            entries
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|x| x == "md")),
        );
    }
    let mut broken = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let dir = file.parent().unwrap_or(Path::new("."));
        for link in links(&text) {
            if !dir.join(&link).exists() {
                broken.push(format!("{}: {link}", file.display()));
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}
