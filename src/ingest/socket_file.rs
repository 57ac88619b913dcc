//! Unix socket files: replacing a stale one, refusing a live one, creating
//! it with its mode, and removing the file on exit.
//!
//! A socket file is bound in a private directory (mode `0700`, next to the
//! final path), given its mode there, and only then renamed into place, so
//! the path never exists with the mode the umask gave it: no other user can
//! connect in between, whatever the umask.

use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
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

/// Binds a socket at `path` with `mode` from the first instant the path
/// exists: `bind` is called with a path in a private directory beside
/// `path`, the file there gets its mode, and it is then renamed to `path`
/// (refusing to replace a file that appeared there meanwhile).
pub fn bind_with_mode<T>(
    path: &Path,
    mode: u32,
    bind: impl FnOnce(&Path) -> io::Result<T>,
) -> io::Result<(T, SocketFile)> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    let dir = dir.unwrap_or(Path::new("."));
    // Short names: a socket path is limited to 107 bytes.
    let private = dir.join(format!(
        ".mx{:x}.{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&private)
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot create {}: {e}", private.display()),
            )
        })?;
    let tmp = private.join("s");
    let result = bind(&tmp).and_then(|socket| {
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))?;
        rename_noreplace(&tmp, path)?;
        Ok(socket)
    });
    let _ = std::fs::remove_file(&tmp);
    let _ = std::fs::remove_dir(&private);
    let socket = result?;
    let meta = std::fs::symlink_metadata(path)?;
    Ok((
        socket,
        SocketFile {
            path: path.to_owned(),
            dev: meta.dev(),
            ino: meta.ino(),
        },
    ))
}

/// `rename(from, to)` that fails if `to` exists (Linux: `RENAME_NOREPLACE`;
/// elsewhere a check before a plain rename).
fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::ffi::OsStrExt;
        let c = |p: &Path| {
            std::ffi::CString::new(p.as_os_str().as_bytes())
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"))
        };
        let (f, t) = (c(from)?, c(to)?);
        // SAFETY: both are valid NUL-terminated strings for the call.
        let r = unsafe {
            libc::renameat2(
                libc::AT_FDCWD,
                f.as_ptr(),
                libc::AT_FDCWD,
                t.as_ptr(),
                libc::RENAME_NOREPLACE,
            )
        };
        if r == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        // Filesystems without RENAME_NOREPLACE fall back to the check below.
        if !matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENOSYS)) {
            return Err(if e.kind() == io::ErrorKind::AlreadyExists {
                io::Error::new(
                    e.kind(),
                    format!(
                        "{} appeared while binding; refusing to replace it",
                        to.display()
                    ),
                )
            } else {
                e
            });
        }
    }
    if std::fs::symlink_metadata(to).is_ok() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "{} appeared while binding; refusing to replace it",
                to.display()
            ),
        ));
    }
    std::fs::rename(from, to)
}

impl SocketFile {
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

    /// The final path does not exist while the socket is bound, and has its
    /// mode (not the umask's) when it appears; the private directory is
    /// gone afterwards.
    #[test]
    fn the_path_appears_with_its_mode() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("z.sock");
        for mode in [0o600, 0o660, 0o666] {
            let (l, f) = bind_with_mode(&p, mode, |tmp| {
                let l = UnixListener::bind(tmp)?;
                assert!(!p.exists(), "the path exists before it has its mode");
                Ok(l)
            })
            .unwrap();
            let m = std::fs::symlink_metadata(&p).unwrap();
            assert!(m.file_type().is_socket());
            assert_eq!(m.permissions().mode() & 0o777, mode);
            let left: Vec<_> = std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            assert_eq!(left, [std::ffi::OsString::from("z.sock")]);
            drop(f);
            drop(l);
            assert!(!p.exists());
        }
        // A file that appears at the path meanwhile is not replaced.
        let e = bind_with_mode(&p, 0o660, |tmp| {
            let l = UnixListener::bind(tmp)?;
            std::fs::write(&p, b"precious")?;
            Ok(l)
        })
        .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists, "{e}");
        assert_eq!(std::fs::read(&p).unwrap(), b"precious");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn mode_and_removal() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("y.sock");
        let (l, f) = bind_with_mode(&p, 0o660, |t| UnixListener::bind(t)).unwrap();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o660);
        drop(f);
        assert!(!p.exists());
        drop(l);

        // a file replaced by someone else is left alone
        let (l, f) = bind_with_mode(&p, 0o600, |t| UnixListener::bind(t)).unwrap();
        std::fs::remove_file(&p).unwrap();
        let _l2 = UnixListener::bind(&p).unwrap();
        drop(f);
        assert!(p.exists());
        drop(l);
    }
}
