//! Misbehaving controllers: panics, hangs past stanza_timeout and floods of thousands of
//! stanzas. The component must stay responsive to others: a ping under that load is answered
//! before the hung requests time out; its latency is measured and printed, not bounded.

mod support;

use std::time::{Duration, Instant};

use exampple::{AutoConnect, Config, Conn, Element, Router, StanzaError, xml};
use support::{DOMAIN, FakeServer, SECRET, Setup, Which};

fn ping(conn: Conn, _: Vec<Element>) -> Result<(), StanzaError> {
    conn.iq_resp([]).send()?;
    Ok(())
}

fn crash(_: Conn, _: Vec<Element>) {
    panic!("crash on purpose");
}

/// Blocks until the test is over (its `release` is dropped), however long its timeout.
fn hang(release: std::sync::mpsc::Receiver<()>) -> impl Fn(Conn, Vec<Element>) + Send + Sync {
    let release = std::sync::Mutex::new(release);
    move |_: Conn, _: Vec<Element>| {
        let _ = release.lock().unwrap_or_else(|p| p.into_inner()).recv();
    }
}

async fn hang_async(_: Conn, _: Vec<Element>) {
    async_io::Timer::after(Duration::from_secs(30)).await;
}

fn flood(conn: Conn, _: Vec<Element>) -> Result<(), StanzaError> {
    for i in 0..5000 {
        conn.send(xml!(
            "<message to='bob@localhost' id='flood-{i}'><body>{i}</body></message>"
        ))?;
    }
    conn.iq_resp([]).send()?;
    Ok(())
}

fn request(id: &str, ns: &str) -> Element {
    xml!("<iq type='get' id='{id}' from='alice@localhost/r' to='{DOMAIN}'><q xmlns='{ns}'/></iq>")
}

fn pressure(which: Which) {
    let server = FakeServer::new();
    let config = Config::new(DOMAIN, SECRET)
        .port(server.port())
        .auto_connect(AutoConnect::Immediately)
        .stanza_timeout(Duration::from_secs(5));
    let (test_over, release) = std::sync::mpsc::channel::<()>();
    let router = Router::new()
        .iq("urn:xmpp", |ns| ns.get("ping", ping))
        .iq("urn:test", |ns| {
            ns.get("crash", crash)
                .get("hang", hang(release))
                .get("hang-async", hang_async)
                .get("flood", flood)
        });
    let setup = Setup {
        // std's pool holds the four hung controllers and still has room.
        workers: (which == Which::Std).then_some(8),
        ..Setup::default()
    };
    let running = support::start(which, config, router, setup);
    let mut session = server.accept(true);

    // Baseline.
    let started = Instant::now();
    session.send(&request("p0", "urn:xmpp:ping"));
    assert_eq!(
        session.receive(Duration::from_secs(5)).unwrap().attr("id"),
        Some("p0")
    );
    let baseline = started.elapsed();

    // Load: 50 panics, 4 blocking hangs, 50 async hangs, 2 floods of 5000 stanzas.
    for i in 0..50 {
        session.send(&request(&format!("c{i}"), "urn:test:crash"));
        session.send(&request(&format!("a{i}"), "urn:test:hang-async"));
    }
    for i in 0..4 {
        session.send(&request(&format!("h{i}"), "urn:test:hang"));
    }
    session.send(&request("f0", "urn:test:flood"));
    session.send(&request("f1", "urn:test:flood"));
    let started = Instant::now();
    session.send(&request("p1", "urn:xmpp:ping"));
    let mut counts = std::collections::HashMap::<&str, usize>::new();
    let mut pong_after = None;
    // The stanzas before the first timeout (5 s after the hung requests were routed).
    let mut before_timeouts = None;
    let until = Instant::now() + Duration::from_secs(30);
    let expected_total = 50 + 50 + 4 + 2 * 5001 + 1;
    let mut total = 0;
    while total < expected_total && Instant::now() < until {
        let Some(stanza) = session.receive(Duration::from_secs(15)) else {
            break;
        };
        total += 1;
        let id = stanza.attr("id").unwrap_or("");
        let kind = match (id.chars().next(), stanza.attr("type")) {
            (Some('p'), _) => {
                pong_after.get_or_insert(started.elapsed());
                "pong"
            }
            (Some('c'), Some("error")) => "crash-error",
            (Some('a'), Some("error")) => "timeout-error",
            (Some('h'), Some("error")) => "timeout-error",
            (Some('f'), Some("result")) => "flood-done",
            (Some('f'), None) => "flood-message",
            _ => "other",
        };
        if kind == "timeout-error" {
            before_timeouts.get_or_insert(counts.clone());
        }
        *counts.entry(kind).or_default() += 1;
    }
    eprintln!(
        "{which:?}: ping alone {baseline:?}; ping under load answered after {pong_after:?}; {total} stanzas: {counts:?}"
    );
    assert_eq!(counts.get("pong"), Some(&1));
    assert_eq!(counts.get("crash-error"), Some(&50));
    assert_eq!(counts.get("timeout-error"), Some(&54));
    assert_eq!(counts.get("flood-done"), Some(&2));
    assert_eq!(counts.get("flood-message"), Some(&10_000));
    assert_eq!(counts.get("other"), None);
    let before_timeouts = before_timeouts.unwrap_or_default();
    assert_eq!(
        before_timeouts.get("pong"),
        Some(&1),
        "the ping waited for the hung requests' timeouts: {before_timeouts:?}"
    );
    drop(test_over);
    // Still serving afterwards.
    session.send(&request("p2", "urn:xmpp:ping"));
    assert_eq!(
        session.receive(Duration::from_secs(5)).unwrap().attr("id"),
        Some("p2")
    );
    (running.shutdown)(Duration::ZERO);
    session.write("</stream:stream>");
    running.join.join().unwrap().unwrap();
}

fn stays_responsive_under_misbehaving_controllers(which: Which) {
    pressure(which);
}

runtime_tests!(stays_responsive_under_misbehaving_controllers);
