//! HTTPS served by Duet itself, with rustls (no OpenSSL): a certificate and key from PEM files
//! (`--tls-cert`, `--tls-key`), or a self-signed pair made once and kept in the data directory
//! (`--tls-self-signed`, names from `--tls-names`), so a family can call across a LAN after
//! accepting the browser's warning once.

use std::path::{Path, PathBuf};

use axum_server::tls_rustls::RustlsConfig;

use crate::config::Settings;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("--tls-cert and --tls-key go together")]
    Incomplete,
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot make a self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("the certificate or key is not usable: {0}")]
    Config(std::io::Error),
}

/// Where `--tls-self-signed` keeps its pair.
pub fn self_signed_paths(data_dir: &Path) -> (PathBuf, PathBuf) {
    let dir = data_dir.join("tls");
    (dir.join("self-signed.crt"), dir.join("self-signed.key"))
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.display().to_string(),
        source,
    })
}

fn write(path: &Path, data: &[u8]) -> Result<(), TlsError> {
    let error = |source| TlsError::Write {
        path: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(error)?;
    }
    std::fs::write(path, data).map_err(error)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
    }
    Ok(())
}

/// The names a self-signed certificate is made for: `--tls-names`, or this host's name,
/// `localhost` and the loopback addresses.
fn names(settings: &Settings) -> Vec<String> {
    if !settings.tls_names.is_empty() {
        return settings.tls_names.clone();
    }
    let mut names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    if let Ok(host) = std::fs::read_to_string("/etc/hostname") {
        let host = host.trim();
        if !host.is_empty() {
            names.insert(0, host.to_owned());
        }
    }
    if !settings.addr.ip().is_unspecified() {
        names.push(settings.addr.ip().to_string());
    }
    names
}

/// A PEM certificate chain and its private key.
pub type PemPair = (Vec<u8>, Vec<u8>);

/// The PEM certificate chain and key Duet serves, if it serves TLS at all.
pub fn load_pem(settings: &Settings) -> Result<Option<PemPair>, TlsError> {
    match (&settings.tls_cert, &settings.tls_key) {
        (Some(cert), Some(key)) => return Ok(Some((read(cert)?, read(key)?))),
        (None, None) => {}
        _ => return Err(TlsError::Incomplete),
    }
    if !settings.tls_self_signed {
        return Ok(None);
    }
    let (cert_path, key_path) = self_signed_paths(&settings.data_dir);
    if cert_path.is_file() && key_path.is_file() {
        return Ok(Some((read(&cert_path)?, read(&key_path)?)));
    }
    let names = names(settings);
    tracing::info!(?names, path = %cert_path.display(), "making a self-signed certificate");
    let certified = rcgen::generate_simple_self_signed(names)?;
    let cert = certified.cert.pem().into_bytes();
    let key = certified.key_pair.serialize_pem().into_bytes();
    write(&key_path, &key)?;
    write(&cert_path, &cert)?;
    Ok(Some((cert, key)))
}

/// The rustls configuration for axum-server.
pub async fn config(cert: Vec<u8>, key: Vec<u8>) -> Result<RustlsConfig, TlsError> {
    // One crypto provider for the process (ring); installing it twice is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    RustlsConfig::from_pem(cert, key)
        .await
        .map_err(TlsError::Config)
}
