//! Why no baseline could be built.

use std::io;

use super::summary::{MAX_FEATURES, RowError};

/// Why no baseline could be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The options are not usable.
    #[error("{0}")]
    Options(String),
    /// Reading the input failed.
    #[error("{file}: {error}")]
    Io {
        /// The input.
        file: String,
        /// What went wrong.
        #[source]
        error: io::Error,
    },
    /// A row (or the header) is bad.
    #[error("{file}:{line}: {}{message}", column_prefix(.column.as_deref()))]
    Row {
        /// The input.
        file: String,
        /// 1-based line where the row starts.
        line: u64,
        /// The column concerned, if one is.
        column: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// More than [`MAX_FEATURES`] features.
    #[error("{file}:{line}: more than {MAX_FEATURES} features; leave some out with --exclude")]
    TooManyFeatures {
        /// The input.
        file: String,
        /// Line where the limit was passed.
        line: u64,
    },
    /// The second pass did not see what the first saw.
    #[error("{file}: the input changed while it was read: {message}")]
    Changed {
        /// The input.
        file: String,
        /// The difference.
        message: String,
    },
    /// No usable row.
    #[error("{file}: no rows to make a baseline from")]
    NoRows {
        /// The input.
        file: String,
    },
    /// The methods of [`Builder`](super::Builder) were called out of order.
    #[error("{0}")]
    Usage(&'static str),
}

/// `column "NAME": `, naming the column of a bad row.
fn column_prefix(column: Option<&str>) -> String {
    column.map_or_else(String::new, |c| format!("column {c:?}: "))
}

impl BuildError {
    /// A bad row, located at `line` of `file`.
    pub(super) fn row(file: &str, line: u64, e: RowError) -> BuildError {
        BuildError::Row {
            file: file.to_owned(),
            line,
            column: e.column,
            message: e.message,
        }
    }
}
