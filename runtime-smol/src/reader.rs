//! A connection's reader: a thread that reads the socket into the connection's
//! [`SharedLexer`] and tokenises while the core is busy, so that tokenising, about half of
//! a stanza's cost, runs beside the rest of it. When the reader falls behind (its CPU is
//! shared with something else), the core's task tokenises the next piece itself instead of
//! waiting. The core builds the elements from the tokens; all protocol decisions stay there.

use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_io::Async;
use event_listener::Event;
use exampple_core::parser::{SharedLexer, StreamLexer};
use smol::io::AsyncReadExt;

/// How long the reader polls the socket after a read, before it sleeps in the reactor: a
/// busy peer's next bytes usually come within that, and a wake-up costs more.
const SPIN: Duration = Duration::from_micros(50);

/// An open connection: the socket the core's task writes to, and the input the reader
/// puts in. Dropping it closes the input and shuts the socket down, which ends the reader.
pub(crate) struct Connection {
    pub(crate) socket: Arc<Async<TcpStream>>,
    pub(crate) input: Arc<SharedLexer>,
    /// Notified when the input has something for the core.
    pub(crate) ready: Arc<Event>,
}

impl Connection {
    /// Starts the reader thread for `socket`, tokenising with `lexer`.
    pub(crate) fn start(
        socket: Async<TcpStream>,
        lexer: StreamLexer,
    ) -> std::io::Result<Connection> {
        let socket = Arc::new(socket);
        let ready = Arc::new(Event::new());
        let notify = ready.clone();
        let input = Arc::new(SharedLexer::new(lexer, move || {
            notify.notify(1);
        }));
        let (reader_socket, reader_input) = (socket.clone(), input.clone());
        std::thread::Builder::new()
            .name("exampple-reader".into())
            .spawn(move || async_io::block_on(read(reader_socket, reader_input)))?;
        Ok(Connection {
            socket,
            input,
            ready,
        })
    }

    /// Waits until the input has something for the core.
    pub(crate) async fn readable(&self) {
        loop {
            // Listen first, then look: a notification in between is not lost.
            let listener = self.ready.listen();
            if self.input.has_work() {
                return;
            }
            listener.await;
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.input.close();
        let _ = self.socket.get_ref().shutdown(Shutdown::Both);
    }
}

async fn read(socket: Arc<Async<TcpStream>>, input: Arc<SharedLexer>) {
    let mut end = input.end_guard();
    // 16 KiB reads: large enough to batch (one write answers a read's stanzas), small
    // enough that a batch's elements stay in cache (64 KiB reads were ~9% slower at
    // window 1000).
    let mut buffer = vec![0u8; 16 * 1024];
    let mut scratch = Vec::new();
    let mut busy = false;
    loop {
        let spun = if busy {
            spin_read(&socket, &mut buffer)
        } else {
            None
        };
        let read = match spun {
            Some(read) => read,
            None => (&*socket).read(&mut buffer).await,
        };
        let n = match read {
            Ok(0) => return end.reason("the server closed the connection"),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return end.reason(e.to_string()),
        };
        busy = true;
        if !input.feed(&buffer[..n]) {
            // The core gave the connection up.
            return;
        }
        input.lex_pending(&mut scratch);
        // What was read is tokenised and waits for the core. Before spinning for more, let
        // a thread that shares this CPU run: when it is the peer, our work woke it, and it
        // would otherwise wait behind the spin (measured: +6% at window 100 on two CPUs).
        std::thread::yield_now();
    }
}

/// Non-blocking reads until one returns something or [`SPIN`] has passed.
fn spin_read(socket: &Async<TcpStream>, buffer: &mut [u8]) -> Option<std::io::Result<usize>> {
    let until = Instant::now() + SPIN;
    loop {
        let mut raw: &TcpStream = socket.get_ref();
        match std::io::Read::read(&mut raw, buffer) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            result => return Some(result),
        }
        if Instant::now() >= until {
            return None;
        }
        std::hint::spin_loop();
    }
}
