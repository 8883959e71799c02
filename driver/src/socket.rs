//! The blocking socket's two timed operations, apart so that the plain connection and the
//! TLS link share them: connecting, and writing all of a buffer.

use std::io::Write;
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Connects to `address` (resolving it), within `timeout` for each of its addresses. The
/// socket is in blocking mode, without Nagle's delay, and each write blocks for at most
/// `write_timeout`: a server that stops reading for that long counts as gone.
pub fn connect(
    address: &str,
    timeout: Duration,
    write_timeout: Duration,
) -> Result<TcpStream, String> {
    let addrs = address
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve: {e}"))?;
    let mut last = String::from("no address");
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                s.set_write_timeout(Some(write_timeout))
                    .map_err(|e| e.to_string())?;
                return Ok(s);
            }
            Err(e) => last = e.to_string(),
        }
    }
    Err(last)
}

/// Writes all of `bytes`, each write blocking for at most the socket's write timeout (a
/// server that reads steadily but slowly is alive, however long a backlog takes); on an
/// error, also how many bytes the socket took (the core keeps the stanzas after them).
pub fn write_all(mut socket: &TcpStream, bytes: &[u8]) -> Result<(), (usize, String)> {
    let mut written = 0;
    while written < bytes.len() {
        match socket.write(&bytes[written..]) {
            Ok(0) => return Err((written, "the connection closed while writing".into())),
            Ok(n) => written += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err((
                    written,
                    "write timed out: the server stopped reading".into(),
                ));
            }
            Err(e) => return Err((written, format!("write failed: {e}"))),
        }
    }
    Ok(())
}
