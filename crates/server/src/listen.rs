//! Accepting connections: caps on how many one address and everyone together may hold open, and
//! a deadline on reading a request's headers, so that neither a crowd of idle sockets nor a
//! client that sends its headers a byte at a time (slowloris) can use the server up.
//!
//! `axum::serve` offers neither (its hyper builder has no timer, so hyper's header timeout never
//! fires), hence this loop: hyper-util's builder with a timer, and a count per address that a
//! connection holds for its whole life, WebSocket included (the count lives in its I/O object,
//! which the upgraded socket keeps).

use std::collections::HashMap;
use std::convert::Infallible;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use axum_server::tls_rustls::RustlsConfig;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// How many connections may be open at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    pub per_address: usize,
    pub total: usize,
}

/// Why a connection was turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// This address holds its share already.
    AddressFull,
    /// The server holds all it will.
    ServerFull,
}

#[derive(Default)]
struct Counts {
    total: usize,
    by_address: HashMap<IpAddr, usize>,
}

/// Open connections, per address (IPv6 per /64) and in total.
#[derive(Clone)]
pub struct Gate {
    caps: Caps,
    counts: Arc<Mutex<Counts>>,
}

impl Gate {
    pub fn new(caps: Caps) -> Self {
        Self {
            caps,
            counts: Arc::default(),
        }
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A place for a connection from `ip`, held until the returned pass is dropped.
    pub fn admit(&self, ip: IpAddr) -> Result<Pass, Refusal> {
        let address = crate::throttle::address_group(ip);
        let mut counts = self.counts();
        if counts.total >= self.caps.total {
            return Err(Refusal::ServerFull);
        }
        let held = counts.by_address.entry(address).or_insert(0);
        if *held >= self.caps.per_address {
            return Err(Refusal::AddressFull);
        }
        *held += 1;
        counts.total += 1;
        Ok(Pass {
            gate: self.clone(),
            address,
        })
    }

    /// Connections open now (for tests and metrics).
    pub fn open(&self) -> usize {
        self.counts().total
    }
}

/// One admitted connection's place; given back when dropped.
pub struct Pass {
    gate: Gate,
    address: IpAddr,
}

impl Drop for Pass {
    fn drop(&mut self) {
        let mut counts = self.gate.counts();
        counts.total = counts.total.saturating_sub(1);
        if let Some(held) = counts.by_address.get_mut(&self.address) {
            *held -= 1;
            if *held == 0 {
                counts.by_address.remove(&self.address);
            }
        }
    }
}

/// A TCP stream that holds its connection's [`Pass`] for as long as it exists.
pub struct Admitted {
    stream: TcpStream,
    _pass: Pass,
}

impl AsyncRead for Admitted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Admitted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// The answer to a connection that is turned away: a plain HTTP response (every client here
/// speaks HTTP first, WebSockets included).
fn refusal_response(refusal: Refusal) -> String {
    let (status, body) = match refusal {
        Refusal::AddressFull => (
            "429 Too Many Requests",
            "too many open connections from your address",
        ),
        Refusal::ServerFull => (
            "503 Service Unavailable",
            "the server is full; try again shortly",
        ),
    };
    format!(
        "HTTP/1.1 {status}\r\nretry-after: 10\r\nconnection: close\r\n\
         content-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// Says why, then closes: after the answer, reads (and drops) what the client had sent, so the
/// close is not a reset that could destroy the answer before the client reads it. Bounded.
async fn turn_away(mut stream: TcpStream, refusal: Refusal) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        stream
            .write_all(refusal_response(refusal).as_bytes())
            .await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 1024];
        while stream.read(&mut sink).await? > 0 {}
        io::Result::Ok(())
    })
    .await;
}

/// Serves `router` on `listener` until `shutdown` (over TLS with `tls`), then waits for the HTTP
/// exchanges under way (upgraded sockets close themselves on the same token).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    gate: Gate,
    header_timeout: Duration,
    tls: Option<RustlsConfig>,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let graceful = GracefulShutdown::new();
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    // No HTTP/2 extended CONNECT: browsers then open WebSockets over HTTP/1.1, which `/video`
    // (a GET route) upgrades.
    let builder = Arc::new(builder);
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of descriptors and the like: pause rather than spin.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        let pass = match gate.admit(remote.ip()) {
            Ok(pass) => pass,
            Err(refusal) => {
                tracing::debug!(%remote, ?refusal, "connection refused");
                tokio::spawn(turn_away(stream, refusal));
                continue;
            }
        };
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
        let admitted = Admitted {
            stream,
            _pass: pass,
        };
        let connection = Connection {
            builder: builder.clone(),
            router: router.clone(),
            remote,
            watcher: graceful.watcher(),
        };
        match &tls {
            None => connection.serve(admitted),
            Some(tls) => {
                let acceptor = TlsAcceptor::from(tls.get_inner());
                tokio::spawn(async move {
                    // The handshake is part of the request: it has the same deadline.
                    match tokio::time::timeout(header_timeout, acceptor.accept(admitted)).await {
                        Ok(Ok(stream)) => connection.serve(stream),
                        Ok(Err(error)) => tracing::debug!(%remote, %error, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%remote, "TLS handshake timed out"),
                    }
                });
            }
        }
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// What serving one accepted connection needs.
struct Connection {
    builder: Arc<Builder<TokioExecutor>>,
    router: Router,
    remote: SocketAddr,
    watcher: Watcher,
}

impl Connection {
    /// Serves HTTP on `io` in a task of its own.
    fn serve<I>(self, io: I)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let remote = self.remote;
        let service = self
            .router
            .map_request(move |mut request: Request<hyper::body::Incoming>| {
                request
                    .extensions_mut()
                    .insert(ConnectInfo::<SocketAddr>(remote));
                request.map(axum::body::Body::new)
            })
            .map_err(|never: Infallible| match never {});
        let connection = self
            .builder
            .serve_connection_with_upgrades(TokioIo::new(io), TowerToHyperService::new(service))
            .into_owned();
        let connection = self.watcher.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::trace!(%error, "connection ended with an error");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_per_address_and_in_total_and_places_come_back() {
        let gate = Gate::new(Caps {
            per_address: 2,
            total: 3,
        });
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let first = gate.admit(a).unwrap();
        let _second = gate.admit(a).unwrap();
        assert_eq!(gate.admit(a).err(), Some(Refusal::AddressFull));
        let _third = gate.admit(b).unwrap();
        assert_eq!(gate.admit(b).err(), Some(Refusal::ServerFull));
        drop(first);
        assert!(gate.admit(a).is_ok());
        assert_eq!(gate.open(), 2, "a pass dropped gives its place back");
    }

    #[test]
    fn refusals_are_well_formed_http() {
        for refusal in [Refusal::AddressFull, Refusal::ServerFull] {
            let text = refusal_response(refusal);
            let (head, body) = text.split_once("\r\n\r\n").unwrap();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(body.len(), length, "{text}");
        }
    }
}
