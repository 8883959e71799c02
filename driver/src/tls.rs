//! Direct TLS on the component link (feature `tls`): [`Connector`] makes the handshake on a
//! freshly connected socket, on the driving thread, before the connection exists; then the
//! reader thread decrypts into the input and the loop's writes encrypt, sharing one
//! [`TlsLink`].
//!
//! XEP-0114 has no STARTTLS: the link is TLS from its first byte, and the stream header and
//! the handshake (the secret's digest) only go out once the handshake has completed, so
//! nothing of the component's stream is ever sent in the clear.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use exampple_core::config::{ConfigError, DirectTls, Trust};
use rustls::pki_types::ServerName;

use crate::socket;

/// The largest plaintext the writer encrypts at a time (TLS's largest record): on a failed
/// write the core learns, to within that, how much of its output the socket took.
const RECORD_PLAINTEXT: usize = 16 * 1024;

/// What a component's TLS links are made with: the rustls configuration (its trust
/// anchors, read once) and the name the server's certificate must be valid for.
pub struct Connector {
    config: Arc<rustls::ClientConfig>,
    server_name: ServerName<'static>,
    /// For messages: what is trusted and which name is verified.
    described: String,
}

impl Connector {
    /// The connector for `tls` on a component of `domain`: reads the trust anchors (the
    /// system's store, or the CA file) now, so that a configuration that cannot work fails
    /// when the component is built, not at each connection attempt.
    pub fn new(tls: &DirectTls, domain: &str) -> Result<Connector, ConfigError> {
        let name = tls.name_to_verify(domain);
        let server_name = exampple_core::tls::server_name(name).map_err(|e| ConfigError {
            name: "tls.server_name",
            value: e.to_string(),
            expected: "a DNS name or an IP address",
        })?;
        let (roots, trusted) = match &tls.trust {
            Trust::System => (system_roots()?, "the system's roots".to_string()),
            Trust::CaFile(path) => {
                let invalid = |value: String| ConfigError {
                    name: "tls CA file",
                    value,
                    expected: "a readable PEM file of CA certificates",
                };
                let pem =
                    std::fs::read(path).map_err(|e| invalid(format!("{}: {e}", path.display())))?;
                let roots = exampple_core::tls::roots_from_pem(&pem)
                    .map_err(|e| invalid(format!("{}: {e}", path.display())))?;
                (roots, format!("the CA file {}", path.display()))
            }
            Trust::CaPem(pem) => {
                let roots = exampple_core::tls::roots_from_pem(pem.as_bytes()).map_err(|e| {
                    ConfigError {
                        name: "tls CA PEM",
                        value: e.to_string(),
                        expected: "PEM text of CA certificates",
                    }
                })?;
                (roots, "the configured CA certificates".to_string())
            }
            _ => {
                return Err(ConfigError {
                    name: "tls.trust",
                    value: format!("{:?}", tls.trust),
                    expected: "a kind of trust this version of exampple-driver knows",
                });
            }
        };
        let config = exampple_core::tls::client_config(roots).map_err(|e| ConfigError {
            name: "tls",
            value: e.to_string(),
            expected: "a TLS configuration rustls accepts",
        })?;
        Ok(Connector {
            config,
            server_name,
            described: format!("`{name}`, trusting {trusted}"),
        })
    }

    /// Makes the TLS handshake on `socket` (just connected, in blocking mode) within
    /// `timeout`. Nothing but TLS handshake messages is written.
    pub fn handshake(&self, socket: &TcpStream, timeout: Duration) -> Result<TlsLink, String> {
        let mut session =
            rustls::ClientConnection::new(self.config.clone(), self.server_name.clone())
                .map_err(|e| format!("cannot start a TLS session: {e}"))?;
        let deadline = Instant::now() + timeout;
        while session.is_handshaking() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(format!("the TLS handshake took longer than {timeout:?}"));
            }
            socket
                .set_read_timeout(Some(left))
                .map_err(|e| e.to_string())?;
            let mut io = socket;
            // On a TLS error, rustls sends its alert (e.g. `unknown_ca`) before returning it.
            if let Err(e) = session.complete_io(&mut io) {
                return Err(self.handshake_error(&e, timeout));
            }
        }
        let mut io = socket;
        while session.wants_write() {
            session
                .write_tls(&mut io)
                .map_err(|e| format!("TLS handshake: {e}"))?;
        }
        // The reader sleeps in `read` from now on.
        socket.set_read_timeout(None).map_err(|e| e.to_string())?;
        Ok(TlsLink {
            session: Mutex::new(session),
            sending: Mutex::new(Sending::default()),
        })
    }

    /// A message that says why the handshake failed, naming the certificate's failure.
    fn handshake_error(&self, error: &std::io::Error, timeout: Duration) -> String {
        match error
            .get_ref()
            .and_then(|e| e.downcast_ref::<rustls::Error>())
        {
            Some(
                e @ (rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented),
            ) => format!(
                "TLS handshake failed: the server's certificate cannot be verified for {}: {e}",
                self.described
            ),
            // What a plain XEP-0114 port answers (its stream error) is no TLS record.
            Some(e @ rustls::Error::InvalidMessage(_)) => format!(
                "TLS handshake failed: {e} (the server does not speak TLS on this port: is it a plain component port?)"
            ),
            Some(e) => format!("TLS handshake failed: {e}"),
            None if matches!(
                error.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
            {
                format!("the TLS handshake took longer than {timeout:?}")
            }
            None if error.kind() == std::io::ErrorKind::UnexpectedEof => {
                "TLS handshake failed: the server closed the connection (is this port a TLS one?)"
                    .to_string()
            }
            None => format!("TLS handshake failed: {error}"),
        }
    }
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("verifies", &self.described)
            .finish_non_exhaustive()
    }
}

/// The roots of the operating system's store; one unreadable certificate among many is
/// skipped (with a warning), none at all is an error.
fn system_roots() -> Result<rustls::RootCertStore, ConfigError> {
    let found = rustls_native_certs::load_native_certs();
    for error in &found.errors {
        log::warn!(target: "exampple", "system CA store: {error}");
    }
    let mut roots = rustls::RootCertStore::empty();
    let (added, ignored) = roots.add_parsable_certificates(found.certs);
    if ignored > 0 {
        log::warn!(target: "exampple", "system CA store: {ignored} unusable certificates skipped");
    }
    if added == 0 {
        return Err(ConfigError {
            name: "tls.trust",
            value: "the system's roots: none found".into(),
            expected: "a system CA store (e.g. the ca-certificates package), or a CA file",
        });
    }
    Ok(roots)
}

/// An established TLS session, shared by the reader thread (which decrypts) and the driving
/// thread (which encrypts).
///
/// TLS records must reach the socket in the order the session made them, so whoever writes
/// holds `sending` from taking records out of the session until they are on the socket. The
/// session's lock is never held across a socket write (the reader must be able to decrypt
/// while a write blocks), and nobody waits for `sending` while holding the session: the
/// reader only tries it, and a writer gives it up while it holds the session, after a last
/// look at what the session has to send. So records the reader makes (an alert refusing a
/// TLS 1.2 renegotiation, say) are sent either by the reader or by the writer in progress,
/// never forgotten; rustls sends a key update's answer with the next data, so the writer.
pub struct TlsLink {
    session: Mutex<rustls::ClientConnection>,
    /// The records on their way to the socket.
    sending: Mutex<Sending>,
}

/// Records on their way to the socket, and where in them each piece of a write's
/// plaintext ends: (end of its records, end of its plaintext).
#[derive(Default)]
struct Sending {
    records: Vec<u8>,
    ends: Vec<(usize, usize)>,
}

impl TlsLink {
    /// Encrypts `plain` and writes it to `socket` in one write, as the plain connection
    /// does; on an error, also how much of `plain` the socket took (in whole records).
    pub fn send(&self, socket: &TcpStream, plain: &[u8]) -> Result<(), (usize, String)> {
        let mut sending = lock(&self.sending);
        let Sending { records, ends } = &mut *sending;
        {
            let mut session = lock(&self.session);
            let mut encrypted = 0;
            for chunk in plain.chunks(RECORD_PLAINTEXT) {
                let mut rest = chunk;
                while !rest.is_empty() {
                    match session.writer().write(rest) {
                        Ok(n) if n > 0 => rest = &rest[n..],
                        // The session's buffer is full: empty it into ours and go on.
                        Ok(_) if session.wants_write() => take_records(&mut session, records),
                        Ok(_) => return Err((0, "TLS: the session takes no data".into())),
                        Err(e) => return Err((0, format!("TLS: {e}"))),
                    }
                }
                take_records(&mut session, records);
                encrypted += chunk.len();
                ends.push((records.len(), encrypted));
            }
        }
        let written = socket::write_all(socket, records);
        let taken = |written: usize| {
            ends.iter()
                .take_while(|(record_end, _)| *record_end <= written)
                .last()
                .map_or(0, |(_, plain_end)| *plain_end)
        };
        let result = written.map_err(|(written, e)| (taken(written), e));
        records.clear();
        ends.clear();
        result?;
        self.send_rest(socket, sending)
            .map_err(|e| (plain.len(), e))
    }

    /// Writes what the session still has to send, until it has nothing, then gives up the
    /// right to send while holding the session (see [`TlsLink`]).
    fn send_rest(
        &self,
        socket: &TcpStream,
        mut sending: MutexGuard<'_, Sending>,
    ) -> Result<(), String> {
        loop {
            let mut session = lock(&self.session);
            take_records(&mut session, &mut sending.records);
            if sending.records.is_empty() {
                drop(sending);
                return Ok(());
            }
            drop(session);
            let written = socket::write_all(socket, &sending.records);
            sending.records.clear();
            written.map_err(|(_, e)| e)?;
        }
    }

    /// Decrypts `raw` (just read from `socket`; empty to take what the session already
    /// holds), appending the plaintext to `plain`. `Ok(false)` once the server has closed
    /// the TLS session (`close_notify`). Sends what decrypting made the session answer, when
    /// no write is under way (else that write sends it).
    pub fn receive(
        &self,
        socket: &TcpStream,
        mut raw: &[u8],
        plain: &mut Vec<u8>,
    ) -> Result<bool, String> {
        let mut session = lock(&self.session);
        let mut open = true;
        loop {
            if !raw.is_empty() {
                session
                    .read_tls(&mut raw)
                    .map_err(|e| format!("TLS: {e}"))?;
            }
            let state = match session.process_new_packets() {
                Ok(state) => state,
                Err(e) => {
                    // Tell the server why (rustls has queued an alert), if the socket takes it now.
                    if let Ok(mut sending) = self.sending.try_lock() {
                        take_records(&mut session, &mut sending.records);
                        drop(session);
                        let _ = socket::write_all(socket, &sending.records);
                        sending.records.clear();
                    }
                    return Err(format!("TLS: {e}"));
                }
            };
            let available = state.plaintext_bytes_to_read();
            if available > 0 {
                let start = plain.len();
                plain.resize(start + available, 0);
                let target = plain.get_mut(start..).unwrap_or_default();
                session
                    .reader()
                    .read_exact(target)
                    .map_err(|e| format!("TLS: {e}"))?;
            }
            if state.peer_has_closed() {
                open = false;
            }
            if raw.is_empty() {
                break;
            }
        }
        if session.wants_write()
            && let Ok(mut sending) = self.sending.try_lock()
        {
            take_records(&mut session, &mut sending.records);
            drop(session);
            let written = socket::write_all(socket, &sending.records);
            sending.records.clear();
            written.map_err(|(_, e)| e)?;
            self.send_rest(socket, sending)?;
        }
        Ok(open)
    }

    /// Sends the TLS `close_notify`, if the socket takes it at once (never blocks: the
    /// connection is being dropped).
    pub fn close(&self, socket: &TcpStream) {
        let Ok(mut sending) = self.sending.try_lock() else {
            return;
        };
        let mut session = lock(&self.session);
        session.send_close_notify();
        take_records(&mut session, &mut sending.records);
        drop(session);
        if socket.set_nonblocking(true).is_ok() {
            let mut io = socket;
            let _ = io.write(&sending.records);
        }
        sending.records.clear();
    }
}

impl std::fmt::Debug for TlsLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsLink").finish_non_exhaustive()
    }
}

/// Moves the records the session has made into `out`.
fn take_records(session: &mut rustls::ClientConnection, out: &mut Vec<u8>) {
    while session.wants_write() {
        // Writing into a Vec cannot fail.
        if session.write_tls(out).is_err() {
            break;
        }
    }
}

/// A lock that a panicked holder does not make unusable: each holder leaves the session
/// whole between calls into rustls, and a broken one fails its next call anyway.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
