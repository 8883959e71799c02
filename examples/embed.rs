//! The sans-IO core driven by a hand-written loop over a std `TcpStream`: how to embed
//! exampple in any event loop. Controllers run inline here, on the loop's thread.
//!
//!     cargo run --example embed

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use exampple::component::Event;
use exampple::{Component, Config, Conn, Element, Router, StanzaError};

fn ping(conn: Conn, _payload: Vec<Element>) -> Result<(), StanzaError> {
    conn.iq_resp([]).send()?;
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The core reads no randomness: like the runtimes, the embedding seeds it (generated
    // ids, reconnect jitter) from the OS unless the configuration has a seed. std's
    // `RandomState` is seeded from the OS, so no other crate is needed for it.
    let mut config = Config::from_env()?;
    if config.seed.is_none() {
        let os = std::collections::hash_map::RandomState::new();
        config = config.seed(std::hash::BuildHasher::hash_one(&os, "exampple seed"));
    }
    let router = Router::new().iq("urn:xmpp", |ns| ns.get("ping", ping));
    let mut core = Component::new(config, router, Instant::now())?;
    core.connect(Instant::now());
    let mut socket: Option<TcpStream> = None;
    let mut buffer = [0u8; 16 * 1024];
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
                        socket = Some(s);
                        core.handle_connected(Instant::now());
                    }
                    Err(e) => core.handle_connect_failed(Instant::now(), e.to_string()),
                },
                // Inline: fine for quick controllers; a real loop would hand these to workers.
                Event::Dispatch(dispatch) => dispatch.run(),
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
        // Controllers that ran inline left their answers in the outbox.
        if core.has_outbox() {
            core.handle_outbox(Instant::now());
            continue;
        }
        // 3. Wait for bytes or the next deadline.
        let wait = core
            .poll_timeout()
            .map(|at| at.saturating_duration_since(Instant::now()))
            .unwrap_or(Duration::from_secs(1))
            .max(Duration::from_millis(1));
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
