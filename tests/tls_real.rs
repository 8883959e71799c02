//! The showcase over ejabberd's TLS component listener, as an operator runs it: a private
//! ejabberd started with `scripts/xmpp/ejabberd-up` and `COMPONENT_TLS_PORT` (which makes a
//! test CA and the listener's certificate), the showcase binary with `EXAMPPLE_TLS=1` and
//! `EXAMPPLE_CA_FILE` pointing at that CA, and a user pinging it through the server. Then
//! with a CA the server's certificate does not come from: the showcase refuses the
//! certificate, says why, keeps retrying, and is never reachable through the server; and
//! with TLS to the plain component port, it says the port does not speak TLS.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use exampple::c2s::blocking::Client;
use exampple::client::ClientConfig;
use exampple::{Element, xml};

const T: Duration = Duration::from_secs(10);
const COMPONENT: &str = "component.localhost";
const C2S_PORT: u16 = 5227;
const COMPONENT_PORT: u16 = 5257;
const TLS_PORT: u16 = 5258;

/// A private ejabberd with a TLS component listener, stopped when dropped.
struct Ejabberd {
    dir: PathBuf,
}

impl Ejabberd {
    fn script(dir: &Path, action: &str) {
        let scripts =
            std::env::var("EXAMPPLE_TEST_SCRIPTS").unwrap_or_else(|_| "scripts/xmpp".into());
        let status = Command::new(format!("{scripts}/ejabberd-{action}"))
            .env("XMPP_DIR", dir)
            .env("EJABBERD_NODE", "ejabberd-tls@localhost")
            .env("EJABBERD_DIST_PORT", "5294")
            .env("C2S_PORT", C2S_PORT.to_string())
            .env("COMPONENT_PORT", COMPONENT_PORT.to_string())
            .env("COMPONENT_TLS_PORT", TLS_PORT.to_string())
            .env("COMPONENT_DOMAIN", COMPONENT)
            .env("COMPONENT_SECRET", "secret")
            .env("KILL", "1")
            .status()
            .unwrap();
        assert!(status.success(), "ejabberd-{action} failed");
    }

    fn up() -> Ejabberd {
        let base =
            std::env::var("EXAMPPLE_TEST_XMPP_DIR").unwrap_or_else(|_| "/tmp/exampple-xmpp".into());
        let dir = Path::new(&base).join("ejabberd-tls");
        Ejabberd::script(&dir, "up");
        Ejabberd { dir }
    }

    /// The test CA the script made, which signed the TLS listener's certificate.
    fn ca(&self) -> PathBuf {
        self.dir.join("tls/ca.pem")
    }
}

impl Drop for Ejabberd {
    fn drop(&mut self) {
        Ejabberd::script(&self.dir, "down");
    }
}

/// The showcase binary, built with the features `scripts/test.sh` uses (nothing rebuilt).
fn showcase_binary() -> PathBuf {
    support::instances::built_examples().join("showcase")
}

/// The showcase running with TLS to `port`, trusting `ca`; its log in `log`, killed when
/// dropped.
struct Showcase {
    child: Child,
    log: PathBuf,
}

impl Showcase {
    fn start(binary: &Path, port: u16, ca: &Path, log: PathBuf) -> Showcase {
        let child = Command::new(binary)
            .env("EXAMPPLE_HOST", "127.0.0.1")
            .env("EXAMPPLE_PORT", port.to_string())
            .env("EXAMPPLE_DOMAIN", COMPONENT)
            .env("EXAMPPLE_PASSWORD", "secret")
            .env("EXAMPPLE_TLS", "1")
            .env("EXAMPPLE_CA_FILE", ca)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("the showcase starts");
        Showcase { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The lines of its log that contain `needle`, once there are `count`, or after `timeout`.
    fn await_lines(&self, needle: &str, count: usize, timeout: Duration) -> Vec<String> {
        let until = Instant::now() + timeout;
        loop {
            let lines: Vec<String> = self
                .log()
                .lines()
                .filter(|line| line.contains(needle))
                .map(str::to_string)
                .collect();
            if lines.len() >= count || Instant::now() >= until {
                return lines;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Showcase {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn alice(tag: &str) -> Client {
    let config = ClientConfig::new(
        &format!("alice@localhost/{tag}-{}", std::process::id()),
        "alice-pass",
    )
    .unwrap()
    .address(&format!("127.0.0.1:{C2S_PORT}"))
    .allow_plain_without_tls(true)
    .login_timeout(T);
    Client::connect(config).unwrap_or_else(|e| panic!("alice cannot log in: {e}"))
}

fn ping() -> Element {
    xml!("<iq type='get' to='{COMPONENT}'><ping xmlns='urn:xmpp:ping'/></iq>")
}

/// A CA of the test's own: not the one that signed ejabberd's certificate.
fn unrelated_ca(path: &Path) {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "a CA ejabberd does not know");
    let key = rcgen::KeyPair::generate().unwrap();
    let ca = params.self_signed(&key).unwrap();
    std::fs::write(path, ca.pem()).unwrap();
}

#[test]
#[ignore = "needs ejabberd: scripts/test.sh"]
fn showcase_over_ejabberd_tls_and_a_certificate_it_cannot_verify() {
    let server = Ejabberd::up();
    let binary = showcase_binary();

    // With the CA that signed the server's certificate: online, and answering through it.
    let showcase = Showcase::start(
        &binary,
        TLS_PORT,
        &server.ca(),
        server.dir.join("showcase-tls.log"),
    );
    let alice = alice("tls");
    let until = Instant::now() + T;
    loop {
        match alice.request(ping(), Duration::from_secs(2)) {
            Ok(answer) if answer.attr("type") == Some("result") => break,
            other => assert!(
                Instant::now() < until,
                "the showcase never answered over TLS: {other:?}\n{}",
                showcase.log()
            ),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let version = alice
        .request(
            xml!("<iq type='get' to='{COMPONENT}'><query xmlns='jabber:iq:version'/></iq>"),
            T,
        )
        .unwrap();
    assert_eq!(version.attr("type"), Some("result"));
    assert_eq!(
        version
            .get_child("query", "jabber:iq:version")
            .and_then(|q| q.get_child("name", "jabber:iq:version"))
            .map(Element::text)
            .as_deref(),
        Some("exampple")
    );
    let connected = showcase.await_lines(&format!("connected to 127.0.0.1:{TLS_PORT}"), 1, T);
    assert_eq!(connected.len(), 1, "{}", showcase.log());
    drop(showcase);

    // With a CA of its own: refused, said so, retried; the server never routes to it.
    let wrong = server.dir.join("unrelated-ca.pem");
    unrelated_ca(&wrong);
    let showcase = Showcase::start(
        &binary,
        TLS_PORT,
        &wrong,
        server.dir.join("showcase-wrong-ca.log"),
    );
    let refusals = showcase.await_lines(
        &format!("cannot connect to 127.0.0.1:{TLS_PORT}: TLS handshake failed"),
        3,
        Duration::from_secs(15),
    );
    assert!(
        refusals.len() >= 3,
        "refused and retried:\n{}",
        showcase.log()
    );
    for refusal in &refusals {
        assert!(
            refusal.contains("ERROR")
                && refusal.contains(
                    "the server's certificate cannot be verified for `component.localhost`"
                )
                && refusal.contains("UnknownIssuer")
                && refusal.contains(&wrong.display().to_string()),
            "{refusal}"
        );
    }
    let mut showcase = showcase;
    assert!(
        showcase.child.try_wait().unwrap().is_none(),
        "the showcase keeps running (and retrying):\n{}",
        showcase.log()
    );
    // The backoff grows between the attempts (the core's reconnect log says when).
    let delays = showcase.await_lines("reconnecting in", 3, T);
    assert!(delays.len() >= 3, "{}", showcase.log());
    let answer = alice.request(ping(), T).unwrap();
    assert_eq!(
        answer.attr("type"),
        Some("error"),
        "nobody serves the domain: {answer:?}"
    );
    drop(showcase);

    // TLS to the plain component port: the showcase says that the port does not speak TLS.
    let showcase = Showcase::start(
        &binary,
        COMPONENT_PORT,
        &server.ca(),
        server.dir.join("showcase-plain-port.log"),
    );
    let failures = showcase.await_lines(
        &format!("cannot connect to 127.0.0.1:{COMPONENT_PORT}: TLS handshake failed"),
        2,
        T,
    );
    assert!(failures.len() >= 2, "{}", showcase.log());
    assert!(
        failures
            .iter()
            .all(|f| f.contains("does not speak TLS on this port")
                || f.contains("is this port a TLS one?")),
        "{failures:?}"
    );
    alice.close();
}
