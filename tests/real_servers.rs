//! The component against real Prosody and ejabberd servers, started by `scripts/test.sh`.
//!
//! - the sans-IO core driven by a plain `TcpStream` completes the handshake; a wrong secret
//!   ends in the not-authorized failure;
//! - each runtime (smol, std) on each server: a user pings the component, asks its
//!   disco#info and chats with it through the server;
//! - on a private instance of each server: SIGKILL and restart, the component reconnects
//!   by itself, an iq sent during the outage is delivered and answered after it;
//! - a wrong secret stops the runtime with a clear error and no reconnect storm;
//! - XEP-0355: a request the server delegates to the component is answered in the envelope.
//!
//! Only one component can be connected per domain, so the tests of one server take turns.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use exampple::c2s::blocking::Client;
use exampple::client::ClientConfig;
use exampple::component::Event;
use exampple::disco::{Discovery, Identity};
use exampple::matching::Match;
use exampple::parser::{Limits, StreamItem, StreamParser};
use exampple::{
    AutoConnect, Component, ComponentError, Config, Conn, Element, MessageType, Router,
    StanzaError, stanza, xml,
};
use support::servers::{Server, user};
use support::{Setup, Which};

const T: Duration = Duration::from_secs(10);

fn config(port: u16) -> Config {
    Config::new("component.localhost", "secret")
        .port(port)
        .auto_connect(AutoConnect::Immediately)
        .set_from(true)
        .trimmed(true)
        .reconnect_backoff(Duration::from_millis(200), Duration::from_secs(2))
}

fn ping(conn: Conn, _: Vec<Element>) -> Result<(), StanzaError> {
    conn.iq_resp([]).send()?;
    Ok(())
}

fn chat(conn: Conn, payload: Vec<Element>) -> Result<(), StanzaError> {
    let body = payload
        .iter()
        .find(|e| e.name() == "body")
        .map(Element::text)
        .unwrap_or_default();
    conn.send(
        stanza::message(MessageType::Chat)
            .to(conn.from().unwrap_or_default())
            .body(format!("echo: {body}"))
            .build(),
    )?;
    Ok(())
}

fn delegated(conn: Conn, _: Vec<Element>) -> Result<(), StanzaError> {
    conn.iq_resp([xml!(
        "<query xmlns='urn:example:delegated'><answer>42</answer></query>"
    )])
    .send()?;
    Ok(())
}

fn router() -> Router {
    Router::new()
        .discovery(Discovery::new().identity(Identity::new(
            "component",
            "generic",
            "real-server test",
        )))
        .envelope("urn:xmpp:delegation:1")
        .envelope("urn:xmpp:delegation:2")
        .iq("urn:xmpp", |ns| ns.get("ping", ping))
        .iq("urn:example", |ns| ns.get("delegated", delegated))
        .message(|m| m.chat(chat))
}

/// A running component on either runtime, stopped when dropped.
struct Running {
    shutdown: Box<dyn Fn() + Send>,
    join: Option<std::thread::JoinHandle<Result<(), String>>>,
    sender: exampple::Sender,
}

impl Running {
    fn start(runtime: &str, config: Config, router: Router) -> Running {
        let running = support::start(Which::named(runtime), config, router, Setup::default());
        let shutdown = running.shutdown;
        Running {
            shutdown: Box::new(move || shutdown(Duration::from_millis(500))),
            join: Some(running.join),
            sender: running.sender,
        }
    }

    fn stop(mut self) -> Result<(), String> {
        (self.shutdown)();
        let join = self.join.take().unwrap();
        let until = Instant::now() + T;
        while !join.is_finished() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(join.is_finished(), "the runtime did not stop");
        join.join().unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        (self.shutdown)();
    }
}

/// Pings the component through the server until it answers (it may still be connecting).
fn wait_until_served(client: &Client) -> Element {
    let until = Instant::now() + T;
    loop {
        let answer = client.request(
            xml!("<iq type='get' to='component.localhost'><ping xmlns='urn:xmpp:ping'/></iq>"),
            Duration::from_secs(2),
        );
        match answer {
            Ok(reply) if reply.attr("type") == Some("result") => return reply,
            _ if Instant::now() < until => std::thread::sleep(Duration::from_millis(100)),
            other => panic!("the component never answered through the server: {other:?}"),
        }
    }
}

// ---------------------------------------------------------------- the core over TcpStream

/// Drives the bare core over a plain `TcpStream` until it is online (its stream id) or
/// stops for good.
fn core_over_tcp(config: Config) -> Result<String, ComponentError> {
    let now = Instant::now();
    let mut core = Component::new(config, Router::new(), now).unwrap();
    core.connect(now);
    let mut socket: Option<TcpStream> = None;
    let mut buffer = [0u8; 4096];
    let until = Instant::now() + T;
    while Instant::now() < until {
        while let Some(bytes) = core.poll_transmit() {
            socket.as_mut().unwrap().write_all(&bytes).unwrap();
        }
        while let Some(event) = core.poll_event() {
            match event {
                Event::Connect { address } => {
                    let s = TcpStream::connect(&address).unwrap();
                    s.set_read_timeout(Some(Duration::from_millis(200)))
                        .unwrap();
                    socket = Some(s);
                    core.handle_connected(Instant::now());
                }
                Event::Online { stream_id } => return Ok(stream_id),
                Event::Failed(e) => return Err(e),
                other => panic!("unexpected {other:?}"),
            }
        }
        if core.has_transmit() {
            continue;
        }
        if let Some(s) = socket.as_mut() {
            match s.read(&mut buffer) {
                Ok(0) => core.handle_closed(Instant::now(), "eof"),
                Ok(n) => core.handle_input(Instant::now(), &buffer[..n]),
                Err(_) => core.handle_timeout(Instant::now()),
            }
        }
    }
    panic!("no outcome in time");
}

fn core_handshake(server: Server) {
    let _turn = server.lock();
    let stream_id =
        core_over_tcp(Config::new("component.localhost", "secret").port(server.component_port()))
            .expect("online");
    assert!(!stream_id.is_empty());
    let error =
        core_over_tcp(Config::new("component.localhost", "wrong").port(server.component_port()))
            .expect_err("rejected");
    let ComponentError::Rejected(error) = error else {
        panic!("{error:?}")
    };
    assert_eq!(error.condition, "not-authorized", "{server:?}: {error}");
    eprintln!("{server:?} rejects a wrong secret with: {error}");
}

#[test]
#[ignore = "needs an XMPP server: scripts/test.sh"]
fn prosody_core_handshake_over_tcp() {
    core_handshake(Server::Prosody);
}

#[test]
#[ignore = "needs an XMPP server: scripts/test.sh"]
fn ejabberd_core_handshake_over_tcp() {
    core_handshake(Server::Ejabberd);
}

// ---------------------------------------------------------------- runtimes, end to end

fn scenario(server: Server, runtime: &str) {
    let _turn = server.lock();
    let running = Running::start(runtime, config(server.component_port()), router());
    let alice = user(server, "alice", &format!("{runtime}-scenario"));
    let pong = wait_until_served(&alice);
    assert_eq!(pong.attr("from"), Some("component.localhost"));

    let info = alice
        .request(xml!("<iq type='get' to='component.localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"), T)
        .unwrap();
    let query = info
        .get_child("query", "http://jabber.org/protocol/disco#info")
        .expect("a disco#info answer");
    assert!(
        query
            .children()
            .any(|c| c.name() == "identity" && c.attr("name") == Some("real-server test"))
    );
    assert!(
        query
            .children()
            .any(|c| c.attr("var") == Some("urn:xmpp:ping"))
    );

    alice
        .send(xml!(
            "<message type='chat' to='component.localhost'><body>hello</body></message>"
        ))
        .unwrap();
    let echo = alice
        .wait_for(
            &xml!(
                "<message type='chat' from='component.localhost'><body>echo: hello</body></message>"
            ),
            Match::Subset,
            T,
        )
        .unwrap();
    assert_eq!(echo.attr("to"), Some(alice.jid().to_string().as_str()));
    alice.close();
    running.stop().unwrap();
}

#[test]
#[ignore = "needs an XMPP server: scripts/test.sh"]
fn prosody_smol_scenario() {
    scenario(Server::Prosody, "smol");
}

#[test]
#[ignore = "needs an XMPP server: scripts/test.sh"]
fn prosody_std_scenario() {
    scenario(Server::Prosody, "std");
}

#[test]
#[ignore = "needs an XMPP server: scripts/test.sh"]
fn ejabberd_smol_scenario() {
    scenario(Server::Ejabberd, "smol");
}

#[test]
#[ignore = "needs an XMPP server: scripts/test.sh"]
fn ejabberd_std_scenario() {
    scenario(Server::Ejabberd, "std");
}

#[test]
#[ignore = "needs an XMPP server: scripts/test.sh"]
fn prosody_tokio_scenario() {
    scenario(Server::Prosody, "tokio");
}

#[test]
#[ignore = "needs an XMPP server: scripts/test.sh"]
fn ejabberd_tokio_scenario() {
    scenario(Server::Ejabberd, "tokio");
}

fn wrong_secret(server: Server, runtime: &str) {
    let _turn = server.lock();
    let mut config = config(server.component_port());
    config.password = "wrong".into();
    let started = Instant::now();
    let running = Running::start(runtime, config, router());
    let mut running = running;
    let join = running.join.take().unwrap();
    while !join.is_finished() && started.elapsed() < T {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        join.is_finished(),
        "a rejected component must stop, not retry"
    );
    let error = join.join().unwrap().unwrap_err();
    assert!(error.contains("not-authorized"), "{error}");
}

#[test]
#[ignore = "needs an XMPP server: scripts/test.sh"]
fn prosody_wrong_secret_smol() {
    wrong_secret(Server::Prosody, "smol");
}

#[test]
#[ignore = "needs an XMPP server: scripts/test.sh"]
fn ejabberd_wrong_secret_std() {
    wrong_secret(Server::Ejabberd, "std");
}

#[test]
#[ignore = "needs an XMPP server: scripts/test.sh"]
fn prosody_wrong_secret_std() {
    wrong_secret(Server::Prosody, "std");
}

#[test]
#[ignore = "needs an XMPP server: scripts/test.sh"]
fn ejabberd_wrong_secret_smol() {
    wrong_secret(Server::Ejabberd, "smol");
}

#[test]
#[ignore = "needs an XMPP server: scripts/test.sh"]
fn prosody_wrong_secret_tokio() {
    wrong_secret(Server::Prosody, "tokio");
}

#[test]
#[ignore = "needs an XMPP server: scripts/test.sh"]
fn ejabberd_wrong_secret_tokio() {
    wrong_secret(Server::Ejabberd, "tokio");
}

// ---------------------------------------------------------------- restart a private server

struct Private {
    server: Server,
    dir: String,
    c2s: u16,
    component: u16,
}

impl Private {
    fn script(&self, action: &str, kill: bool) {
        let scripts =
            std::env::var("EXAMPPLE_TEST_SCRIPTS").unwrap_or_else(|_| "scripts/xmpp".into());
        let status = Command::new(format!("{scripts}/{}-{action}", self.server.name()))
            .env("XMPP_DIR", &self.dir)
            .env("C2S_PORT", self.c2s.to_string())
            .env("COMPONENT_PORT", self.component.to_string())
            .env("COMPONENT_DOMAIN", "component.localhost")
            .env("COMPONENT_SECRET", "secret")
            .env("KILL", if kill { "1" } else { "0" })
            .status()
            .unwrap();
        assert!(status.success(), "{}-{action} failed", self.server.name());
    }

    fn up(server: Server, runtime: &str, c2s: u16, component: u16) -> Private {
        let base =
            std::env::var("EXAMPPLE_TEST_XMPP_DIR").unwrap_or_else(|_| "/tmp/exampple-xmpp".into());
        let p = Private {
            server,
            dir: format!("{base}/restart-{}-{runtime}", server.name()),
            c2s,
            component,
        };
        p.script("up", false);
        p
    }
}

impl Drop for Private {
    fn drop(&mut self) {
        self.script("down", true);
    }
}

fn restart(server: Server, runtime: &str, ports: (u16, u16)) {
    let private = Private::up(server, runtime, ports.0, ports.1);
    let c2s = format!("127.0.0.1:{}", ports.0);
    let login = |tag: &str| {
        let config = ClientConfig::new(
            &format!("alice@localhost/{tag}-{}", std::process::id()),
            "alice-pass",
        )
        .unwrap()
        .address(&c2s)
        .allow_plain_without_tls(true)
        .login_timeout(T);
        Client::connect(config).unwrap()
    };
    let running = Running::start(runtime, config(ports.1), router());
    let alice = login("before");
    wait_until_served(&alice);
    alice.close();

    // Kill the server hard; while it is down, a controller-side sender asks the server a ping.
    private.script("down", true);
    let call = running
        .sender
        .call(xml!("<iq type='get' to='localhost' id='during-outage'><ping xmlns='urn:xmpp:ping'/></iq>"), Duration::from_secs(30))
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    private.script("up", false);
    let answer = exampple::block_on(call)
        .expect("the iq queued during the outage is answered after the reconnect");
    assert_eq!(answer.attr("id"), Some("during-outage"));
    assert_eq!(answer.attr("type"), Some("result"));

    let alice = login("after");
    wait_until_served(&alice);
    alice.close();
    running.stop().unwrap();
}

#[test]
#[ignore = "needs an XMPP server: scripts/test.sh"]
fn prosody_restart_smol() {
    restart(Server::Prosody, "smol", (5232, 5262));
}

#[test]
#[ignore = "needs an XMPP server: scripts/test.sh"]
fn prosody_restart_std() {
    restart(Server::Prosody, "std", (5234, 5264));
}

#[test]
#[ignore = "needs an XMPP server: scripts/test.sh"]
fn ejabberd_restart_smol() {
    restart(Server::Ejabberd, "smol", (5233, 5263));
}

#[test]
#[ignore = "needs an XMPP server: scripts/test.sh"]
fn ejabberd_restart_std() {
    restart(Server::Ejabberd, "std", (5235, 5265));
}

// ---------------------------------------------------------------- XEP-0355 delegation

fn delegation(server: Server) {
    let _turn = server.lock();
    let running = Running::start("smol", config(server.component_port()), router());
    let alice = user(server, "alice", "delegation");
    wait_until_served(&alice);
    // ejabberd delegates only once the component answered its disco#info queries.
    let until = Instant::now() + T;
    let answer = loop {
        let reply = alice
            .request(
                xml!("<iq type='get' to='localhost'><query xmlns='urn:example:delegated'/></iq>"),
                Duration::from_secs(3),
            )
            .unwrap();
        if reply.attr("type") == Some("result") || Instant::now() > until {
            break reply;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        answer.attr("type"),
        Some("result"),
        "{}",
        xml::to_string(&answer)
    );
    assert_eq!(answer.attr("from"), Some("localhost"));
    let query = answer
        .get_child("query", "urn:example:delegated")
        .expect("the component's answer");
    assert_eq!(
        query
            .get_child("answer", "urn:example:delegated")
            .map(Element::text)
            .as_deref(),
        Some("42")
    );
    alice.close();
    running.stop().unwrap();
}

#[test]
#[ignore = "needs an XMPP server: scripts/test.sh"]
fn prosody_delegation() {
    delegation(Server::Prosody);
}

#[test]
#[ignore = "needs an XMPP server: scripts/test.sh"]
fn ejabberd_delegation() {
    delegation(Server::Ejabberd);
}

// ---------------------------------------------------------------- faults

fn unknown_domain(server: Server) {
    let _turn = server.lock();
    let error =
        core_over_tcp(Config::new("nobody.localhost", "secret").port(server.component_port()));
    eprintln!("{server:?} answers an unknown component domain with: {error:?}");
    match error {
        Err(ComponentError::Rejected(e)) => {
            assert!(
                ["host-unknown", "not-authorized", "improper-addressing"]
                    .contains(&e.condition.as_str()),
                "{e}"
            )
        }
        other => panic!("an unknown domain must be a clear, permanent failure: {other:?}"),
    }
}

#[test]
#[ignore = "needs an XMPP server: scripts/test.sh"]
fn prosody_unknown_domain() {
    unknown_domain(Server::Prosody);
}

#[test]
#[ignore = "needs an XMPP server: scripts/test.sh"]
fn ejabberd_unknown_domain() {
    unknown_domain(Server::Ejabberd);
}

/// SIGKILL the server while the component is busy sending iqs to it: the iqs sent during
/// the outage are answered after the reconnect, and no answer arrives twice.
fn kill_under_load(server: Server, runtime: &str, ports: (u16, u16)) {
    let private = Private::up(server, &format!("{runtime}-load"), ports.0, ports.1);
    let running = Running::start(runtime, config(ports.1), router());
    let answered = Arc::new(Mutex::new(Vec::<String>::new()));
    let ask = |id: String, timeout: Duration| {
        let call = running
            .sender
            .call(
                xml!("<iq type='get' to='localhost' id='{id}'><ping xmlns='urn:xmpp:ping'/></iq>"),
                timeout,
            )
            .unwrap();
        let answered = answered.clone();
        std::thread::spawn(move || {
            if let Ok(answer) = exampple::block_on(call) {
                answered
                    .lock()
                    .unwrap()
                    .push(answer.attr("id").unwrap_or("").to_string());
            }
        })
    };
    // Load before the crash, until the component is surely online.
    let until = Instant::now() + T;
    while answered.lock().unwrap().is_empty() && Instant::now() < until {
        ask(format!("warmup-{}", rand_suffix()), Duration::from_secs(1))
            .join()
            .unwrap();
    }
    let mut waiting: Vec<_> = (0..200)
        .map(|i| ask(format!("before-{i}"), Duration::from_secs(30)))
        .collect();
    private.script("down", true);
    waiting.extend((0..200).map(|i| ask(format!("during-{i}"), Duration::from_secs(30))));
    std::thread::sleep(Duration::from_millis(300));
    private.script("up", false);
    for w in waiting {
        w.join().unwrap();
    }
    let answered = answered.lock().unwrap().clone();
    let mut unique = answered.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), answered.len(), "an answer arrived twice");
    let during = answered
        .iter()
        .filter(|id| id.starts_with("during-"))
        .count();
    let before = answered
        .iter()
        .filter(|id| id.starts_with("before-"))
        .count();
    eprintln!(
        "{server:?}/{runtime}: {before}/200 iqs sent before the SIGKILL answered, {during}/200 sent during the outage"
    );
    assert_eq!(
        during, 200,
        "every iq sent during the outage is delivered after the reconnect"
    );
    running.stop().unwrap();
}

fn rand_suffix() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[test]
#[ignore = "needs an XMPP server: scripts/test.sh"]
fn prosody_kill_under_load() {
    kill_under_load(Server::Prosody, "smol", (5236, 5266));
}

#[test]
#[ignore = "needs an XMPP server: scripts/test.sh"]
fn ejabberd_kill_under_load() {
    kill_under_load(Server::Ejabberd, "std", (5237, 5267));
}

/// The keepalive's XEP-0199 ping to the server's domain is answered by real servers, so an
/// idle component is not mistaken for a dead one: online for 3 s with a ping after 300 ms of
/// silence, it sends pings, each is answered, and it stays online.
fn keepalive_is_answered(server: Server) {
    let _turn = server.lock();
    let now = Instant::now();
    let config = Config::new("component.localhost", "secret")
        .port(server.component_port())
        .ping(Some(Duration::from_millis(300)))
        .ping_timeout(Duration::from_millis(1500));
    let mut core = Component::new(config, Router::new(), now).unwrap();
    core.connect(now);
    let mut socket: Option<TcpStream> = None;
    let mut buffer = [0u8; 4096];
    let mut online_at: Option<Instant> = None;
    // Both directions, parsed: the component's pings and the server's answers.
    let mut sent = StreamParser::new(Limits::default());
    let mut from_server = StreamParser::new(Limits::default());
    let (mut pings, mut answers) = (Vec::new(), Vec::new());
    let guard = now + T;
    while online_at.map_or(Instant::now() < guard, |at| {
        at.elapsed() < Duration::from_secs(3)
    }) {
        while let Some(bytes) = core.poll_transmit() {
            socket.as_mut().unwrap().write_all(&bytes).unwrap();
            for item in feed(&mut sent, &bytes) {
                if let StreamItem::Element(e) = item
                    && e.attr("type") == Some("get")
                    && e.get_child("ping", "urn:xmpp:ping").is_some()
                {
                    pings.push(e.attr("id").unwrap_or_default().to_string());
                }
            }
        }
        while let Some(event) = core.poll_event() {
            match event {
                Event::Connect { address } => {
                    let s = TcpStream::connect(&address).unwrap();
                    s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
                    socket = Some(s);
                    core.handle_connected(Instant::now());
                }
                Event::Online { .. } => online_at = Some(Instant::now()),
                Event::Delegated { .. } | Event::Privileged { .. } | Event::Dispatch(_) => {}
                other => panic!("{server:?}: the idle component lost its connection: {other:?}"),
            }
        }
        if let Some(s) = socket.as_mut() {
            match s.read(&mut buffer) {
                Ok(0) => core.handle_closed(Instant::now(), "eof"),
                Ok(n) => {
                    core.handle_input(Instant::now(), &buffer[..n]);
                    for item in feed(&mut from_server, &buffer[..n]) {
                        if let StreamItem::Element(e) = item
                            && e.name() == "iq"
                            && e.attr("type") == Some("result")
                        {
                            answers.push(e.attr("id").unwrap_or_default().to_string());
                        }
                    }
                }
                Err(_) => {}
            }
        }
        core.handle_timeout(Instant::now());
    }
    assert!(online_at.is_some(), "{server:?}: never online");
    assert!(core.is_online());
    eprintln!(
        "{server:?}: idle for 3 s with a ping after 300 ms of silence: {} pings, {} answers",
        pings.len(),
        answers.len()
    );
    // At least one ping a ping_timeout (1.5 s) with some to spare; every one but the last
    // (which may still be on its way) answered.
    assert!(pings.len() >= 2, "{server:?}: pings {pings:?}");
    let unanswered: Vec<_> = pings.iter().filter(|id| !answers.contains(id)).collect();
    assert!(
        unanswered.is_empty() || unanswered == [pings.last().unwrap()],
        "{server:?}: pings {pings:?}, answers {answers:?}"
    );
}

/// What `bytes` add to a stream being parsed.
fn feed(parser: &mut StreamParser, bytes: &[u8]) -> Vec<StreamItem> {
    let mut items = Vec::new();
    parser.feed(bytes, &mut items).unwrap();
    items
}

#[test]
#[ignore = "needs an XMPP server: scripts/test.sh"]
fn prosody_keepalive_is_answered() {
    keepalive_is_answered(Server::Prosody);
}

#[test]
#[ignore = "needs an XMPP server: scripts/test.sh"]
fn ejabberd_keepalive_is_answered() {
    keepalive_is_answered(Server::Ejabberd);
}
