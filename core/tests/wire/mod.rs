//! A component driven by hand over a pretend connection: XML in as the server's bytes, the
//! bytes it writes out as text, its controllers run where the runtimes run them.

use std::time::Instant;

use exampple_core::component::{DispatchFuture, Event};
use exampple_core::{Component, Config, Conn, Element, Router, StanzaError};

pub const DOMAIN: &str = "component.localhost";

fn ping(conn: Conn, _: Vec<Element>) -> Result<(), StanzaError> {
    conn.iq_resp([]).send()?;
    Ok(())
}

fn oops(_: Conn, _: Vec<Element>) -> Result<(), StanzaError> {
    Err(StanzaError::new(exampple_core::Condition::NotAllowed))
}

/// Never ends: its request stays in flight until its `stanza_timeout`.
async fn slow(_: Conn, _: Vec<Element>) -> Result<(), StanzaError> {
    std::future::pending::<()>().await;
    Ok(())
}

/// `urn:xmpp:ping` answers, `urn:example:oops` fails, `urn:example:slow` never ends.
pub fn router() -> Router {
    Router::new()
        .iq("urn:xmpp", |ns| ns.get("ping", ping))
        .iq("urn:example", |ns| ns.get("oops", oops).get("slow", slow))
}

pub struct Wire {
    pub core: Component,
    pub now: Instant,
    /// Async controllers that wait (kept, so that they are not cancelled).
    waiting: Vec<DispatchFuture>,
}

impl Wire {
    pub fn new() -> Wire {
        let now = Instant::now();
        let config = Config::new(DOMAIN, "secret").seed(7);
        let core = Component::new(config, router(), now).expect("a valid component");
        Wire {
            core,
            now,
            waiting: Vec::new(),
        }
    }

    /// Runs the controllers the core dispatched and takes their answers, until it has
    /// nothing more to do.
    pub fn pump(&mut self) {
        loop {
            let mut ran = false;
            while let Some(event) = self.core.poll_event() {
                if let Event::Dispatch(dispatch) = event {
                    ran = true;
                    if let Some(rest) = dispatch.run() {
                        self.waiting.push(rest);
                    }
                }
            }
            if !(ran || self.core.has_outbox()) {
                return;
            }
            self.core.handle_outbox(self.now);
        }
    }

    /// The server sends `xml`.
    pub fn input(&mut self, xml: &str) {
        self.core.handle_input(self.now, xml.as_bytes());
        self.pump();
    }

    /// What the component wrote since the last call.
    pub fn sent(&mut self) -> String {
        self.pump();
        let mut out = Vec::new();
        while let Some(bytes) = self.core.poll_transmit() {
            out.extend_from_slice(&bytes);
        }
        String::from_utf8(out).expect("UTF-8 out")
    }

    /// The TCP connection asked for opens, and the server accepts the handshake with stream
    /// id `stream_id`.
    pub fn handshake(&mut self, stream_id: &str) {
        self.pump();
        self.core.handle_connected(self.now);
        assert!(
            self.sent()
                .starts_with("<?xml version='1.0'?><stream:stream")
        );
        self.input(&format!(
            "<stream:stream xmlns='jabber:component:accept' \
               xmlns:stream='http://etherx.jabber.org/streams' id='{stream_id}' from='{DOMAIN}'>"
        ));
        assert!(self.sent().starts_with("<handshake>"));
        self.input("<handshake/>");
        assert!(self.core.is_online());
    }

    /// Connects and completes the handshake.
    pub fn connect_and_handshake(&mut self, stream_id: &str) {
        self.core.connect(self.now);
        self.handshake(stream_id);
    }
}
