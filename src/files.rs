//! Reading the files the configuration names (rules.yaml, baselines):
//! regular files only, at most a given number of bytes, and never blocking
//! on what is not a regular file.
//!
//! The file is opened without following it into a wait (`O_NONBLOCK`, so
//! that opening a FIFO returns at once), then its type is read from the
//! open descriptor (`fstat`, so that what is checked is what is read, even
//! through a symlink): a FIFO, a device such as `/dev/zero`, a socket or a
//! directory is refused with an error naming what it is, before a byte is
//! read. A regular file larger than the limit is refused from its size, and
//! one that grows while it is read stops being read one byte past the
//! limit, so memory stays bounded whatever the path points to.

use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// The default limit on the size of a rules file, 16 MiB
/// (`--config.max-bytes`).
pub const DEFAULT_MAX_BYTES: u64 = 16 * 1024 * 1024;

/// Why a file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Opening or reading it failed.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// It is not a regular file.
    #[error("it is {0}, not a regular file")]
    NotRegular(&'static str),
    /// It is larger than the limit.
    #[error("it is larger than the limit of {limit} bytes ({size} bytes or more)")]
    TooLarge {
        /// Its size, or what was read of it before the limit was passed.
        size: u64,
        /// The limit.
        limit: u64,
    },
}

/// What a file that is not a regular file is, in words.
fn kind(m: &Metadata) -> &'static str {
    let t = m.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// Reads the regular file at `path` (symlinks followed), of at most
/// `limit` bytes. See the [module documentation](self).
///
/// # Errors
/// When it cannot be opened or read, is not a regular file, or is larger
/// than `limit`.
pub fn read_regular(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(ReadError::NotRegular(kind(&meta)));
    }
    if meta.len() > limit {
        return Err(ReadError::TooLarge {
            size: meta.len(),
            limit,
        });
    }
    read_at_most(file, meta.len(), limit)
}

/// Reads `file`, expected to hold `expected` bytes, failing one byte past
/// `limit`.
fn read_at_most(file: File, expected: u64, limit: u64) -> Result<Vec<u8>, ReadError> {
    let mut bytes = Vec::with_capacity(expected as usize);
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    let size = bytes.len() as u64;
    if size > limit {
        return Err(ReadError::TooLarge { size, limit });
    }
    Ok(bytes)
}

/// [`read_regular`], as text.
///
/// # Errors
/// As [`read_regular`], and when the file is not UTF-8.
pub fn read_regular_to_string(path: &Path, limit: u64) -> Result<String, ReadError> {
    let bytes = read_regular(path, limit)?;
    String::from_utf8(bytes)
        .map_err(|e| ReadError::Io(io::Error::new(io::ErrorKind::InvalidData, e.utf8_error())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_files_within_the_limit_only() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("rules.yaml");
        std::fs::write(&f, "groups: []\n").unwrap();
        assert_eq!(read_regular(&f, 11).unwrap(), b"groups: []\n");
        assert_eq!(read_regular_to_string(&f, 64).unwrap(), "groups: []\n");
        let e = read_regular(&f, 10).unwrap_err();
        assert_eq!(
            e.to_string(),
            "it is larger than the limit of 10 bytes (11 bytes or more)"
        );
        // A symlink to a regular file is read.
        let link = dir.path().join("link.yaml");
        std::os::unix::fs::symlink(&f, &link).unwrap();
        assert!(read_regular(&link, 64).is_ok());
        std::fs::write(&f, b"\xff\xfe").unwrap();
        assert!(read_regular_to_string(&f, 64).is_err());
    }

    #[test]
    fn fifos_devices_and_directories_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let zero = dir.path().join("zero");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        for (path, what) in [
            (fifo.as_path(), "a FIFO"),
            (zero.as_path(), "a character device"),
            (dir.path(), "a directory"),
        ] {
            let e = read_regular(path, DEFAULT_MAX_BYTES).unwrap_err();
            assert_eq!(e.to_string(), format!("it is {what}, not a regular file"));
        }
        assert!(matches!(
            read_regular(&dir.path().join("missing"), 1),
            Err(ReadError::Io(e)) if e.kind() == io::ErrorKind::NotFound
        ));
    }
}
