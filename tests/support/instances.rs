//! Private servers started by a test itself (with the project's scripts, under
//! `$EXAMPPLE_TEST_XMPP_DIR` so that `scripts/test.sh`'s cleanup stops them too) and the
//! showcase run as processes: the instances of a component, drained, killed and restarted.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

#[cfg(feature = "client")]
use std::sync::Arc;
#[cfg(feature = "client")]
use std::sync::atomic::{AtomicBool, Ordering};

#[cfg(feature = "client")]
use exampple::c2s::blocking::Client;
#[cfg(feature = "client")]
use exampple::client::ClientConfig;
#[cfg(feature = "client")]
use exampple::{Element, xml};

/// The component's shared domain in these tests.
pub const COMPONENT: &str = "component.localhost";

#[cfg(feature = "client")]
const LOGIN_TIMEOUT: Duration = Duration::from_secs(15);

/// The project's server scripts (`EXAMPPLE_TEST_SCRIPTS`, else `scripts/xmpp`).
pub fn scripts() -> PathBuf {
    std::env::var_os("EXAMPPLE_TEST_SCRIPTS")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/xmpp"))
}

/// Where the test servers live (`EXAMPPLE_TEST_XMPP_DIR`, else `/tmp/exampple-xmpp`).
pub fn xmpp_dir() -> PathBuf {
    std::env::var_os("EXAMPPLE_TEST_XMPP_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp/exampple-xmpp"))
}

/// Runs the script `name` with `env`; panics with its output if it fails.
pub fn run_script(name: &str, env: &[(&str, String)]) {
    let output = Command::new(scripts().join(name))
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {name}: {e}"));
    assert!(
        output.status.success(),
        "{name} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A server started with an `-up` script, stopped with its `-down` script when dropped.
pub struct ServerGuard {
    down: &'static str,
    env: Vec<(&'static str, String)>,
}

impl ServerGuard {
    /// Runs `up` with `env`; `down` with the same `env` stops it.
    pub fn start(up: &str, down: &'static str, env: Vec<(&'static str, String)>) -> ServerGuard {
        run_script(up, &env);
        ServerGuard { down, env }
    }
}

impl Drop for ServerGuard {
    fn drop(&mut self) {
        let _ = Command::new(scripts().join(self.down))
            .envs(self.env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status();
    }
}

/// The directory of the examples' binaries, built once with every feature (as
/// `scripts/test.sh` builds, so nothing is rebuilt): the runtime examples and the showcase.
pub fn built_examples() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let status = Command::new(env!("CARGO"))
            .args(["build", "--quiet", "--all-features"])
            .args(["--example", "ping", "--example", "ping_std"])
            .args(["--example", "ping_tokio", "--example", "bot_std"])
            .args(["--example", "showcase"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("cargo runs");
        assert!(status.success(), "the examples build");
        // The test binary is target/<profile>/deps/<test>-*: the examples are beside deps.
        let exe = std::env::current_exe().expect("the test's path");
        exe.parent()
            .and_then(|deps| deps.parent())
            .map(|profile| profile.join("examples"))
            .expect("target/<profile>/examples")
    })
}

/// A showcase process (its log in `log`); killed when dropped.
pub struct Showcase {
    child: Child,
    pub name: String,
    pub log: PathBuf,
}

impl Showcase {
    /// Starts the showcase as instance `name`, connecting to the component port `port`, with
    /// `env` on top (`EXAMPPLE_INSTANCE_DOMAIN`, ...); its log goes to `dir/name.log`.
    pub fn start(name: &str, port: u16, dir: &Path, env: &[(&str, String)]) -> Showcase {
        std::fs::create_dir_all(dir).expect("the log directory");
        let log = dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).expect("the log file");
        let child = Command::new(built_examples().join("showcase"))
            .env("EXAMPPLE_HOST", "127.0.0.1")
            .env("EXAMPPLE_PORT", port.to_string())
            .env("EXAMPPLE_DOMAIN", "component.localhost")
            .env("EXAMPPLE_PASSWORD", "secret")
            .env("EXAMPPLE_AUTO_CONNECT", "true")
            .env("RUST_LOG", "info")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("the log file"))
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the showcase: {e}"));
        Showcase {
            child,
            name: name.to_string(),
            log,
        }
    }

    /// Waits until the log says the instance is online for `domain` (the shared domain, or
    /// its private one), up to `timeout`.
    pub fn wait_online(&self, domain: &str, timeout: Duration) {
        let until = Instant::now() + timeout;
        let needle = format!("online as {domain} ");
        while Instant::now() < until {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            if log.contains(&needle) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "{} is not online as {domain} within {timeout:?}:\n{}",
            self.name,
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }

    /// Sends `signal` (`TERM`, `INT`, `KILL`).
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([format!("-{signal}"), self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{signal} {}", self.name);
    }

    /// The exit status, waiting up to `timeout`.
    pub fn exit_within(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let until = Instant::now() + timeout;
        while Instant::now() < until {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Showcase {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `name`@localhost logged in at `c2s`, with the resource `tag`.
#[cfg(feature = "client")]
pub fn login(c2s: &str, name: &str, tag: &str) -> Client {
    let config = ClientConfig::new(&format!("{name}@localhost/{tag}"), format!("{name}-pass"))
        .expect("a valid JID")
        .address(c2s)
        .allow_plain_without_tls(true)
        .login_timeout(LOGIN_TIMEOUT);
    Client::connect(config).unwrap_or_else(|e| panic!("{name} cannot log in at {c2s}: {e}"))
}

/// Answers the component's pings to `client` until `stop` (a user's client does).
#[cfg(feature = "client")]
pub fn answer_pings(client: Arc<Client>, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let pattern = xml!("<iq type='get'><ping xmlns='urn:xmpp:ping'/></iq>");
        while !stop.load(Ordering::Relaxed) && !client.is_closed() {
            let Ok(ping) = client.wait_for(
                &pattern,
                exampple::matching::Match::Subset,
                Duration::from_millis(100),
            ) else {
                continue;
            };
            let result = xml!(
                "<iq type='result' id='{}' to='{}'/>",
                ping.attr("id").unwrap_or_default(),
                ping.attr("from").unwrap_or_default()
            );
            let _ = client.send(result);
        }
    })
}

/// An iq get of `payload` to the component.
#[cfg(feature = "client")]
pub fn iq_get(payload: Element) -> Element {
    xml!("<iq type='get' to='{COMPONENT}'>{}</iq>", payload)
}

/// "result", or the error's condition.
#[cfg(feature = "client")]
pub fn outcome(answer: &Element) -> String {
    if answer.attr("type") == Some("result") {
        return "result".into();
    }
    answer
        .children()
        .find(|c| c.name() == "error")
        .and_then(|e| e.children().find(|c| c.name() != "text"))
        .map(|c| c.name().to_string())
        .unwrap_or_else(|| "no-error-element".into())
}
