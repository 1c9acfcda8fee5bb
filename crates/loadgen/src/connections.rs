//! WebSocket connections: a socket from a chosen loopback source address to the instance the
//! plan places it on, each flavour's URL, and the handshake up to the server's greeting.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use futures_util::StreamExt;
use futures_util::stream::SplitSink;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{WebSocketStream, client_async_with_config};

use crate::accounts::user_name;
use crate::cli::{Args, Flavour, Plan};
use crate::load::{Windows, read_loop};
use crate::shared::Shared;

pub type Ws = WebSocketStream<TcpStream>;
pub type Sink = SplitSink<Ws, Message>;

/// Every connection's write half (`None` where it failed) and reader, once all were tried.
pub struct Connections {
    pub sinks: Vec<Option<Sink>>,
    readers: Vec<JoinHandle<()>>,
    pub connected: usize,
    pub connect_secs: f64,
}

impl Connections {
    /// Hangs up: readers still waiting for a frame are aborted.
    pub fn close(self) {
        drop(self.sinks);
        for reader in self.readers {
            reader.abort();
        }
    }
}

/// Opens `--conns` connections, `--connect-concurrency` at a time, each reading from the start.
/// Those that fail count as errors, the first one's reason kept.
pub async fn open_all(
    shared: &Arc<Shared>,
    plan: &Plan,
    cookies: &[Option<HeaderValue>],
    windows: &Windows,
    setup_deadline: Instant,
) -> Connections {
    let args = &shared.args;
    let connect_started = Instant::now();
    let gate = Arc::new(Semaphore::new(args.connect_concurrency.max(1)));
    let mut opens = Vec::with_capacity(args.conns);
    for conn in 0..args.conns {
        let gate = gate.clone();
        let shared = shared.clone();
        let cookie = cookies.get(plan.identity(conn)).cloned().flatten();
        let source = Ipv4Addr::new(127, 0, 0, 1 + (conn % plan.sources as usize) as u8);
        let id = plan.identity(conn);
        let windows = windows.clone();
        let peer = if conn < plan.active {
            Some(conn ^ 1)
        } else {
            None
        };
        let target = shared.args.target[plan.instance(conn)];
        // With several instances, active connections' latency is also kept by placement.
        let placed = (conn < plan.active && plan.instances > 1).then(|| plan.is_cross(conn));
        opens.push(tokio::spawn(async move {
            let _permit = gate.acquire().await.map_err(|e| e.to_string())?;
            let ws = tokio::time::timeout_at(
                setup_deadline.into(),
                connect(&shared.args, target, source, id, conn, cookie),
            )
            .await
            .map_err(|_| format!("connection {conn}: setup deadline passed"))??;
            // Read from the first moment: the server queues presence frames for us.
            let (sink, stream) = ws.split();
            let reader = tokio::spawn(read_loop(
                shared.clone(),
                stream,
                conn,
                peer,
                placed,
                windows,
            ));
            Ok::<_, String>((sink, reader))
        }));
    }
    let mut sinks: Vec<Option<Sink>> = Vec::with_capacity(args.conns);
    let mut readers = Vec::with_capacity(args.conns);
    let mut connect_errors = 0usize;
    let mut first_connect_error = None;
    for open in opens {
        match open.await {
            Ok(Ok((sink, reader))) => {
                sinks.push(Some(sink));
                readers.push(reader);
            }
            Ok(Err(error)) => {
                connect_errors += 1;
                first_connect_error.get_or_insert(error);
                sinks.push(None);
            }
            Err(error) => {
                connect_errors += 1;
                first_connect_error.get_or_insert(error.to_string());
                sinks.push(None);
            }
        }
    }
    let connect_secs = connect_started.elapsed().as_secs_f64();
    let connected = args.conns - connect_errors;
    if connect_errors > 0 {
        shared.error(format!(
            "{connect_errors} connections failed: {}",
            first_connect_error.clone().unwrap_or_default()
        ));
        shared
            .counters
            .errors
            .fetch_add(connect_errors as u64 - 1, Ordering::Relaxed);
    }
    Connections {
        sinks,
        readers,
        connected,
        connect_secs,
    }
}

/// Raises the file limit for `conns` connections, or says why it is too low.
pub fn ensure_file_limit(conns: usize) -> Result<(), String> {
    let nofile = raise_nofile(conns as u64 + 4096);
    if nofile < conns as u64 + 64 {
        return Err(format!(
            "file limit {nofile} is too low for {conns} connections"
        ));
    }
    Ok(())
}

/// Raises RLIMIT_NOFILE (soft, and hard when permitted) to at least `want`.
fn raise_nofile(want: u64) -> u64 {
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 0;
        }
        if limit.rlim_cur >= want {
            return limit.rlim_cur;
        }
        let raised = libc::rlimit {
            rlim_cur: want.max(limit.rlim_cur),
            rlim_max: want.max(limit.rlim_max),
        };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
            return raised.rlim_cur;
        }
        let soft = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        libc::setrlimit(libc::RLIMIT_NOFILE, &soft);
        limit.rlim_max
    }
}

pub fn peer_id(prefix: &str, index: usize) -> String {
    user_name(prefix, index)
}

async fn connect(
    args: &Args,
    target: SocketAddr,
    source: Ipv4Addr,
    identity: usize,
    conn: usize,
    cookie: Option<HeaderValue>,
) -> Result<Ws, String> {
    let socket = TcpSocket::new_v4().map_err(|e| e.to_string())?;
    socket
        .bind(SocketAddr::new(IpAddr::V4(source), 0))
        .map_err(|e| format!("bind {source}: {e}"))?;
    let stream = socket
        .connect(target)
        .await
        .map_err(|e| format!("connect from {source}: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let id = peer_id(&args.prefix, identity);
    let url = match args.flavour {
        Flavour::Duet => format!("ws://{target}/video"),
        Flavour::Minimal => format!("ws://{target}/?name={id}"),
        Flavour::Peerjs => format!("ws://{target}/peerjs?key=peerjs&id={id}&token=t{conn}"),
    };
    let mut request = url.into_client_request().map_err(|e| e.to_string())?;
    if let Some(cookie) = cookie {
        request
            .headers_mut()
            .insert(tokio_tungstenite::tungstenite::http::header::COOKIE, cookie);
    }
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_write_buffer_size(1024 * 1024)
        .max_message_size(Some(64 << 20))
        .max_frame_size(Some(16 << 20));
    let (mut ws, _) = client_async_with_config(request, stream, Some(config))
        .await
        .map_err(|e| format!("handshake from {source}: {e}"))?;
    // Wait for the greeting, so a connection counts only once the server has taken it in.
    let greeting = match args.flavour {
        Flavour::Duet => Some("hello"),
        Flavour::Peerjs => Some("OPEN"),
        Flavour::Minimal => None,
    };
    if let Some(expected) = greeting {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(text))) => {
                    if text.contains(expected) {
                        break;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(format!("before {expected}: {e}")),
                None => return Err(format!("closed before {expected}")),
            }
        }
    }
    Ok(ws)
}
