//! Network hardening, against the real binary: socket files created with
//! their mode, bounded HTTP connections under a low file-descriptor limit,
//! bounded password checks, and the kernel's losses on /metrics.

mod common;

use std::ffi::CStr;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

/// Starts the binary through `sh`, so that `setup` (a umask, a ulimit)
/// applies to it, with the web server on port 0 and JSON logs.
fn start_under(setup: &str, dir: tempfile::TempDir, args: &[String]) -> Exporter {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!("{setup}; exec \"$0\" \"$@\""))
        .arg(binary())
        .args([
            "--web.listen-address",
            "127.0.0.1:0",
            "--log.format",
            "json",
        ])
        .args(args);
    Exporter::spawn(&mut cmd, dir).expect("exporter did not start")
}

/// Under umask 000, the socket files never exist with the umask's mode:
/// watched with inotify, their names appear in the directory only by a
/// rename (never created in place), and already with mode 0660.
#[test]
fn socket_files_appear_with_their_mode_under_umask_000() {
    let dir = tempfile::tempdir().unwrap();
    let sockets = dir.path().join("run");
    std::fs::create_dir(&sockets).unwrap();
    // SAFETY: plain system calls on a descriptor this test owns.
    let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC) };
    assert!(fd >= 0);
    let c_dir = std::ffi::CString::new(sockets.to_str().unwrap()).unwrap();
    let wd =
        unsafe { libc::inotify_add_watch(fd, c_dir.as_ptr(), libc::IN_CREATE | libc::IN_MOVED_TO) };
    assert!(wd >= 0);
    let watched = sockets.clone();
    let watcher = std::thread::spawn(move || {
        // (name, how it appeared, mode at that instant)
        let mut seen: Vec<(String, &'static str, u32)> = Vec::new();
        let mut buf = [0u8; 4096];
        let deadline = Instant::now() + PATIENCE;
        while seen.iter().filter(|s| s.0.ends_with(".sock")).count() < 2
            && Instant::now() < deadline
        {
            let mut pfd = libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            if unsafe { libc::poll(&mut pfd, 1, 100) } <= 0 {
                continue;
            }
            let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
            let mut off = 0;
            while off < n.max(0) as usize {
                // SAFETY: the kernel wrote whole inotify_event records.
                let ev = unsafe { &*(buf.as_ptr().add(off) as *const libc::inotify_event) };
                let name_at = off + std::mem::size_of::<libc::inotify_event>();
                let name = unsafe { CStr::from_ptr(buf.as_ptr().add(name_at).cast()) }
                    .to_string_lossy()
                    .into_owned();
                let how = if ev.mask & libc::IN_MOVED_TO != 0 {
                    "renamed"
                } else {
                    "created"
                };
                let mode = std::fs::symlink_metadata(watched.join(&name))
                    .map(|m| m.permissions().mode() & 0o777)
                    .unwrap_or(0);
                seen.push((name, how, mode));
                off = name_at + ev.len as usize;
            }
        }
        unsafe { libc::close(fd) };
        seen
    });
    let args: Vec<String> = [
        "--events.listen".to_owned(),
        format!("unix://{}", sockets.join("s.sock").display()),
        "--events.listen".to_owned(),
        format!("unixgram://{}", sockets.join("g.sock").display()),
    ]
    .into();
    let e = start_under("umask 000", dir, &args);
    let seen = watcher.join().unwrap();
    for name in ["s.sock", "g.sock"] {
        let appearances: Vec<_> = seen.iter().filter(|s| s.0 == name).collect();
        assert_eq!(appearances.len(), 1, "{name}: {seen:?}\n{}", e.log_text());
        let (_, how, mode) = appearances[0];
        assert_eq!(*how, "renamed", "{name} was bound in place: {seen:?}");
        assert_eq!(*mode, 0o660, "{name} appeared with mode {mode:o}");
        let m = std::fs::symlink_metadata(sockets.join(name)).unwrap();
        assert!(m.file_type().is_socket());
    }
    // Only the two sockets are left in the directory.
    let mut names: Vec<String> = std::fs::read_dir(&sockets)
        .unwrap()
        .map(|d| d.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["g.sock", "s.sock"]);
    send_unix(&sockets.join("s.sock"), b"{\"model\":\"m\"}\n");
    let deadline = Instant::now() + PATIENCE;
    while !e.metrics().contains("model=\"m\"") {
        assert!(Instant::now() < deadline, "event not counted");
        std::thread::sleep(Duration::from_millis(20));
    }
}
