//! Regressions for what the fuzz targets in `fuzz/` found. The crashing inputs are kept
//! in `core/tests/fuzz-inputs/` (replay one with `cargo fuzz run <target> <file>` from
//! `fuzz/`); the tests here rebuild each case without libFuzzer.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use exampple_core::component::Event;
use exampple_core::jid;
use exampple_core::{Component, Config, Conn, Element, Router, StanzaError, xml};

const INPUTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fuzz-inputs");

/// `jid` target: nameprep folds case before NFKC, so `㋌` (U+32CC SQUARE HG) became the
/// domain `Hg`, which parses again as `hg`: the printed form of a parsed JID was another
/// JID. `jid::parse` now normalises to a fixed point.
#[test]
fn jid_parse_is_idempotent() {
    let input = std::fs::read(format!("{INPUTS}/jid-nameprep-not-idempotent")).unwrap();
    let text = std::str::from_utf8(&input).unwrap();
    for text in [text, "x@\u{32CC}", "\u{32CC}", "a@b.\u{32CC}/r"] {
        let parsed = jid::parse(text).unwrap();
        let printed = parsed.to_string();
        let again = jid::parse(&printed).unwrap();
        assert_eq!(again, parsed, "{text:?} -> {printed:?}");
        assert_eq!(again.to_string(), printed);
        assert!(jid::is_valid(&printed));
    }
    assert_eq!(jid::parse("x@\u{32CC}").unwrap().domain().as_str(), "hg");
}

static PANICS: AtomicUsize = AtomicUsize::new(0);

/// Counts panics (caught ones included) in this test binary from now on.
fn count_panics() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        previous(info);
    }));
}

/// `router` target: minidom's writer panics on a character XML cannot carry (here a NUL in
/// `xml:lang`); `xml::write_element` caught the panic, but a panic is still a panic (it
/// goes through the panic hook, and aborts a program built with `panic = "abort"`). The
/// characters are now checked first, so nothing panics.
///
/// Second input: an element in the `xml` namespace is written by minidom as
/// `xmlns='http://www.w3.org/XML/1998/namespace'`, which no parser accepts: a peer would
/// close the stream. Such an element is now refused like a bad character.
///
/// Third input: a NUL in a namespace (`xmlns='urn:\0'`), which the first fix left to the
/// `catch_unwind`. Also: an element nested deeper than `xml::MAX_WRITE_DEPTH` is refused
/// (minidom's writer recurses and would overflow the stack).
#[test]
fn unwritable_elements_are_refused_without_panicking() {
    count_panics();
    let mut el = Element::bare("iq", "jabber:component:accept");
    xml::set_lang(&mut el, "\0i");
    let mut out = b"before".to_vec();
    assert!(!xml::write_stanza(&el, "jabber:component:accept", &mut out));
    assert_eq!(out, b"before");

    let mut payload = Element::bare("value", "urn:unknown");
    payload.append_child(Element::bare(
        "data",
        "http://www.w3.org/XML/1998/namespace",
    ));
    let mut el = Element::bare("iq", "jabber:component:accept");
    el.append_child(payload);
    assert!(!xml::write_stanza(&el, "jabber:component:accept", &mut out));
    assert_eq!(out, b"before");
    assert_eq!(xml::to_string(&el), "");

    // Third input: a NUL in a payload's namespace.
    let mut el = Element::bare("iq", "jabber:component:accept");
    el.append_child(Element::bare("q", "urn:\u{0}"));
    assert!(!xml::write_stanza(&el, "jabber:component:accept", &mut out));
    assert_eq!(out, b"before");

    for bad in [
        "\u{0}",
        "a\u{1}b",
        "\u{b}",
        "\u{1f}",
        "x\u{FFFE}",
        "\u{FFFF}",
    ] {
        let mut text = Element::bare("body", "jabber:component:accept");
        text.append_text_node(bad);
        assert!(!xml::write_element(&text, &mut out), "{bad:?}");
        let attr = Element::builder("body", "jabber:component:accept")
            .attr(rxml::NcName::try_from("a").unwrap(), bad)
            .build();
        assert!(!xml::write_element(&attr, &mut out), "{bad:?}");
        assert!(!xml::is_xml_text(bad));
    }
    for good in [
        "",
        "tab\tnew\nline\r",
        "é𝄞日本語 &<>'\"",
        "\u{FFFD}\u{FFFC}\u{10FFFF}",
    ] {
        assert!(xml::is_xml_text(good), "{good:?}");
        let mut text = Element::bare("body", "jabber:component:accept");
        text.append_text_node(good);
        let mut out = Vec::new();
        assert!(xml::write_element(&text, &mut out), "{good:?}");
        let back = xml::parse(std::str::from_utf8(&out).unwrap()).unwrap();
        assert_eq!(back.text(), good);
    }
    // minidom's writer recurses: too deep is refused before it can overflow the stack.
    let nest = |depth: usize| {
        let mut el = Element::bare("a", "urn:a");
        for _ in 1..depth {
            let mut parent = Element::bare("a", "urn:a");
            parent.append_child(el);
            el = parent;
        }
        el
    };
    let mut out = Vec::new();
    assert!(xml::write_element(&nest(xml::MAX_WRITE_DEPTH), &mut out));
    xml::parse(std::str::from_utf8(&out).unwrap()).unwrap();
    let mut out = Vec::new();
    assert!(!xml::write_element(
        &nest(xml::MAX_WRITE_DEPTH + 1),
        &mut out
    ));
    assert!(out.is_empty());
    assert_eq!(
        PANICS.load(Ordering::SeqCst),
        0,
        "a panic was raised (and caught)"
    );
}

fn echo_lang(conn: Conn, _: Vec<Element>) -> Result<(), StanzaError> {
    // A controller answering with a string it got from elsewhere, with a NUL in it.
    let mut reply = conn.iq_resp([]).into_element();
    xml::set_lang(&mut reply, "\0");
    conn.send(reply)?;
    Ok(())
}

/// The same through a component: the unwritable answer is dropped, the connection stays
/// up and the next request is answered.
#[test]
fn a_controllers_unwritable_answer_does_not_take_the_stream_down() {
    let now = Instant::now();
    let router = Router::new().iq("urn:test", |ns| ns.get("bad", echo_lang));
    let mut c = Component::new(Config::new("c.localhost", "s"), router, now).unwrap();
    c.connect(now);
    c.handle_connected(now);
    c.handle_input(
        now,
        b"<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' id='i'><handshake/>",
    );
    let written = std::sync::Mutex::new(Vec::new());
    let pump = |c: &mut Component| {
        for _ in 0..10 {
            while let Some(bytes) = c.poll_transmit() {
                written.lock().unwrap().extend(bytes);
            }
            while let Some(event) = c.poll_event() {
                if let Event::Dispatch(d) = event {
                    let _ = d.run();
                }
            }
            c.handle_outbox(now);
        }
    };
    pump(&mut c);
    written.lock().unwrap().clear();
    c.handle_input(
        now,
        b"<iq type='get' id='1' from='a@b/c' to='c.localhost'><q xmlns='urn:test:bad'/></iq>",
    );
    pump(&mut c);
    assert!(c.is_online());
    assert_eq!(c.in_flight(), 0);
    // Nothing half-written: whatever went out parses.
    let out = String::from_utf8(written.lock().unwrap().clone()).unwrap();
    assert!(!out.contains('\0'));
    xml::parse_all(&out).unwrap();
}
