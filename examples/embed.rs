//! The sans-IO core driven by a hand-written loop over a std `TcpStream`: how to embed
//! exampple in any event loop. Controllers run inline here, on the loop's thread.
//!
//!     EXAMPPLE_HOST=127.0.0.1 EXAMPPLE_PORT=5252 EXAMPPLE_DOMAIN=component.localhost \
//!     EXAMPPLE_PASSWORD=secret cargo run --example embed
//!
//! The one rule of a loop around the core: every `handle_*` call may leave bytes to write
//! and events to act on, so after any of them the loop writes and drains events again
//! before it waits. (Connecting is one: `handle_connected` queues the stream header, which
//! must be written before the loop waits for the server's.)

use std::future::Future;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use exampple::component::{DispatchFuture, Event};
use exampple::{Component, Config, Conn, Element, Router, StanzaError};

fn ping(conn: Conn, _payload: Vec<Element>) -> Result<(), StanzaError> {
    conn.iq_resp([]).send()?;
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    run(Config::from_env()?)
}

/// Runs the component until it closes or fails.
pub fn run(mut config: Config) -> Result<(), Box<dyn std::error::Error>> {
    // The core reads no randomness: like the runtimes, the embedding seeds it (generated
    // ids, reconnect jitter) from the OS unless the configuration has a seed. std's
    // `RandomState` is seeded from the OS, so no other crate is needed for it.
    if config.seed.is_none() {
        let os = std::collections::hash_map::RandomState::new();
        config = config.seed(std::hash::BuildHasher::hash_one(&os, "exampple seed"));
    }
    let router = Router::new().iq("urn:xmpp", |ns| ns.get("ping", ping));
    let mut core = Component::new(config, router, Instant::now())?;
    core.connect(Instant::now());
    let mut socket: Option<TcpStream> = None;
    let mut buffer = [0u8; 16 * 1024];
    // Async controllers that had to wait: polled again on every turn (a real loop would
    // hand them to its executor).
    let mut waiting: Vec<DispatchFuture> = Vec::new();
    loop {
        // 1. Write what the core wants written.
        while let Some(bytes) = core.poll_transmit() {
            if let Some(s) = socket.as_mut()
                && let Err((written, e)) = write_all(s, &bytes)
            {
                // The core keeps the stanzas the socket did not take for the next connection.
                socket = None;
                core.handle_write_failed(Instant::now(), e.to_string(), &bytes, written);
            }
        }
        // 2. Act on its events.
        while let Some(event) = core.poll_event() {
            match event {
                Event::Connect { address } => match TcpStream::connect(&address) {
                    Ok(s) => {
                        let _ = s.set_nodelay(true);
                        socket = Some(s);
                        // This queues the stream header: written at the top of the loop.
                        core.handle_connected(Instant::now());
                    }
                    Err(e) => core.handle_connect_failed(Instant::now(), e.to_string()),
                },
                // Inline: fine for quick controllers; a real loop would hand sync ones that
                // may block to workers.
                Event::Dispatch(dispatch) => waiting.extend(dispatch.run()),
                Event::Online { stream_id } => println!("online (stream {stream_id})"),
                Event::Disconnected { reason, .. } => {
                    println!("disconnected: {reason}");
                    socket = None;
                }
                Event::Failed(error) => return Err(error.into()),
                Event::Closed => return Ok(()),
                _ => {}
            }
        }
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        waiting.retain_mut(|f| std::pin::Pin::new(f).poll(&mut cx).is_pending());
        // Controllers that ran inline left their answers in the outbox.
        if core.has_outbox() {
            core.handle_outbox(Instant::now());
        }
        // Anything the calls above queued is written before waiting.
        if core.has_transmit() {
            continue;
        }
        // 3. Wait for bytes or the next deadline (briefly while controllers wait: their
        // wake-ups do not reach this loop).
        let longest = if waiting.is_empty() {
            Duration::from_secs(1)
        } else {
            Duration::from_millis(10)
        };
        let wait = core
            .poll_timeout()
            .map(|at| at.saturating_duration_since(Instant::now()))
            .unwrap_or(longest)
            .clamp(Duration::from_millis(1), longest);
        match socket.as_mut() {
            Some(s) => {
                s.set_read_timeout(Some(wait))?;
                match s.read(&mut buffer) {
                    Ok(0) => {
                        socket = None;
                        core.handle_closed(Instant::now(), "closed by the server");
                    }
                    Ok(n) => core.handle_input(Instant::now(), &buffer[..n]),
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                    Err(e) => {
                        socket = None;
                        core.handle_closed(Instant::now(), e.to_string());
                    }
                }
            }
            None => std::thread::sleep(wait),
        }
        core.handle_timeout(Instant::now());
    }
}

/// Writes all of `bytes`; on an error, also how many the socket took.
fn write_all(socket: &mut TcpStream, bytes: &[u8]) -> Result<(), (usize, std::io::Error)> {
    let mut written = 0;
    while written < bytes.len() {
        match socket.write(&bytes[written..]) {
            Ok(0) => return Err((written, ErrorKind::WriteZero.into())),
            Ok(n) => written += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err((written, e)),
        }
    }
    Ok(())
}
