//! A hostile XEP-0114 server on loopback, against both runtimes: broken XML, DTDs, deep
//! nesting, floods, bad stream headers, a silent or deaf server, then hostile stanzas from
//! users. Each connection must end in the right stream error (or a clean disconnect), the
//! component must reconnect by itself, memory must stay bounded, nothing may panic.
//!
//! The memory bound: the peak resident memory of this test process (component included)
//! while a hostile connection runs may exceed the resident memory before it by at most
//! [`MEMORY_BOUND`]. The floods are 100 MiB each, streamed from a 64 KiB buffer.

mod support;

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use exampple::{AutoConnect, Config, Conn, Element, Router, StanzaError, xml};
use support::{DOMAIN, End, FakeServer, RawSession, SECRET, Setup, Which};

/// How long any one hostile connection may take to end (generous: a few ms in practice).
const CASE_TIME: Duration = Duration::from_secs(10);
/// How much the peak resident memory may grow during one hostile connection.
const MEMORY_BOUND: u64 = 64 << 20;
/// How much a flood sends.
const FLOOD: usize = 100 << 20;
/// How much whitespace the keepalive flood sends (all of it is read: kept smaller).
const KEEPALIVES: usize = 16 << 20;

/// The tests measure the memory of the whole process: run them one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn ping(conn: Conn, _: Vec<Element>) -> Result<(), StanzaError> {
    conn.iq_resp([]).send()?;
    Ok(())
}

fn echo(conn: Conn, payload: Vec<Element>) -> Result<(), StanzaError> {
    conn.iq_resp(payload).send()?;
    Ok(())
}

fn router() -> Router {
    Router::new()
        .iq("urn:xmpp", |ns| ns.get("ping", ping))
        .iq("urn:test", |ns| ns.get("echo", echo).set("echo", echo))
}

fn config(port: u16) -> Config {
    Config::new(DOMAIN, SECRET)
        .port(port)
        .auto_connect(AutoConnect::Immediately)
        // The time a reconnected component waits for the test to take the next case: a
        // loaded machine can take more than a few hundred ms between cases.
        .handshake_timeout(Duration::from_secs(3))
        .reconnect_backoff(Duration::from_millis(10), Duration::from_millis(50))
}

const WRITE_TIMEOUT: Duration = Duration::from_millis(300);

type Shutdown = Box<dyn Fn(Duration) + Send>;

fn start(
    which: &Which,
    config: Config,
) -> (
    std::thread::JoinHandle<Result<(), String>>,
    Shutdown,
    exampple::Sender,
) {
    let setup = Setup {
        write_timeout: Some(WRITE_TIMEOUT),
        ..Setup::default()
    };
    let running = support::start(*which, config, router(), setup);
    (running.join, running.shutdown, running.sender)
}

/// A field of /proc/self/status, in bytes (0 where there is no /proc).
fn status_bytes(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map_or(0, |kib| kib * 1024)
}

/// Peak resident memory over one case: VmRSS sampled while it runs, and VmHWM after
/// resetting it (where the kernel allows).
struct Memory {
    before: u64,
    peak: u64,
}

impl Memory {
    fn start() -> Memory {
        let _ = std::fs::write("/proc/self/clear_refs", "5");
        let before = status_bytes("VmRSS");
        Memory {
            before,
            peak: before,
        }
    }

    fn sample(&mut self) {
        self.peak = self.peak.max(status_bytes("VmRSS"));
    }

    fn growth(&mut self) -> u64 {
        self.sample();
        let hwm = status_bytes("VmHWM");
        if hwm >= self.before {
            self.peak = self.peak.max(hwm);
        }
        self.peak.saturating_sub(self.before)
    }
}

/// What the hostile server does on one connection.
enum Feed {
    /// Sends bytes (after the handshake when `online`).
    Bytes { online: bool, bytes: Vec<u8> },
    /// Sends `head`, then `fill` bytes up to [`FLOOD`] from another thread.
    Flood { head: &'static str, fill: u8 },
    /// Sends `head`, then `depth` copies of `<a>`.
    Deep { depth: usize },
    /// Sends bytes then shuts its side down (end of file).
    ThenEof(&'static str),
    /// Sends the header, reads the handshake and never answers.
    SilentHandshake,
    /// Completes the handshake, then stops reading while the component has much to say.
    Deaf,
    /// Like `Deaf`, while sending whitespace keepalives as fast as it can.
    DeafAndFlooding,
    /// Sends [`KEEPALIVES`] bytes of whitespace between stanzas, then a ping.
    Keepalives,
}

/// How the connection must end.
#[derive(Debug, PartialEq)]
enum Expect {
    StreamError(&'static str),
    /// The component closes the connection without a stream error.
    Disconnect,
    /// The component stays connected and answers a ping (the test then hangs up).
    Serves,
}

struct Case {
    name: &'static str,
    feed: Feed,
    expect: Expect,
}

fn bytes(online: bool, text: &str) -> Feed {
    Feed::Bytes {
        online,
        bytes: text.as_bytes().to_vec(),
    }
}

fn billion_laughs() -> String {
    let mut dtd = String::from("<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol 'lol'>");
    for i in 1..10 {
        let prev = if i == 1 {
            "lol".to_string()
        } else {
            format!("lol{}", i - 1)
        };
        dtd.push_str(&format!(
            "<!ENTITY lol{i} '{}'>",
            format!("&{prev};").repeat(10)
        ));
    }
    dtd.push_str("]><lolz>&lol9;</lolz>");
    dtd
}

fn cases() -> Vec<Case> {
    use Expect::*;
    let header = RawSession::HEADER;
    vec![
        Case {
            name: "mismatched end tag",
            feed: bytes(true, "<iq type='get' id='x'><q xmlns='urn:q'></iq>"),
            expect: StreamError("not-well-formed"),
        },
        Case {
            name: "unclosed tags, then the stream's end",
            feed: bytes(true, "<message><body>hi</stream:stream>"),
            expect: StreamError("not-well-formed"),
        },
        Case {
            name: "unclosed tags, then end of file",
            feed: Feed::ThenEof("<message to='a@b'><body>hi"),
            expect: Disconnect,
        },
        Case {
            name: "billion laughs instead of a header",
            feed: bytes(false, &billion_laughs()),
            expect: StreamError("restricted-xml"),
        },
        Case {
            name: "DTD inside the stream",
            feed: bytes(true, &billion_laughs().replace("<?xml version='1.0'?>", "")),
            expect: StreamError("restricted-xml"),
        },
        Case {
            name: "undeclared entity",
            feed: bytes(true, "<message><body>&lol9;</body></message>"),
            expect: StreamError("not-well-formed"),
        },
        Case {
            name: "comment",
            feed: bytes(true, "<message><!-- hi --></message>"),
            expect: StreamError("restricted-xml"),
        },
        Case {
            name: "processing instruction",
            feed: bytes(true, "<message><?pi x?></message>"),
            expect: StreamError("restricted-xml"),
        },
        Case {
            name: "100 000 deep",
            feed: Feed::Deep { depth: 100_000 },
            expect: StreamError("policy-violation"),
        },
        Case {
            name: "100 MiB stanza",
            feed: Feed::Flood {
                head: "<message to='a@b' id='big'><body>",
                fill: b'a',
            },
            expect: StreamError("policy-violation"),
        },
        Case {
            name: "never-ending attribute value",
            feed: Feed::Flood {
                head: "<message to='a@b' id='",
                fill: b'x',
            },
            expect: StreamError("policy-violation"),
        },
        Case {
            name: "never-ending element name",
            feed: Feed::Flood {
                head: "<message",
                fill: b'e',
            },
            expect: StreamError("policy-violation"),
        },
        Case {
            name: "16 MiB of whitespace keepalives",
            feed: Feed::Keepalives,
            expect: Serves,
        },
        Case {
            name: "invalid UTF-8",
            feed: Feed::Bytes {
                online: true,
                bytes: b"<message><body>\xff\xfe\xfd</body></message>".to_vec(),
            },
            expect: StreamError("not-well-formed"),
        },
        Case {
            name: "overlong UTF-8",
            feed: Feed::Bytes {
                online: true,
                bytes: b"<message><body>\xc0\xaf</body></message>".to_vec(),
            },
            expect: StreamError("not-well-formed"),
        },
        Case {
            name: "NUL character reference",
            feed: bytes(true, "<message><body>&#0;</body></message>"),
            expect: StreamError("not-well-formed"),
        },
        Case {
            name: "text between stanzas",
            feed: bytes(true, "hello<message/>"),
            expect: StreamError("bad-format"),
        },
        Case {
            // The XML declaration in it is a processing instruction inside the document.
            name: "a second stream header",
            feed: bytes(true, header),
            expect: StreamError("restricted-xml"),
        },
        Case {
            name: "header in jabber:client",
            feed: bytes(
                false,
                &header.replace("'jabber:component:accept'", "'jabber:client'"),
            ),
            expect: StreamError("invalid-namespace"),
        },
        Case {
            name: "header in the wrong stream namespace",
            feed: bytes(
                false,
                &header.replace("http://etherx.jabber.org/streams", "urn:not:streams"),
            ),
            expect: StreamError("invalid-namespace"),
        },
        Case {
            name: "header that is not a stream",
            feed: bytes(false, "<html xmlns='jabber:component:accept'>"),
            expect: StreamError("invalid-namespace"),
        },
        Case {
            // Alone, it waits for the server's stream error (Prosody's way of refusing).
            name: "header without an id, then a stanza",
            feed: bytes(
                false,
                &format!("{}<message/>", header.replace(" id='abc123'", "")),
            ),
            expect: StreamError("invalid-id"),
        },
        Case {
            name: "stanza before the handshake",
            feed: bytes(
                false,
                &format!(
                    "{header}<iq type='get' id='early' from='a@b/c' to='{DOMAIN}'><ping xmlns='urn:xmpp:ping'/></iq>"
                ),
            ),
            expect: StreamError("not-authorized"),
        },
        Case {
            name: "a handshake reply that never comes",
            feed: Feed::SilentHandshake,
            expect: Disconnect,
        },
        Case {
            name: "a server that stops reading",
            feed: Feed::Deaf,
            expect: Disconnect,
        },
        Case {
            name: "a server that stops reading and floods",
            feed: Feed::DeafAndFlooding,
            expect: Disconnect,
        },
    ]
}

/// The number of the deaf case's message `m<n>`.
fn message_number(id: Option<&str>) -> usize {
    id.and_then(|id| id.strip_prefix('m')?.parse().ok())
        .unwrap_or_else(|| panic!("not one of the messages: {id:?}"))
}

/// Writes `head` then `fill` up to `total` bytes, from a 64 KiB buffer, until the
/// component hangs up; returns how much was written.
fn flood(mut stream: std::net::TcpStream, head: Vec<u8>, fill: u8, total: usize) -> usize {
    let chunk = vec![fill; 64 * 1024];
    if stream.write_all(&head).is_err() {
        return 0;
    }
    let mut sent = head.len();
    while sent < total {
        match stream.write(&chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => sent += n,
        }
    }
    sent
}

/// Runs one case on a fresh connection; returns how it ended and the memory growth.
fn run_case(
    server: &FakeServer,
    sender: &exampple::Sender,
    case: &Case,
) -> (Expect, u64, Duration) {
    let mut session = server
        .accept_raw(CASE_TIME)
        .unwrap_or_else(|| panic!("{}: the component did not (re)connect", case.name));
    let mut memory = Memory::start();
    let started = Instant::now();
    let mut writer = None;
    match &case.feed {
        Feed::Bytes { online, bytes } => {
            if *online {
                session.handshake(CASE_TIME);
            }
            let _ = session.write(bytes);
        }
        Feed::Flood { head, fill } => {
            session.handshake(CASE_TIME);
            let stream = session.writer();
            let (head, fill) = (head.as_bytes().to_vec(), *fill);
            writer = Some(std::thread::spawn(move || flood(stream, head, fill, FLOOD)));
        }
        Feed::Deep { depth } => {
            session.handshake(CASE_TIME);
            let stream = session.writer();
            let deep = "<a>".repeat(*depth).into_bytes();
            writer = Some(std::thread::spawn(move || {
                let mut stream = stream;
                let _ = stream.write_all(b"<message>");
                let _ = stream.write_all(&deep);
                deep.len()
            }));
        }
        Feed::ThenEof(text) => {
            session.handshake(CASE_TIME);
            let _ = session.write(text.as_bytes());
            let _ = session.stream.shutdown(std::net::Shutdown::Write);
        }
        Feed::Keepalives => {
            session.handshake(CASE_TIME);
            let sent = flood(session.writer(), Vec::new(), b' ', KEEPALIVES);
            assert_eq!(sent, KEEPALIVES);
            let ping = format!(
                "<iq type='get' id='after-spaces' from='a@b/c' to='{DOMAIN}'><ping xmlns='urn:xmpp:ping'/></iq>"
            );
            session.write(ping.as_bytes()).unwrap();
            let answer = session
                .receive(CASE_TIME)
                .expect("an answer after the keepalives");
            assert_eq!(answer.attr("id"), Some("after-spaces"));
            let elapsed = started.elapsed();
            let growth = memory.growth();
            drop(session);
            return (Expect::Serves, growth, elapsed);
        }
        Feed::SilentHandshake => {
            session.write(RawSession::HEADER.as_bytes()).unwrap();
        }
        Feed::Deaf | Feed::DeafAndFlooding => {
            session.handshake(CASE_TIME);
            // Make sure it is online, then stop reading and give it much to write.
            let ping = format!(
                "<iq type='get' id='deaf' from='a@b/c' to='{DOMAIN}'><ping xmlns='urn:xmpp:ping'/></iq>"
            );
            session.write(ping.as_bytes()).unwrap();
            assert_eq!(
                session
                    .receive(CASE_TIME)
                    .and_then(|e| e.attr("id").map(String::from)),
                Some("deaf".to_string())
            );
            let flooding = matches!(case.feed, Feed::DeafAndFlooding);
            let flooder = flooding.then(|| {
                let stream = session.writer();
                std::thread::spawn(move || flood(stream, Vec::new(), b' ', usize::MAX))
            });
            // 16 MiB, more than the socket buffers hold, sent at once (cloned, not parsed
            // each time) so that some is still queued when the component gives up.
            let body = "z".repeat(256 * 1024);
            let template = xml!("<message to='a@b'><body>{body}</body></message>");
            let until = Instant::now() + CASE_TIME;
            let mut sent = 0usize;
            // Until the component gives up on this connection and comes back.
            let next = loop {
                assert!(Instant::now() < until, "{}: no reconnect", case.name);
                if sent < 64 {
                    let mut message = template.clone();
                    xml::set_attr(&mut message, "id", format!("m{sent}"));
                    sender.send(message).expect("queued");
                    sent += 1;
                    memory.sample();
                    continue;
                }
                std::thread::sleep(Duration::from_millis(10));
                memory.sample();
                if let Some(next) = server.accept_raw(Duration::from_millis(1)) {
                    break next;
                }
            };
            let elapsed = started.elapsed();
            let growth = memory.growth();
            if let Some(flooder) = flooder {
                let _ = session.stream.shutdown(std::net::Shutdown::Both);
                eprintln!("deaf server: flooded {} MiB", flooder.join().unwrap() >> 20);
            }
            eprintln!(
                "deaf server: noticed after {elapsed:?}, {sent} messages of 256 KiB sent, peak growth {} KiB",
                growth / 1024
            );
            // The stanzas sent meanwhile that the component had not yet written are
            // delivered on the new connection, in order, before the answer to a ping.
            let mut next = next;
            next.handshake(CASE_TIME);
            let ping = format!(
                "<iq type='get' id='after-deaf' from='a@b/c' to='{DOMAIN}'><ping xmlns='urn:xmpp:ping'/></iq>"
            );
            next.write(ping.as_bytes()).unwrap();
            let mut delivered = Vec::new();
            loop {
                let stanza = next.receive(CASE_TIME).expect("the ping's answer");
                match stanza.attr("id") {
                    Some("after-deaf") => break,
                    id => delivered.push(message_number(id)),
                }
            }
            drop(next);
            // What reached the deaf connection before the component hung up on it (but
            // for a stanza cut short): nothing can be read of it once the test has shut it.
            let mut written = Vec::new();
            if !flooding {
                while let Some(stanza) = session.receive(CASE_TIME) {
                    written.push(message_number(stanza.attr("id")));
                }
                assert!(
                    session.wait_end(CASE_TIME, || {}).socket_closed,
                    "{}: the component did not hang up on the deaf connection",
                    case.name
                );
            }
            drop(session);
            eprintln!(
                "deaf server: {} messages written before the hang-up, {} queued and delivered after the reconnect",
                written.len(),
                delivered.len()
            );
            // Each message at most once, in order: a prefix on the deaf connection, the
            // rest that was still unwritten (at least one: 16 MiB were sent at once) on the
            // next. At most one is lost in all: the one the failed write cut short (the
            // server may have part of it). With the flood, what reached the deaf connection
            // cannot be read.
            assert!(!delivered.is_empty(), "{}: nothing was queued", case.name);
            if !flooding {
                assert!(
                    written.len() + delivered.len() >= sent - 1,
                    "{}: {} of {sent} messages lost: {written:?} and {delivered:?}",
                    case.name,
                    sent - written.len() - delivered.len()
                );
            }
            let first = delivered[0];
            assert_eq!(
                delivered,
                (first..sent).collect::<Vec<_>>(),
                "{}",
                case.name
            );
            assert_eq!(
                written,
                (0..written.len()).collect::<Vec<_>>(),
                "{}",
                case.name
            );
            assert!(
                written.len() <= first,
                "{}: {written:?} and {delivered:?}",
                case.name
            );
            return (Expect::Disconnect, growth, elapsed);
        }
    }
    let end: End = {
        let end = session.wait_end(CASE_TIME, || memory.sample());
        End {
            condition: end.condition.clone(),
            stream_closed: end.stream_closed,
            socket_closed: end.socket_closed,
        }
    };
    let elapsed = started.elapsed();
    assert!(
        end.socket_closed,
        "{}: the component did not hang up within {CASE_TIME:?}: {end:?}",
        case.name
    );
    // The component hung up: stop writing (a peer that only shut its socket down may
    // keep a zero window open for a while instead of resetting).
    let _ = session.stream.shutdown(std::net::Shutdown::Both);
    drop(session);
    if let Some(writer) = writer {
        let written = writer.join().unwrap();
        assert!(
            written < FLOOD,
            "{}: the component read the whole flood",
            case.name
        );
    }
    let growth = memory.growth();
    let outcome = match end.condition {
        Some(c) => {
            assert!(
                end.stream_closed,
                "{}: stream error without </stream:stream>",
                case.name
            );
            Expect::StreamError(Box::leak(c.into_boxed_str()))
        }
        None => Expect::Disconnect,
    };
    (outcome, growth, elapsed)
}

/// The answers to hostile stanzas from users, by id: (type, error condition). Waits for the
/// sentinel and for `expected` answers in all (controllers answer in any order).
fn answers(
    session: &mut RawSession,
    sentinel: &str,
    expected: usize,
) -> BTreeMap<String, (String, String)> {
    let mut got = BTreeMap::new();
    let until = Instant::now() + CASE_TIME;
    loop {
        assert!(Instant::now() < until, "no answer to the sentinel");
        let Some(stanza) = session.receive(CASE_TIME) else {
            panic!("no answer to the sentinel: {got:?}")
        };
        let id = stanza.attr("id").unwrap_or("").to_string();
        let condition = stanza
            .get_child("error", "jabber:component:accept")
            .and_then(|e| e.children().next())
            .map(|c| c.name().to_string())
            .unwrap_or_default();
        let kind = format!("{}/{}", stanza.name(), stanza.attr("type").unwrap_or(""));
        assert!(
            got.insert(id.clone(), (kind, condition)).is_none(),
            "two answers to {id:?}"
        );
        if got.contains_key(sentinel) && got.len() >= expected {
            break;
        }
    }
    // Anything late would show up here.
    if let Some(stanza) = session.receive(Duration::from_millis(100)) {
        panic!("unexpected: {}", xml::to_string(&stanza));
    }
    got
}

fn hostile_users(session: &mut RawSession) {
    let d = DOMAIN;
    let stanzas = [
        // Two payloads in an iq get; none; an unknown iq type; no type at all.
        format!(
            "<iq type='get' id='two' from='a@b/c' to='{d}'><ping xmlns='urn:xmpp:ping'/><x xmlns='urn:x'/></iq>"
        ),
        format!("<iq type='get' id='none' from='a@b/c' to='{d}'/>"),
        format!(
            "<iq type='fetch' id='fetch' from='a@b/c' to='{d}'><ping xmlns='urn:xmpp:ping'/></iq>"
        ),
        format!("<iq id='typeless' from='a@b/c' to='{d}'><ping xmlns='urn:xmpp:ping'/></iq>"),
        // Malformed and missing addresses.
        format!(
            "<iq type='get' id='badfrom' from='a@b@c' to='{d}'><ping xmlns='urn:xmpp:ping'/></iq>"
        ),
        "<iq type='get' id='badto' from='a@b/c' to='@@'><ping xmlns='urn:xmpp:ping'/></iq>"
            .to_string(),
        format!(
            "<iq type='get' id='longfrom' from='{}@b' to='{d}'><ping xmlns='urn:xmpp:ping'/></iq>",
            "n".repeat(2000)
        ),
        format!("<iq type='get' id='nofrom' to='{d}'><ping xmlns='urn:xmpp:ping'/></iq>"),
        "<iq type='get' id='noto' from='a@b/c'><ping xmlns='urn:xmpp:ping'/></iq>".to_string(),
        format!("<iq type='get' from='a@b/c' to='{d}'><ping xmlns='urn:xmpp:ping'/></iq>"),
        // An unrouted namespace.
        format!("<iq type='set' id='unrouted' from='a@b/c' to='{d}'><q xmlns='urn:unknown'/></iq>"),
        // Results and errors nobody asked for, an unknown message type, message errors:
        // never answered. An unknown presence type: bad-request.
        format!("<iq type='result' id='stray-result' from='a@b/c' to='{d}'/>"),
        format!(
            "<iq type='error' id='stray-error' from='a@b/c' to='{d}'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
        ),
        format!(
            "<message type='bogus' id='msg-bogus' from='a@b/c' to='{d}'><body>x</body></message>"
        ),
        format!("<message type='error' id='msg-error' from='a@b/c' to='{d}'/>"),
        format!("<presence type='dance' id='pres-dance' from='a@b/c' to='{d}'/>"),
        format!("<message id='msg-badfrom' from='a@b@c' to='{d}'><body>x</body></message>"),
        // Not a stanza, but the component stream's own: ignored. (Elements in other
        // namespaces end the stream: `refuses_foreign_elements_under_the_stream`.)
        "<handshake/>".to_string(),
        // Still serving.
        format!(
            "<iq type='get' id='last' from='a@b/c' to='{d}'><ping xmlns='urn:xmpp:ping'/></iq>"
        ),
    ];
    for stanza in &stanzas {
        session.write(stanza.as_bytes()).unwrap();
    }
    let expected: BTreeMap<String, (String, String)> = [
        ("two", "iq/error", "bad-request"),
        ("none", "iq/error", "bad-request"),
        ("fetch", "iq/error", "bad-request"),
        ("badfrom", "iq/error", "jid-malformed"),
        ("badto", "iq/error", "jid-malformed"),
        ("longfrom", "iq/error", "jid-malformed"),
        ("nofrom", "iq/result", ""),
        ("noto", "iq/result", ""),
        ("", "iq/error", "bad-request"),
        ("unrouted", "iq/error", "service-unavailable"),
        ("pres-dance", "presence/error", "bad-request"),
        ("last", "iq/result", ""),
    ]
    .into_iter()
    .map(|(id, kind, condition)| (id.to_string(), (kind.to_string(), condition.to_string())))
    .collect();
    let got = answers(session, "last", expected.len());
    assert_eq!(got, expected);
}

/// Runs the cases that `select` keeps, then the hostile users.
fn hostile_server(which: Which, select: impl Fn(&Case) -> bool) {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let _ = env_logger::builder().is_test(true).try_init();
    let server = FakeServer::new();
    let (join, shutdown, sender) = start(&which, config(server.port()));
    let started = Instant::now();
    // Warm up (threads, buffers) before measuring memory.
    let mut session = server.accept_raw(CASE_TIME).expect("a connection");
    session.handshake(CASE_TIME);
    drop(session);
    let mut report: Vec<String> = Vec::new();
    let mut worst = 0;
    for case in cases().into_iter().filter(|c| select(c)) {
        let (outcome, growth, elapsed) = run_case(&server, &sender, &case);
        let line = format!(
            "{:<42} {:<30} {:>8.1} ms {:>8} KiB",
            case.name,
            format!("{outcome:?}"),
            elapsed.as_secs_f64() * 1000.0,
            growth / 1024
        );
        eprintln!("{line}");
        report.push(line);
        assert_eq!(outcome, case.expect, "{}", case.name);
        assert!(
            growth < MEMORY_BOUND,
            "{}: resident memory grew by {} MiB",
            case.name,
            growth >> 20
        );
        worst = worst.max(growth);
    }
    eprintln!(
        "all hostile connections: {:?}, worst peak growth {} KiB (bound {} MiB)",
        started.elapsed(),
        worst / 1024,
        MEMORY_BOUND >> 20
    );

    // After all that, it reconnects and serves, and users' hostile stanzas get RFC answers.
    let mut session = server.accept_raw(CASE_TIME).expect("a last reconnect");
    session.handshake(CASE_TIME);
    hostile_users(&mut session);

    shutdown(Duration::from_secs(1));
    let _ = session.wait_end(Duration::from_millis(200), || {});
    let _ = session.write(b"</stream:stream>");
    assert_eq!(join.join().expect("the runtime did not panic"), Ok(()));
}

fn survives_a_hostile_server(which: Which) {
    hostile_server(which, |c| !matches!(c.feed, Feed::DeafAndFlooding));
}

/// A server that stops reading and keeps sending: the reader stops reading past its byte
/// budget, so memory stays bounded while the loop waits on its blocked writes.
fn bounded_memory_against_a_deaf_flooding_server(which: Which) {
    hostile_server(which, |c| matches!(c.feed, Feed::DeafAndFlooding));
}

/// A server that sends `bytes` when online and then nothing: the component answers with
/// the stream error `condition`, closes the stream and hangs up within a second, then
/// connects again and serves.
fn refused_at_once(which: Which, bytes: &[u8], condition: &str) {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let _ = env_logger::builder().is_test(true).try_init();
    let server = FakeServer::new();
    let (join, shutdown, _sender) = start(&which, config(server.port()));
    let ping = |id: &str| {
        format!(
            "<iq type='get' id='{id}' from='a@b/c' to='{DOMAIN}'><ping xmlns='urn:xmpp:ping'/></iq>"
        )
    };
    let mut session = server.accept_raw(CASE_TIME).expect("a connection");
    session.handshake(CASE_TIME);
    // Online: a ping is answered.
    session.write(ping("before").as_bytes()).unwrap();
    let answer = session.receive(CASE_TIME).expect("the ping's answer");
    assert_eq!(answer.attr("id"), Some("before"));

    let sent = Instant::now();
    session.write(bytes).unwrap();
    let end = session.wait_end(Duration::from_secs(1), || {});
    let elapsed = sent.elapsed();
    assert_eq!(end.condition.as_deref(), Some(condition), "{end:?}");
    assert!(end.stream_closed && end.socket_closed, "{end:?}");
    assert!(elapsed < Duration::from_secs(1), "{elapsed:?}");
    drop(session);

    // It comes back by itself, and serves.
    let mut next = server
        .accept_raw(CASE_TIME)
        .expect("a second connection after the stream error");
    next.handshake(CASE_TIME);
    next.write(ping("after").as_bytes()).unwrap();
    let answer = next.receive(CASE_TIME).expect("the ping's answer");
    assert_eq!(answer.attr("id"), Some("after"));

    shutdown(Duration::from_secs(1));
    let _ = next.wait_end(Duration::from_millis(200), || {});
    let _ = next.write(b"</stream:stream>");
    assert_eq!(join.join().expect("the runtime did not panic"), Ok(()));
}

/// Text between stanzas, then silence: refused when it comes, not when a `<` that never
/// comes would end the text.
fn refuses_text_between_stanzas_at_once(which: Which) {
    refused_at_once(which, b"\n hello", "bad-format");
}

/// An element in a foreign namespace directly under the stream (an iq in another namespace
/// is not an iq) is refused.
fn refuses_foreign_elements_under_the_stream(which: Which) {
    let iq = format!(
        "<iq xmlns='urn:foo' type='get' id='foreign' from='a@b/c' to='{DOMAIN}'><ping xmlns='urn:xmpp:ping'/></iq>"
    );
    refused_at_once(which, iq.as_bytes(), "unsupported-stanza-type");
    refused_at_once(which, b"<foo xmlns='urn:bar'/>", "unsupported-stanza-type");
}

runtime_tests!(
    survives_a_hostile_server,
    bounded_memory_against_a_deaf_flooding_server,
    refuses_text_between_stanzas_at_once,
    refuses_foreign_elements_under_the_stream,
);
