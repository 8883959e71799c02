//! Helpers shared by the fuzz targets: a component driven like a runtime, with
//! controllers run inline, and an oracle that parses everything it writes.

use std::time::{Duration, Instant};

use exampple_core::component::Event;
use exampple_core::disco::{Discovery, Identity};
use exampple_core::forms::{Field, FormSpec};
use exampple_core::parser::{Limits, StreamItem, StreamParser};
use exampple_core::rpc::{self, Fault, Rpc, Value};
use exampple_core::{Component, Condition, Config, Conn, Element, Router, StanzaError};

/// The header a server sends.
pub const SERVER_HEADER: &[u8] =
    b"<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' \
    xmlns:stream='http://etherx.jabber.org/streams' id='sid' from='component.localhost'>";

/// The component's domain.
pub const DOMAIN: &str = "component.localhost";

/// Parses `data` as the content of a component stream (after a header) and returns the
/// first complete top-level element, with the component's limits.
pub fn element(data: &[u8]) -> Option<Element> {
    let mut parser = StreamParser::new(Limits::default());
    let mut items = Vec::new();
    parser.feed(SERVER_HEADER, &mut items).ok()?;
    let _ = parser.feed(data, &mut items);
    items.into_iter().find_map(|item| match item {
        StreamItem::Element(el) => Some(el),
        _ => None,
    })
}

/// A data form spec with one field of every type.
pub fn form_spec() -> FormSpec {
    FormSpec::new("urn:example:form")
        .title("Everything")
        .instructions("Fill it")
        .field(Field::boolean("bool").required())
        .field(Field::fixed_text("fixed"))
        .field(Field::hidden("hidden").default_value("h"))
        .field(Field::jid_multi("jids"))
        .field(Field::jid_single("jid").required())
        .field(
            Field::list_multi("list-multi")
                .option("A", "a")
                .option("B", "b"),
        )
        .field(Field::list_single("list").option("A", "a").option("B", "b"))
        .field(Field::text_multi("text-multi"))
        .field(Field::text_private("secret"))
        .field(Field::text_single("text").required())
}

/// An RPC registry with a few methods that use their parameters.
pub fn rpc_registry() -> Rpc {
    Rpc::new()
        .method_with_arity("sum", 2, |params| {
            let a: i32 = rpc::param(&params, 0)?;
            let b: i32 = rpc::param(&params, 1)?;
            a.checked_add(b).ok_or_else(|| Fault::new(1, "overflow"))
        })
        .method("echo", |params| Ok::<_, Fault>(Value::Array(params)))
        .method("fault", |_| Err::<Value, _>(Fault::new(7, "always")))
}

fn echo(conn: Conn, payload: Vec<Element>) -> Result<(), StanzaError> {
    conn.iq_resp(payload).send()?;
    Ok(())
}

fn refuse(conn: Conn, _: Vec<Element>) -> Result<(), StanzaError> {
    Err(StanzaError::new(Condition::NotAllowed).with_text("en", conn.id().unwrap_or("")))
}

fn form(conn: Conn, payload: Vec<Element>) -> Result<(), StanzaError> {
    let spec = form_spec();
    let Some(x) = payload.first() else {
        return Err(StanzaError::new(Condition::BadRequest));
    };
    let mut form = spec
        .parse(x)
        .map_err(|e| StanzaError::new(Condition::BadRequest).with_text("en", e.to_string()))?;
    if !form.validate() {
        return Err(StanzaError::new(Condition::NotAcceptable).with_text("en", form.error_text()));
    }
    conn.iq_resp([form.to_element()]).send()?;
    Ok(())
}

fn message_echo(conn: Conn, payload: Vec<Element>) -> Result<(), StanzaError> {
    conn.message_resp(payload).send()?;
    Ok(())
}

fn presence(conn: Conn, _: Vec<Element>) -> Result<(), StanzaError> {
    conn.presence_error(Condition::Forbidden).send()?;
    Ok(())
}

async fn async_echo(conn: Conn, payload: Vec<Element>) -> Result<(), StanzaError> {
    conn.iq_resp(payload).send()?;
    Ok(())
}

fn fallback(conn: Conn, _: Vec<Element>) -> Result<(), StanzaError> {
    conn.error(Condition::FeatureNotImplemented).send()?;
    Ok(())
}

/// A router with every kind of route: exact, catch-all, disco, RPC, envelopes, fallback.
pub fn router(with_fallback: bool) -> Router {
    let router = Router::new()
        .discovery(
            Discovery::new()
                .identity(Identity::new("component", "generic", "fuzz"))
                .feature("urn:example:feature")
                .extra(form_spec().new_form().to_element()),
        )
        .iq("urn:example", |ns| {
            ns.get("echo", echo)
                .set("echo", echo)
                .get("refuse", refuse)
                .set("form", form)
                .get("async", async_echo)
                .result("echo", echo)
                .error("echo", echo)
        })
        .message(|m| m.chat(message_echo).normal(message_echo))
        .presence(|p| p.available(presence).subscribe(presence))
        .envelope("urn:xmpp:delegation:2")
        .envelope("urn:xmpp:forward:0")
        .include(rpc_registry());
    if with_fallback {
        router.fallback(fallback)
    } else {
        router
    }
}

/// A runtime that drives a [`Component`] in memory: controllers run inline, time is
/// simulated, and everything the component writes must parse as XML.
pub struct Driver {
    /// The component.
    pub component: Component,
    /// The simulated clock.
    pub now: Instant,
    oracle: StreamParser,
    reconnects: usize,
}

impl Driver {
    /// A connected component (stream header sent), not yet past the handshake.
    pub fn connected(config: Config, router: Router) -> Driver {
        let now = Instant::now();
        let component = Component::new(config, router, now).expect("valid router and config");
        let mut driver = Driver {
            component,
            now,
            oracle: StreamParser::new(oracle_limits()),
            reconnects: 0,
        };
        driver.component.connect(now);
        driver.pump();
        driver
    }

    /// A component online (the server header and `<handshake/>` fed).
    pub fn online(config: Config, router: Router) -> Driver {
        let mut driver = Driver::connected(config, router);
        driver.input(SERVER_HEADER);
        driver.input(b"<handshake/>");
        assert!(driver.component.is_online());
        driver
    }

    /// Feeds bytes from the server and runs everything that follows.
    pub fn input(&mut self, bytes: &[u8]) {
        self.component.handle_input(self.now, bytes);
        self.pump();
    }

    /// Moves the clock and fires the timers.
    pub fn advance(&mut self, by: Duration) {
        self.now += by;
        self.component.handle_timeout(self.now);
        self.pump();
    }

    /// Drains output and events until nothing is left: dispatches run inline, reconnects
    /// are accepted a bounded number of times.
    pub fn pump(&mut self) {
        for _ in 0..10_000 {
            let mut progressed = false;
            while let Some(bytes) = self.component.poll_transmit() {
                progressed = true;
                self.check_output(&bytes);
            }
            while let Some(event) = self.component.poll_event() {
                progressed = true;
                match event {
                    Event::Dispatch(dispatch) => {
                        // The fuzzed router's controllers never wait.
                        let _ = dispatch.run();
                    }
                    Event::Connect { .. } => {
                        if self.reconnects < 3 {
                            self.reconnects += 1;
                            self.oracle = StreamParser::new(oracle_limits());
                            self.component.handle_connected(self.now);
                        } else {
                            self.component.handle_connect_failed(self.now, "enough");
                        }
                    }
                    _ => {}
                }
            }
            if self.component.has_outbox() {
                progressed = true;
                self.component.handle_outbox(self.now);
            }
            if !progressed {
                assert_eq!(
                    self.component.in_flight(),
                    0,
                    "every inline controller finished"
                );
                return;
            }
        }
        panic!("the component never settled");
    }

    fn check_output(&mut self, bytes: &[u8]) {
        let mut items = Vec::new();
        if let Err(e) = self.oracle.feed(bytes, &mut items) {
            panic!(
                "the component wrote something that is not XML ({e}): {:?}",
                String::from_utf8_lossy(bytes)
            );
        }
    }
}

fn oracle_limits() -> Limits {
    // rxml reserves two buffers of this size up front: keep it modest (inputs are small).
    Limits {
        max_stanza_size: 1 << 20,
        max_depth: 1_000,
    }
}

/// A config for fuzzing, with options chosen by `flags`.
pub fn config(flags: u8) -> Config {
    let mut config = Config::new(DOMAIN, "secret")
        .set_from(flags & 1 != 0)
        .trimmed(flags & 2 != 0)
        .auto_generate_id(flags & 4 != 0)
        .max_in_flight(if flags & 8 != 0 { 1 } else { 100 })
        .ping(Some(Duration::from_secs(30)));
    if flags & 16 != 0 {
        config = config.max_stanza_size(256).max_depth(4);
    }
    config
}
