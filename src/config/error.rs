//! The errors of a rules file, each located by file, line and column.

/// One problem in a rules file: `file:line:column: message`, or
/// `file: message` for an error without position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}{}: {message}", position(*.line, *.column))]
pub struct ConfigError {
    /// The file name as given to [`load`](super::load).
    pub file: String,
    /// 1-based line; 0 when the error concerns the whole file (I/O).
    pub line: usize,
    /// 1-based column in chars; 0 when the error concerns the whole file.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

/// `:line:column`, or nothing for an error that concerns the whole file.
fn position(line: usize, column: usize) -> String {
    if line == 0 {
        String::new()
    } else {
        format!(":{line}:{column}")
    }
}

/// All problems found in a rules file, sorted by position; displayed one
/// per line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", lines(.0))]
pub struct ConfigErrors(pub Vec<ConfigError>);

fn lines(errors: &[ConfigError]) -> String {
    errors
        .iter()
        .map(ConfigError::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}
