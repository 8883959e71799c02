//! The XEP-0114 stream, wire level, fed the way the runtimes feed it: through the
//! [`SharedLexer`] a reader thread puts its reads into, and `handle_tokens`. A component fed
//! so must do exactly what one fed with `handle_input` does (moved here from the core's
//! `tests/stream.rs` with the shared lexer).

use std::sync::{Arc, Mutex};
use std::time::Instant;

use exampple_core::component::{Disconnect, Event};
use exampple_core::{Component, Config, Conn, Element, Router, StanzaError};
use exampple_driver::SharedLexer;
use exampple_driver::shared_lexer::Next;
use proptest::prelude::*;

const SERVER_HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' \
    xmlns:stream='http://etherx.jabber.org/streams' id='sid' from='component.localhost'>";

fn config() -> Config {
    Config::new("component.localhost", "123456")
}

fn events(c: &mut Component) -> Vec<Event> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

/// The one event the component has: a disconnection, with why and when it reconnects.
fn disconnected(c: &mut Component) -> (Disconnect, Instant) {
    let mut evs = events(c);
    match evs.pop() {
        Some(Event::Disconnected {
            reason,
            reconnect_at,
        }) if evs.is_empty() => (reason, reconnect_at),
        last => panic!("{evs:?} then {last:?}"),
    }
}

fn transmit(c: &mut Component) -> String {
    let mut out = Vec::new();
    while let Some(b) = c.poll_transmit() {
        out.extend(b);
    }
    String::from_utf8(out).unwrap()
}

/// A controller that answers a ping with an empty result.
fn ping(conn: Conn, _: Vec<Element>) -> Result<(), StanzaError> {
    conn.iq_resp([]).send()?;
    Ok(())
}

fn stream_bytes() -> Vec<u8> {
    let mut s = String::from(SERVER_HEADER);
    s.push_str("<handshake/>\n");
    s.push_str("<message from='a@localhost/r' to='component.localhost' type='chat' id='m1'><body>é 𝄞 日本語 &lt;&amp; &#x1F600;<![CDATA[<raw>]]></body><x:y xmlns:x='urn:x' a='1'/></message>  ");
    s.push_str("<presence from='b@localhost/r' to='component.localhost'/>");
    s.push_str("<iq type='get' id='i1' from='c@localhost/r' to='component.localhost'><query xmlns='urn:q'/></iq>");
    s.into_bytes()
}

/// An event's name, as the drivers below note them.
fn event_name(event: &Event) -> String {
    format!("{event:?}")
        .split([' ', '(', '{'])
        .next()
        .unwrap_or("")
        .to_string()
}

/// A component with a router that echoes every stanza back and notes its id, connected (its
/// header sent), at `now`, and the list its router writes the stanzas it gets to.
fn connected_echo(now: Instant) -> (Component, Arc<Mutex<Vec<String>>>) {
    let routed = Arc::new(Mutex::new(Vec::new()));
    let noted = routed.clone();
    let router = Router::new().fallback(move |conn: Conn, _p: Vec<Element>| {
        noted.lock().unwrap().push(format!(
            "{}#{}",
            conn.stanza().name(),
            conn.id().unwrap_or("")
        ));
        let _ = conn.send(conn.stanza().clone());
    });
    let mut c = Component::new(config(), router, now).unwrap();
    c.connect(now);
    c.handle_connected(now);
    (c, routed)
}

/// Drives a component through `chunks` of server input with `handle_input`; returns
/// everything it wrote and the events it gave, in order, and the stanzas the router got
/// (by name and id).
fn drive_handle_input(chunks: &[&[u8]]) -> ((String, Vec<String>), Vec<String>) {
    let now = Instant::now();
    let (mut c, routed) = connected_echo(now);
    let mut written = transmit(&mut c);
    let mut seen = Vec::new();
    for chunk in chunks {
        c.handle_input(now, chunk);
        while let Some(ev) = c.poll_event() {
            match ev {
                Event::Dispatch(d) => {
                    let _ = d.run();
                }
                other => seen.push(event_name(&other)),
            }
        }
        c.handle_outbox(now);
        written.push_str(&transmit(&mut c));
    }
    let routed = routed.lock().unwrap().clone();
    ((written, seen), routed)
}

/// Drives a component through `chunks` of server input the way the runtimes do, through
/// a shared lexer, on one thread: `schedule` says, chunk by chunk, whether the reader's
/// side tokenises what it may (else the core's side does, when it takes its input).
///
/// Pieces can gather stanzas of several chunks, so the answers to stanzas that come with
/// a stream error in one batch may be queued rather than written: the router's stanzas are
/// returned too, for the comparison that holds whatever the batching.
fn drive_shared(chunks: &[&[u8]], schedule: &[bool]) -> ((String, Vec<String>), Vec<String>) {
    let now = Instant::now();
    let (mut c, routed) = connected_echo(now);
    let input = SharedLexer::new(c.stream_lexer(), || {});
    let mut written = transmit(&mut c);
    let mut seen = Vec::new();
    let (mut reader_scratch, mut core_scratch) = (Vec::new(), Vec::new());
    let mut ended = false;
    // The core's side: takes what the input has, runs the controllers, writes.
    let mut core_takes =
        |c: &mut Component, written: &mut String, seen: &mut Vec<String>| -> bool {
            let mut ended = false;
            while input.has_work() && !ended {
                match input.next(&mut core_scratch) {
                    Next::Tokens(mut tokens) => {
                        c.handle_tokens(now, &mut tokens);
                        input.give_back(tokens);
                    }
                    Next::End(_) => ended = true,
                    Next::Nothing => break,
                }
                while let Some(ev) = c.poll_event() {
                    match ev {
                        Event::Dispatch(d) => {
                            let _ = d.run();
                        }
                        other => {
                            if matches!(other, Event::Disconnected { .. } | Event::Failed(_)) {
                                input.close();
                                ended = true;
                            }
                            seen.push(event_name(&other));
                        }
                    }
                }
                c.handle_outbox(now);
                written.push_str(&transmit(c));
            }
            ended
        };
    for (i, chunk) in chunks.iter().enumerate() {
        if ended {
            break;
        }
        assert!(input.feed(chunk));
        // Who goes first, as two threads would race: the reader tokenising what it may,
        // or the core taking its input (and tokenising what it may). The reader always
        // gets its turn: it tokenises after every read.
        if schedule[i % schedule.len()] {
            input.lex_pending(&mut reader_scratch);
        }
        ended = core_takes(&mut c, &mut written, &mut seen);
        input.lex_pending(&mut reader_scratch);
        ended = ended || core_takes(&mut c, &mut written, &mut seen);
    }
    let routed = routed.lock().unwrap().clone();
    ((written, seen), routed)
}

/// Server inputs for the drivers: a good stream, and streams that end in each way.
fn server_inputs() -> Vec<Vec<u8>> {
    let good = stream_bytes();
    let mut bad_xml = good.clone();
    bad_xml.extend_from_slice(b"<iq type='get' id='2'></message><presence/>");
    let mut closed = good.clone();
    closed.extend_from_slice(b"</stream:stream>");
    let mut too_deep = good.clone();
    too_deep.extend_from_slice(&b"<a>".repeat(100));
    let stream_error = format!(
        "{SERVER_HEADER}<stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>"
    )
    .into_bytes();
    vec![good, bad_xml, closed, too_deep, stream_error]
}

fn chunked<'a>(bytes: &'a [u8], sizes: &[usize]) -> Vec<&'a [u8]> {
    let mut chunks = Vec::new();
    let mut rest = bytes;
    let mut i = 0;
    while !rest.is_empty() {
        let n = sizes[i % sizes.len()].min(rest.len());
        let (a, b) = rest.split_at(n);
        chunks.push(a);
        rest = b;
        i += 1;
    }
    chunks
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn the_shared_lexer_is_handle_input(
        sizes in proptest::collection::vec(1usize..700, 1..50),
        schedule in proptest::collection::vec(any::<bool>(), 1..8),
        which in 0usize..5,
        repeat in 1usize..40,
    ) {
        // The good stream's stanzas many times over, so that pieces of whole stanzas form
        // and both sides take some.
        let mut input = server_inputs()[which].clone();
        if which == 0 {
            let stanzas = stream_bytes()[SERVER_HEADER.len() + "<handshake/>\n".len()..].to_vec();
            for _ in 0..repeat {
                input.extend_from_slice(&stanzas);
            }
        }
        let chunks = chunked(&input, &sizes);
        let ((shared, shared_events), shared_routed) = drive_shared(&chunks, &schedule);
        let ((alone, alone_events), alone_routed) = drive_handle_input(&chunks);
        // The same stanzas routed, in order, and the stream ends the same way...
        prop_assert_eq!(shared_routed, alone_routed);
        prop_assert_eq!(shared_events, alone_events);
        let error_of = |w: &str| w.rsplit("<stream:error>").next().map(str::to_string);
        prop_assert_eq!(error_of(&shared), error_of(&alone));
        // ... and a stream that ends well gets the very same bytes.
        if which == 0 {
            prop_assert_eq!(shared, alone);
        }
    }
}

/// The stream error the component sends for text between stanzas, and its close.
const BAD_FORMAT: &str = "<stream:error><bad-format xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>";

/// A component connected with `router` that gets the server's opening, then `chunks`, one
/// by one, through a shared lexer whose reader side tokenises (`reader_lexes`) or not.
/// Returns it, online or past that, and what it wrote after each chunk.
fn fed_one_by_one(
    router: Router,
    chunks: &[&[u8]],
    reader_lexes: bool,
) -> (Component, Vec<String>) {
    let now = Instant::now();
    let mut c = Component::new(config(), router, now).unwrap();
    c.connect(now);
    c.handle_connected(now);
    let shared = SharedLexer::new(c.stream_lexer(), || {});
    let (mut scratch, mut reader_scratch) = (Vec::new(), Vec::new());
    let mut feed = |c: &mut Component, chunk: &[u8]| {
        assert!(shared.feed(chunk));
        if reader_lexes {
            shared.lex_pending(&mut reader_scratch);
        }
        while let Next::Tokens(mut tokens) = shared.next(&mut scratch) {
            c.handle_tokens(now, &mut tokens);
            shared.give_back(tokens);
        }
    };
    feed(&mut c, SERVER_HEADER.as_bytes());
    feed(&mut c, b"<handshake/>");
    transmit(&mut c);
    assert!(matches!(
        events(&mut c).as_slice(),
        [Event::Connect { .. }, Event::Online { .. }]
    ));
    let written = chunks
        .iter()
        .map(|chunk| {
            feed(&mut c, chunk);
            transmit(&mut c)
        })
        .collect();
    (c, written)
}

/// A server that sends text after the header (or between stanzas) and nothing more: the
/// component answers with bad-format and closes at once, then reconnects, whichever side
/// of the shared lexer tokenises and however the text is cut.
#[test]
fn text_between_stanzas_ends_the_stream_at_once() {
    let now = Instant::now();
    for reader_lexes in [false, true] {
        for chunks in [
            &[&b"hello"[..]][..],
            &[b"\n", b" \t", b"h", b"ello"],
            &[b"  he", b"llo"],
        ] {
            let (mut c, written) = fed_one_by_one(Router::new(), chunks, reader_lexes);
            // Nothing for the whitespace; the error with the text's first character.
            let at = chunks
                .iter()
                .position(|c| c.iter().any(|b| !b.is_ascii_whitespace()))
                .unwrap();
            let mut expected = vec![String::new(); chunks.len()];
            expected[at] = BAD_FORMAT.to_string();
            assert_eq!(
                written, expected,
                "{chunks:?}, reader lexes: {reader_lexes}"
            );
            let (reason, reconnect_at) = disconnected(&mut c);
            assert!(
                matches!(&reason, Disconnect::BadInput { condition: "bad-format", reason } if reason == "text outside of a stanza"),
                "{reason:?}"
            );
            c.handle_closed(now, "eof");
            assert!(events(&mut c).is_empty());
            c.handle_timeout(reconnect_at);
            assert!(matches!(events(&mut c).as_slice(), [Event::Connect { .. }]));
        }
    }
}

/// Whitespace keepalives between stanzas, in any cut, are still accepted, and stanzas
/// around them answered.
#[test]
fn whitespace_keepalives_between_stanzas_are_accepted() {
    let now = Instant::now();
    let request = |id: &str| {
        format!(
            "<iq type='get' id='{id}' from='u@localhost/r' to='component.localhost'><ping xmlns='urn:xmpp:ping'/></iq>"
        )
    };
    let (p1, p2) = (request("p1"), request("p2"));
    for reader_lexes in [false, true] {
        let chunks: [&[u8]; 7] = [
            b"\n",
            b" ",
            p1.as_bytes(),
            b" \r\n\t ",
            &p2.as_bytes()[..5],
            &p2.as_bytes()[5..],
            b"\n\n",
        ];
        let router = Router::new().iq("urn:xmpp", |ns| ns.get("ping", ping));
        let (mut c, _) = fed_one_by_one(router, &chunks, reader_lexes);
        while let Some(event) = c.poll_event() {
            match event {
                Event::Dispatch(dispatch) => {
                    let _ = dispatch.run();
                }
                other => panic!("reader lexes: {reader_lexes}: {other:?}"),
            }
        }
        c.handle_outbox(now);
        assert_eq!(
            transmit(&mut c),
            "<iq from='component.localhost' id='p1' to='u@localhost/r' type='result'/>\
             <iq from='component.localhost' id='p2' to='u@localhost/r' type='result'/>",
            "reader lexes: {reader_lexes}"
        );
        assert!(c.is_online());
    }
}
