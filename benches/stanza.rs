//! Per-stanza cost of the core, beside the cost of its own XML stack on the same input.
//!
//!     cargo bench --bench stanza                 # everything (a few minutes)
//!     cargo bench --bench stanza -- 'iq/'        # one workload
//!
//! Groups (each reports stanzas per second; `size` reports bytes per second):
//! - `iq`, `msg`, `disco`: for one workload (a ping IQ, a 480-byte chat message echoed by a
//!   controller, a disco#info query answered from the router's discovery), the raw stack
//!   (`rxml_events`: rxml tokenising only; `minidom_parse`: rxml + minidom's TreeBuilder to
//!   an `Element`, the stack's own way to parse; `minidom_write`: the reply `Element` to
//!   bytes; `echo_floor`: parse the request and write the reply, the least any DOM-based
//!   framework can do) and `core`: the whole component, bytes in to bytes out: parse,
//!   route, build the `Conn`, run the controller inline, take its reply from the outbox,
//!   serialise.
//!   `core` / `echo_floor` is the framework's overhead over its own XML stack.
//! - `routes`: `core` for the ping with 1 route and with 10 000 routes in the router.
//! - `size`: `core` and `minidom_parse` for a ping padded to 128 B ... 64 KiB.
//! - `build`: building a typical reply (an iq result with a version payload, two interpolated
//!   attributes and two interpolated texts) with `xml!` (`xml_macro`; `xml_macro_payload`
//!   builds the payload as its own element and inserts it) against formatting the text with
//!   `format!` and parsing it with `xml::parse` (`format_parse`), the work `xml!` spares.
//!
//! These are measurements, not tests: nothing here fails on a slow machine.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use exampple::component::Event;
use exampple::disco::{Discovery, Identity};
use exampple::{Component, Config, Conn, Element, MessageType, Router, StanzaError, stanza, xml};
use minidom::tree_builder::TreeBuilder;
use rxml::{Parse, RawParser};

const DOMAIN: &str = "component.localhost";
const HEADER: &[u8] = b"<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' id='sid' from='component.localhost'>";

const IQ: &str = "<iq type='get' id='b1' from='user1@localhost/res' to='component.localhost'><ping xmlns='urn:xmpp:ping'/></iq>";
const DISCO: &str = "<iq type='get' id='b1' from='user1@localhost/res' to='component.localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>";

fn message() -> String {
    let lorem = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat. Duis aute irure dolor in reprehenderit in voluptate &amp; velit esse.";
    format!(
        "<message type='chat' id='m1' from='user1@localhost/res' to='component.localhost'><body>{lorem}</body><active xmlns='http://jabber.org/protocol/chatstates'/></message>"
    )
}

fn padded_ping(size: usize) -> String {
    let head = "<iq type='get' id='b1' from='user1@localhost/res' to='component.localhost'><ping xmlns='urn:xmpp:ping'><pad>";
    let tail = "</pad></ping></iq>";
    let words = "lorem ipsum dolor sit amet, consectetur adipiscing elit. ";
    let fill: String = words
        .chars()
        .cycle()
        .take(size.saturating_sub(head.len() + tail.len()))
        .collect();
    format!("{head}{fill}{tail}")
}

fn ping(conn: Conn, _payload: Vec<Element>) -> Result<(), StanzaError> {
    conn.iq_resp([]).send()?;
    Ok(())
}

fn echo(conn: Conn, payload: Vec<Element>) -> Result<(), StanzaError> {
    let Some(body) = payload.iter().find(|e| e.name() == "body") else {
        return Ok(());
    };
    let reply = stanza::message(MessageType::Chat)
        .to(conn.from().unwrap_or_default())
        .from(conn.to().unwrap_or_default())
        .body(format!("echo: {}", body.text()))
        .build();
    conn.send(reply)?;
    Ok(())
}

fn unused(_conn: Conn, _payload: Vec<Element>) {}

fn router(extra_routes: usize) -> Router {
    Router::new()
        .discovery(Discovery::new().identity(Identity::new("component", "generic", "bench")))
        .iq("urn:xmpp", |ns| ns.get("ping", ping))
        .iq("urn:bench", |mut ns| {
            for i in 0..extra_routes {
                ns = ns.get(&format!("r{i}"), unused);
            }
            ns
        })
        .message(|m| m.chat(echo))
}

/// A component past its handshake.
fn online(router: Router) -> Component {
    let now = Instant::now();
    let mut core =
        Component::new(Config::new(DOMAIN, "secret"), router, now).expect("valid router");
    core.connect(now);
    while core.poll_event().is_some() {}
    core.handle_connected(now);
    let _ = core.poll_transmit();
    core.handle_input(now, HEADER);
    let _ = core.poll_transmit();
    core.handle_input(now, b"<handshake/>");
    assert!(core.is_online());
    while core.poll_event().is_some() {}
    core
}

/// One stanza through the core, as a runtime drives it with a controller run inline.
fn step(core: &mut Component, input: &[u8], out: &mut Vec<u8>) -> usize {
    let now = Instant::now();
    core.handle_input(now, input);
    while let Some(event) = core.poll_event() {
        if let Event::Dispatch(dispatch) = event {
            // The bench's controllers answer without waiting.
            let _ = dispatch.run();
        }
    }
    core.handle_outbox(now);
    core.poll_transmit_into(out);
    let n = out.len();
    out.clear();
    n
}

/// rxml + minidom's TreeBuilder inside an open stream: the floor the stack itself sets.
/// (The core's parser lexes with rxml too but builds elements with its own builder.)
struct RawStack {
    parser: RawParser,
    builder: TreeBuilder,
}

impl RawStack {
    fn new() -> Self {
        let mut stack = RawStack {
            // The options the core's parser uses (tokens up to the stanza size limit), so
            // a 64 KiB text is one token here too.
            parser: <RawParser as rxml::WithOptions>::with_options(rxml::Options {
                max_token_length: exampple::config::DEFAULT_MAX_STANZA_SIZE,
                ..rxml::Options::default()
            }),
            builder: TreeBuilder::new(),
        };
        let mut data = HEADER;
        while let Ok(Some(ev)) = stack.parser.parse(&mut data, false) {
            stack.builder.process_event(ev).expect("header");
        }
        stack
    }

    fn events(&mut self, mut data: &[u8]) -> usize {
        let mut n = 0;
        while let Ok(Some(ev)) = self.parser.parse(&mut data, false) {
            black_box(&ev);
            n += 1;
        }
        n
    }

    fn element(&mut self, mut data: &[u8]) -> Option<Element> {
        let mut out = None;
        while let Ok(Some(ev)) = self.parser.parse(&mut data, false) {
            let foot = matches!(ev, rxml::RawEvent::ElementFoot(_));
            self.builder.process_event(ev).expect("well-formed");
            if foot && self.builder.depth() == 1 {
                out = self.builder.unshift_child();
            }
        }
        out
    }
}

/// The reply the core writes for `input`, parsed back (for the raw write figure).
fn reply_of(router: Router, input: &str) -> Element {
    let mut core = online(router);
    core.handle_input(Instant::now(), input.as_bytes());
    while let Some(event) = core.poll_event() {
        if let Event::Dispatch(dispatch) = event {
            // The bench's controllers answer without waiting.
            let _ = dispatch.run();
        }
    }
    core.handle_outbox(Instant::now());
    let bytes = core.poll_transmit().expect("a reply");
    exampple::xml::parse(std::str::from_utf8(&bytes).expect("utf-8")).expect("one element")
}

fn workload(c: &mut Criterion, name: &str, input: &str) {
    let reply = reply_of(router(0), input);
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(1));
    let bytes = input.as_bytes();
    group.bench_function("rxml_events", |b| {
        let mut stack = RawStack::new();
        b.iter(|| stack.events(black_box(bytes)))
    });
    group.bench_function("minidom_parse", |b| {
        let mut stack = RawStack::new();
        b.iter(|| stack.element(black_box(bytes)))
    });
    group.bench_function("minidom_write", |b| {
        let mut out = Vec::with_capacity(4096);
        b.iter(|| {
            out.clear();
            black_box(&reply).write_to(&mut out).expect("writable");
            out.len()
        })
    });
    group.bench_function("echo_floor", |b| {
        let mut stack = RawStack::new();
        let mut out = Vec::with_capacity(4096);
        b.iter(|| {
            let el = stack.element(black_box(bytes));
            out.clear();
            black_box(&reply).write_to(&mut out).expect("writable");
            (el, out.len())
        })
    });
    group.bench_function("core", |b| {
        let mut core = online(router(0));
        let mut out = Vec::with_capacity(4096);
        b.iter(|| step(&mut core, black_box(bytes), &mut out))
    });
    group.finish();
}

fn workloads(c: &mut Criterion) {
    workload(c, "iq", IQ);
    workload(c, "msg", &message());
    workload(c, "disco", DISCO);
}

fn routes(c: &mut Criterion) {
    let mut group = c.benchmark_group("routes");
    group.throughput(Throughput::Elements(1));
    for extra in [0usize, 9_999] {
        group.bench_with_input(BenchmarkId::new("core", extra + 1), &extra, |b, &extra| {
            let mut core = online(router(extra));
            let mut out = Vec::with_capacity(4096);
            b.iter(|| step(&mut core, black_box(IQ.as_bytes()), &mut out))
        });
    }
    group.finish();
}

fn sizes(c: &mut Criterion) {
    let mut group = c.benchmark_group("size");
    for size in [128usize, 1024, 4096, 16 * 1024, 64 * 1024] {
        let input = padded_ping(size);
        group.throughput(Throughput::Bytes(input.len() as u64));
        group.bench_with_input(
            BenchmarkId::new("minidom_parse", size),
            &input,
            |b, input| {
                let mut stack = RawStack::new();
                b.iter(|| stack.element(black_box(input.as_bytes())))
            },
        );
        group.bench_with_input(BenchmarkId::new("core", size), &input, |b, input| {
            let mut core = online(router(0));
            let mut out = Vec::with_capacity(4096);
            b.iter(|| step(&mut core, black_box(input.as_bytes()), &mut out))
        });
    }
    group.finish();
}

fn build(c: &mut Criterion) {
    let mut group = c.benchmark_group("build");
    group.throughput(Throughput::Elements(1));
    let (to, id, name, version) = ("user1@localhost/res", "b1", "exampple", "0.1.0");
    group.bench_function("xml_macro", |b| {
        b.iter(|| {
            let (to, id, name, version) = black_box((to, id, name, version));
            xml!(
                "<iq type='result' to='{to}' id='{id}'><query xmlns='jabber:iq:version'>\
                 <name>{name}</name><version>{version}</version></query></iq>"
            )
        })
    });
    group.bench_function("xml_macro_payload", |b| {
        b.iter(|| {
            let (to, id, name, version) = black_box((to, id, name, version));
            let payload = xml!(
                "<query xmlns='jabber:iq:version'><name>{name}</name><version>{version}</version></query>"
            );
            xml!("<iq type='result' to='{to}' id='{id}'>{}</iq>", payload)
        })
    });
    group.bench_function("format_parse", |b| {
        b.iter(|| {
            let (to, id, name, version) = black_box((to, id, name, version));
            xml::parse(&format!(
                "<iq type='result' to='{to}' id='{id}'><query xmlns='jabber:iq:version'>\
                 <name>{name}</name><version>{version}</version></query></iq>"
            ))
            .ok()
        })
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = workloads, routes, sizes, build
}
criterion_main!(benches);
