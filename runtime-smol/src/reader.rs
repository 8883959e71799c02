//! A connection's reader: a thread that reads the socket and parses what it reads, so that
//! parsing, the larger part of a stanza's cost, runs on another core than routing and
//! writing. The core gets the parsed items ([`Component::handle_parsed`]); all protocol
//! decisions stay there.
//!
//! [`Component::handle_parsed`]: exampple_core::Component::handle_parsed

use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_io::Async;
use exampple_core::parser::{StreamLexer, Tokens};
use smol::channel;
use smol::io::AsyncReadExt;

/// What the reader sends the core's task.
pub(crate) enum Input {
    /// The tokens of a piece of input (and the error that ended lexing, if any).
    Tokens(Tokens),
    /// The connection ended.
    Closed(String),
}

/// How many parsed reads may wait for the core. Past that the reader stops reading: the
/// kernel's receive window fills and a server that floods without reading our answers is
/// slowed down instead of filling our memory (at most this many pieces of 2 KiB).
const BACKLOG: usize = 16;

/// How many bytes of a read are tokenised before their tokens go to the core (~18 pings).
const PIECE: usize = 2048;

/// How long the reader polls the socket after a read, before it sleeps in the reactor: a
/// busy peer's next bytes usually come within that, and a wake-up costs more.
const SPIN: Duration = Duration::from_micros(50);

/// An open connection: the socket the core's task writes to, and the reader thread's
/// output. Dropping it shuts the socket down, which ends the reader.
pub(crate) struct Connection {
    pub(crate) socket: Arc<Async<TcpStream>>,
    pub(crate) inputs: channel::Receiver<Input>,
    recycle: channel::Sender<Tokens>,
}

impl Connection {
    /// Starts the reader thread for `socket`, tokenising with `lexer`.
    pub(crate) fn start(
        socket: Async<TcpStream>,
        lexer: StreamLexer,
    ) -> std::io::Result<Connection> {
        let socket = Arc::new(socket);
        let (input_tx, inputs) = channel::bounded(BACKLOG);
        let (recycle, recycled) = channel::bounded(BACKLOG);
        let reader_socket = socket.clone();
        std::thread::Builder::new()
            .name("exampple-reader".into())
            .spawn(move || {
                async_io::block_on(read_and_lex(reader_socket, lexer, input_tx, recycled))
            })?;
        Ok(Connection {
            socket,
            inputs,
            recycle,
        })
    }

    /// Gives spent tokens back to the reader, which drops what they hold (rxml's strings,
    /// allocated on its thread) and fills them again.
    pub(crate) fn recycle(&self, tokens: Tokens) {
        let _ = self.recycle.try_send(tokens);
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        let _ = self.socket.get_ref().shutdown(Shutdown::Both);
    }
}

async fn read_and_lex(
    socket: Arc<Async<TcpStream>>,
    mut lexer: StreamLexer,
    inputs: channel::Sender<Input>,
    recycled: channel::Receiver<Tokens>,
) {
    // 16 KiB reads: large enough to batch (one write answers a read's stanzas), small
    // enough that a batch's elements stay in cache (64 KiB reads were ~9% slower at
    // window 1000).
    let mut buffer = vec![0u8; 16 * 1024];
    let mut tokens = Tokens::default();
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
            Ok(0) => {
                let _ = inputs
                    .send(Input::Closed("the server closed the connection".into()))
                    .await;
                return;
            }
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let _ = inputs.send(Input::Closed(e.to_string())).await;
                return;
            }
        };
        busy = true;
        // A read is tokenised and handed over in pieces, so that the core builds, routes
        // and answers the first stanzas of a large read while the rest are tokenised.
        for piece in buffer[..n].chunks(PIECE) {
            lexer.lex(piece, &mut tokens);
            if tokens.is_empty() {
                continue;
            }
            let last = tokens.is_final();
            let batch = std::mem::replace(&mut tokens, recycled.try_recv().unwrap_or_default());
            if inputs.send(Input::Tokens(batch)).await.is_err() || last {
                // The core is gone, or the stream cannot go on (the core answers the
                // error with a stream error and closes).
                return;
            }
        }
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
