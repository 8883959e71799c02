//! The runtime examples as their users run them: each one built, started as a process with
//! its configuration in `EXAMPPLE_*` variables, connected to the loopback server, and
//! asked what it answers (`embed`, `showcase` and `loadgen` have tests of their own).

mod support;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use exampple::{Element, xml};
use support::{DOMAIN, FakeServer};

const T: Duration = Duration::from_secs(10);

/// The examples, built once with the features `scripts/test.sh` uses (so nothing is rebuilt).
fn built() -> &'static std::path::Path {
    static BUILT: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| {
        let status = Command::new(env!("CARGO"))
            .args(["build", "--quiet", "--all-features"])
            .args(["--example", "ping", "--example", "ping_std"])
            .args(["--example", "ping_tokio", "--example", "bot_std"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("cargo runs");
        assert!(status.success(), "the examples build");
        // The test binary is target/<profile>/deps/examples-*: the examples are beside deps.
        let exe = std::env::current_exe().expect("the test's path");
        exe.parent()
            .and_then(|deps| deps.parent())
            .map(|profile| profile.join("examples"))
            .expect("target/<profile>/examples")
    })
}

/// The example `name` connected to `server`, with `env` set too; killed when dropped.
struct Running(Child);

impl Running {
    fn start(name: &str, server: &FakeServer, env: &[(&str, &str)]) -> Running {
        let child = Command::new(built().join(name))
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
    let _running = Running::start(name, &server, env);
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
