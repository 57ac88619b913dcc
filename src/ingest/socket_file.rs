//! Unix socket files: replacing a stale one, refusing a live one, setting
//! the mode, and removing the file on exit.

use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::{Path, PathBuf};

/// The socket type, used to probe whether a process still listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketKind {
    /// SOCK_STREAM.
    Stream,
    /// SOCK_DGRAM.
    Datagram,
}

/// Makes `path` free for binding: creates its directory, removes a stale
/// socket file left by a dead process, and refuses a live socket or any file
/// that is not a socket.
pub fn prepare(path: &Path, kind: SocketKind) -> io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !meta.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "{} exists and is not a socket; refusing to replace it",
                path.display()
            ),
        ));
    }
    let probe = match kind {
        SocketKind::Stream => UnixStream::connect(path).map(drop),
        SocketKind::Datagram => UnixDatagram::unbound()?.connect(path),
    };
    match probe {
        Ok(()) => Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!(
                "{} is in use by a running process (is another model-exporter running?)",
                path.display()
            ),
        )),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            tracing::info!(path = %path.display(), "replacing stale socket file");
            std::fs::remove_file(path)
        }
        Err(e) => Err(io::Error::new(
            e.kind(),
            format!(
                "{} exists and could not be probed ({e}); refusing to replace it",
                path.display()
            ),
        )),
    }
}

/// A bound socket file: removed when dropped, if it is still ours.
#[derive(Debug)]
pub struct SocketFile {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl SocketFile {
    /// Takes ownership of the freshly bound socket at `path` and sets its mode.
    pub fn adopt(path: &Path, mode: u32) -> io::Result<SocketFile> {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
        let meta = std::fs::symlink_metadata(path)?;
        Ok(SocketFile {
            path: path.to_owned(),
            dev: meta.dev(),
            ino: meta.ino(),
        })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        // Only remove the file we created, not one a successor bound since.
        if let Ok(meta) = std::fs::symlink_metadata(&self.path)
            && meta.dev() == self.dev
            && meta.ino() == self.ino
        {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    #[test]
    fn stale_live_and_foreign_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/x.sock");
        // absent: the directory is created
        prepare(&p, SocketKind::Stream).unwrap();
        assert!(p.parent().unwrap().is_dir());

        // live
        let l = UnixListener::bind(&p).unwrap();
        let e = prepare(&p, SocketKind::Stream).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AddrInUse, "{e}");

        // stale: the listener is gone but the file stays
        drop(l);
        assert!(p.exists());
        prepare(&p, SocketKind::Stream).unwrap();
        assert!(!p.exists());

        // a live datagram socket
        let d = UnixDatagram::bind(&p).unwrap();
        assert!(prepare(&p, SocketKind::Datagram).is_err());
        drop(d);
        prepare(&p, SocketKind::Datagram).unwrap();

        // not a socket
        std::fs::write(&p, b"precious").unwrap();
        let e = prepare(&p, SocketKind::Stream).unwrap_err();
        assert!(e.to_string().contains("not a socket"), "{e}");
        assert_eq!(std::fs::read(&p).unwrap(), b"precious");
    }

    #[test]
    fn mode_and_removal() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("y.sock");
        let l = UnixListener::bind(&p).unwrap();
        let f = SocketFile::adopt(&p, 0o660).unwrap();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o660);
        drop(f);
        assert!(!p.exists());
        drop(l);

        // a file replaced by someone else is left alone
        let l = UnixListener::bind(&p).unwrap();
        let f = SocketFile::adopt(&p, 0o600).unwrap();
        std::fs::remove_file(&p).unwrap();
        let _l2 = UnixListener::bind(&p).unwrap();
        drop(f);
        assert!(p.exists());
        drop(l);
    }
}
