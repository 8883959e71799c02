//! What both clients share: the status their handles wait on, and the transport between the
//! core and the socket (plain, or TLS after STARTTLS) with its TLS policy and CA file.

use std::io;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use exampple_core::client::{self as core, ClientConfig, ClientError, Inbox, TlsPolicy};
use exampple_core::jid::FullJid;

/// What a client's handle waits on: the received stanzas and how the connection stands.
#[derive(Default)]
pub(crate) struct Status {
    pub(crate) inbox: Inbox,
    pub(crate) online: Option<FullJid>,
    pub(crate) failed: Option<ClientError>,
    pub(crate) closed: bool,
}

/// Locks `mutex`; a panic while holding the lock leaves plain data behind: keep going.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// The error when `address` resolves to no socket address at all.
pub(crate) fn no_address(address: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{address} resolves to no address"),
    )
}

/// The transport between the core and the socket: plain, or TLS after STARTTLS. It does no
/// I/O: its methods return the bytes to write.
#[derive(Default)]
pub(crate) struct Layer {
    #[cfg(feature = "tls")]
    tls: Option<exampple_core::tls::Tls>,
}

impl Layer {
    /// The bytes to write for plaintext from the core.
    pub(crate) fn outgoing(&mut self, plain: Vec<u8>) -> io::Result<Vec<u8>> {
        #[cfg(feature = "tls")]
        if let Some(tls) = &mut self.tls {
            tls.encrypt(&plain).map_err(io::Error::other)?;
            return Ok(tls.outgoing());
        }
        Ok(plain)
    }

    /// Feeds bytes read from the socket to the core; returns TLS bytes to write back.
    pub(crate) fn incoming(
        &mut self,
        core: &mut core::Client,
        now: Instant,
        raw: &[u8],
    ) -> Vec<u8> {
        #[cfg(feature = "tls")]
        if let Some(tls) = &mut self.tls {
            let mut plain = Vec::new();
            let result = tls.feed(raw, &mut plain);
            let out = tls.outgoing();
            match result {
                Err(e) => {
                    core.handle_tls_failed(now, e);
                    core.handle_eof(now);
                }
                Ok(()) => {
                    if tls.just_established() {
                        core.handle_tls_established(now);
                    }
                    if !plain.is_empty() {
                        core.handle_input(now, &plain);
                    }
                }
            }
            return out;
        }
        core.handle_input(now, raw);
        Vec::new()
    }

    /// Starts the TLS handshake after `<proceed/>` (the core's
    /// [`ClientEvent::StartTls`](core::ClientEvent::StartTls)); returns the bytes to write,
    /// none if it could not start (the core has been told).
    pub(crate) fn start_tls(&mut self, core: &mut core::Client, now: Instant) -> Vec<u8> {
        #[cfg(feature = "tls")]
        match read_ca_file(core.config())
            .and_then(|pem| exampple_core::tls::Tls::new(core.config(), pem.as_deref()))
        {
            Ok(mut session) => {
                let hello = session.outgoing();
                self.tls = Some(session);
                return hello;
            }
            Err(e) => core.handle_tls_failed(now, e),
        }
        #[cfg(not(feature = "tls"))]
        core.handle_tls_failed(now, "exampple-client is built without the `tls` feature");
        Vec::new()
    }

    /// The TLS close_notify to write before shutting the socket down (none without TLS).
    pub(crate) fn close(&mut self) -> Vec<u8> {
        #[cfg(feature = "tls")]
        if let Some(tls) = &mut self.tls {
            tls.close();
            return tls.outgoing();
        }
        Vec::new()
    }
}

/// Without the `tls` feature: decline STARTTLS offers, refuse a policy that requires TLS.
pub(crate) fn adjust_tls_policy(config: &mut ClientConfig) -> Result<(), ClientError> {
    if cfg!(feature = "tls") {
        return Ok(());
    }
    match config.tls {
        TlsPolicy::Required => Err(ClientError::Config(
            "TLS is required but exampple-client is built without the `tls` feature".to_string(),
        )),
        TlsPolicy::IfOffered => {
            config.tls = TlsPolicy::Never;
            Ok(())
        }
        TlsPolicy::Never => Ok(()),
    }
}

/// The contents of the configuration's CA file, if it names one (read here: the core does no
/// I/O).
#[cfg(feature = "tls")]
fn read_ca_file(config: &ClientConfig) -> Result<Option<Vec<u8>>, String> {
    match &config.tls_ca_file {
        Some(path) => std::fs::read(path)
            .map(Some)
            .map_err(|e| format!("{}: {e}", path.display())),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(policy: TlsPolicy) -> ClientConfig {
        ClientConfig::new("alice@localhost/test", "alice-pass")
            .unwrap()
            .tls(policy)
    }

    #[test]
    fn the_tls_policy_follows_the_feature() {
        for policy in [TlsPolicy::Never, TlsPolicy::IfOffered, TlsPolicy::Required] {
            let mut adjusted = config(policy);
            let result = adjust_tls_policy(&mut adjusted);
            match (cfg!(feature = "tls"), policy) {
                (true, _) | (false, TlsPolicy::Never) => {
                    assert!(result.is_ok());
                    assert_eq!(adjusted.tls, policy);
                }
                (false, TlsPolicy::IfOffered) => {
                    assert!(result.is_ok());
                    assert_eq!(adjusted.tls, TlsPolicy::Never);
                }
                (false, TlsPolicy::Required) => {
                    assert!(
                        matches!(&result, Err(ClientError::Config(text)) if text.contains("`tls` feature")),
                        "{result:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_plain_layer_passes_bytes_through() {
        let mut layer = Layer::default();
        assert_eq!(layer.outgoing(b"<iq/>".to_vec()).unwrap(), b"<iq/>");
        assert!(layer.close().is_empty());
    }

    #[cfg(feature = "tls")]
    #[test]
    fn a_missing_ca_file_is_named() {
        let mut missing = config(TlsPolicy::Required);
        assert_eq!(read_ca_file(&missing), Ok(None));
        missing.tls_ca_file = Some("/nonexistent/exampple-ca.pem".into());
        let error = read_ca_file(&missing).unwrap_err();
        assert!(
            error.starts_with("/nonexistent/exampple-ca.pem: "),
            "{error}"
        );
    }
}
