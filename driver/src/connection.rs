//! A connection to the server: the socket the loop writes to, and the reader thread that
//! reads it into a [`SharedLexer`] and tokenises there. What the kernel says about a socket
//! without reading it. The socket stays in blocking mode: the reader sleeps in `read`, and
//! the loop's writes block at most the write timeout. With direct TLS ([`Dialer`] with a
//! [`DirectTls`](exampple_core::config::DirectTls) setting), the reader decrypts what it reads
//! and [`Connection::write`] encrypts.

use std::io::Read;
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use exampple_core::component::Component;
use exampple_core::config::{Config, ConfigError};
use exampple_core::parser::StreamLexer;
use rustix::event::{PollFd, PollFlags, Timespec, poll};

use crate::shared_lexer::SharedLexer;
pub use crate::socket::{connect, write_all};

/// An open connection: the socket the runtime writes to, and the input its reader thread
/// puts in. Dropping it closes the input and shuts the socket down, which ends the reader.
pub struct Connection {
    /// The socket, in blocking mode. With TLS it carries TLS records: write through
    /// [`Connection::write`].
    pub socket: Arc<TcpStream>,
    /// What the reader has read (decrypted, with TLS), for the core's thread to take.
    pub input: Arc<SharedLexer>,
    wire: Wire,
}

/// A connected socket ready for [`Connection::start`]: plain (from a `TcpStream`), or with
/// its TLS handshake made ([`Dialer::dial`]).
#[derive(Debug)]
pub struct Link {
    socket: TcpStream,
    wire: Wire,
}

impl From<TcpStream> for Link {
    fn from(socket: TcpStream) -> Link {
        Link {
            socket,
            wire: Wire::Plain,
        }
    }
}

impl Link {
    /// Whether the link is TLS.
    pub fn is_tls(&self) -> bool {
        !matches!(self.wire, Wire::Plain)
    }
}

/// What the bytes on a socket are.
#[derive(Debug, Clone)]
enum Wire {
    /// The stream itself.
    Plain,
    /// TLS records of the stream.
    #[cfg(feature = "tls")]
    Tls(Arc<crate::tls::TlsLink>),
}

impl Connection {
    /// Starts the reader thread for `link` (a socket in blocking mode, or a [`Link`] from
    /// [`Dialer::dial`]), tokenising with `lexer`.
    ///
    /// `on_input` is called on the reader's thread when the input has something for the core
    /// after having had nothing (see [`SharedLexer::new`]); `after_read` after each read the
    /// reader has put in and tokenised.
    pub fn start(
        link: impl Into<Link>,
        lexer: StreamLexer,
        on_input: impl Fn() + Send + Sync + 'static,
        after_read: impl Fn() + Send + 'static,
    ) -> std::io::Result<Connection> {
        let Link { socket, wire } = link.into();
        let socket = Arc::new(socket);
        let input = Arc::new(SharedLexer::new(lexer, on_input));
        let (reader_socket, reader_input, reader_wire) =
            (socket.clone(), input.clone(), wire.clone());
        std::thread::Builder::new()
            .name("exampple-reader".into())
            .spawn(move || read(&reader_socket, &reader_input, &reader_wire, after_read))?;
        Ok(Connection {
            socket,
            input,
            wire,
        })
    }

    /// Writes all of `bytes` (encrypted, with TLS): see [`write_all`].
    pub fn write(&self, bytes: &[u8]) -> Result<(), (usize, String)> {
        match &self.wire {
            Wire::Plain => write_all(&self.socket, bytes),
            #[cfg(feature = "tls")]
            Wire::Tls(link) => link.send(&self.socket, bytes),
        }
    }

    /// Whether the server has ended its side of the connection (or the connection failed),
    /// as the kernel knows it, even with bytes before the end still unread: see
    /// [`peer_ended`].
    pub fn server_ended(&self) -> bool {
        peer_ended(&self.socket)
    }

    /// Tells `core` when the server has ended its side of the connection before the reader
    /// has read that far (the reader may be asleep in `read`, or not scheduled yet), so that
    /// the stanzas about to be taken from the outbox wait for the next connection instead of
    /// going to one whose other end is gone (see [`Component::handle_server_ended`]). A
    /// system call, so only when the outbox has something: call it before each
    /// [`Component::handle_outbox`] and [`Component::handle_tokens`].
    pub fn notice_server_end(&self, core: &mut Component) {
        if core.has_outbox() && self.server_ended() {
            core.handle_server_ended();
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.input.close();
        #[cfg(feature = "tls")]
        if let Wire::Tls(link) = &self.wire {
            link.close(&self.socket);
        }
        let _ = self.socket.shutdown(Shutdown::Both);
    }
}

/// The reader thread: reads the socket into the input and tokenises while the core's thread
/// is busy (it tokenises too when it is not: see [`SharedLexer`]), until the socket ends or
/// the core gives the connection up.
fn read(socket: &TcpStream, input: &SharedLexer, wire: &Wire, after_read: impl Fn()) {
    let mut end = input.end_guard();
    // 16 KiB reads: large enough to batch (one write answers a read's stanzas), small
    // enough that a batch's elements, conns and replies stay in cache.
    let mut buffer = vec![0u8; 16 * 1024];
    let mut scratch = Vec::new();
    #[cfg(feature = "tls")]
    let mut plain = Vec::new();
    #[cfg(feature = "tls")]
    if let Wire::Tls(link) = wire {
        // What the handshake may have read beyond itself.
        match link.receive(socket, &[], &mut plain) {
            Ok(true) => {}
            Ok(false) => return end.reason("the server closed the TLS session"),
            Err(e) => return end.reason(e),
        }
        if !plain.is_empty() && !input.feed(&plain) {
            return;
        }
    }
    let mut socket = socket;
    loop {
        let n = match socket.read(&mut buffer) {
            Ok(0) => return end.reason("the server closed the connection"),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return end.reason(e.to_string()),
        };
        // Whether the input took the bytes, and whether the server has closed its TLS
        // session (its stream's end came before).
        let (taken, tls_closed) = match wire {
            Wire::Plain => (input.feed(&buffer[..n]), false),
            #[cfg(feature = "tls")]
            Wire::Tls(link) => {
                plain.clear();
                let open = match link.receive(socket, &buffer[..n], &mut plain) {
                    Ok(open) => open,
                    Err(e) => return end.reason(e),
                };
                // Records without data (a session ticket, say) leave nothing to feed.
                (plain.is_empty() || input.feed(&plain), !open)
            }
        };
        if !taken {
            // The core gave the connection up.
            return;
        }
        input.lex_pending(&mut scratch);
        after_read();
        if tls_closed {
            return end.reason("the server closed the TLS session");
        }
        await_bytes_briefly(socket);
    }
}

/// How long the reader watches the socket after a read before it sleeps in `read`.
pub const READ_SPIN: Duration = Duration::from_micros(20);

/// Waits up to [`READ_SPIN`] for `socket` to have bytes (or its end) to read, yielding the
/// CPU between looks, so that back-to-back traffic finds the reader awake. Reads nothing.
///
/// A sleeping reader costs a wake-up per request, and on a VM the CPU it sleeps on may be
/// halted, which costs more than the watch. It looks with a zero-timeout `poll(2)`, which
/// reads the socket's state without locking it: polling with non-blocking `recv` instead
/// is slower than sleeping, since while the reader holds the socket's lock the kernel
/// queues arriving segments to a backlog.
pub fn await_bytes_briefly(socket: &TcpStream) {
    let until = Instant::now() + READ_SPIN;
    // An error (EINTR, say) is a look that found nothing; `read` reports the rest.
    while poll_now(socket, PollFlags::IN).is_none() && Instant::now() < until {
        std::thread::yield_now();
    }
}

/// Whether the peer has ended its side of `socket` (or the connection failed), as the
/// kernel knows it, bytes still unread or not. A system call that does not block.
pub fn peer_ended(socket: &TcpStream) -> bool {
    poll_now(socket, PollFlags::RDHUP)
        .is_some_and(|ready| ready.intersects(PollFlags::RDHUP | PollFlags::HUP | PollFlags::ERR))
}

/// What `poll(2)` says of `socket` for `flags` now, without waiting; `None` when nothing
/// (or when the call failed).
fn poll_now(socket: &TcpStream, flags: PollFlags) -> Option<PollFlags> {
    let mut fds = [PollFd::new(socket, flags)];
    let now = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    match poll(&mut fds, Some(&now)) {
        Ok(ready) if ready > 0 => Some(fds[0].revents()),
        _ => None,
    }
}

/// Opens links to the server as the configuration says: TCP, then the TLS handshake with
/// [`DirectTls`](exampple_core::config::DirectTls).
#[derive(Debug)]
pub struct Dialer {
    #[cfg(feature = "tls")]
    tls: Option<crate::tls::Connector>,
}

impl Dialer {
    /// The dialer for `config`. With TLS, reads the trust anchors now: an unreadable CA file
    /// or a bad server name is an error here, as is TLS without the `tls` feature.
    pub fn new(config: &Config) -> Result<Dialer, ConfigError> {
        match &config.tls {
            None => Ok(Dialer {
                #[cfg(feature = "tls")]
                tls: None,
            }),
            #[cfg(feature = "tls")]
            Some(tls) => Ok(Dialer {
                tls: Some(crate::tls::Connector::new(tls, &config.domain)?),
            }),
            #[cfg(not(feature = "tls"))]
            Some(_) => Err(ConfigError {
                name: "tls",
                value: "direct TLS".into(),
                expected: "exampple (or exampple-driver) built with its `tls` feature",
            }),
        }
    }

    /// Connects to `address` (see [`connect`]) and, with TLS, makes the handshake within
    /// `timeout` too, before anything of the stream is written.
    pub fn dial(
        &self,
        address: &str,
        timeout: Duration,
        write_timeout: Duration,
    ) -> Result<Link, DialError> {
        let socket = connect(address, timeout, write_timeout).map_err(DialError::Connect)?;
        #[cfg(feature = "tls")]
        if let Some(connector) = &self.tls {
            let link = connector
                .handshake(&socket, timeout)
                .map_err(DialError::Tls)?;
            return Ok(Link {
                socket,
                wire: Wire::Tls(Arc::new(link)),
            });
        }
        Ok(Link::from(socket))
    }
}

/// Why [`Dialer::dial`] opened no link.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DialError {
    /// No TCP connection.
    #[error("{0}")]
    Connect(String),
    /// The TLS handshake failed: the server's certificate could not be verified, say.
    #[error("{0}")]
    Tls(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use exampple_core::config::DirectTls;

    /// Without the `tls` feature a TLS configuration is refused up front, naming the feature;
    /// with it, an unusable CA is.
    #[test]
    fn a_tls_setting_that_cannot_work_is_refused_up_front() {
        let config = Config::new("component.localhost", "secret")
            .tls(DirectTls::ca_pem("no certificate here"));
        let error = Dialer::new(&config).unwrap_err().to_string();
        #[cfg(not(feature = "tls"))]
        assert_eq!(
            error,
            "invalid tls `direct TLS`: expected exampple (or exampple-driver) built with its `tls` feature"
        );
        #[cfg(feature = "tls")]
        assert!(error.contains("no certificate"), "{error}");
        assert!(Dialer::new(&Config::new("component.localhost", "secret")).is_ok());
    }
}
