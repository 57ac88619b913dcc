//! A YAML tree with positions, built from yaml-rust2's event parser.
//!
//! Every node carries the 1-based line and column where it starts (a quoted
//! scalar's opening quote; the
//! first content line of a block scalar; a block mapping's first key; the
//! `-` of a block sequence; an empty value takes its key's position). Syntax
//! errors come back with the scanner's position. Duplicate keys in a
//! mapping are reported at the second key (the first entry is kept), aliases
//! (`*name`) are rejected, and only one document is allowed. Anchors and
//! tags are accepted and ignored.

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// How a scalar was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScalarStyle {
    /// Unquoted.
    Plain,
    /// `'...'`
    SingleQuoted,
    /// `"..."`
    DoubleQuoted,
    /// `|` block.
    Literal,
    /// `>` block.
    Folded,
}

impl ScalarStyle {
    /// True for quoted and block scalars, which are always strings.
    pub fn is_quoted(self) -> bool {
        self != ScalarStyle::Plain
    }
}

/// What a node holds.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    /// A mapping, entries in file order.
    Map(Vec<(Node, Node)>),
    /// A sequence.
    Seq(Vec<Node>),
    /// A scalar other than null.
    Scalar {
        /// The scalar's value (escapes resolved, blocks folded).
        text: String,
        /// How it was written.
        style: ScalarStyle,
    },
    /// An empty value, `~` or `null` (unquoted).
    Null,
}

/// A node with the 1-based position where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The content.
    pub kind: NodeKind,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in chars.
    pub column: usize,
}

impl Node {
    /// A short name of the node's type for messages: "a mapping", "a list",
    /// "a string", "null".
    pub fn type_name(&self) -> &'static str {
        match &self.kind {
            NodeKind::Map(_) => "a mapping",
            NodeKind::Seq(_) => "a list",
            NodeKind::Scalar { .. } => "a scalar",
            NodeKind::Null => "null",
        }
    }

    /// The scalar text, if this is a scalar.
    pub fn as_scalar(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }
}

/// A YAML-level error (syntax, duplicate key, alias): `line:column: message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{column}: {message}")]
pub struct YamlError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in chars.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

/// The outcome of [`parse`].
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    /// The document's root; `None` after a syntax error, [`NodeKind::Null`]
    /// at 1:1 for an empty file.
    pub root: Option<Node>,
    /// Every error found, in file order.
    pub errors: Vec<YamlError>,
}

/// Parses one YAML document into a [`Node`] tree.
pub fn parse(text: &str) -> Parsed {
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(text);
    if let Err(e) = parser.load(&mut builder, true) {
        let m = e.marker();
        let (line, column) = within(text, m.line().max(1), m.col() + 1);
        let at_star = text
            .lines()
            .nth(line.saturating_sub(1))
            .and_then(|l| l.chars().nth(column.saturating_sub(1)))
            == Some('*');
        let hint = if at_star {
            "; a '*' at the start of a value or key begins a YAML alias: to mean every model, quote it (\"*\":)"
        } else {
            ""
        };
        builder.errors.push(YamlError {
            line,
            column,
            message: format!("YAML syntax error: {}{hint}", e.info()),
        });
        builder.errors.sort_by_key(|e| (e.line, e.column));
        return Parsed {
            root: None,
            errors: builder.errors,
        };
    }
    builder.errors.sort_by_key(|e| (e.line, e.column));
    Parsed {
        root: Some(builder.root.unwrap_or(Node {
            kind: NodeKind::Null,
            line: 1,
            column: 1,
        })),
        errors: builder.errors,
    }
}

/// The lines of `text` as YAML counts them, and so as every position is
/// given: `\r\n`, `\n` and a lone `\r` each end a line. A final line break
/// is followed by one empty line, where the end of the input is.
pub fn lines(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(['\r', '\n']) {
        out.push(&rest[..i]);
        let skip = if rest[i..].starts_with("\r\n") { 2 } else { 1 };
        rest = &rest[i + skip..];
    }
    out.push(rest);
    out
}

/// Moves a position past the end of `text` to the end of its last line: the
/// scanner reports an unexpected end of input one line below a last line
/// that has no line break.
fn within(text: &str, line: usize, column: usize) -> (usize, usize) {
    let lines = lines(text);
    match lines.get(line - 1) {
        Some(l) => (line, column.min(l.chars().count() + 1)),
        None => {
            let last = lines.last().map_or(0, |l| l.chars().count());
            (lines.len(), last + 1)
        }
    }
}

/// A container being filled.
enum Open {
    Map {
        node: Node,
        entries: Vec<(Node, Node)>,
        pending_key: Option<Node>,
    },
    Seq {
        node: Node,
        items: Vec<Node>,
    },
}

#[derive(Default)]
struct Builder {
    stack: Vec<Open>,
    root: Option<Node>,
    documents: usize,
    errors: Vec<YamlError>,
}

fn pos(mark: Marker) -> (usize, usize) {
    (mark.line().max(1), mark.col() + 1)
}

impl Builder {
    /// Adds a finished node to the innermost open container (or the root).
    /// An empty value (position 0:0) takes the position of its key, or of
    /// its sequence. A block mapping takes the position of its first key.
    fn push(&mut self, mut node: Node) {
        if let Some(Open::Map { node: parent, .. } | Open::Seq { node: parent, .. }) =
            self.stack.last_mut()
            && node.line > 0
            && (node.line, node.column) < (parent.line, parent.column)
        {
            parent.line = node.line;
            parent.column = node.column;
        }
        if node.line == 0 {
            let at = match self.stack.last() {
                Some(Open::Map {
                    pending_key: Some(key),
                    ..
                }) => Some((key.line, key.column)),
                Some(Open::Map { node, .. } | Open::Seq { node, .. }) => {
                    Some((node.line, node.column))
                }
                None => None,
            };
            let (line, column) = at.unwrap_or((1, 1));
            node.line = line;
            node.column = column;
        }
        match self.stack.last_mut() {
            None => {
                if self.root.is_none() {
                    self.root = Some(node);
                }
            }
            Some(Open::Seq { items, .. }) => items.push(node),
            Some(Open::Map {
                entries,
                pending_key,
                ..
            }) => match pending_key.take() {
                None => *pending_key = Some(node),
                Some(key) => {
                    let dup = key.as_scalar().and_then(|k| {
                        entries
                            .iter()
                            .find(|(prev, _)| prev.as_scalar() == Some(k))
                            .map(|(prev, _)| (k.to_string(), prev.line, prev.column))
                    });
                    match dup {
                        Some((k, line, column)) => self.errors.push(YamlError {
                            line: key.line,
                            column: key.column,
                            message: format!(
                                "duplicate key '{k}' (first defined at {line}:{column})"
                            ),
                        }),
                        None => entries.push((key, node)),
                    }
                }
            },
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let (line, column) = pos(mark);
        match ev {
            Event::DocumentStart => {
                self.documents += 1;
                if self.documents == 2 {
                    self.errors.push(YamlError {
                        line,
                        column,
                        message: "only one YAML document is allowed; remove the second '---'"
                            .into(),
                    });
                }
            }
            _ if self.documents > 1 => {}
            Event::Alias(_) => {
                self.errors.push(YamlError {
                    line,
                    column,
                    message: "YAML aliases (*name) are not supported; write the value out".into(),
                });
                self.push(Node {
                    kind: NodeKind::Null,
                    line,
                    column,
                });
            }
            Event::Scalar(text, style, _, _) => {
                let style = match style {
                    TScalarStyle::SingleQuoted => ScalarStyle::SingleQuoted,
                    TScalarStyle::DoubleQuoted => ScalarStyle::DoubleQuoted,
                    TScalarStyle::Literal => ScalarStyle::Literal,
                    TScalarStyle::Folded => ScalarStyle::Folded,
                    TScalarStyle::Plain => ScalarStyle::Plain,
                };
                let null = style == ScalarStyle::Plain
                    && matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL");
                // yaml-rust2 places an empty value at the next token; mark it
                // 0:0 so that `push` gives it its key's position instead.
                let (line, column) = if null && text.is_empty() {
                    (0, 0)
                } else {
                    (line, column)
                };
                let kind = if null {
                    NodeKind::Null
                } else {
                    NodeKind::Scalar { text, style }
                };
                self.push(Node { kind, line, column });
            }
            Event::SequenceStart(..) => self.stack.push(Open::Seq {
                node: Node {
                    kind: NodeKind::Null,
                    line,
                    column,
                },
                items: Vec::new(),
            }),
            Event::MappingStart(..) => self.stack.push(Open::Map {
                node: Node {
                    kind: NodeKind::Null,
                    line,
                    column,
                },
                entries: Vec::new(),
                pending_key: None,
            }),
            Event::SequenceEnd | Event::MappingEnd => match self.stack.pop() {
                Some(Open::Seq { mut node, items }) => {
                    node.kind = NodeKind::Seq(items);
                    self.push(node);
                }
                Some(Open::Map {
                    mut node, entries, ..
                }) => {
                    node.kind = NodeKind::Map(entries);
                    self.push(node);
                }
                None => {}
            },
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(text: &str) -> Node {
        let p = parse(text);
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        p.root.expect("root")
    }

    fn map(n: &Node) -> &[(Node, Node)] {
        match &n.kind {
            NodeKind::Map(e) => e,
            other => panic!("not a map: {other:?}"),
        }
    }

    #[test]
    fn positions_are_one_based() {
        let r = root("a: 1\nb:\n  - x\n  - 'y'\nc: {d: \"e\"}\nf:\n");
        assert_eq!((r.line, r.column), (1, 1));
        let m = map(&r);
        assert_eq!(m.len(), 4);
        assert_eq!((m[0].0.line, m[0].0.column), (1, 1));
        assert_eq!((m[0].1.line, m[0].1.column), (1, 4));
        let NodeKind::Seq(items) = &m[1].1.kind else {
            panic!("seq")
        };
        assert_eq!((items[0].line, items[0].column), (3, 5));
        assert_eq!((items[1].line, items[1].column), (4, 5));
        assert_eq!(
            items[1].kind,
            NodeKind::Scalar {
                text: "y".into(),
                style: ScalarStyle::SingleQuoted
            }
        );
        let inner = map(&m[2].1);
        assert_eq!((m[2].1.line, m[2].1.column), (5, 4));
        assert_eq!((inner[0].1.line, inner[0].1.column), (5, 8));
        assert_eq!(m[3].1.kind, NodeKind::Null);
    }

    #[test]
    fn columns_count_chars() {
        let r = root("é: ü\n");
        let m = map(&r);
        assert_eq!((m[0].1.line, m[0].1.column), (1, 4));
    }

    #[test]
    fn a_bare_star_key_says_to_quote_it() {
        let p = parse("models:\n  *:\n    positive_threshold: 0.5\n");
        assert_eq!(p.errors.len(), 1, "{:?}", p.errors);
        assert_eq!((p.errors[0].line, p.errors[0].column), (2, 3));
        assert!(
            p.errors[0]
                .message
                .ends_with("to mean every model, quote it (\"*\":)"),
            "{}",
            p.errors[0].message
        );
        // Other syntax errors get no such hint.
        let p = parse("a: [1, 2\n");
        assert!(!p.errors[0].message.contains("alias"), "{:?}", p.errors);
    }

    #[test]
    fn syntax_errors_are_located() {
        let p = parse("a: 1\nb: [1, 2\n");
        assert!(p.root.is_none());
        assert_eq!(p.errors.len(), 1);
        assert!(p.errors[0].message.starts_with("YAML syntax error"));
        assert!(p.errors[0].line >= 2, "{:?}", p.errors);

        let p = parse("a: 1\n b: 2\n");
        assert_eq!(p.errors.len(), 1);
        assert_eq!(
            (p.errors[0].line, p.errors[0].column),
            (2, 3),
            "{:?}",
            p.errors
        );

        let p = parse("a:\n\t- x\n");
        assert_eq!(p.errors.len(), 1, "{:?}", p.errors);
        assert_eq!(p.errors[0].line, 2);
    }

    #[test]
    fn an_unexpected_end_is_located_inside_the_file() {
        let at = |text: &str| {
            let p = parse(text);
            assert_eq!(p.errors.len(), 1, "{:?}", p.errors);
            (p.errors[0].line, p.errors[0].column)
        };
        // Without a final newline the scanner's position is one line down.
        assert_eq!(at("{a"), (1, 3));
        assert_eq!(at("x: 1\ny: [é"), (2, 6));
        // With it, the empty line after the newline is the end.
        assert_eq!(at("{a\n"), (2, 1));
        // A lone CR is a line break, as in YAML.
        assert_eq!(at("\r\r{"), (3, 2));
        assert_eq!(lines("a\r\nb\rc\n"), ["a", "b", "c", ""]);
    }

    #[test]
    fn duplicate_keys_are_errors_at_the_second_key() {
        let p = parse("a: 1\nb:\n  x: 1\n  x: 2\na: 3\n");
        let got: Vec<_> = p
            .errors
            .iter()
            .map(|e| (e.line, e.column, e.message.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (4, 3, "duplicate key 'x' (first defined at 3:3)"),
                (5, 1, "duplicate key 'a' (first defined at 1:1)")
            ]
        );
        // The first value is kept.
        let r = p.root.expect("root");
        assert_eq!(map(&r)[0].1.as_scalar(), Some("1"));
    }

    #[test]
    fn aliases_and_extra_documents_are_rejected() {
        let p = parse("a: &x 1\nb: *x\n");
        assert_eq!(p.errors.len(), 1);
        assert_eq!((p.errors[0].line, p.errors[0].column), (2, 4));
        assert!(p.errors[0].message.contains("aliases"));

        let p = parse("a: 1\n---\nb: 2\n");
        assert_eq!(p.errors.len(), 1);
        assert_eq!(p.errors[0].line, 2);
    }

    #[test]
    fn empty_document_is_null() {
        for text in ["", "# only a comment\n", "---\n"] {
            let r = root(text);
            assert_eq!(r.kind, NodeKind::Null, "{text:?}");
        }
    }
}
