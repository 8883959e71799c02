//! The first stage of parsing: rxml's tokeniser and the stream's limits.

use rxml::{Parse, RawEvent, RawParser, error::EndOrError};

use super::{Limits, ParseError};

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
    /// Between stanzas, no `<` read since the last event: what rxml reads now without an
    /// event is whitespace or text it holds until the text ends (see `watch_text`).
    at_stream_level: bool,
    /// The last bytes fed, to recognise a DTD when rxml reports a syntax error.
    tail: [u8; 16],
    tail_len: usize,
}

/// What a [`StreamLexer`] made of some bytes: rxml's events, in order, and the error that
/// stopped it, if one did.
///
/// The core reads the tokens without taking them apart
/// ([`Component::handle_tokens`](crate::Component::handle_tokens) leaves them *spent*), so
/// that the strings rxml allocated on the lexer's thread can be freed there too: give spent
/// tokens back to the lexer, whose next [`StreamLexer::lex`] drops them one by one as it
/// refills their places. Memory freed by another thread than the one that allocated it
/// costs glibc's allocator its fast path on both threads.
#[derive(Debug, Default)]
pub struct Tokens {
    pub(crate) events: Vec<RawEvent>,
    pub(crate) error: Option<ParseError>,
    /// Read by the core: the events are only waiting to be dropped.
    pub(crate) spent: bool,
}

impl Tokens {
    /// Whether there is nothing in it for the core (nothing lexed, or spent already).
    pub fn is_empty(&self) -> bool {
        self.spent || (self.events.is_empty() && self.error.is_none())
    }

    /// Drops what the tokens hold (on the thread that made them: see the type's docs).
    pub fn clear(&mut self) {
        self.events.clear();
        self.error = None;
        self.spent = false;
    }

    /// Whether lexing stopped with an error (the stream cannot go on after these tokens).
    pub fn is_final(&self) -> bool {
        self.error.is_some()
    }
}

/// Where [`StreamLexer::lex`] puts events: after those already there, or over spent ones.
struct Refill<'a> {
    events: &'a mut Vec<RawEvent>,
    /// Where the next event goes.
    at: usize,
    /// Spent events from `at` up to here are still to be replaced (or dropped by `finish`).
    stale: usize,
}

impl<'a> Refill<'a> {
    /// Over the spent events of `events`.
    fn over(events: &'a mut Vec<RawEvent>) -> Self {
        let stale = events.len();
        Refill {
            events,
            at: 0,
            stale,
        }
    }

    /// After the events of `events`.
    fn after(events: &'a mut Vec<RawEvent>) -> Self {
        let at = events.len();
        Refill {
            events,
            at,
            stale: at,
        }
    }

    fn push(&mut self, event: RawEvent) {
        match self.events.get_mut(self.at) {
            // Drops the spent event in its place.
            Some(slot) if self.at < self.stale => *slot = event,
            _ => self.events.push(event),
        }
        self.at += 1;
    }

    /// Drops the spent events no new one replaced.
    fn finish(&mut self) {
        if self.at < self.stale {
            self.events.truncate(self.at);
            self.stale = self.at;
        }
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
            at_stream_level: false,
            tail: [0; 16],
            tail_len: 0,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Whether the peer closed its stream.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Whether it stopped on an error.
    pub fn is_failed(&self) -> bool {
        self.failed.is_some()
    }

    /// Whether it stands between two stanzas, past the header: where a piece of whole
    /// stanzas may start (a runtime that tokenises on two threads cuts its input there).
    pub fn between_stanzas(&self) -> bool {
        self.header_done && self.depth == 1 && !self.closed && self.stanza_bytes == 0
    }

    /// Feeds bytes; their events are appended to `tokens`, and an error (the first one, or
    /// the same one again once failed) is put in `tokens`.
    ///
    /// Spent tokens are refilled in place: each new event takes the place of an old one,
    /// which is dropped then, not all of them before lexing. A read's worth of old events
    /// holds about as many strings as the new ones need; freed all at once they overflow
    /// glibc's per-thread cache (7 blocks of a size), and then every allocation of the refill
    /// takes its slow path, where freed one by one each allocation reuses the block just
    /// freed.
    pub fn lex(&mut self, data: &[u8], tokens: &mut Tokens) {
        let mut out = if tokens.spent {
            tokens.error = None;
            tokens.spent = false;
            Refill::over(&mut tokens.events)
        } else {
            Refill::after(&mut tokens.events)
        };
        if let Some(e) = &self.failed {
            out.finish();
            tokens.error = Some(e.clone());
            return;
        }
        let mut data = data;
        let result = self.lex_inner(&mut data, &mut out);
        out.finish();
        if let Err(e) = result {
            self.failed = Some(e.clone());
            tokens.error = Some(e);
        }
    }

    fn lex_inner(&mut self, data: &mut &[u8], out: &mut Refill<'_>) -> Result<(), ParseError> {
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
                    if self.at_stream_level {
                        self.watch_text(&chunk[chunk.len() - before..chunk.len() - data.len()])?;
                    }
                    self.remember_tail(chunk);
                    return Ok(());
                }
                Err(EndOrError::Error(e)) => {
                    if self.at_stream_level {
                        let start = chunk.len() - before;
                        self.watch_text(&chunk[start..start + consumed])?;
                    }
                    // Only what rxml read before it stopped tells what went wrong.
                    let read = &chunk[..chunk.len() - data.len()];
                    return Err(self.classify(e, read));
                }
                Ok(Some(event)) => {
                    match self.check(event)? {
                        Some(event) => out.push(event),
                        // Whitespace between stanzas: rxml ends it at a `<` (the last byte
                        // it read) or at its longest token.
                        None if self.header_done => {
                            let last = (chunk.len() - data.len()).checked_sub(1);
                            self.at_stream_level = last.map(|i| chunk[i]) != Some(b'<');
                        }
                        None => {}
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
                RawEvent::ElementHeadClose(_) => {
                    self.header_done = true;
                    self.at_stream_level = true;
                }
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
                self.at_stream_level = false;
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
                    1 => {
                        self.stanza_bytes = 0;
                        self.at_stream_level = true;
                    }
                    0 => self.closed = true,
                    _ => {}
                }
            }
            RawEvent::Text(..) | RawEvent::Attribute(..) | RawEvent::ElementHeadClose(_) => {}
        }
        Ok(Some(event))
    }

    /// Bytes rxml read between stanzas without an event (it reads no further than the
    /// event it returns): whitespace, then perhaps a `<` (markup follows, which rxml
    /// checks); anything else is text between stanzas. rxml reports text where it ends, at
    /// the next `<`: text is refused here as soon as it comes, not when (if ever) that `<`
    /// comes.
    fn watch_text(&mut self, read: &[u8]) -> Result<(), ParseError> {
        for &byte in read {
            match byte {
                b'<' => {
                    self.at_stream_level = false;
                    return Ok(());
                }
                _ if byte.is_ascii_whitespace() => {}
                _ => return Err(ParseError::StrayText),
            }
        }
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::{StreamLexer, Tokens};
    use crate::parser::Limits;

    const HEADER: &str = "<stream:stream xmlns='jabber:component:accept' \
        xmlns:stream='http://etherx.jabber.org/streams' id='s1' from='c.localhost'>";

    fn ping(i: usize) -> String {
        format!(
            "<iq type='get' id='p{i}' from='user{i}@localhost/r' to='c.localhost'><ping xmlns='urn:xmpp:ping'/></iq>"
        )
    }

    fn stanzas(range: std::ops::Range<usize>) -> String {
        range.map(ping).collect()
    }

    /// A lexer past the header and `first`, with `first`'s tokens spent as the core leaves
    /// them, beside one that saw the same bytes.
    fn two_lexers(first: &str) -> (StreamLexer, Tokens, StreamLexer) {
        let mut refilled = StreamLexer::new(Limits::default());
        let mut fresh = StreamLexer::new(Limits::default());
        let mut tokens = Tokens::default();
        let mut throwaway = Tokens::default();
        refilled.lex(format!("{HEADER}{first}").as_bytes(), &mut tokens);
        fresh.lex(format!("{HEADER}{first}").as_bytes(), &mut throwaway);
        assert!(!tokens.events.is_empty() && tokens.error.is_none());
        tokens.spent = true;
        (refilled, tokens, fresh)
    }

    /// Refilling spent tokens in place gives the events fresh tokens get, whether the new
    /// bytes hold fewer events than the old (the rest are dropped), more (pushed after), or
    /// end in an error.
    #[test]
    fn spent_tokens_refilled_in_place_hold_what_fresh_ones_would() {
        for (first, next) in [
            (stanzas(0..3), stanzas(3..4)),
            (stanzas(0..1), stanzas(1..5)),
            (stanzas(0..2), stanzas(2..4)),
            (
                stanzas(0..3),
                format!("{}<iq type='get' id='bad' a='1' a='2'/>", ping(3)),
            ),
            (stanzas(0..3), "<iq type='get'><unclosed></iq>".to_string()),
            (stanzas(0..3), "   ".to_string()),
        ] {
            let (mut refilled, mut tokens, mut fresh) = two_lexers(&first);
            let mut expected = Tokens::default();
            refilled.lex(next.as_bytes(), &mut tokens);
            fresh.lex(next.as_bytes(), &mut expected);
            assert_eq!(tokens.events, expected.events, "{next}");
            assert_eq!(tokens.error, expected.error, "{next}");
            assert!(!tokens.spent);
        }
    }

    /// Tokens not yet spent get the new events after theirs.
    #[test]
    fn tokens_not_spent_are_appended_to() {
        let (mut lexer, mut tokens, mut fresh) = two_lexers(&stanzas(0..2));
        tokens.spent = false;
        let before = tokens.events.clone();
        let mut expected = Tokens::default();
        lexer.lex(stanzas(2..3).as_bytes(), &mut tokens);
        fresh.lex(stanzas(2..3).as_bytes(), &mut expected);
        assert_eq!(tokens.events[..before.len()], before[..]);
        assert_eq!(tokens.events[before.len()..], expected.events[..]);
    }

    /// A failed lexer refills spent tokens with nothing but its error.
    #[test]
    fn a_failed_lexer_leaves_spent_tokens_empty_but_for_the_error() {
        let (mut lexer, mut tokens, _) = two_lexers(&stanzas(0..2));
        lexer.lex(b"<iq></oops>", &mut tokens);
        let error = tokens.error.clone();
        assert!(error.is_some());
        tokens.spent = true;
        lexer.lex(stanzas(2..3).as_bytes(), &mut tokens);
        assert!(tokens.events.is_empty(), "{:?}", tokens.events);
        assert_eq!(tokens.error, error);
    }

    /// What a fresh lexer reports after the header and `chunks`, fed one by one: the first
    /// error, and after which chunk it came.
    fn first_error(chunks: &[&[u8]]) -> Option<(usize, crate::parser::ParseError)> {
        // rxml's longest token is then 1024 bytes.
        let mut lexer = StreamLexer::new(Limits {
            max_stanza_size: 1024,
            max_depth: 8,
        });
        let mut tokens = Tokens::default();
        lexer.lex(HEADER.as_bytes(), &mut tokens);
        assert!(tokens.error.is_none());
        chunks.iter().enumerate().find_map(|(i, chunk)| {
            lexer.lex(chunk, &mut tokens);
            tokens.error.clone().map(|e| (i, e))
        })
    }

    /// Text between stanzas is refused with the chunk its first character comes in, not
    /// when a `<` ends it (rxml holds text until then).
    #[test]
    fn text_between_stanzas_is_refused_as_soon_as_it_comes() {
        use crate::parser::ParseError::StrayText;
        for chunks in [
            &[&b"hello"[..]][..],
            &[b"  \n", b"hello"],
            &[b"<iq type='get' id='1'/>", b"h"],
            &[b"<iq type='get' id='1'/> x"],
            &[b"<iq type='get' id='1'><q xmlns='urn:q'>text</q></iq>\r\n&amp;"],
            &[b" \r", b"\n\t", b"\xc3\xa9"],
        ] {
            let last = chunks.len() - 1;
            assert_eq!(first_error(chunks), Some((last, StrayText)), "{chunks:?}");
        }
        // Past rxml's longest token, whitespace is reported as text of its own: what
        // follows is still watched.
        let spaces = vec![b' '; 5000];
        assert_eq!(first_error(&[&spaces, b"x"]), Some((1, StrayText)));
    }

    /// Whitespace between stanzas, and the start of a stanza cut anywhere, are not text.
    #[test]
    fn whitespace_and_stanzas_cut_anywhere_are_not_text() {
        let stream = format!(
            " \n{} \r\n\t{}\n\n{}",
            ping(1),
            "<message to='a@b'><body> x </body></message>",
            ping(2)
        );
        for size in 1..stream.len() {
            let chunks: Vec<&[u8]> = stream.as_bytes().chunks(size).collect();
            assert_eq!(first_error(&chunks), None, "chunks of {size}");
        }
        let spaces = vec![b'\n'; 5000];
        assert_eq!(first_error(&[&spaces, b"<i", b"q/>", b" "]), None);
    }
}
