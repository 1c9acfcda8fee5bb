//! A TCP forwarder the test can cut and mend: a database that becomes unreachable and comes back.

/// A TCP forwarder on a loopback port that the test can cut (every connection through it
/// dropped, new ones closed at once) and mend: a database that becomes unreachable and comes back.
pub struct Cable {
    pub addr: std::net::SocketAddr,
    open: tokio::sync::watch::Sender<bool>,
}

impl Cable {
    pub async fn to(target: std::net::SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (open, watch) = tokio::sync::watch::channel(true);
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let mut watch = watch.clone();
                if !*watch.borrow() {
                    continue;
                }
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = watch.wait_for(|open| !open) => {}
                    }
                });
            }
        });
        Self { addr, open }
    }

    pub fn cut(&self) {
        self.open.send_replace(false);
    }

    pub fn mend(&self) {
        self.open.send_replace(true);
    }
}

/// `settings` with its PostgreSQL reached through a new cable, and that cable; `None` on SQLite,
/// where there is no connection to cut.
pub async fn through_cable(settings: &mut server::config::Settings) -> Option<Cable> {
    let mut url = reqwest::Url::parse(settings.database_url.as_ref()?).expect("a URL");
    let target = format!("{}:{}", url.host_str()?, url.port().unwrap_or(5432))
        .parse()
        .expect("a loopback address");
    let cable = Cable::to(target).await;
    url.set_port(Some(cable.addr.port())).expect("a port");
    settings.database_url = Some(url.to_string());
    Some(cable)
}
