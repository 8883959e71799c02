//! STARTTLS for the c2s client: a rustls client session driven over byte buffers, no I/O
//! (feature `tls`). exampple-client's clients feed it the socket's bytes and write what it
//! produces.

use std::io::{Read as _, Write as _};
use std::sync::Arc;

use crate::client::ClientConfig;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};

/// Raw TLS bytes in and out, plaintext in and out.
pub struct Tls {
    conn: rustls::ClientConnection,
    established: bool,
}

impl Tls {
    /// A session for the configuration's domain, trusting the certificates of `ca_pem` (the
    /// contents of the configuration's CA file, read by the client) or the web roots.
    pub fn new(config: &ClientConfig, ca_pem: Option<&[u8]>) -> Result<Tls, String> {
        let mut roots = rustls::RootCertStore::empty();
        match ca_pem {
            Some(pem) => {
                for cert in CertificateDer::pem_slice_iter(pem) {
                    let cert = cert.map_err(|e| format!("CA file: {e}"))?;
                    roots.add(cert).map_err(|e| format!("CA file: {e}"))?;
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls_config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = ServerName::try_from(config.domain.clone()).map_err(|e| e.to_string())?;
        let conn =
            rustls::ClientConnection::new(Arc::new(tls_config), name).map_err(|e| e.to_string())?;
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
