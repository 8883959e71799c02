//! Incremental parser for an XMPP stream: bytes in any chunking, stanzas out as
//! [`Element`]s, with size and depth limits.
//!
//! Two stages: a [`StreamLexer`] (rxml's [`RawParser`](rxml::RawParser) with the stream's
//! limits and checks) makes [`Tokens`], and the core's builder makes minidom elements of them
//! ([`StreamParser`] is both on one thread). rxml has no limit on the size of a stanza or its
//! nesting depth, so the lexer counts both itself: memory stays bounded by
//! `max_stanza_size` whatever the peer sends. The two stages can run on two threads (the
//! runtimes tokenise on their reader thread too); the core itself never starts one.
//!
//! ```
//! use exampple_core::parser::{StreamParser, StreamItem, Limits};
//!
//! let mut parser = StreamParser::new(Limits::default());
//! let mut items = Vec::new();
//! for chunk in ["<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jab",
//!               "ber.org/streams' id='abc'><handshake/><iq id='1' ty", "pe='get'/>"] {
//!     parser.feed(chunk.as_bytes(), &mut items).unwrap();
//! }
//! assert!(matches!(&items[0], StreamItem::Header(h) if h.id.as_deref() == Some("abc")));
//! assert!(matches!(&items[1], StreamItem::Element(e) if e.name() == "handshake"));
//! assert!(matches!(&items[2], StreamItem::Element(e) if e.attr("type") == Some("get")));
//! ```

use minidom::Element;

use crate::ns;

mod builder;
mod lexer;

pub use builder::StreamBuilder;
pub use lexer::{StreamLexer, Tokens};

/// The limits a [`StreamParser`] enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest stanza accepted, in bytes of XML as received.
    pub max_stanza_size: usize,
    /// The deepest element nesting accepted inside a stanza (the stanza itself is depth 1).
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_stanza_size: crate::config::DEFAULT_MAX_STANZA_SIZE,
            max_depth: crate::config::DEFAULT_MAX_DEPTH,
        }
    }
}

/// The opening `<stream:stream>` tag received from the peer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StreamHeader {
    /// The stream id (`id` attribute), which the component handshake digests.
    pub id: Option<String>,
    /// The `from` attribute.
    pub from: Option<String>,
    /// The `to` attribute.
    pub to: Option<String>,
    /// The `version` attribute.
    pub version: Option<String>,
    /// The default namespace (`xmlns`), e.g. `jabber:component:accept`.
    pub default_ns: Option<String>,
    /// The namespace the `stream` prefix is bound to.
    pub stream_ns: Option<String>,
    /// The element's local name (must be `stream`).
    pub name: String,
    /// The prefix of the element's name (usually `stream`).
    pub prefix: Option<String>,
}

impl StreamHeader {
    /// Whether this is a well-formed stream header in the stream namespace.
    pub fn is_stream(&self) -> bool {
        let bound_ns = match self.prefix.as_deref() {
            None => self.default_ns.as_deref(),
            Some(_) => self.stream_ns.as_deref(),
        };
        self.name == "stream" && bound_ns == Some(ns::STREAM)
    }
}

/// What the parser found in the bytes.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamItem {
    /// The peer's stream header.
    Header(StreamHeader),
    /// A complete top-level element (a stanza, `<handshake/>`, `<stream:error>`, ...).
    Element(Element),
    /// The peer closed its stream (`</stream:stream>`).
    Close,
}

/// Why the stream cannot be parsed any further. Each maps to a stream error condition.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
#[non_exhaustive]
pub enum ParseError {
    /// Malformed XML.
    #[error("not well-formed: {0}")]
    NotWellFormed(String),
    /// Well-formed XML that XMPP forbids (DTD, entity declarations, comments, processing
    /// instructions, another encoding than UTF-8).
    #[error("restricted XML: {0}")]
    RestrictedXml(String),
    /// A stanza larger than `max_stanza_size`.
    #[error("stanza larger than {limit} bytes")]
    StanzaTooLarge {
        /// The limit in force.
        limit: usize,
    },
    /// A stanza nested deeper than `max_depth`.
    #[error("stanza nested deeper than {limit} elements")]
    TooDeep {
        /// The limit in force.
        limit: usize,
    },
    /// Non-whitespace text between stanzas.
    #[error("text outside of a stanza")]
    StrayText,
    /// Data after the end of the stream.
    #[error("data after the end of the stream")]
    AfterClose,
}

impl ParseError {
    /// The RFC 6120 stream error condition that answers this error.
    pub fn condition(&self) -> &'static str {
        match self {
            ParseError::NotWellFormed(_) | ParseError::AfterClose => "not-well-formed",
            ParseError::RestrictedXml(_) => "restricted-xml",
            ParseError::StanzaTooLarge { .. } | ParseError::TooDeep { .. } => "policy-violation",
            ParseError::StrayText => "bad-format",
        }
    }
}

/// The incremental stream parser: a [`StreamLexer`] and the builder of elements, on one
/// thread. Feed it bytes as they come; it never panics and keeps at most one stanza in
/// memory.
pub struct StreamParser {
    lexer: StreamLexer,
    builder: StreamBuilder,
    tokens: Tokens,
    failed: Option<ParseError>,
}

impl StreamParser {
    /// A parser expecting a stream header first.
    pub fn new(limits: Limits) -> Self {
        StreamParser {
            lexer: StreamLexer::new(limits),
            builder: StreamBuilder::new(),
            tokens: Tokens::default(),
            failed: None,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.lexer.limits()
    }

    /// Whether the peer closed its stream.
    pub fn is_closed(&self) -> bool {
        self.lexer.is_closed()
    }

    /// Feeds bytes; complete items are appended to `out`. After an error the parser stays
    /// failed and returns the same error.
    pub fn feed(&mut self, data: &[u8], out: &mut Vec<StreamItem>) -> Result<(), ParseError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        self.lexer.lex(data, &mut self.tokens);
        let result = self.builder.build(&mut self.tokens, out);
        if let Err(e) = &result {
            self.failed = Some(e.clone());
        }
        result
    }
}

impl std::fmt::Debug for StreamParser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamParser")
            .field("lexer", &self.lexer)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' id='sid' from='c.localhost'>";

    fn run(chunks: &[&[u8]], limits: Limits) -> (Vec<StreamItem>, Result<(), ParseError>) {
        let mut p = StreamParser::new(limits);
        let mut out = Vec::new();
        for c in chunks {
            if let Err(e) = p.feed(c, &mut out) {
                return (out, Err(e));
            }
        }
        (out, Ok(()))
    }

    #[test]
    fn header_then_stanzas_then_close() {
        let s =
            format!("{HEADER}\n<iq id='1'/> \n<message><body>é</body></message></stream:stream>");
        let (items, r) = run(&[s.as_bytes()], Limits::default());
        r.unwrap();
        assert_eq!(items.len(), 4);
        let StreamItem::Header(h) = &items[0] else {
            panic!()
        };
        assert!(h.is_stream());
        assert_eq!(h.id.as_deref(), Some("sid"));
        assert_eq!(h.default_ns.as_deref(), Some(ns::COMPONENT));
        assert_eq!(items[3], StreamItem::Close);
    }

    #[test]
    fn limits_and_errors() {
        let big = format!(
            "{HEADER}<message><body>{}</body></message>",
            "a".repeat(5000)
        );
        let limits = Limits {
            max_stanza_size: 1000,
            max_depth: 8,
        };
        let (_, r) = run(&[big.as_bytes()], limits);
        assert_eq!(r, Err(ParseError::StanzaTooLarge { limit: 1000 }));
        let deep = format!("{HEADER}<a>{}", "<a>".repeat(20));
        let (_, r) = run(&[deep.as_bytes()], limits);
        assert_eq!(r, Err(ParseError::TooDeep { limit: 8 }));
        let (_, r) = run(&[b"<!DOCTYPE x [<!ENTITY a 'b'>]><x/>"], limits);
        assert!(matches!(r, Err(ParseError::RestrictedXml(_))), "{r:?}");
        let (_, r) = run(&[HEADER.as_bytes(), b"<a></b>"], limits);
        assert!(matches!(r, Err(ParseError::NotWellFormed(_))), "{r:?}");
        let (_, r) = run(&[HEADER.as_bytes(), b"hello<a/>"], limits);
        assert_eq!(r, Err(ParseError::StrayText));
        let (_, r) = run(&[HEADER.as_bytes(), b"<a/><!-- c -->"], limits);
        assert!(matches!(r, Err(ParseError::RestrictedXml(_))), "{r:?}");
        let (_, r) = run(&[HEADER.as_bytes(), b"<a>\xff</a>"], limits);
        assert!(matches!(r, Err(ParseError::NotWellFormed(_))), "{r:?}");
    }

    #[test]
    fn keepalive_whitespace_does_not_accumulate() {
        let mut p = StreamParser::new(Limits {
            max_stanza_size: 100,
            max_depth: 8,
        });
        let mut out = Vec::new();
        p.feed(HEADER.as_bytes(), &mut out).unwrap();
        for _ in 0..10_000 {
            p.feed(b" \n", &mut out).unwrap();
        }
        p.feed(b"<presence/>", &mut out).unwrap();
        assert_eq!(out.len(), 2);
    }
}
