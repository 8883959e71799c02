//! rustls, set up once for every TLS link exampple makes (feature `tls`): [`client_config`]
//! and [`roots_from_pem`], used by the runtimes' direct TLS on the component link
//! ([`DirectTls`](crate::config::DirectTls)) and by the c2s client's STARTTLS; and, with the
//! `client` feature, [`Tls`]: the c2s client's session driven over byte buffers, no I/O
//! (exampple-client's clients feed it the socket's bytes and write what it produces).

#[cfg(feature = "client")]
use std::io::{Read as _, Write as _};
use std::sync::Arc;

#[cfg(feature = "client")]
use crate::client::ClientConfig;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};

/// Why trust anchors or a TLS configuration could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsSetupError {
    /// The PEM text could not be read.
    #[error("unreadable PEM: {0}")]
    Pem(String),
    /// The PEM text holds no certificate.
    #[error("no certificate in the PEM text")]
    NoCertificate,
    /// A certificate cannot be a trust anchor.
    #[error("unusable CA certificate: {0}")]
    Certificate(rustls::Error),
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Config(rustls::Error),
    /// The name to verify is neither a DNS name nor an IP address.
    #[error("`{0}` is not a DNS name or an IP address")]
    ServerName(String),
}

/// The certificates of `pem` as trust anchors: at least one, each of them usable.
pub fn roots_from_pem(pem: &[u8]) -> Result<rustls::RootCertStore, TlsSetupError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| TlsSetupError::Pem(e.to_string()))?;
        roots.add(cert).map_err(TlsSetupError::Certificate)?;
    }
    if roots.is_empty() {
        return Err(TlsSetupError::NoCertificate);
    }
    Ok(roots)
}

/// A rustls client configuration trusting `roots`: the ring provider, rustls' safe default
/// protocol versions (TLS 1.2 and 1.3), no client certificate.
pub fn client_config(
    roots: rustls::RootCertStore,
) -> Result<Arc<rustls::ClientConfig>, TlsSetupError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsSetupError::Config)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// `name` as the name a server's certificate must be valid for.
pub fn server_name(name: &str) -> Result<ServerName<'static>, TlsSetupError> {
    ServerName::try_from(name.to_string()).map_err(|_| TlsSetupError::ServerName(name.into()))
}

/// Raw TLS bytes in and out, plaintext in and out.
#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
pub struct Tls {
    conn: rustls::ClientConnection,
    established: bool,
}

#[cfg(feature = "client")]
impl Tls {
    /// A session for the configuration's domain, trusting the certificates of `ca_pem` (the
    /// contents of the configuration's CA file, read by the client) or the web roots.
    pub fn new(config: &ClientConfig, ca_pem: Option<&[u8]>) -> Result<Tls, String> {
        let roots = match ca_pem {
            Some(pem) => roots_from_pem(pem).map_err(|e| format!("CA file: {e}"))?,
            None => {
                let mut roots = rustls::RootCertStore::empty();
                roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
                roots
            }
        };
        let tls_config = client_config(roots).map_err(|e| e.to_string())?;
        let name = server_name(&config.domain).map_err(|e| e.to_string())?;
        let conn = rustls::ClientConnection::new(tls_config, name).map_err(|e| e.to_string())?;
        Ok(Tls {
            conn,
            established: false,
        })
    }

    /// Feeds bytes read from the socket; the plaintext is appended to `plain`.
    pub fn feed(&mut self, mut raw: &[u8], plain: &mut Vec<u8>) -> Result<(), String> {
        while !raw.is_empty() {
            self.conn.read_tls(&mut raw).map_err(|e| e.to_string())?;
            let state = self.conn.process_new_packets().map_err(|e| e.to_string())?;
            let available = state.plaintext_bytes_to_read();
            if available > 0 {
                let start = plain.len();
                plain.resize(start + available, 0);
                let target = plain.get_mut(start..).unwrap_or_default();
                self.conn
                    .reader()
                    .read_exact(target)
                    .map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    }

    /// Encrypts plaintext (sent with the next [`Tls::outgoing`]).
    pub fn encrypt(&mut self, plain: &[u8]) -> Result<(), String> {
        self.conn
            .writer()
            .write_all(plain)
            .map_err(|e| e.to_string())
    }

    /// The TLS bytes to write to the socket.
    pub fn outgoing(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        while self.conn.wants_write() {
            if self.conn.write_tls(&mut out).is_err() {
                break;
            }
        }
        out
    }

    /// True once: when the handshake has just completed.
    pub fn just_established(&mut self) -> bool {
        if !self.established && !self.conn.is_handshaking() {
            self.established = true;
            return true;
        }
        false
    }

    /// Queues the TLS close_notify alert.
    pub fn close(&mut self) {
        self.conn.send_close_notify();
    }
}
