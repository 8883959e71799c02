//! The XEP-0114 stream itself: the component's own writes on it (header, handshake, errors,
//! close, whitespace), the handshake digest, and what stands directly under the server's
//! stream.

use minidom::Element;
use sha1::{Digest, Sha1};

use super::output::Output;
use crate::ns;
use crate::stanza::StanzaKind;
use crate::xml;

/// Stream error conditions after which reconnecting cannot help.
const PERMANENT_CONDITIONS: &[&str] = &[
    "not-authorized",
    "host-unknown",
    "host-gone",
    "invalid-namespace",
];

/// The lowercase hex SHA-1 of `stream_id + secret`, always 40 characters (XEP-0114).
///
/// ```
/// use exampple_core::component::handshake_digest;
/// assert_eq!(handshake_digest("sid", "123456"), "9accec263ab84a43c6037ccf7cd48cb1d3f6df8e");
/// ```
pub fn handshake_digest(stream_id: &str, secret: &str) -> String {
    let mut hasher = Sha1::new();
    hasher.update(stream_id.as_bytes());
    hasher.update(secret.as_bytes());
    let digest = hasher.finalize();
    let mut hex = String::with_capacity(40);
    for byte in digest.iter() {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        hex.push(DIGITS[usize::from(byte >> 4)] as char);
        hex.push(DIGITS[usize::from(byte & 0x0f)] as char);
    }
    hex
}

/// A stream error: its condition and optional text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamError {
    /// The RFC 6120 §4.9.3 condition (e.g. `not-authorized`).
    pub condition: String,
    /// The text the peer gave, if any.
    pub text: Option<String>,
}

impl StreamError {
    pub(super) fn from_element(el: &Element) -> StreamError {
        let mut condition = String::from("undefined-condition");
        let mut text = None;
        for child in el.children() {
            if child.ns() == ns::STREAM_ERRORS {
                if child.name() == "text" {
                    text = Some(child.text());
                } else {
                    condition = child.name().to_string();
                }
            }
        }
        StreamError { condition, text }
    }

    /// Whether reconnecting cannot help (the server rejects the component as such).
    pub(super) fn is_permanent(&self) -> bool {
        PERMANENT_CONDITIONS.contains(&self.condition.as_str())
    }
}

impl std::fmt::Display for StreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.condition)?;
        if let Some(text) = &self.text {
            write!(f, ": {text}")?;
        }
        Ok(())
    }
}

/// Our stream header, to `domain`.
pub(super) fn write_header(out: &mut Output, domain: &str) {
    out.own(&[
        b"<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='",
        xml::escape(domain).as_bytes(),
        b"'>",
    ]);
}

/// The handshake for the server's stream `stream_id`.
pub(super) fn write_handshake(out: &mut Output, stream_id: &str, secret: &str) {
    let digest = handshake_digest(stream_id, secret);
    out.own(&[b"<handshake>", digest.as_bytes(), b"</handshake>"]);
}

/// A stream error of ours, which closes our stream too.
pub(super) fn write_error(out: &mut Output, condition: &str) {
    out.own(&[
        b"<stream:error><",
        condition.as_bytes(),
        b" xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>",
    ]);
}

/// The end of our stream.
pub(super) fn write_close(out: &mut Output) {
    out.own(&[b"</stream:stream>"]);
}

/// A whitespace keepalive.
pub(super) fn write_whitespace(out: &mut Output) {
    out.own(&[b"\n"]);
}

/// What an element directly under the stream is, once the component is online.
pub(super) enum TopLevel {
    /// A stanza: an iq, message or presence in `jabber:component:accept`, where XEP-0114
    /// puts them.
    Stanza(StanzaKind),
    /// Nothing to act on (a `<handshake/>` after the handshake, `<stream:features/>`).
    Ignored(&'static str),
    /// The server's `<stream:error/>`.
    StreamError,
    /// Anything else, stanzas in `jabber:client` or `jabber:server` included: a component
    /// stream carries neither (the stanzas a server delegates in them, XEP-0355, sit inside
    /// their envelope, not directly under the stream).
    Unsupported,
}

pub(super) fn top_level(el: &Element) -> TopLevel {
    // `has_ns` compares in place (`ns()` allocates): stanzas are the usual case.
    if el.has_ns(ns::COMPONENT) {
        match StanzaKind::from_name(el.name()) {
            Some(kind) => TopLevel::Stanza(kind),
            None if el.name() == "handshake" => {
                TopLevel::Ignored("a <handshake/> after the handshake")
            }
            None => TopLevel::Unsupported,
        }
    } else if el.has_ns(ns::STREAM) {
        match el.name() {
            "error" => TopLevel::StreamError,
            "features" => TopLevel::Ignored("<stream:features/>"),
            _ => TopLevel::Unsupported,
        }
    } else {
        TopLevel::Unsupported
    }
}
