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

/// Open descriptors of a process.
fn fd_count(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// A GET that may fail (refused or closed): the status, or `None`.
fn try_get(addr: std::net::SocketAddr, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some((status, body.to_owned()))
}

/// Polls a GET until it answers 200; returns the body.
fn get_ok(addr: std::net::SocketAddr, path: &str) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some((200, body)) = try_get(addr, path) {
            return body;
        }
        assert!(Instant::now() < deadline, "{path} never answered");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Under `ulimit -n 64`, slow connections to the web server do not
/// exhaust the descriptors: the caps are fitted to the limit; a silent
/// connection and one sending its request head a byte at a time are closed
/// after the header timeout; under 300 such connections at once, new ones
/// make room by closing the idlest, `/metrics` and `/-/healthy` answer, a
/// new event connection is served, and accept never runs out.
#[test]
fn slowloris_connections_cannot_exhaust_descriptors() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let mut args = listener_flags(dir.path());
    args.extend(["--web.read-header-timeout".into(), "2s".into()]);
    let e = start_under("ulimit -n 64", dir, &args);
    let pid = e.pid();
    assert!(
        e.log_text()
            .contains("the connection caps exceed the open-file limit"),
        "{}",
        e.log_text()
    );
    let head = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ";
    let closed = |reason: &str| {
        sample(
            &get_ok(e.web, "/metrics"),
            &format!("model_exporter_web_connections_closed_total{{reason=\"{reason}\"}}"),
        )
        .unwrap_or(0.0)
    };

    // Below the cap: a silent connection, a slow one and a kept-alive one
    // left idle after its request are timed out.
    let mut silent = std::net::TcpStream::connect(e.web).unwrap();
    let mut slow = std::net::TcpStream::connect(e.web).unwrap();
    let mut kept = std::net::TcpStream::connect(e.web).unwrap();
    kept.write_all(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    kept.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut answer = Vec::new();
    while !answer.ends_with(b"OK\n") {
        let mut buf = [0u8; 1024];
        let n = kept.read(&mut buf).unwrap();
        assert!(n > 0, "closed before answering");
        answer.extend_from_slice(&buf[..n]);
    }
    let deadline = Instant::now() + PATIENCE;
    let mut sent = 0;
    while closed("timeout") < 3.0 {
        assert!(
            Instant::now() < deadline,
            "slow connections were not closed"
        );
        let _ = slow.write(&head[sent % head.len()..][..1]);
        sent += 1;
        std::thread::sleep(Duration::from_millis(200));
    }
    silent.set_read_timeout(Some(PATIENCE)).unwrap();
    assert_eq!(silent.read(&mut [0u8; 16]).unwrap_or(0), 0, "closed");
    assert_eq!(kept.read(&mut [0u8; 16]).unwrap_or(0), 0, "closed");

    // 300 at once.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let attacker = {
        let (web, stop) = (e.web, stop.clone());
        std::thread::spawn(move || {
            let mut conns: Vec<std::net::TcpStream> = (0..300)
                .filter_map(|_| std::net::TcpStream::connect(web).ok())
                .collect();
            let opened = conns.len();
            // Bounded: at most 30 s of trickling.
            let deadline = Instant::now() + Duration::from_secs(30);
            let mut sent = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && Instant::now() < deadline {
                for (i, s) in conns.iter_mut().enumerate() {
                    if i % 2 == 0 {
                        let _ = s.write(&head[sent % head.len()..][..1]);
                    }
                }
                sent += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
            opened
        })
    };
    let mut max_fds = 0;
    while closed("evicted") < 1.0 {
        max_fds = max_fds.max(fd_count(pid));
        assert!(Instant::now() < deadline, "no connection made room");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(get_ok(e.web, "/-/healthy"), "OK\n");
    // New event connections are served.
    send_unix(&e.path("unix"), b"{\"model\":\"after-flood\"}\n");
    send_tcp(&e.events["tcp"], b"{\"model\":\"after-flood\"}\n");
    loop {
        max_fds = max_fds.max(fd_count(pid));
        let text = get_ok(e.web, "/metrics");
        if text.contains("model=\"after-flood\"")
            && sample(&text, "model_exporter_connections_total{transport=\"tcp\"}").unwrap_or(0.0)
                >= 1.0
        {
            break;
        }
        assert!(Instant::now() < deadline, "events not counted:\n{text}");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Every slow connection is closed in the end (evicted or timed out).
    loop {
        max_fds = max_fds.max(fd_count(pid));
        let text = get_ok(e.web, "/metrics");
        if sample(&text, "model_exporter_web_connections_open") == Some(1.0) {
            break;
        }
        assert!(Instant::now() < deadline, "slow connections left:\n{text}");
        std::thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let opened = attacker.join().unwrap();
    assert!(opened >= 100, "the attack opened only {opened} connections");
    assert!(max_fds < 64, "{max_fds} descriptors open");
    assert_eq!(
        sample(
            &e.metrics(),
            "model_exporter_accept_errors_total{listener=\"web\"}"
        ),
        Some(0.0),
        "the caps fit the limit, so accept never ran out of descriptors"
    );
}

/// A GET with an `Authorization` header: the status, or 0 when the
/// connection failed.
fn get_with_auth(addr: std::net::SocketAddr, path: &str, auth: &str) -> u16 {
    body_with_auth(addr, path, auth).0
}

/// A GET with an `Authorization` header: status (0 when the connection
/// failed) and body.
fn body_with_auth(addr: std::net::SocketAddr, path: &str, auth: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return (0, String::new());
    };
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    let _ = write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: test\r\nAuthorization: Basic {auth}\r\nConnection: close\r\n\r\n"
    );
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let raw = String::from_utf8_lossy(&raw);
    let status = raw
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b.to_owned());
    (status, body.unwrap_or_default())
}

fn threads(pid: i32) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// A flood of wrong passwords runs at most two bcrypt checks at once (the
/// rest are refused unchecked with 429), so the exporter's threads stay
/// bounded, and an authorised scrape, whose login is cached, never runs
/// bcrypt again and always succeeds.
#[test]
fn a_wrong_password_flood_does_not_hold_up_an_authorised_scrape() {
    const GOOD: &str = "YWxpY2U6czNjcmV0"; // alice:s3cret
    const WRONG: &str = "YWxpY2U6d3Jvbmc="; // alice:wrong
    let dir = tempfile::tempdir().unwrap();
    let hash = bcrypt::hash("s3cret", 6).unwrap();
    let web = dir.path().join("web.yml");
    std::fs::write(&web, format!("basic_auth_users:\n  alice: '{hash}'\n")).unwrap();
    let e = Exporter::start_with(&["--web.config.file", web.to_str().unwrap()], false);
    let pid = e.pid();
    assert_eq!(get_with_auth(e.web, "/metrics", GOOD), 200);
    assert_eq!(get_with_auth(e.web, "/-/healthy", WRONG), 401);
    let before = threads(pid);

    const FLOODERS: usize = 32;
    const ATTEMPTS: usize = 10;
    let flood: Vec<_> = (0..FLOODERS)
        .map(|_| {
            let web = e.web;
            std::thread::spawn(move || {
                (0..ATTEMPTS)
                    .map(|_| get_with_auth(web, "/metrics", WRONG))
                    .collect::<Vec<u16>>()
            })
        })
        .collect();
    let mut max_threads = before;
    let mut authorised = 0;
    while flood.iter().any(|t| !t.is_finished()) {
        assert_eq!(get_with_auth(e.web, "/metrics", GOOD), 200);
        authorised += 1;
        max_threads = max_threads.max(threads(pid));
    }
    let statuses: Vec<u16> = flood.into_iter().flat_map(|t| t.join().unwrap()).collect();
    assert!(
        statuses.iter().all(|s| *s == 401 || *s == 429),
        "{statuses:?}"
    );
    // Two bcrypt threads, the scrapes' encoding, and a thread or two the
    // blocking pool starts while another is about to become idle; without
    // the bound, one thread per attempt under way (about 30 more).
    assert!(
        max_threads <= before + 8,
        "threads grew from {before} to {max_threads} under the flood"
    );
    let (status, text) = body_with_auth(e.web, "/metrics", GOOD);
    assert_eq!(status, 200);
    let auth = |result: &str| {
        sample(
            &text,
            &format!("model_exporter_http_auth_total{{listener=\"web\",result=\"{result}\"}}"),
        )
        .unwrap_or(-1.0)
    };
    assert_eq!(auth("ok"), 1.0, "bcrypt ran for the first login only");
    assert!(auth("cached") >= authorised as f64, "{text}");
    // Each wrong attempt was either checked (and denied) or refused
    // unchecked; the one before the flood was denied too.
    assert_eq!(
        auth("denied") + auth("busy"),
        (FLOODERS * ATTEMPTS + 1) as f64
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count() as f64,
        auth("busy")
    );
}

/// The sum of every sample whose series starts with `prefix`.
fn sum_samples(text: &str, prefix: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Datagrams sent while the exporter is stopped (SIGSTOP) overflow the UDP
/// socket's receive buffer; the kernel's count of them is on /metrics, and
/// with the events received it accounts for every datagram sent.
#[test]
fn udp_receive_buffer_overflows_are_counted() {
    let e = Exporter::start(&[]);
    let udp = e.events["udp"].clone();
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    const SENT: usize = 5000;
    unsafe { libc::kill(e.pid(), libc::SIGSTOP) };
    for i in 0..SENT {
        sock.send_to(
            format!("{{\"model\":\"udp\",\"id\":\"{i}\"}}\n").as_bytes(),
            &udp,
        )
        .unwrap();
    }
    unsafe { libc::kill(e.pid(), libc::SIGCONT) };
    let deadline = Instant::now() + PATIENCE;
    loop {
        let text = e.metrics();
        let received = sum_samples(&text, "model_requests_total{model=\"udp\"");
        let dropped = sample(
            &text,
            "model_exporter_datagrams_dropped_total{transport=\"udp\"}",
        )
        .unwrap();
        if received + dropped == SENT as f64 {
            assert!(dropped > 0.0, "nothing overflowed:\n{text}");
            assert!(received > 0.0);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{received} received + {dropped} dropped != {SENT}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A sender that resets its connection (SO_LINGER 0) after a whole event
/// and half of another: the whole one is counted, the half as `truncated`,
/// and the connection as closed by `reset`.
#[test]
fn a_reset_connection_is_counted() {
    use std::io::Write;
    use std::os::fd::AsRawFd;
    let e = Exporter::start(&[]);
    let truncated = "model_exporter_events_rejected_total{reason=\"truncated\"}";
    let before = e.sample(truncated).unwrap();
    let mut s = std::net::TcpStream::connect(&e.events["tcp"]).unwrap();
    s.write_all(b"{\"model\":\"rst\"}\n{\"model\":\"rs")
        .unwrap();
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    let r = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0);
    drop(s);
    e.wait_sample(
        "model_exporter_connections_closed_total{reason=\"reset\",transport=\"tcp\"}",
        1.0,
    );
    // The whole event is applied (asynchronously), the half one rejected.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let text = e.metrics();
        if sum_samples(&text, "model_requests_total{model=\"rst\"") == 1.0 {
            assert_eq!(sample(&text, truncated), Some(before + 1.0), "{text}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the whole event was lost:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// With TLS, the handshake counts against `--web.read-header-timeout`: a
/// connection that never starts it is closed and counted as a timeout,
/// while curl, which completes it, is served.
#[test]
fn a_tls_handshake_that_never_comes_is_timed_out() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    certificates(dir.path());
    let web = dir.path().join("web.yml");
    std::fs::write(
        &web,
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n",
    )
    .unwrap();
    let e = Exporter::start_with(
        &[
            "--web.config.file",
            web.to_str().unwrap(),
            "--web.read-header-timeout",
            "1s",
        ],
        false,
    );
    let mut silent = std::net::TcpStream::connect(e.web).unwrap();
    silent.set_read_timeout(Some(PATIENCE)).unwrap();
    assert_eq!(silent.read(&mut [0u8; 16]).unwrap_or(0), 0, "closed");
    let url = format!("https://{}/metrics", e.web);
    let out = std::process::Command::new("curl")
        .args(["-s", "--max-time", "10", "--cacert"])
        .arg(dir.path().join("ca.crt"))
        .arg(&url)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        sample(
            &text,
            "model_exporter_web_connections_closed_total{reason=\"timeout\"}"
        ),
        Some(1.0),
        "{text}"
    );
}
