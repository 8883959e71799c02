//! A lexer shared by a runtime's reader thread and the core's thread.
//!
//! Tokenising is about half of a stanza's cost, so a runtime does it on a reader thread
//! while the core's thread builds, routes and answers. But a fixed split is only as fast
//! as its slower side, and which side is slower depends on what else runs on its CPU (on a
//! small machine, often the peer itself). Here the split adapts: the reader puts the bytes
//! it reads in, and *whichever thread is free* tokenises the next piece. The core takes
//! the tokens the reader made, in order; when there are none and the lexer is free, it
//! tokenises the next piece itself rather than wait.
//!
//! Order is kept because there is one lexer: a thread takes it out (under the lock) to
//! tokenise a piece, and the core takes it only when no tokens made by the reader are
//! waiting, so what the core tokenises comes next. Memory stays on the thread that
//! allocated it: tokens the reader made go back to the reader ([`SharedLexer::give_back`])
//! to be dropped there, and the core drops its own.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};

use super::{StreamLexer, Tokens};

/// How many bytes are tokenised at a time (~35 pings): small enough that the core starts
/// on a large read's first stanzas at once, large enough that handing over is rare.
const PIECE: usize = 4096;

/// How many bytes may wait to be tokenised. Past that the reader stops reading: the
/// kernel's receive window fills, and a server that floods without reading our answers is
/// slowed down instead of filling our memory. Tokens waiting for the core are bounded by
/// this too (they come from these bytes).
const BUDGET: usize = 64 * 1024;

/// The bytes, the lexer and the tokens between a reader thread and the core's thread. See
/// the [module documentation](self).
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
    /// Out while a thread tokenises with it.
    lexer: Option<StreamLexer>,
    /// Bytes read and not tokenised yet: `unlexed[start..]`.
    unlexed: Vec<u8>,
    start: usize,
    /// Tokens the reader made, in order, for the core.
    queued: VecDeque<Tokens>,
    /// Spent tokens the reader made, back to be refilled (and their contents dropped) there.
    spare: Vec<Tokens>,
    /// How the connection ended, once the reader found out (after the bytes above).
    end: Option<String>,
    /// The core gave up the connection: the reader stops.
    closed: bool,
}

impl State {
    fn pending(&self) -> usize {
        self.unlexed.len() - self.start
    }

    /// Whether the core has something to take.
    fn has_work(&self) -> bool {
        !self.queued.is_empty()
            || (self.lexer.is_some() && (self.pending() > 0 || self.end.is_some()))
    }

    /// Takes the lexer and copies the next piece into `scratch`; `None` if the lexer is out
    /// or nothing is waiting.
    fn take_piece(&mut self, scratch: &mut Vec<u8>) -> Option<StreamLexer> {
        if self.pending() == 0 {
            return None;
        }
        let lexer = self.lexer.take()?;
        let end = self.unlexed.len().min(self.start + PIECE);
        scratch.clear();
        scratch.extend_from_slice(&self.unlexed[self.start..end]);
        self.start = end;
        if self.start == self.unlexed.len() {
            self.unlexed.clear();
            self.start = 0;
        } else if self.start > BUDGET {
            self.unlexed.drain(..self.start);
            self.start = 0;
        }
        Some(lexer)
    }
}

/// What [`SharedLexer::next`] found for the core.
#[derive(Debug)]
pub enum Next {
    /// Tokens the reader made: hand them to the core, then [`SharedLexer::give_back`].
    Queued(Tokens),
    /// The core's thread tokenised a piece itself, into its own tokens.
    Lexed,
    /// The connection ended (after everything before it was taken).
    End(String),
    /// Nothing now.
    Nothing,
}

impl SharedLexer {
    /// A shared `lexer`; `wake` is called (from the reader's thread) when the core has
    /// something to take.
    pub fn new(lexer: StreamLexer, wake: impl Fn() + Send + Sync + 'static) -> Self {
        SharedLexer {
            state: Mutex::new(State {
                lexer: Some(lexer),
                unlexed: Vec::new(),
                start: 0,
                queued: VecDeque::new(),
                spare: Vec::new(),
                end: None,
                closed: false,
            }),
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

    // ----- the reader's side -----

    /// Puts bytes read in, waiting while too many wait already; false once the core gave
    /// the connection up.
    pub fn feed(&self, bytes: &[u8]) -> bool {
        let mut state = self.lock();
        while state.pending() >= BUDGET && !state.closed {
            state = self.room.wait(state).unwrap_or_else(|p| p.into_inner());
        }
        if state.closed {
            return false;
        }
        state.unlexed.extend_from_slice(bytes);
        self.publish(&state);
        true
    }

    /// Tokenises what is waiting while the lexer is free (the core may take it between
    /// pieces), queueing the tokens for the core.
    pub fn lex_pending(&self, scratch: &mut Vec<u8>) {
        loop {
            let (mut lexer, mut tokens) = {
                let mut state = self.lock();
                if state.closed {
                    return;
                }
                let Some(lexer) = state.take_piece(scratch) else {
                    return;
                };
                let tokens = state.spare.pop().unwrap_or_default();
                (lexer, tokens)
            };
            lexer.lex(scratch, &mut tokens);
            let failed = tokens.is_final();
            let mut state = self.lock();
            state.lexer = Some(lexer);
            if !tokens.is_empty() {
                state.queued.push_back(tokens);
            } else {
                state.spare.push(tokens);
            }
            self.room.notify_one();
            self.publish(&state);
            if failed {
                return;
            }
        }
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

    /// The next input for the core: the reader's tokens first, else a piece tokenised here
    /// into `own` (with `scratch` for its bytes), else the end.
    pub fn next(&self, own: &mut Tokens, scratch: &mut Vec<u8>) -> Next {
        let mut state = self.lock();
        if let Some(tokens) = state.queued.pop_front() {
            self.publish(&state);
            return Next::Queued(tokens);
        }
        if let Some(mut lexer) = state.take_piece(scratch) {
            self.room.notify_one();
            self.publish(&state);
            drop(state);
            lexer.lex(scratch, own);
            let mut state = self.lock();
            state.lexer = Some(lexer);
            self.publish(&state);
            return Next::Lexed;
        }
        if state.lexer.is_some()
            && state.pending() == 0
            && let Some(reason) = state.end.take()
        {
            self.publish(&state);
            return Next::End(reason);
        }
        self.publish(&state);
        Next::Nothing
    }

    /// Spent tokens from [`Next::Queued`], back to the reader.
    pub fn give_back(&self, tokens: Tokens) {
        let mut state = self.lock();
        if state.spare.len() < BUDGET / PIECE {
            state.spare.push(tokens);
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
    use super::super::{Limits, ParseError, StreamBuilder, StreamItem, StreamParser};
    use super::*;
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
        let mut parser = StreamParser::new(Limits::default());
        let mut items = Vec::new();
        let error = parser.feed(input, &mut items).err();
        (items, error)
    }

    /// The same through a shared lexer, a reader thread feeding `chunks` and lexing when
    /// `reader_lexes` says so, the core's thread taking and building.
    fn shared(
        input: &[u8],
        sizes: &[usize],
        reader_lexes: &[bool],
    ) -> (Vec<StreamItem>, Option<ParseError>) {
        let lexer = Arc::new(SharedLexer::new(StreamLexer::new(Limits::default()), || {}));
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
        let mut own = Tokens::default();
        let mut scratch = Vec::new();
        let error = loop {
            let result = match lexer.next(&mut own, &mut scratch) {
                Next::Queued(mut tokens) => {
                    let r = builder.build(&mut tokens, &mut items);
                    lexer.give_back(tokens);
                    r
                }
                Next::Lexed => builder.build(&mut own, &mut items),
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

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        #[test]
        fn two_threads_make_what_one_makes(
            stanzas in 1usize..300,
            bad_at in proptest::option::of(0usize..300),
            sizes in proptest::collection::vec(1usize..9000, 1..20),
            reader_lexes in proptest::collection::vec(any::<bool>(), 1..8),
        ) {
            let input = stream(stanzas, bad_at);
            let (items, error) = shared(&input, &sizes, &reader_lexes);
            let (expected, expected_error) = alone(&input);
            prop_assert_eq!(error, expected_error);
            prop_assert_eq!(items, expected);
        }
    }

    #[test]
    fn the_end_comes_after_everything_and_close_stops_the_reader() {
        let lexer = SharedLexer::new(StreamLexer::new(Limits::default()), || {});
        let input = stream(3, None);
        assert!(lexer.feed(&input));
        lexer.end("eof".into());
        let mut own = Tokens::default();
        let mut scratch = Vec::new();
        let mut builder = StreamBuilder::new();
        let mut items = Vec::new();
        loop {
            match lexer.next(&mut own, &mut scratch) {
                Next::Lexed => builder.build(&mut own, &mut items).unwrap(),
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
        let mut own = Tokens::default();
        let mut scratch = Vec::new();
        assert!(
            matches!(lexer.next(&mut own, &mut scratch), Next::End(r) if r == "the reader stopped")
        );
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
        let mut own = Tokens::default();
        let mut scratch = Vec::new();
        assert!(matches!(lexer.next(&mut own, &mut scratch), Next::Lexed));
        assert!(
            blocked.join().unwrap(),
            "room again after the core took a piece"
        );
    }
}
