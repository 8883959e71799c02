//! A loopback XEP-0114 server for runtime tests: accepts a component, checks its handshake,
//! and lets the test exchange stanzas with it.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use exampple::component::handshake_digest;
use exampple::parser::{Limits, StreamItem, StreamParser};
use exampple::{Element, xml};

pub const DOMAIN: &str = "component.localhost";
pub const SECRET: &str = "secret";

pub struct FakeServer {
    listener: TcpListener,
}

pub struct Session {
    stream: TcpStream,
    parser: StreamParser,
    pending: Vec<Element>,
}

impl FakeServer {
    pub fn new() -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        FakeServer { listener }
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().unwrap().port()
    }

    /// Accepts the next connection and completes the handshake (or rejects it).
    pub fn accept(&self, accept_secret: bool) -> Session {
        self.listener.set_nonblocking(false).unwrap();
        let (stream, _) = self.listener.accept().unwrap();
        stream.set_nodelay(true).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let mut session = Session {
            stream,
            parser: StreamParser::new(Limits::default()),
            pending: Vec::new(),
        };
        session.handshake(accept_secret);
        session
    }

    /// Accepts within `timeout`, or None.
    pub fn try_accept(&self, timeout: Duration) -> Option<TcpStream> {
        self.listener.set_nonblocking(true).unwrap();
        let until = Instant::now() + timeout;
        while Instant::now() < until {
            if let Ok((s, _)) = self.listener.accept() {
                s.set_nonblocking(false).unwrap();
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }
}

impl Session {
    fn read_items(&mut self, until: Instant) -> Vec<StreamItem> {
        let mut buf = [0u8; 16 * 1024];
        let mut items = Vec::new();
        while items.is_empty() && Instant::now() < until {
            match self.stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => self.parser.feed(&buf[..n], &mut items).unwrap(),
                Err(_) => {}
            }
        }
        items
    }

    fn handshake(&mut self, accept: bool) {
        let until = Instant::now() + Duration::from_secs(5);
        let items = self.read_items(until);
        assert!(
            matches!(items.first(), Some(StreamItem::Header(h)) if h.to.as_deref() == Some(DOMAIN)),
            "{items:?}"
        );
        self.write(&format!(
            "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' id='abc123' from='{DOMAIN}'>"
        ));
        let mut items: Vec<StreamItem> = items.into_iter().skip(1).collect();
        if items.is_empty() {
            items = self.read_items(until);
        }
        let Some(StreamItem::Element(handshake)) = items.first() else {
            panic!("no handshake: {items:?}")
        };
        assert_eq!(handshake.text(), handshake_digest("abc123", SECRET));
        if accept {
            self.write("<handshake/>");
        } else {
            self.write("<stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>Invalid handshake</text></stream:error></stream:stream>");
        }
    }

    pub fn write(&mut self, text: &str) {
        self.stream.write_all(text.as_bytes()).unwrap();
    }

    pub fn send(&mut self, stanza: &Element) {
        let mut out = Vec::new();
        xml::write_stanza(stanza, "jabber:component:accept", &mut out);
        self.stream.write_all(&out).unwrap();
    }

    /// The next stanza the component sends, within `timeout`.
    pub fn receive(&mut self, timeout: Duration) -> Option<Element> {
        let until = Instant::now() + timeout;
        loop {
            if !self.pending.is_empty() {
                return Some(self.pending.remove(0));
            }
            if Instant::now() >= until {
                return None;
            }
            for item in self.read_items(until) {
                if let StreamItem::Element(e) = item {
                    self.pending.push(e);
                }
            }
        }
    }

    pub fn close(self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }
}
