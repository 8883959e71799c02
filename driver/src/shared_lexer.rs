//! A lexer shared by a runtime's reader thread and the core's thread: see [`SharedLexer`].

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};

use exampple_core::parser::{StreamLexer, Tokens};

use crate::splitter::{Marks, Splitter};

/// How many bytes a piece holds at least (~35 pings), where stanza ends allow: small enough
/// that the core starts on a large read's first stanzas at once, large enough that handing
/// over is rare.
const PIECE: u64 = 4096;

/// How many bytes may wait for the core, as bytes or as tokens. Past that the reader stops
/// reading: the kernel's receive window fills, and a server that floods without reading
/// our answers is slowed down instead of filling our memory.
const BUDGET: usize = 64 * 1024;

/// How many pieces may wait for the core (whatever their size).
const MAX_PIECES: usize = 1024;

/// How many spent tokens each side keeps to refill.
const SPARE: usize = 8;

/// The lexers: the reader's and the core's.
const READER: usize = 0;
const CORE: usize = 1;

/// The bytes, the lexers and the tokens between a runtime's reader thread and the core's
/// thread.
///
/// Tokenising is about half of a stanza's cost, so a runtime does it beside the core's
/// thread, which builds, routes and answers. A fixed split (the reader tokenises, the core
/// does the rest) is only as fast as its slower side, and which side is slower depends on
/// what else runs on its CPU (on a small machine, often the peer itself). Here both threads
/// tokenise: the bytes read are cut into *pieces* of whole stanzas where the
/// splitter finds their ends, each thread has a lexer of its own, and
/// either may take a piece. The core takes the tokens in the order of the pieces; when the
/// next one is not ready, it tokenises a piece itself rather than wait.
///
/// What keeps this the same as one lexer reading the whole stream:
///
/// - Both lexers tokenise the stream header (the one that did not get it as a piece
///   tokenises a copy first, and drops its tokens), so at a stanza's end their states are
///   the same as one lexer's would be.
/// - A piece is *free* (for either lexer) only if it starts at a stanza's end after the
///   header. Every other piece is *chained*: it goes to the lexer that took the piece
///   before it. That is a piece cut where a read ended inside a stanza (so that every byte
///   is tokenised as soon as it arrives), every piece before the header's end is known, and
///   every piece once the splitter gave up on something it does not follow. A chain starts
///   at a stanza's end and one lexer tokenises all of it, in order.
/// - Tokens go back to the thread that made them ([`SharedLexer::give_back`]) to be dropped
///   there: memory freed by another thread than the one that allocated it costs glibc's
///   allocator its fast path on both.
pub struct SharedLexer {
    state: Mutex<State>,
    /// The reader waits here while the bytes waiting are over budget.
    room: Condvar,
    /// Whether [`SharedLexer::next`] has something: read without the lock while polling.
    work: AtomicBool,
    /// Called when work appears, to wake a core's thread that may be asleep.
    wake: Box<dyn Fn() + Send + Sync>,
}

struct State {
    /// The reader's and the core's lexers; out while they tokenise.
    lexers: [Option<StreamLexer>; 2],
    /// Whether each lexer has tokenised the stream header.
    past_header: [bool; 2],
    /// Where the header ends, once the splitter found it.
    header_end: Option<u64>,
    /// The header's bytes (everything before its end), for a lexer that did not get them
    /// as a piece; `None` when there is no header to copy (yet, or any more).
    header: Option<Vec<u8>>,
    splitter: Splitter,
    marks: Marks,
    /// Stanza ends after `cut`, in order.
    ends: VecDeque<u64>,
    /// The stream's bytes from position `base` on.
    bytes: Vec<u8>,
    base: u64,
    /// Where the next piece starts, and whether that is inside a stanza.
    cut: u64,
    cut_inside: bool,
    /// The pieces the core has not taken yet, in order.
    pieces: VecDeque<Piece>,
    /// Which lexer tokenised the last piece the core took.
    last_taken_by: Option<usize>,
    /// Spent tokens of each side, to refill there.
    spare: [Vec<Tokens>; 2],
    /// How the connection ended, once the reader found out (after the bytes above).
    end: Option<String>,
    /// The core gave up the connection: the reader stops.
    closed: bool,
    /// The reader waits for room (a notification is a system call: only then).
    reader_waits: bool,
}

struct Piece {
    start: u64,
    end: u64,
    /// Goes to the lexer of the piece before (see the module documentation).
    chained: bool,
    /// The lexer that took it, and its tokens once done.
    by: Option<usize>,
    tokens: Option<Tokens>,
}

/// A piece taken by a lexer (its bytes copied to the lexer's scratch buffer).
struct Claim {
    start: u64,
    lexer: StreamLexer,
    tokens: Tokens,
    /// The header to tokenise first (and drop the tokens of).
    header: Option<Vec<u8>>,
}

impl State {
    fn new(lexers: [StreamLexer; 2]) -> Self {
        let [reader, core] = lexers;
        State {
            lexers: [Some(reader), Some(core)],
            past_header: [false; 2],
            header_end: None,
            header: None,
            splitter: Splitter::new(),
            marks: Marks::default(),
            ends: VecDeque::new(),
            bytes: Vec::new(),
            base: 0,
            cut: 0,
            cut_inside: false,
            pieces: VecDeque::new(),
            last_taken_by: None,
            spare: [Vec::new(), Vec::new()],
            end: None,
            closed: false,
            reader_waits: false,
        }
    }

    fn data_end(&self) -> u64 {
        self.base + self.bytes.len() as u64
    }

    /// Bytes the core has not taken yet (as bytes or as tokens): what the budget bounds.
    fn pending(&self) -> usize {
        let first = self.pieces.front().map_or(self.cut, |p| p.start);
        usize::try_from(self.data_end().saturating_sub(first)).unwrap_or(usize::MAX)
    }

    fn first_untaken(&self) -> u64 {
        self.pieces
            .iter()
            .find(|p| p.by.is_none())
            .map_or(self.cut, |p| p.start)
    }

    /// Whether the core has something to take or to do.
    fn has_work(&self) -> bool {
        matches!(self.pieces.front(), Some(p) if p.tokens.is_some())
            || self.claimable(CORE).is_some()
            || (self.pieces.is_empty() && self.end.is_some())
    }

    /// Adds bytes read, and cuts them into pieces.
    fn add(&mut self, bytes: &[u8]) {
        self.bytes.extend_from_slice(bytes);
        self.splitter.scan(bytes, &mut self.marks);
        if self.header_end.is_none()
            && let Some(header_end) = self.marks.header_end.take()
        {
            self.header_end = Some(header_end);
            // The lexer that takes the piece ending here is past the header; for the
            // other, a copy (unless the header was too long to keep).
            self.header = self.slice(0, header_end).map(<[u8]>::to_vec);
            self.push_piece(header_end, true);
            self.cut_inside = false;
        }
        self.ends.extend(self.marks.ends.drain(..));
        let data_end = self.data_end();
        while self.cut < data_end {
            if self.header_end.is_none() || self.splitter.is_opaque() {
                // Nothing to cut at: one lexer goes on with everything, in order.
                self.push_piece(data_end, true);
                break;
            }
            let chained = self.cut_inside;
            let Some(&first) = self.ends.front() else {
                // A read that ended inside a stanza: tokenised now, continued by the same
                // lexer.
                self.push_piece(data_end, chained);
                self.cut_inside = true;
                break;
            };
            let mut end = first;
            while let Some(next) = self.ends.pop_front() {
                end = next;
                if next >= self.cut + PIECE {
                    break;
                }
            }
            self.push_piece(end, chained);
            self.cut_inside = false;
        }
    }

    fn push_piece(&mut self, end: u64, chained: bool) {
        if end <= self.cut {
            return;
        }
        // Small reads make small pieces: while the last one is untaken and small, it grows
        // instead (its lexer takes the new bytes too, which is always right).
        if let Some(last) = self.pieces.back_mut()
            && last.by.is_none()
            && last.end == self.cut
            && last.end - last.start < PIECE
        {
            last.end = end;
            self.cut = end;
            return;
        }
        if end > self.cut {
            self.pieces.push_back(Piece {
                start: self.cut,
                end,
                chained,
                by: None,
                tokens: None,
            });
            self.cut = end;
        }
    }

    /// The stream's bytes `start..end`, if still held.
    fn slice(&self, start: u64, end: u64) -> Option<&[u8]> {
        let from = usize::try_from(start.checked_sub(self.base)?).ok()?;
        let to = usize::try_from(end.checked_sub(self.base)?).ok()?;
        self.bytes.get(from..to)
    }

    /// The first piece lexer `who` may take now, by its index.
    fn claimable(&self, who: usize) -> Option<usize> {
        self.lexers[who].as_ref()?;
        let mut before = self.last_taken_by;
        let mut first = self.last_taken_by.is_none();
        for (i, piece) in self.pieces.iter().enumerate() {
            if piece.by.is_none() {
                let allowed = if piece.chained {
                    before == Some(who) || first
                } else {
                    self.past_header[who] || self.header.is_some()
                };
                if allowed {
                    return Some(i);
                }
            }
            before = piece.by;
            first = false;
        }
        None
    }

    /// Takes piece `i` for lexer `who`, copying its bytes into `scratch`.
    fn claim(&mut self, i: usize, who: usize, scratch: &mut Vec<u8>) -> Option<Claim> {
        let (start, end) = (self.pieces[i].start, self.pieces[i].end);
        debug_assert!(
            self.pieces[i].chained
                || !self.past_header[who]
                || self.lexers[who]
                    .as_ref()
                    .is_none_or(|lexer| lexer.between_stanzas() || lexer.is_failed()),
            "a free piece for a lexer inside a stanza"
        );
        scratch.clear();
        scratch.extend_from_slice(self.slice(start, end)?);
        let lexer = self.lexers[who].take()?;
        let header = match (self.past_header[who], self.pieces[i].chained) {
            (false, false) => self.header.clone(),
            _ => None,
        };
        self.pieces[i].by = Some(who);
        let tokens = self.spare[who].pop().unwrap_or_default();
        self.forget_taken_bytes();
        Some(Claim {
            start,
            lexer,
            tokens,
            header,
        })
    }

    /// Drops the bytes no piece needs any more (now and then: draining costs a copy).
    /// Until the header's end is known its bytes are kept for the copy, within the budget.
    fn forget_taken_bytes(&mut self) {
        if self.header_end.is_none() && self.bytes.len() <= BUDGET {
            return;
        }
        let keep_from = self.first_untaken();
        let drop = usize::try_from(keep_from.saturating_sub(self.base))
            .unwrap_or(usize::MAX)
            .min(self.bytes.len());
        if drop == self.bytes.len() || drop >= BUDGET {
            self.bytes.drain(..drop);
            self.base = keep_from;
        }
    }

    /// A piece tokenised by `who` (after the header's copy, if it had to).
    fn finish(
        &mut self,
        claim_start: u64,
        who: usize,
        lexer: StreamLexer,
        tokens: Tokens,
        took_header: bool,
    ) {
        self.lexers[who] = Some(lexer);
        let Some(piece) = self.pieces.iter_mut().find(|p| p.start == claim_start) else {
            return;
        };
        // The piece with the header's end in it (it may have grown past it).
        let has_header_end = self
            .header_end
            .is_some_and(|end| piece.start < end && end <= piece.end);
        if took_header || has_header_end {
            self.past_header[who] = true;
        }
        piece.tokens = Some(tokens);
        if self.past_header.iter().all(|&p| p) {
            self.header = None;
        }
    }
}

/// Tokens from [`SharedLexer::next`], and which side's lexer made them (so that they go back
/// to that side to be dropped: see [`SharedLexer`]).
#[derive(Debug)]
pub struct Lexed {
    tokens: Tokens,
    side: usize,
}

impl std::ops::Deref for Lexed {
    type Target = Tokens;

    fn deref(&self) -> &Tokens {
        &self.tokens
    }
}

impl std::ops::DerefMut for Lexed {
    fn deref_mut(&mut self) -> &mut Tokens {
        &mut self.tokens
    }
}

/// What [`SharedLexer::next`] found for the core.
#[derive(Debug)]
pub enum Next {
    /// The next tokens, in order: hand them to the core, then [`SharedLexer::give_back`].
    Tokens(Lexed),
    /// The connection ended (after everything before it was taken).
    End(String),
    /// Nothing now.
    Nothing,
}

impl SharedLexer {
    /// A shared `lexer`; `wake` is called (from the reader's thread) when the core has
    /// something to take.
    pub fn new(lexer: StreamLexer, wake: impl Fn() + Send + Sync + 'static) -> Self {
        let core = StreamLexer::new(lexer.limits());
        SharedLexer {
            state: Mutex::new(State::new([lexer, core])),
            room: Condvar::new(),
            work: AtomicBool::new(false),
            wake: Box::new(wake),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Updates the work flag; wakes the core if work appeared.
    fn publish(&self, state: &State) {
        let work = state.has_work();
        let was = self.work.swap(work, Ordering::AcqRel);
        if work && !was {
            (self.wake)();
        }
    }

    /// Tokenises what `who` may take until there is nothing, stopping after a piece that
    /// ends the stream's tokens (an error); returns whether it tokenised anything.
    fn lex_as(&self, who: usize, scratch: &mut Vec<u8>, just_one: bool) -> bool {
        let mut any = false;
        loop {
            let claim = {
                let mut state = self.lock();
                if state.closed {
                    return any;
                }
                let Some(i) = state.claimable(who) else {
                    return any;
                };
                let claim = state.claim(i, who, scratch);
                if state.reader_waits && state.pending() < BUDGET {
                    self.room.notify_one();
                }
                self.publish(&state);
                claim
            };
            let Some(Claim {
                start,
                mut lexer,
                mut tokens,
                header,
            }) = claim
            else {
                return any;
            };
            let took_header = header.is_some();
            if let Some(header) = header {
                // The header this lexer did not see: its tokens are the header piece's.
                lexer.lex(&header, &mut tokens);
                tokens.clear();
            }
            lexer.lex(scratch, &mut tokens);
            let last = tokens.is_final();
            let mut state = self.lock();
            state.finish(start, who, lexer, tokens, took_header);
            self.publish(&state);
            any = true;
            if last || just_one {
                return any;
            }
        }
    }

    // ----- the reader's side -----

    /// Puts bytes read in, waiting while too many wait already; false once the core gave
    /// the connection up. It blocks the calling thread (the runtime's reader, never the
    /// core's: the [`Component`](exampple_core::Component) itself never waits).
    pub fn feed(&self, bytes: &[u8]) -> bool {
        let mut state = self.lock();
        while (state.pending() >= BUDGET || state.pieces.len() >= MAX_PIECES) && !state.closed {
            state.reader_waits = true;
            state = self.room.wait(state).unwrap_or_else(|p| p.into_inner());
            state.reader_waits = false;
        }
        if state.closed {
            return false;
        }
        state.add(bytes);
        self.publish(&state);
        true
    }

    /// Tokenises the pieces the reader may take (the core may take some meanwhile).
    pub fn lex_pending(&self, scratch: &mut Vec<u8>) {
        self.lex_as(READER, scratch, false);
    }

    /// The connection ended (the server closed it, or a read failed).
    pub fn end(&self, reason: String) {
        let mut state = self.lock();
        state.end.get_or_insert(reason);
        self.publish(&state);
    }

    /// Ends the input when dropped: a reader thread holds one, so that however it stops (a
    /// panic included) the core learns that the connection ended.
    pub fn end_guard(&self) -> EndGuard<'_> {
        EndGuard {
            input: self,
            reason: None,
        }
    }

    // ----- the core's side -----

    /// Whether [`SharedLexer::next`] has something (cheap: no lock).
    pub fn has_work(&self) -> bool {
        self.work.load(Ordering::Acquire)
    }

    /// The next input for the core, in order. When the next piece is not tokenised yet, the
    /// core's thread tokenises one itself (with `scratch` for its bytes) instead of waiting.
    pub fn next(&self, scratch: &mut Vec<u8>) -> Next {
        loop {
            {
                let mut state = self.lock();
                if matches!(state.pieces.front(), Some(p) if p.tokens.is_some())
                    && let Some(piece) = state.pieces.pop_front()
                {
                    state.last_taken_by = piece.by;
                    if state.reader_waits {
                        self.room.notify_one();
                    }
                    self.publish(&state);
                    if let (Some(tokens), Some(side)) = (piece.tokens, piece.by) {
                        return Next::Tokens(Lexed { tokens, side });
                    }
                }
                if state.pieces.is_empty()
                    && let Some(reason) = state.end.take()
                {
                    self.publish(&state);
                    return Next::End(reason);
                }
            }
            if !self.lex_as(CORE, scratch, true) {
                let state = self.lock();
                self.publish(&state);
                return Next::Nothing;
            }
        }
    }

    /// Spent tokens from [`Next::Tokens`], back to the side that made them.
    pub fn give_back(&self, lexed: Lexed) {
        let mut state = self.lock();
        if state.spare[lexed.side].len() < SPARE {
            state.spare[lexed.side].push(lexed.tokens);
        }
    }

    /// The core gives the connection up: the reader's next [`SharedLexer::feed`] fails.
    pub fn close(&self) {
        self.lock().closed = true;
        self.room.notify_all();
    }
}

/// See [`SharedLexer::end_guard`].
#[must_use = "the input ends when the guard is dropped"]
pub struct EndGuard<'a> {
    input: &'a SharedLexer,
    reason: Option<String>,
}

impl EndGuard<'_> {
    /// Why the connection ended, for when the guard drops.
    pub fn reason(&mut self, reason: impl Into<String>) {
        self.reason = Some(reason.into());
    }
}

impl Drop for EndGuard<'_> {
    fn drop(&mut self) {
        let reason = self
            .reason
            .take()
            .unwrap_or_else(|| "the reader stopped".into());
        self.input.end(reason);
    }
}

impl std::fmt::Debug for SharedLexer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedLexer")
            .field("work", &self.has_work())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use exampple_core::parser::{Limits, ParseError, StreamBuilder, StreamItem, StreamParser};
    use proptest::prelude::*;
    use std::sync::Arc;

    const HEADER: &str = "<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' id='s'>";

    fn stream(stanzas: usize, bad_at: Option<usize>) -> Vec<u8> {
        let mut s = String::from(HEADER);
        for i in 0..stanzas {
            if bad_at == Some(i) {
                s.push_str("<iq></message>");
            }
            s.push_str(&format!(
                "<iq type='get' id='{i}' from='u{i}@localhost/r' to='c.localhost'><ping xmlns='urn:xmpp:ping'/></iq>\n"
            ));
            if i % 7 == 0 {
                s.push_str(&format!(
                    "<message to='x'><body>{}</body></message>",
                    "é&amp;".repeat(i % 50)
                ));
            }
        }
        s.into_bytes()
    }

    /// What one thread makes of the whole input.
    fn alone(input: &[u8]) -> (Vec<StreamItem>, Option<ParseError>) {
        alone_with(input, Limits::default())
    }

    /// What the core builds of the tokens `lexer` has now (no end of input): the items up
    /// to the first error, and the error.
    fn build_what_is_there(lexer: &SharedLexer) -> (Vec<StreamItem>, Option<ParseError>) {
        let mut scratch = Vec::new();
        let mut builder = StreamBuilder::new();
        let mut items = Vec::new();
        while let Next::Tokens(mut tokens) = lexer.next(&mut scratch) {
            if let Err(e) = builder.build(&mut tokens, &mut items) {
                return (items, Some(e));
            }
            lexer.give_back(tokens);
        }
        (items, None)
    }

    fn alone_with(input: &[u8], limits: Limits) -> (Vec<StreamItem>, Option<ParseError>) {
        let mut parser = StreamParser::new(limits);
        let mut items = Vec::new();
        let error = parser.feed(input, &mut items).err();
        (items, error)
    }

    /// The same through a shared lexer, a reader thread feeding `chunks` and lexing when
    /// `reader_lexes` says so, the core's thread taking and building.
    fn shared_with(
        input: &[u8],
        sizes: &[usize],
        reader_lexes: &[bool],
        limits: Limits,
    ) -> (Vec<StreamItem>, Option<ParseError>) {
        let lexer = Arc::new(SharedLexer::new(StreamLexer::new(limits), || {}));
        let reader = {
            let lexer = lexer.clone();
            let input = input.to_vec();
            let sizes = sizes.to_vec();
            let reader_lexes = reader_lexes.to_vec();
            std::thread::spawn(move || {
                let mut scratch = Vec::new();
                let mut rest: &[u8] = &input;
                let mut i = 0;
                while !rest.is_empty() {
                    let n = sizes[i % sizes.len()].min(rest.len());
                    let (chunk, tail) = rest.split_at(n);
                    rest = tail;
                    if !lexer.feed(chunk) {
                        return;
                    }
                    if reader_lexes[i % reader_lexes.len()] {
                        lexer.lex_pending(&mut scratch);
                    } else {
                        std::thread::yield_now();
                    }
                    i += 1;
                }
                lexer.lex_pending(&mut scratch);
                lexer.end("done".into());
            })
        };
        let mut builder = StreamBuilder::new();
        let mut items = Vec::new();
        let mut scratch = Vec::new();
        let error = loop {
            let result = match lexer.next(&mut scratch) {
                Next::Tokens(mut tokens) => {
                    let r = builder.build(&mut tokens, &mut items);
                    lexer.give_back(tokens);
                    r
                }
                Next::End(reason) => {
                    assert_eq!(reason, "done");
                    break None;
                }
                Next::Nothing => {
                    std::thread::yield_now();
                    Ok(())
                }
            };
            if let Err(e) = result {
                lexer.close();
                break Some(e);
            }
        };
        reader.join().unwrap();
        (items, error)
    }

    /// Pieces of a stream: good stanzas in their odd legal forms, and each way to go wrong.
    const SEGMENTS: &[&str] = &[
        "<iq type='get' id='1' from='a@b/c' to='c.localhost'><ping xmlns='urn:xmpp:ping'/></iq>",
        "<message a='>' b=\"/>'\"><body>1 &lt; 2 <![CDATA[</body> ]] ]]]></body></message>",
        "<presence\n/>",
        "<x:y xmlns:x='u'><x:z k='v'>t</x:z ></x:y>",
        "\n  ",
        "<iq><q></iq>",
        "hello",
        "<!DOCTYPE x [<!ENTITY a 'b'>]>",
        "<message><!-- c --></message>",
        "<message><?pi x?></message>",
        "<message><body>\u{1F600}&lol;</body></message>",
        "<a><a><a><a><a><a><a><a><a><a></a></a></a></a></a></a></a></a></a></a>",
        "</stream:stream>",
        "<iq id='1' id='2'/>",
        "<p:q/>",
    ];

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        #[test]
        fn two_threads_make_what_one_makes(
            stanzas in 1usize..1000,
            bad_at in proptest::option::of(0usize..1000),
            sizes in proptest::collection::vec(1usize..9000, 1..20),
            reader_lexes in proptest::collection::vec(any::<bool>(), 1..8),
        ) {
            // A small stanza limit: a lexer whose count went wrong refuses a stanza.
            let limits = Limits { max_stanza_size: 2048, max_depth: 8 };
            let input = stream(stanzas, bad_at);
            let (items, error) = shared_with(&input, &sizes, &reader_lexes, limits);
            let (expected, expected_error) = alone_with(&input, limits);
            prop_assert_eq!(error, expected_error);
            prop_assert_eq!(items, expected);
        }

        #[test]
        fn two_threads_make_what_one_makes_of_anything(
            declaration in any::<bool>(),
            picks in proptest::collection::vec(0usize..SEGMENTS.len(), 0..60),
            ok_weight in 0usize..4,
            sizes in proptest::collection::vec(1usize..600, 1..30),
            reader_lexes in proptest::collection::vec(any::<bool>(), 1..8),
        ) {
            let mut input = String::new();
            if declaration {
                input.push_str("<?xml version='1.0'?>\n");
            }
            input.push_str(HEADER);
            for (i, &pick) in picks.iter().enumerate() {
                // Mostly good stanzas, so that something goes wrong late as often as early.
                let pick = if i % 4 < ok_weight { pick % 5 } else { pick };
                input.push_str(SEGMENTS[pick]);
            }
            let limits = Limits { max_stanza_size: 4096, max_depth: 8 };
            let (items, error) = shared_with(input.as_bytes(), &sizes, &reader_lexes, limits);
            let (expected, expected_error) = alone_with(input.as_bytes(), limits);
            prop_assert_eq!(&error, &expected_error, "{}", input);
            prop_assert_eq!(items, expected, "{}", input);
        }
    }

    #[test]
    fn the_end_comes_after_everything_and_close_stops_the_reader() {
        let lexer = SharedLexer::new(StreamLexer::new(Limits::default()), || {});
        let input = stream(3, None);
        assert!(lexer.feed(&input));
        lexer.end("eof".into());
        let mut scratch = Vec::new();
        let mut builder = StreamBuilder::new();
        let mut items = Vec::new();
        loop {
            match lexer.next(&mut scratch) {
                Next::Tokens(mut tokens) => builder.build(&mut tokens, &mut items).unwrap(),
                Next::End(reason) => {
                    assert_eq!(reason, "eof");
                    break;
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(items.len(), 1 + 3 + 1, "header, 3 iqs and a message");
        assert!(!lexer.has_work());
        lexer.close();
        assert!(!lexer.feed(b"<iq/>"));
    }

    /// The header's piece may grow with the first stanzas; the lexer that takes it is past
    /// the header all the same, and must not tokenise the header's copy again.
    #[test]
    fn a_header_piece_that_grew_counts_as_the_header() {
        // A small stanza limit: a lexer that took the header twice would count all stanzas
        // as one (its depth one too many) and refuse them as too large.
        let limits = Limits {
            max_stanza_size: 2048,
            max_depth: 8,
        };
        let lexer = SharedLexer::new(StreamLexer::new(limits), || {});
        let input = stream(300, None);
        let first = HEADER.len() + 40;
        assert!(lexer.feed(&input[..first]));
        let mut reader_scratch = Vec::new();
        lexer.lex_pending(&mut reader_scratch);
        assert!(lexer.feed(&input[first..]));
        lexer.lex_pending(&mut reader_scratch);
        assert_eq!(build_what_is_there(&lexer), alone_with(&input, limits));
    }

    #[test]
    fn a_byte_at_a_time_makes_few_pieces() {
        let lexer = SharedLexer::new(StreamLexer::new(Limits::default()), || {});
        let input = stream(200, None);
        for byte in &input {
            assert!(lexer.feed(std::slice::from_ref(byte)));
        }
        let pieces = lexer.lock().pieces.len();
        assert!(
            pieces <= input.len() / PIECE as usize + 2,
            "{pieces} pieces"
        );
        let mut scratch = Vec::new();
        let mut builder = StreamBuilder::new();
        let mut items = Vec::new();
        while let Next::Tokens(mut tokens) = lexer.next(&mut scratch) {
            builder.build(&mut tokens, &mut items).unwrap();
            lexer.give_back(tokens);
        }
        assert_eq!(items, alone(&input).0);
    }

    /// Tokens the core has not taken count against the budget too: a reader that
    /// tokenises everything it reads still stops reading when the core falls behind.
    #[test]
    fn tokens_waiting_for_the_core_count_against_the_budget() {
        let lexer = Arc::new(SharedLexer::new(StreamLexer::new(Limits::default()), || {}));
        let input = stream(10_000, None);
        let reader = {
            let lexer = lexer.clone();
            std::thread::spawn(move || {
                let mut scratch = Vec::new();
                for chunk in input.chunks(4000) {
                    if !lexer.feed(chunk) {
                        return;
                    }
                    lexer.lex_pending(&mut scratch);
                }
            })
        };
        // The reader stops: it waits for room, all it read tokenised and waiting.
        let waited = std::time::Instant::now();
        while !lexer.lock().reader_waits {
            assert!(
                !reader.is_finished(),
                "the reader read everything without waiting"
            );
            assert!(
                waited.elapsed() < std::time::Duration::from_secs(20),
                "the reader never waits"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        {
            let state = lexer.lock();
            let first = state.pieces.front().map_or(state.cut, |p| p.start);
            let held = (state.data_end() - first) as usize;
            assert!(held < BUDGET + 4000, "{held} bytes wait for the core");
            assert!(
                state.pieces.iter().all(|p| p.tokens.is_some()),
                "all tokenised"
            );
        }
        lexer.close();
        reader.join().unwrap();
    }

    #[test]
    fn a_reader_that_panics_still_ends_the_input() {
        let lexer = Arc::new(SharedLexer::new(StreamLexer::new(Limits::default()), || {}));
        let reader = lexer.clone();
        let stopped = std::thread::spawn(move || {
            let _end = reader.end_guard();
            panic!("a reader thread dies");
        })
        .join();
        assert!(stopped.is_err());
        let mut scratch = Vec::new();
        assert!(matches!(lexer.next(&mut scratch), Next::End(r) if r == "the reader stopped"));
    }

    #[test]
    fn the_reader_waits_while_the_core_is_behind() {
        let woken = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = woken.clone();
        let lexer = Arc::new(SharedLexer::new(
            StreamLexer::new(Limits::default()),
            move || {
                counter.fetch_add(1, Ordering::SeqCst);
            },
        ));
        assert!(lexer.feed(&vec![b' '; BUDGET]));
        assert_eq!(woken.load(Ordering::SeqCst), 1, "work appeared once");
        let blocked = {
            let lexer = lexer.clone();
            std::thread::spawn(move || lexer.feed(b" "))
        };
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(!blocked.is_finished(), "over budget: the reader waits");
        let mut scratch = Vec::new();
        assert!(matches!(lexer.next(&mut scratch), Next::Tokens(_)));
        assert!(
            blocked.join().unwrap(),
            "room again after the core took a piece"
        );
    }

    /// Text between stanzas does not wait in the input for a `<` that may never come: its
    /// piece is tokenised, and the error reaches the core, whichever side tokenises.
    #[test]
    fn text_between_stanzas_reaches_the_core_at_once() {
        let ping = "<iq type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq>";
        let inputs: [Vec<&[u8]>; 4] = [
            vec![HEADER.as_bytes(), b"hello"],
            vec![HEADER.as_bytes(), b"\n  ", b"h"],
            vec![HEADER.as_bytes(), ping.as_bytes(), b" x"],
            vec![
                HEADER.as_bytes(),
                ping.as_bytes(),
                b"\n",
                ping.as_bytes(),
                b"he",
                b"llo",
            ],
        ];
        for chunks in &inputs {
            for reader_lexes in [false, true] {
                let lexer = SharedLexer::new(StreamLexer::new(Limits::default()), || {});
                let mut reader_scratch = Vec::new();
                for chunk in chunks {
                    assert!(lexer.feed(chunk));
                    if reader_lexes {
                        lexer.lex_pending(&mut reader_scratch);
                    }
                }
                // No end of input: the core finds the error in what it has.
                let (_, error) = build_what_is_there(&lexer);
                assert_eq!(
                    error,
                    Some(ParseError::StrayText),
                    "{chunks:?}, reader lexes: {reader_lexes}"
                );
            }
        }
    }
}
