//! A connection's reader: a thread that reads the socket into the connection's
//! [`SharedLexer`](exampple_core::parser::SharedLexer) and tokenises while the core is busy
//! (the thread is `exampple-io`'s, shared with the std runtime). When the reader falls
//! behind, the core's task tokenises the next piece itself instead of waiting. The core
//! builds the elements from the tokens; all protocol decisions stay there.
//!
//! The socket stays in blocking mode: after a read the reader watches the socket briefly,
//! then sleeps in `read` until bytes come (no reactor). The core's task writes with
//! non-blocking sends (see `write_out` in the runtime).

use std::net::TcpStream;
use std::sync::Arc;

use event_listener::Event;
use exampple_core::parser::StreamLexer;

/// An open connection (socket and input: see [`exampple_io::Connection`]) and how the
/// core's task learns that the input has something. Dropping it ends the reader.
pub(crate) struct Connection {
    pub(crate) io: exampple_io::Connection,
    /// Notified when the input has something for the core.
    ready: Arc<Event>,
}

impl Connection {
    /// Starts the reader thread for `socket` (in blocking mode), tokenising with `lexer`.
    pub(crate) fn start(socket: TcpStream, lexer: StreamLexer) -> std::io::Result<Connection> {
        let ready = Arc::new(Event::new());
        let notify = ready.clone();
        let io = exampple_io::Connection::start(
            socket,
            lexer,
            move || {
                notify.notify(1);
            },
            || {},
        )?;
        Ok(Connection { io, ready })
    }

    /// Waits until the input has something for the core.
    pub(crate) async fn readable(&self) {
        loop {
            // Listen first, then look: a notification in between is not lost.
            let listener = self.ready.listen();
            if self.io.input.has_work() {
                return;
            }
            listener.await;
        }
    }
}
