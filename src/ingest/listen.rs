//! Binding listeners and handing each to its transport: stream sockets
//! (`stream`), datagram sockets (`datagram`), followed files
//! ([`tail`](super::tail)) and HTTP ([`cloudevents`](super::cloudevents)).

use std::io;

use tokio::net::{TcpListener, UdpSocket, UnixDatagram, UnixListener};

use super::addr::ListenAddr;
use super::context::{IngestContext, IngestOptions};
use super::datagram::{Dgram, serve_datagrams};
use super::socket_file::{SocketFile, SocketKind, bind_with_mode, prepare};
use super::stream::{StreamListener, accept_loop};

enum Socket {
    Unix(UnixListener, SocketFile),
    Unixgram(UnixDatagram, SocketFile),
    Tcp(TcpListener),
    Udp(UdpSocket),
    File(std::path::PathBuf, Option<super::tail::Open>),
    Http(TcpListener, crate::webconfig::WebConfig),
}

/// A bound, not yet serving, listener.
pub struct Listener {
    addr: ListenAddr,
    socket: Socket,
}

/// An error binding a listener, naming it.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr}: {source}")]
pub struct BindError {
    /// The listener that failed.
    pub addr: ListenAddr,
    /// Why.
    pub source: io::Error,
}

impl Listener {
    /// Binds `addr` (must be called inside a tokio runtime).
    pub async fn bind(addr: &ListenAddr, options: &IngestOptions) -> Result<Listener, BindError> {
        let err = |source| BindError {
            addr: addr.clone(),
            source,
        };
        let socket = match addr {
            ListenAddr::Unix(p) => {
                prepare(p, SocketKind::Stream).map_err(err)?;
                let (l, file) = bind_with_mode(p, options.socket_mode, |tmp| {
                    let l = std::os::unix::net::UnixListener::bind(tmp)?;
                    l.set_nonblocking(true)?;
                    UnixListener::from_std(l)
                })
                .map_err(err)?;
                Socket::Unix(l, file)
            }
            ListenAddr::Unixgram(p) => {
                prepare(p, SocketKind::Datagram).map_err(err)?;
                let (s, file) = bind_with_mode(p, options.socket_mode, |tmp| {
                    let s = std::os::unix::net::UnixDatagram::bind(tmp)?;
                    s.set_nonblocking(true)?;
                    UnixDatagram::from_std(s)
                })
                .map_err(err)?;
                Socket::Unixgram(s, file)
            }
            ListenAddr::Tcp(a) => Socket::Tcp(TcpListener::bind(a.as_str()).await.map_err(err)?),
            ListenAddr::Udp(a) => Socket::Udp(UdpSocket::bind(a.as_str()).await.map_err(err)?),
            ListenAddr::Http(a) => {
                use crate::webconfig::WebConfig;
                let web = match &options.http.web_config {
                    Some(p) => WebConfig::load(p).map_err(|e| {
                        err(io::Error::other(format!(
                            "--events.http.web-config.file {e}"
                        )))
                    })?,
                    None => WebConfig::open(),
                };
                Socket::Http(TcpListener::bind(a.as_str()).await.map_err(err)?, web)
            }
            ListenAddr::File(p) => {
                // The file may appear later, but its directory must exist.
                let dir = p.parent().filter(|d| !d.as_os_str().is_empty());
                if let Some(d) = dir
                    && !d.is_dir()
                {
                    return Err(err(io::Error::new(
                        io::ErrorKind::NotFound,
                        format!("directory {} does not exist", d.display()),
                    )));
                }
                Socket::File(
                    p.clone(),
                    super::tail::open_at_start(p, options.file_from_beginning),
                )
            }
        };
        Ok(Listener {
            addr: addr.clone(),
            socket,
        })
    }

    /// The bound address, with the real port where port 0 was asked for.
    pub fn local_addr(&self) -> ListenAddr {
        match &self.socket {
            Socket::Tcp(l) => l
                .local_addr()
                .map(|a| ListenAddr::Tcp(a.to_string()))
                .unwrap_or_else(|_| self.addr.clone()),
            Socket::Udp(s) => s
                .local_addr()
                .map(|a| ListenAddr::Udp(a.to_string()))
                .unwrap_or_else(|_| self.addr.clone()),
            Socket::Http(l, _) => l
                .local_addr()
                .map(|a| ListenAddr::Http(a.to_string()))
                .unwrap_or_else(|_| self.addr.clone()),
            _ => self.addr.clone(),
        }
    }

    /// Serves until shutdown, then drains what is buffered and returns. The
    /// socket file, if any, is removed before returning.
    pub async fn serve(self, ctx: IngestContext) {
        let transport = self.addr.transport();
        match self.socket {
            Socket::Unix(l, file) => {
                accept_loop(ctx, transport, StreamListener::Unix(&l)).await;
                drop(file);
            }
            Socket::Tcp(l) => accept_loop(ctx, transport, StreamListener::Tcp(&l)).await,
            Socket::Unixgram(s, file) => {
                serve_datagrams(ctx, transport, s.into_std().map(Dgram::Unix)).await;
                drop(file);
            }
            Socket::Udp(s) => serve_datagrams(ctx, transport, s.into_std().map(Dgram::Udp)).await,
            Socket::Http(l, web) => super::cloudevents::listener::serve(l, web, ctx).await,
            Socket::File(p, start) => {
                let _ =
                    tokio::task::spawn_blocking(move || super::tail::follow(p, start, ctx)).await;
            }
        }
    }
}
