//! The coordinator's certificate: files an operator provides, or a
//! self-signed one made on first start and kept in the data dir, which
//! workers and clients pin by its SHA-256 fingerprint.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use iog_proto::auth::Fingerprint;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// How the coordinator serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsMode {
    /// A self-signed certificate in `<data_dir>/tls/`, made on first start.
    SelfSigned,
    /// A certificate chain and its private key, PEM files (production).
    Files { cert: PathBuf, key: PathBuf },
    /// Plain HTTP, for demos on a loopback address only.
    Insecure,
}

/// Where a self-signed certificate lives in the data dir.
const TLS_DIR: &str = "tls";
/// The file that holds the fingerprint clients pin, `sha256:<hex>`.
pub const PIN_FILE_NAME: &str = "coordinator.pin";

/// The server's TLS configuration and the fingerprint of its certificate,
/// or `None` when it serves plain HTTP.
pub(crate) fn server_config(
    mode: &TlsMode,
    data_dir: &Path,
    listen: SocketAddr,
) -> anyhow::Result<Option<(Arc<rustls::ServerConfig>, Fingerprint)>> {
    let (chain, key) = match mode {
        TlsMode::Insecure => {
            anyhow::ensure!(
                listen.ip().is_loopback(),
                "--insecure serves plain HTTP, which is only for this machine: listen on 127.0.0.1 or ::1, \
                 or drop --insecure to serve TLS (self-signed, or your own with --tls-cert and --tls-key)"
            );
            return Ok(None);
        }
        TlsMode::Files { cert, key } => read_pem(cert, key)?,
        TlsMode::SelfSigned => self_signed(&data_dir.join(TLS_DIR), listen)?,
    };
    let fingerprint = Fingerprint::of(chain[0].as_ref());
    // TLS 1.3 only: its exporter is what binds a signature to the
    // connection it came over (RFC 9266).
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .context("choose TLS versions")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("the TLS certificate and key do not go together")?;
    Ok(Some((Arc::new(config), fingerprint)))
}

fn read_pem(cert: &Path, key: &Path) -> anyhow::Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("read TLS certificate {}", cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("TLS certificate {} is not PEM", cert.display()))?;
    anyhow::ensure!(!chain.is_empty(), "TLS certificate file {} holds no certificate", cert.display());
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("read TLS private key {} (PEM: PKCS#8, PKCS#1 or SEC1)", key.display()))?;
    Ok((chain, key))
}

/// The self-signed certificate in `dir`, made when absent. Its names are
/// `localhost`, the loopback addresses and the listen address; a pinned
/// client checks the fingerprint, not the names.
fn self_signed(
    dir: &Path,
    listen: SocketAddr,
) -> anyhow::Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    if cert.is_file() && key.is_file() {
        return read_pem(&cert, &key);
    }
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let mut names = vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()];
    if !listen.ip().is_unspecified() && !listen.ip().is_loopback() {
        names.push(listen.ip().to_string());
    }
    let made = rcgen::generate_simple_self_signed(names).context("make a self-signed certificate")?;
    // The key first, private to its owner, so that a crash never leaves a
    // certificate without its key.
    write_private(&key, made.key_pair.serialize_pem().as_bytes())?;
    std::fs::write(&cert, made.cert.pem()).with_context(|| format!("write {}", cert.display()))?;
    tracing::info!(dir = %dir.display(), "made a self-signed TLS certificate");
    read_pem(&cert, &key)
}

fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).with_context(|| format!("create {}", path.display()))?;
    file.write_all(bytes).and_then(|()| file.sync_all()).with_context(|| format!("write {}", path.display()))
}
