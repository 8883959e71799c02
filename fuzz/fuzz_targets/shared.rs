//! The shared lexer (two lexers tokenising pieces of whole stanzas, the splitter cutting
//! them) against the core's own lexer: arbitrary server input, in arbitrary chunks, with the
//! reader's and the core's side taking turns in an arbitrary order.
//!
//! Input: byte 0 = flags (bit 0: the data is the whole stream, header included; otherwise
//! the server's header and `<handshake/>` come first), byte 1 = chunking seed, byte 2 = the
//! order of the turns; the rest is what the server sends.
//!
//! Checks: the same stanzas reach the router in the same order, the stream ends the same
//! way (the same stream error, or none), and a stream that ends well gets the same bytes.
#![no_main]

use std::sync::{Arc, Mutex};
use std::time::Instant;

use exampple_core::component::Event;
use exampple_core::{Component, Config, Conn, Element, Router};
use exampple_driver::SharedLexer;
use exampple_driver::shared_lexer::Next;
use exampple_fuzz::{DOMAIN, SERVER_HEADER};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, PartialEq)]
struct Run {
    written: String,
    routed: Vec<String>,
    ended: bool,
}

fn run(chunks: &[&[u8]], turns: Option<u8>) -> Run {
    let now = Instant::now();
    let routed = Arc::new(Mutex::new(Vec::new()));
    let noted = routed.clone();
    let router = Router::new().fallback(move |conn: Conn, _: Vec<Element>| {
        if let Ok(mut routed) = noted.lock() {
            routed.push(format!("{}#{}", conn.stanza().name(), conn.id().unwrap_or("")));
        }
        let _ = conn.send(conn.stanza().clone());
    });
    let config = Config::new(DOMAIN, "secret")
        .max_stanza_size(2048)
        .max_depth(8);
    let mut c = Component::new(config, router, now).expect("valid");
    c.connect(now);
    c.handle_connected(now);
    let input = SharedLexer::new(c.stream_lexer(), || {});
    let (mut reader_scratch, mut core_scratch) = (Vec::new(), Vec::new());
    let mut written = Vec::new();
    let mut ended = false;
    let pump = |c: &mut Component, written: &mut Vec<u8>, ended: &mut bool| {
        while let Some(event) = c.poll_event() {
            match event {
                Event::Dispatch(d) => drop(d.run()),
                Event::Disconnected { .. } | Event::Failed(_) => *ended = true,
                _ => {}
            }
        }
        c.handle_outbox(now);
        while let Some(bytes) = c.poll_transmit() {
            written.extend(bytes);
        }
    };
    pump(&mut c, &mut written, &mut ended);
    for (i, chunk) in chunks.iter().enumerate() {
        if ended {
            break;
        }
        match turns {
            None => {
                c.handle_input(now, chunk);
                pump(&mut c, &mut written, &mut ended);
            }
            Some(turns) => {
                if !input.feed(chunk) {
                    break;
                }
                let reader_first = turns & (1 << (i % 8)) != 0;
                for turn in 0..3 {
                    if (turn == 0 && reader_first) || turn == 1 {
                        input.lex_pending(&mut reader_scratch);
                        continue;
                    }
                    while input.has_work() && !ended {
                        match input.next(&mut core_scratch) {
                            Next::Tokens(mut tokens) => {
                                c.handle_tokens(now, &mut tokens);
                                input.give_back(tokens);
                            }
                            Next::End(_) => ended = true,
                            Next::Nothing => break,
                        }
                        pump(&mut c, &mut written, &mut ended);
                    }
                }
            }
        }
    }
    let routed = routed.lock().map(|r| r.clone()).unwrap_or_default();
    Run {
        written: String::from_utf8_lossy(&written).into_owned(),
        routed,
        ended,
    }
}

fuzz_target!(|data: &[u8]| {
    let [flags, seed, turns, rest @ ..] = data else {
        return;
    };
    let mut input = Vec::new();
    if flags & 1 == 0 {
        input.extend_from_slice(SERVER_HEADER);
        input.extend_from_slice(b"<handshake/>");
    }
    input.extend_from_slice(rest);
    let mut chunks = Vec::new();
    let mut rest: &[u8] = &input;
    let mut i = 0usize;
    while !rest.is_empty() {
        let size = 1 + (usize::from(*seed) * 7 + i * 13) % 301;
        let (chunk, tail) = rest.split_at(size.min(rest.len()));
        chunks.push(chunk);
        rest = tail;
        i += 1;
    }
    let alone = run(&chunks, None);
    let shared = run(&chunks, Some(*turns));
    assert_eq!(shared.routed, alone.routed, "the stanzas routed");
    assert_eq!(shared.ended, alone.ended, "whether the stream ended");
    let error = |w: &str| w.rsplit_once("<stream:error>").map(|(_, e)| e.to_string());
    assert_eq!(error(&shared.written), error(&alone.written), "the stream error");
    if !alone.ended {
        assert_eq!(shared.written, alone.written, "what was written");
    }
});
