//! Listener addresses: `--events.listen URL`.

use std::fmt;
use std::path::PathBuf;

/// Where events are received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddr {
    /// `unix:///path`: a Unix stream socket, newline-delimited JSON.
    Unix(PathBuf),
    /// `unixgram:///path`: a Unix datagram socket.
    Unixgram(PathBuf),
    /// `tcp://HOST:PORT`: a TCP stream socket.
    Tcp(String),
    /// `udp://HOST:PORT`: a UDP socket.
    Udp(String),
    /// `file:///path`: a JSON-lines file followed like `tail -F`.
    File(PathBuf),
    /// `http://HOST:PORT`: CloudEvents of KServe's and Seldon's inference
    /// loggers, POSTed over HTTP (docs/integrations.md).
    Http(String),
}

impl ListenAddr {
    /// The `transport` label of this listener's self-metrics.
    pub fn transport(&self) -> &'static str {
        match self {
            ListenAddr::Unix(_) => "unix",
            ListenAddr::Unixgram(_) => "unixgram",
            ListenAddr::Tcp(_) => "tcp",
            ListenAddr::Udp(_) => "udp",
            ListenAddr::File(_) => "file",
            ListenAddr::Http(_) => "http",
        }
    }

    /// The default listeners: a stream and a datagram socket in the system's
    /// temporary directory (honours `TMPDIR`), which any user may create.
    pub fn defaults() -> Vec<ListenAddr> {
        let dir = std::env::temp_dir();
        vec![
            ListenAddr::Unix(dir.join("model-exporter.sock")),
            ListenAddr::Unixgram(dir.join("model-exporter.dgram.sock")),
        ]
    }
}

/// Why a `--events.listen` value is not a listener address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseAddrError {
    /// No `SCHEME://`.
    #[error(
        "{0:?} is not a listener URL (expected unix://, unixgram://, tcp://, udp://, file:// or http://)"
    )]
    NotUrl(String),
    /// Nothing after `SCHEME://`.
    #[error("{0:?} names no path or address")]
    Empty(String),
    /// A `tcp://`, `udp://` or `http://` address that is not `HOST:PORT`.
    #[error("{url:?}: expected HOST:PORT after {scheme}://")]
    HostPort {
        /// The value as given.
        url: String,
        /// Its scheme.
        scheme: String,
    },
    /// A scheme other than the six known.
    #[error("{url:?}: unknown scheme {scheme:?} (expected unix, unixgram, tcp, udp, file or http)")]
    UnknownScheme {
        /// The value as given.
        url: String,
        /// Its scheme.
        scheme: String,
    },
}

impl std::str::FromStr for ListenAddr {
    type Err = ParseAddrError;

    fn from_str(s: &str) -> Result<Self, ParseAddrError> {
        let (scheme, rest) = s
            .split_once("://")
            .ok_or_else(|| ParseAddrError::NotUrl(s.to_owned()))?;
        if rest.is_empty() {
            return Err(ParseAddrError::Empty(s.to_owned()));
        }
        let host_port = |rest: &str| match rest.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
                Ok(rest.to_owned())
            }
            _ => Err(ParseAddrError::HostPort {
                url: s.to_owned(),
                scheme: scheme.to_owned(),
            }),
        };
        match scheme {
            "unix" => Ok(ListenAddr::Unix(PathBuf::from(rest))),
            "unixgram" => Ok(ListenAddr::Unixgram(PathBuf::from(rest))),
            "tcp" => host_port(rest).map(ListenAddr::Tcp),
            "udp" => host_port(rest).map(ListenAddr::Udp),
            "file" => Ok(ListenAddr::File(PathBuf::from(rest))),
            // A trailing `/` is allowed: the logger's URL may have a path,
            // and any path is served.
            "http" => host_port(rest.strip_suffix('/').unwrap_or(rest)).map(ListenAddr::Http),
            other => Err(ParseAddrError::UnknownScheme {
                url: s.to_owned(),
                scheme: other.to_owned(),
            }),
        }
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenAddr::Unix(p) => write!(f, "unix://{}", p.display()),
            ListenAddr::Unixgram(p) => write!(f, "unixgram://{}", p.display()),
            ListenAddr::Tcp(a) => write!(f, "tcp://{a}"),
            ListenAddr::Udp(a) => write!(f, "udp://{a}"),
            ListenAddr::File(p) => write!(f, "file://{}", p.display()),
            ListenAddr::Http(a) => write!(f, "http://{a}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_table() {
        let ok: &[(&str, ListenAddr)] = &[
            ("unix:///run/x.sock", ListenAddr::Unix("/run/x.sock".into())),
            (
                "unixgram:///tmp/d.sock",
                ListenAddr::Unixgram("/tmp/d.sock".into()),
            ),
            ("unix://rel/x.sock", ListenAddr::Unix("rel/x.sock".into())),
            (
                "tcp://127.0.0.1:9000",
                ListenAddr::Tcp("127.0.0.1:9000".into()),
            ),
            ("udp://[::1]:0", ListenAddr::Udp("[::1]:0".into())),
            ("tcp://localhost:1", ListenAddr::Tcp("localhost:1".into())),
            (
                "file:///var/log/p.jsonl",
                ListenAddr::File("/var/log/p.jsonl".into()),
            ),
            (
                "http://127.0.0.1:9878",
                ListenAddr::Http("127.0.0.1:9878".into()),
            ),
        ];
        for (s, want) in ok {
            let got: ListenAddr = s.parse().unwrap();
            assert_eq!(&got, want);
            assert_eq!(&got.to_string(), s);
        }
        assert_eq!(
            "http://[::1]:80/".parse::<ListenAddr>().unwrap(),
            ListenAddr::Http("[::1]:80".into())
        );
        let bad: &[(&str, &str)] = &[
            ("/tmp/x.sock", "not a listener URL"),
            ("unix://", "names no path"),
            ("tcp://127.0.0.1", "HOST:PORT"),
            ("tcp://:80", "HOST:PORT"),
            ("udp://h:99999", "HOST:PORT"),
            ("https://x:1", "unknown scheme"),
            ("http://127.0.0.1", "HOST:PORT"),
        ];
        for (s, frag) in bad {
            let e = s.parse::<ListenAddr>().unwrap_err().to_string();
            assert!(e.contains(frag), "{s}: {e}");
        }
    }
}
