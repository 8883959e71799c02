//! The runtime examples as their users run them: each one built, started as a process with
//! its configuration in `EXAMPPLE_*` variables, connected to the loopback server, and
//! asked what it answers (`embed`, `showcase` and `loadgen` have tests of their own), then
//! stopped with SIGTERM or SIGINT: each drains, closes its stream and exits 0; the
//! showcase with slow requests in flight answers each (the one past the drain's deadline
//! with `service-unavailable`).

mod support;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use exampple::{Element, xml};
use support::{DOMAIN, FakeServer};

const T: Duration = Duration::from_secs(10);

/// The example `name` connected to `server`, with `env` set too; killed when dropped.
struct Running(Child);

impl Running {
    fn start(name: &str, server: &FakeServer, env: &[(&str, &str)]) -> Running {
        let child = Command::new(support::instances::built_examples().join(name))
            .env("EXAMPPLE_HOST", "127.0.0.1")
            .env("EXAMPPLE_PORT", server.port().to_string())
            .env("EXAMPPLE_DOMAIN", DOMAIN)
            .env("EXAMPPLE_PASSWORD", support::SECRET)
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Running(child)
    }
}

impl Running {
    /// Sends `signal` (`TERM`, `INT`) to the process.
    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([format!("-{signal}"), self.0.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{signal}");
    }

    /// The exit status, waiting up to `timeout` for it.
    fn exit_within(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let until = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < until {
            if let Some(status) = self.0.try_wait().expect("try_wait") {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

/// `signal` drains the example at `running`: it closes its stream, and once the server has
/// closed its own, exits 0.
fn drains_on(running: &mut Running, session: &mut support::Session, signal: &str, name: &str) {
    running.signal(signal);
    assert!(
        session.receive_close(T),
        "{name}: closes its stream on SIG{signal}"
    );
    session.write("</stream:stream>");
    let status = running.exit_within(T).expect("exits after the close");
    assert!(
        status.success(),
        "{name}: exits 0 on SIG{signal}, not {status}"
    );
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn ping(id: &str) -> Element {
    xml!(
        "<iq type='get' id='{id}' from='alice@localhost/r' to='{DOMAIN}'><ping xmlns='urn:xmpp:ping'/></iq>"
    )
}

/// Starts `name`, lets the server accept it, and checks that it answers three pings.
fn answers_pings(name: &str, env: &[(&str, &str)]) {
    let server = FakeServer::new();
    let mut running = Running::start(name, &server, env);
    let mut session = server.accept(true);
    for i in 0..3 {
        let id = format!("{name}-{i}");
        session.send(&ping(&id));
        let answer = session
            .receive(T)
            .unwrap_or_else(|| panic!("{name}: no answer to {id}"));
        assert_eq!(
            xml::to_string(&answer),
            format!(
                "<iq xmlns='jabber:component:accept' from='{DOMAIN}' id='{id}' to='alice@localhost/r' type='result'/>"
            ),
            "{name}"
        );
    }
    // Alternately the signal of a service manager and of Ctrl-C.
    let signal = if name.ends_with("std") { "INT" } else { "TERM" };
    drains_on(&mut running, &mut session, signal, name);
}

#[test]
fn ping_on_smol_answers() {
    answers_pings("ping", &[]);
}

#[test]
fn ping_on_std_answers_with_sync_and_async_controllers() {
    answers_pings("ping_std", &[]);
    answers_pings("ping_std", &[("PING_ASYNC", "1")]);
}

#[test]
fn ping_on_tokio_answers_even_after_awaiting_a_tokio_timer() {
    answers_pings("ping_tokio", &[]);
    answers_pings("ping_tokio", &[("PING_SLEEP_MS", "20")]);
}

#[test]
fn bot_std_answers_pings_and_echoes_chat() {
    answers_pings("bot_std", &[]);
    let server = FakeServer::new();
    let _running = Running::start("bot_std", &server, &[]);
    let mut session = server.accept(true);
    session.send(&xml!(
        "<message type='chat' id='m1' from='alice@localhost/r' to='{DOMAIN}'><body>hi &amp; bye</body></message>"
    ));
    let echo = session.receive(T).expect("the echo");
    assert_eq!(
        xml::to_string(&echo),
        format!(
            "<message xmlns='jabber:component:accept' from='{DOMAIN}' to='alice@localhost/r' type='chat'><body>echo: hi &amp; bye</body></message>"
        )
    );
}

fn slow(id: &str, ms: u64) -> Element {
    xml!(
        "<iq type='get' id='{id}' from='alice@localhost/r' to='{DOMAIN}'><slow xmlns='urn:example:slow' ms='{ms}'/></iq>"
    )
}

/// The condition of an error answer, or "result".
fn outcome(answer: &Element) -> String {
    match answer.get_child("error", "jabber:component:accept") {
        Some(error) => error
            .children()
            .find(|c| c.name() != "text")
            .map(|c| c.name().to_string())
            .unwrap_or_default(),
        None => answer.attr("type").unwrap_or_default().to_string(),
    }
}

#[test]
fn showcase_drains_on_sigterm_answering_every_request_in_flight() {
    let server = FakeServer::new();
    let mut running = Running::start(
        "showcase",
        &server,
        &[
            ("EXAMPPLE_STANZA_TIMEOUT_MS", "60000"),
            ("EXAMPPLE_DRAIN_SECS", "3"),
        ],
    );
    let mut session = server.accept(true);
    // In flight at the signal: one finishes within the drain, one cannot.
    session.send(&slow("short", 1_500));
    session.send(&slow("long", 30_000));
    // Answered: the controllers are running before the signal comes.
    session.send(&ping("before"));
    assert_eq!(
        session.receive(T).map(|a| outcome(&a)).as_deref(),
        Some("result")
    );
    let signalled = std::time::Instant::now();
    running.signal("TERM");
    // Still serving during the drain.
    std::thread::sleep(Duration::from_millis(300));
    session.send(&ping("during"));
    let mut answers = Vec::new();
    for _ in 0..3 {
        let answer = session.receive(T).expect("every request is answered");
        answers.push((
            answer.attr("id").unwrap_or_default().to_string(),
            outcome(&answer),
            signalled.elapsed(),
        ));
    }
    let find = |id: &str| {
        answers
            .iter()
            .find(|(i, ..)| i == id)
            .unwrap_or_else(|| panic!("no answer to {id}: {answers:?}"))
    };
    assert_eq!(find("during").1, "result", "{answers:?}");
    assert_eq!(
        find("short").1,
        "result",
        "finished within the drain: {answers:?}"
    );
    let long = find("long");
    assert_eq!(long.1, "service-unavailable", "{answers:?}");
    assert!(
        long.2 >= Duration::from_millis(2_500),
        "answered at the drain's deadline, not before: {answers:?}"
    );
    assert!(session.receive_close(T), "then the stream closes");
    session.write("</stream:stream>");
    let status = running.exit_within(T).expect("exits after the close");
    assert!(status.success(), "exits 0 after a drain, not {status}");
}
