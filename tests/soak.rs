//! Soak test: mixed traffic through a loopback XEP-0114 server into the showcase's router on
//! the smol runtime, for `SOAK_SECS` seconds (default 20: a smoke run in CI; `scripts/soak.sh`
//! runs an hour). Every `SOAK_REPORT_SECS` it prints stanzas handled, errors and memory
//! (VmRSS of this process); memory must stay flat after the warm-up.

#[path = "../examples/showcase/app.rs"]
#[allow(dead_code)]
mod app;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use exampple::component::handshake_digest;
use exampple::parser::{Limits, StreamItem, StreamParser};
use exampple::{AutoConnect, Config};

fn env_secs(name: &str, default: u64) -> Duration {
    Duration::from_secs(
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default),
    )
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The traffic mix: (request, what counts as the expected answer).
fn request(i: u64) -> (String, &'static str) {
    let from = format!("user{}@localhost/r", i % 100);
    let to = "component.localhost";
    match i % 8 {
        0 => (
            format!(
                "<iq type='get' id='s{i}' from='{from}' to='{to}'><ping xmlns='urn:xmpp:ping'/></iq>"
            ),
            "result",
        ),
        1 => (
            format!(
                "<message type='chat' id='s{i}' from='{from}' to='{to}'><body>hello {i}</body></message>"
            ),
            "chat",
        ),
        2 => (
            format!(
                "<iq type='get' id='s{i}' from='{from}' to='{to}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"
            ),
            "result",
        ),
        3 => (
            format!(
                "<iq type='get' id='s{i}' from='{from}' to='{to}'><query xmlns='urn:example:unknown'/></iq>"
            ),
            "error",
        ),
        4 => (
            format!(
                "<iq type='get' id='s{i}' from='{from}' to='{to}'><query xmlns='urn:example:raise'/></iq>"
            ),
            "error",
        ),
        5 => (
            format!("<presence type='probe' id='s{i}' from='{from}' to='{to}'/>"),
            "presence",
        ),
        6 => (
            format!(
                "<iq type='set' id='s{i}' from='{from}' to='{to}'><query xmlns='jabber:iq:rpc'><methodCall>\
                 <methodName>examples.add</methodName><params><param><value><int>{i}</int></value></param>\
                 <param><value><int>1</int></value></param></params></methodCall></query></iq>"
            ),
            "result",
        ),
        _ => (
            format!(
                "<iq type='set' id='s{i}' from='{from}' to='{to}'><query xmlns='urn:example:form'>\
                 <x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>urn:example:form</value></field>\
                 <field var='name'><value>n{i}</value></field></x></query></iq>"
            ),
            "result",
        ),
    }
}

#[test]
#[ignore = "needs an XMPP server: scripts/test.sh (runs a short soak; scripts/soak.sh a long one)"]
fn soak() {
    let duration = env_secs("SOAK_SECS", 20);
    let report_every = env_secs("SOAK_REPORT_SECS", (duration.as_secs() / 10).clamp(2, 60));
    let warmup = (duration / 4).min(Duration::from_secs(120));
    let window: u64 = 100;

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut config = Config::new("component.localhost", "secret")
        .port(port)
        .auto_connect(AutoConnect::Immediately);
    config.stanza_timeout = Duration::from_secs(5);
    config.trimmed = true;
    config.set_from = true;
    let runtime = exampple::smol::Runtime::new(config, app::router()).unwrap();
    let handle = runtime.handle();
    let component = std::thread::spawn(move || runtime.run().map_err(|e| e.to_string()));

    let (mut stream, _) = listener.accept().unwrap();
    stream.set_nodelay(true).unwrap();
    let mut parser = StreamParser::new(Limits::default());
    let mut items = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    // Handshake.
    while !items.iter().any(|i| matches!(i, StreamItem::Header(_))) {
        let n = stream.read(&mut buf).unwrap();
        parser.feed(&buf[..n], &mut items).unwrap();
    }
    stream
        .write_all(b"<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' id='soak' from='component.localhost'>")
        .unwrap();
    while !items
        .iter()
        .any(|i| matches!(i, StreamItem::Element(e) if e.name() == "handshake"))
    {
        let n = stream.read(&mut buf).unwrap();
        parser.feed(&buf[..n], &mut items).unwrap();
    }
    let digest = items
        .iter()
        .find_map(|i| match i {
            StreamItem::Element(e) if e.name() == "handshake" => Some(e.text()),
            _ => None,
        })
        .unwrap();
    assert_eq!(digest, handshake_digest("soak", "secret"));
    stream.write_all(b"<handshake/>").unwrap();

    let sent = Arc::new(AtomicU64::new(0));
    let answered = Arc::new(AtomicU64::new(0));
    let unexpected = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let expected: Arc<Mutex<std::collections::HashMap<String, &'static str>>> = Arc::default();

    // Reader: checks every answer against what its request expects.
    let reader = {
        let mut stream = stream.try_clone().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let (answered, unexpected, done, expected) = (
            answered.clone(),
            unexpected.clone(),
            done.clone(),
            expected.clone(),
        );
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            let mut items = Vec::new();
            while !done.load(Ordering::Relaxed) {
                let n = match stream.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(_) => continue,
                };
                parser.feed(&buf[..n], &mut items).unwrap();
                for item in items.drain(..) {
                    let StreamItem::Element(e) = item else {
                        continue;
                    };
                    let id = e.attr("id").unwrap_or("").to_string();
                    let got = match (e.name(), e.attr("type")) {
                        ("iq", Some("result")) => "result",
                        ("iq", Some("error")) => "error",
                        ("message", Some("chat")) => "chat",
                        ("presence", None) => "presence",
                        _ => "other",
                    };
                    let want = expected.lock().unwrap().remove(&id);
                    // Presences carry no id back: match them by kind.
                    let ok = match want {
                        Some(w) => w == got,
                        None => {
                            got == "presence" && {
                                let mut map = expected.lock().unwrap();
                                let key = map
                                    .iter()
                                    .find(|(_, v)| **v == "presence")
                                    .map(|(k, _)| k.clone());
                                key.map(|k| map.remove(&k)).is_some()
                            }
                        }
                    };
                    if !ok {
                        unexpected.fetch_add(1, Ordering::Relaxed);
                    }
                    answered.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };

    let started = Instant::now();
    let mut next_report = started + report_every;
    let mut rss_after_warmup = None;
    let mut max_rss_after_warmup = 0;
    let mut i = 0u64;
    let mut batch = String::new();
    println!(
        "soak: {duration:?}, window {window}, report every {report_every:?}, warm-up {warmup:?}"
    );
    while started.elapsed() < duration {
        let in_flight = sent.load(Ordering::Relaxed) - answered.load(Ordering::Relaxed);
        if in_flight < window {
            batch.clear();
            let mut map = expected.lock().unwrap();
            for _ in 0..(window - in_flight) {
                let (xml, want) = request(i);
                map.insert(format!("s{i}"), want);
                batch.push_str(&xml);
                i += 1;
            }
            drop(map);
            stream.write_all(batch.as_bytes()).unwrap();
            sent.store(i, Ordering::Relaxed);
        } else {
            std::thread::sleep(Duration::from_micros(200));
        }
        let now = Instant::now();
        if started.elapsed() >= warmup && rss_after_warmup.is_none() {
            rss_after_warmup = Some(rss_kib());
        }
        if now >= next_report {
            let rss = rss_kib();
            if rss_after_warmup.is_some() {
                max_rss_after_warmup = max_rss_after_warmup.max(rss);
            }
            let secs = started.elapsed().as_secs_f64();
            let done_count = answered.load(Ordering::Relaxed);
            println!(
                "soak: {:>6.0}s  handled {done_count:>10}  ({:>7.0}/s)  unexpected {:>4}  rss {rss} KiB",
                secs,
                done_count as f64 / secs,
                unexpected.load(Ordering::Relaxed)
            );
            next_report = now + report_every;
        }
    }
    // Drain.
    let until = Instant::now() + Duration::from_secs(10);
    while answered.load(Ordering::Relaxed) < sent.load(Ordering::Relaxed) && Instant::now() < until
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    let end_rss = rss_kib();
    max_rss_after_warmup = max_rss_after_warmup.max(end_rss);
    done.store(true, Ordering::Relaxed);
    handle.shutdown(Duration::from_secs(1));
    let _ = stream.write_all(b"</stream:stream>");
    component.join().unwrap().unwrap();
    reader.join().unwrap();

    let total = answered.load(Ordering::Relaxed);
    let warm = rss_after_warmup.unwrap_or(end_rss);
    println!(
        "soak: done: {total} stanzas answered of {} sent in {:?}, {} unexpected; rss after warm-up {warm} KiB, max after warm-up {max_rss_after_warmup} KiB, at the end {end_rss} KiB",
        sent.load(Ordering::Relaxed),
        started.elapsed(),
        unexpected.load(Ordering::Relaxed)
    );
    assert_eq!(
        total,
        sent.load(Ordering::Relaxed),
        "every request is answered"
    );
    assert_eq!(
        unexpected.load(Ordering::Relaxed),
        0,
        "every answer is the expected one"
    );
    // Flat memory: allocator noise and buffers, no growth with the number of stanzas.
    assert!(
        max_rss_after_warmup <= warm + 8 * 1024,
        "memory grew after the warm-up: {warm} KiB -> {max_rss_after_warmup} KiB"
    );
}
