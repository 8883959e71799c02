//! Incremental parser for an XMPP stream: bytes in any chunking, stanzas out as
//! [`Element`]s, with size and depth limits.
//!
//! rxml's [`RawParser`] tokenises and minidom's [`TreeBuilder`] builds the elements. rxml has
//! no limit on the size of a stanza or its nesting depth, so this parser counts both itself:
//! memory stays bounded by `max_stanza_size` whatever the peer sends.
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

use minidom::{Element, tree_builder::TreeBuilder};
use rxml::{Parse, RawEvent, RawParser, error::EndOrError};

use crate::ns;

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

/// The first stage of parsing, which can run on another thread than the core: rxml's
/// tokeniser, with the stream's limits (stanza size, nesting depth), the checks that need
/// only the tokens (text between stanzas, DTDs, data after the close), and nothing that
/// allocates per element. What it makes of the bytes are [`Tokens`], which the core turns
/// into stanzas ([`Component::handle_tokens`](crate::Component::handle_tokens)).
///
/// The elements are built on the core's thread on purpose: they are freed there too, and
/// memory allocated on one thread and freed on another is far slower with glibc's
/// allocator than memory that stays on one thread.
pub struct StreamLexer {
    raw: RawParser,
    limits: Limits,
    /// Open elements, the stream's own included (1 between stanzas).
    depth: usize,
    header_done: bool,
    closed: bool,
    failed: Option<ParseError>,
    /// Bytes of the stanza being received.
    stanza_bytes: usize,
    /// The last bytes fed, to recognise a DTD when rxml reports a syntax error.
    tail: [u8; 16],
    tail_len: usize,
}

/// What a [`StreamLexer`] made of some bytes: rxml's events, in order, and the error that
/// stopped it, if one did. Sent to the core as they are; reuse one once it is emptied.
#[derive(Debug, Default)]
pub struct Tokens {
    pub(crate) events: Vec<RawEvent>,
    pub(crate) error: Option<ParseError>,
}

impl Tokens {
    /// Whether there is nothing in it.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty() && self.error.is_none()
    }

    /// Whether lexing stopped with an error (the stream cannot go on after these tokens).
    pub fn is_final(&self) -> bool {
        self.error.is_some()
    }
}

impl StreamLexer {
    /// A lexer expecting a stream header first.
    pub fn new(limits: Limits) -> Self {
        // rxml refuses names, attribute values and references longer than this; the
        // stanza-size limit is the one that matters, so align the two.
        let options = rxml::Options {
            max_token_length: limits.max_stanza_size.max(1024),
            ..rxml::Options::default()
        };
        StreamLexer {
            raw: <RawParser as rxml::WithOptions>::with_options(options),
            limits,
            depth: 0,
            header_done: false,
            closed: false,
            failed: None,
            stanza_bytes: 0,
            tail: [0; 16],
            tail_len: 0,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Feeds bytes; their events are appended to `tokens`, and an error (the first one, or
    /// the same one again once failed) is put in `tokens`.
    pub fn lex(&mut self, data: &[u8], tokens: &mut Tokens) {
        if let Some(e) = &self.failed {
            tokens.error = Some(e.clone());
            return;
        }
        let mut data = data;
        if let Err(e) = self.lex_inner(&mut data, &mut tokens.events) {
            self.failed = Some(e.clone());
            tokens.error = Some(e);
        }
    }

    fn lex_inner(&mut self, data: &mut &[u8], out: &mut Vec<RawEvent>) -> Result<(), ParseError> {
        let chunk = *data;
        if self.closed {
            if chunk.iter().all(u8::is_ascii_whitespace) {
                return Ok(());
            }
            return Err(ParseError::AfterClose);
        }
        loop {
            let before = data.len();
            let result = self.raw.parse(data, false);
            let consumed = before - data.len();
            let opens_stanza = self.header_done
                && self.depth == 1
                && matches!(result, Ok(Some(RawEvent::ElementHeadOpen(..))));
            if self.depth >= 2 || opens_stanza {
                self.stanza_bytes += consumed;
                if self.stanza_bytes > self.limits.max_stanza_size {
                    return Err(ParseError::StanzaTooLarge {
                        limit: self.limits.max_stanza_size,
                    });
                }
            }
            match result {
                Err(EndOrError::NeedMoreData) | Ok(None) => {
                    self.remember_tail(chunk);
                    return Ok(());
                }
                Err(EndOrError::Error(e)) => return Err(self.classify(e, chunk)),
                Ok(Some(event)) => {
                    if let Some(event) = self.check(event)? {
                        out.push(event);
                    }
                    if self.closed {
                        // Whatever follows the close in this chunk must be whitespace.
                        let rest = *data;
                        self.remember_tail(chunk);
                        if rest.iter().all(u8::is_ascii_whitespace) {
                            return Ok(());
                        }
                        return Err(ParseError::AfterClose);
                    }
                }
            }
        }
    }

    /// Checks an event against the stream's rules; the events the builder needs are
    /// returned, whitespace between stanzas is dropped.
    fn check(&mut self, event: RawEvent) -> Result<Option<RawEvent>, ParseError> {
        if !self.header_done {
            match &event {
                RawEvent::Text(..) => return Ok(None),
                RawEvent::ElementHeadOpen(..) => self.depth += 1,
                RawEvent::ElementHeadClose(_) => self.header_done = true,
                RawEvent::ElementFoot(_) => {
                    // `<stream:stream/>`: opened and closed at once.
                    self.header_done = true;
                    self.closed = true;
                    self.depth = 0;
                }
                RawEvent::XmlDeclaration(..) | RawEvent::Attribute(..) => {}
            }
            return Ok(Some(event));
        }
        match &event {
            RawEvent::Text(_, text) if self.depth == 1 => {
                // Whitespace between stanzas (keepalives) never reaches the tree.
                self.stanza_bytes = 0;
                if text.chars().all(|c| c.is_ascii_whitespace()) {
                    return Ok(None);
                }
                return Err(ParseError::StrayText);
            }
            RawEvent::ElementHeadOpen(..) => {
                if self.depth > self.limits.max_depth {
                    return Err(ParseError::TooDeep {
                        limit: self.limits.max_depth,
                    });
                }
                self.depth += 1;
            }
            RawEvent::XmlDeclaration(..) => {
                return Err(ParseError::NotWellFormed(
                    "XML declaration inside the stream".into(),
                ));
            }
            RawEvent::ElementFoot(_) => {
                self.depth = self.depth.saturating_sub(1);
                match self.depth {
                    1 => self.stanza_bytes = 0,
                    0 => self.closed = true,
                    _ => {}
                }
            }
            RawEvent::Text(..) | RawEvent::Attribute(..) | RawEvent::ElementHeadClose(_) => {}
        }
        Ok(Some(event))
    }

    fn remember_tail(&mut self, chunk: &[u8]) {
        let keep = chunk.len().min(self.tail.len());
        if keep == self.tail.len() {
            self.tail.copy_from_slice(&chunk[chunk.len() - keep..]);
            self.tail_len = keep;
        } else {
            let old_keep = (self.tail.len() - keep).min(self.tail_len);
            let mut new_tail = [0u8; 16];
            new_tail[..old_keep]
                .copy_from_slice(&self.tail[self.tail_len - old_keep..self.tail_len]);
            new_tail[old_keep..old_keep + keep].copy_from_slice(&chunk[chunk.len() - keep..]);
            self.tail = new_tail;
            self.tail_len = old_keep + keep;
        }
    }

    fn classify(&self, error: rxml::Error, chunk: &[u8]) -> ParseError {
        let text = error.to_string();
        if let rxml::Error::RestrictedXml(what) = &error {
            if !what.contains("long name") {
                return ParseError::RestrictedXml(text);
            }
            return ParseError::StanzaTooLarge {
                limit: self.limits.max_stanza_size,
            };
        }
        // rxml rejects `<!DOCTYPE` and `<!ENTITY` as a syntax error: recognise them.
        let mut window = self.tail[..self.tail_len].to_vec();
        window.extend_from_slice(&chunk[..chunk.len().min(4096)]);
        let dtd = [
            b"<!DOCTYPE".as_slice(),
            b"<!ENTITY",
            b"<!ELEMENT",
            b"<!ATTLIST",
        ]
        .iter()
        .any(|marker| window.windows(marker.len()).any(|w| w == *marker))
            || window.ends_with(b"<!D")
            || window.ends_with(b"<!E");
        if dtd {
            ParseError::RestrictedXml(format!(
                "DTDs and entity declarations are not allowed ({text})"
            ))
        } else {
            ParseError::NotWellFormed(text)
        }
    }
}

impl std::fmt::Debug for StreamLexer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamLexer")
            .field("limits", &self.limits)
            .field("depth", &self.depth)
            .field("closed", &self.closed)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

/// The second stage of parsing: a [`StreamLexer`]'s tokens into the stream header and
/// complete top-level elements. It runs on the core's thread.
pub(crate) struct StreamBuilder {
    builder: TreeBuilder,
    header: Option<StreamHeader>,
    header_done: bool,
    failed: bool,
}

impl StreamBuilder {
    pub(crate) fn new() -> Self {
        StreamBuilder {
            builder: TreeBuilder::new(),
            header: None,
            header_done: false,
            failed: false,
        }
    }

    /// Builds what `tokens` hold into `out`, emptying `tokens`: the items in order, then
    /// the error that ends the stream (the builder's own, or the lexer's), if any.
    pub(crate) fn build(
        &mut self,
        tokens: &mut Tokens,
        out: &mut Vec<StreamItem>,
    ) -> Result<(), ParseError> {
        let mut result = Ok(());
        for event in tokens.events.drain(..) {
            if self.failed {
                continue;
            }
            if let Err(e) = self.on_event(event, out) {
                self.failed = true;
                result = Err(e);
            }
        }
        let lexer_error = tokens.error.take();
        result?;
        match lexer_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn on_event(&mut self, event: RawEvent, out: &mut Vec<StreamItem>) -> Result<(), ParseError> {
        if !self.header_done {
            return self.on_header_event(event, out);
        }
        let is_foot = matches!(event, RawEvent::ElementFoot(_));
        self.builder
            .process_event(event)
            .map_err(|e| ParseError::NotWellFormed(e.to_string()))?;
        if is_foot {
            match self.builder.depth() {
                1 => {
                    if let Some(el) = self.builder.unshift_child() {
                        out.push(StreamItem::Element(el));
                    }
                }
                0 => {
                    self.builder.root = None;
                    out.push(StreamItem::Close);
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn on_header_event(
        &mut self,
        event: RawEvent,
        out: &mut Vec<StreamItem>,
    ) -> Result<(), ParseError> {
        match &event {
            RawEvent::XmlDeclaration(..) | RawEvent::Text(..) => return Ok(()),
            RawEvent::ElementHeadOpen(_, (prefix, local)) => {
                self.header = Some(StreamHeader {
                    name: local.to_string(),
                    prefix: prefix.as_ref().map(|p| p.to_string()),
                    ..StreamHeader::default()
                });
            }
            RawEvent::Attribute(_, (prefix, local), value) => {
                if let Some(h) = self.header.as_mut() {
                    let value = Some(value.to_string());
                    match (prefix.as_ref().map(|p| p.as_str()), local.as_str()) {
                        (None, "id") => h.id = value,
                        (None, "from") => h.from = value,
                        (None, "to") => h.to = value,
                        (None, "version") => h.version = value,
                        (None, "xmlns") => h.default_ns = value,
                        (Some("xmlns"), p) if Some(p) == h.prefix.as_deref() => h.stream_ns = value,
                        _ => {}
                    }
                }
            }
            RawEvent::ElementHeadClose(_) => {
                self.header_done = true;
                self.builder
                    .process_event(event)
                    .map_err(|e| ParseError::NotWellFormed(e.to_string()))?;
                out.push(StreamItem::Header(self.header.take().unwrap_or_default()));
                return Ok(());
            }
            RawEvent::ElementFoot(_) => {
                // `<stream:stream/>`: opened and closed at once.
                self.header_done = true;
                out.push(StreamItem::Header(self.header.take().unwrap_or_default()));
                out.push(StreamItem::Close);
                return Ok(());
            }
        }
        self.builder
            .process_event(event)
            .map_err(|e| ParseError::NotWellFormed(e.to_string()))
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
        self.lexer.closed
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
