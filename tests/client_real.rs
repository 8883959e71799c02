//! The c2s client of both runtimes against real servers: Prosody and ejabberd, started by
//! `scripts/test.sh` (users alice/alice-pass and bob/bob-pass on `localhost`).
//!
//! The addresses come from `EXAMPPLE_TEST_PROSODY_C2S` (default `127.0.0.1:5222`) and
//! `EXAMPPLE_TEST_EJABBERD_C2S` (default `127.0.0.1:5223`). Run with
//! `cargo test --test client_real -- --ignored` once the servers are up.

use std::time::Duration;

use exampple::client::{ClientConfig, ClientError};
use exampple::matching::Match;
use exampple::sasl::Mechanism;
use exampple::{Element, xml};

const TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone, Copy)]
enum Server {
    Prosody,
    Ejabberd,
}

impl Server {
    fn address(self) -> String {
        let (var, default) = match self {
            Server::Prosody => ("EXAMPPLE_TEST_PROSODY_C2S", "127.0.0.1:5222"),
            Server::Ejabberd => ("EXAMPPLE_TEST_EJABBERD_C2S", "127.0.0.1:5223"),
        };
        std::env::var(var)
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| default.to_string())
    }
}

/// A configuration for `user` with a resource unique to this run and test.
fn config(
    server: Server,
    user: &str,
    password: &str,
    mechanism: Mechanism,
    tag: &str,
) -> ClientConfig {
    let resource = format!("{tag}-{}", std::process::id());
    ClientConfig::new(&format!("{user}@localhost/{resource}"), password)
        .unwrap()
        .address(&server.address())
        .mechanisms([mechanism])
        .allow_plain_without_tls(true)
        .login_timeout(TIMEOUT)
}

fn ping() -> Element {
    xml::parse("<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>").unwrap()
}

fn assert_not_authorized(result: Result<impl std::fmt::Debug, ClientError>) {
    match result {
        Err(ClientError::Auth { condition, .. }) => assert_eq!(condition, "not-authorized"),
        other => panic!("expected a not-authorized SASL failure, got {other:?}"),
    }
}

/// A client call: awaited on smol's client, as it is on std's blocking one.
macro_rules! call {
    (std, $call:expr) => {
        $call
    };
    (smol, $call:expr) => {
        $call.await
    };
}

/// The scenarios, written once for both clients: in module `$module`, with `$client`, whose
/// calls are awaited or not as `$runtime` (`std` or `smol`) says. Both run in
/// `smol::block_on` (where the blocking client simply blocks).
macro_rules! scenarios {
    ($module:ident, $runtime:ident, $client:ty) => {
        mod $module {
            use super::*;
            type Client = $client;

            pub fn login(server: Server, mechanism: Mechanism, tag: &str) {
                smol::block_on(async {
                    let alice = call!(
                        $runtime,
                        Client::connect(config(server, "alice", "alice-pass", mechanism, tag))
                    )
                    .unwrap_or_else(|e| panic!("login with {mechanism}: {e}"));
                    assert_eq!(
                        alice.jid().to_string(),
                        format!("alice@localhost/{tag}-{}", std::process::id())
                    );
                    let pong = call!($runtime, alice.request(ping(), TIMEOUT)).unwrap();
                    assert_eq!(
                        pong.attr("type"),
                        Some("result"),
                        "{}",
                        xml::to_string(&pong)
                    );
                    assert_eq!(pong.attr("from"), Some("localhost"));
                    call!($runtime, alice.close());
                    assert!(alice.is_closed());
                })
            }

            pub fn wrong_password(server: Server, mechanism: Mechanism, tag: &str) {
                smol::block_on(async {
                    assert_not_authorized(call!(
                        $runtime,
                        Client::connect(config(server, "alice", "wrong-pass", mechanism, tag))
                    ));
                })
            }

            pub fn message(server: Server, tag: &str) {
                smol::block_on(async {
                    let bob = call!(
                        $runtime,
                        Client::connect(config(
                            server,
                            "bob",
                            "bob-pass",
                            Mechanism::ScramSha1,
                            tag
                        ))
                    )
                    .unwrap();
                    let alice = call!(
                        $runtime,
                        Client::connect(config(
                            server,
                            "alice",
                            "alice-pass",
                            Mechanism::Plain,
                            tag
                        ))
                    )
                    .unwrap();
                    let body = format!("hello from {tag}");
                    let message = xml!(
                        "<message to='{}' type='chat'><body>{body}</body></message>",
                        bob.jid()
                    );
                    call!($runtime, alice.send(message)).unwrap();
                    let pattern = xml!("<message type='chat'><body>{body}</body></message>");
                    let received =
                        call!($runtime, bob.wait_for(&pattern, Match::Subset, TIMEOUT)).unwrap();
                    assert_eq!(
                        received.attr("from").map(exampple::jid::bare_of),
                        Some("alice@localhost"),
                        "{}",
                        xml::to_string(&received)
                    );
                    // A wait that finds nothing says what it waited for.
                    let missing = xml::parse("<message><body>never sent</body></message>").unwrap();
                    let error = call!(
                        $runtime,
                        bob.wait_for(&missing, Match::Subset, Duration::from_millis(200))
                    )
                    .unwrap_err();
                    let shown = error.to_string();
                    assert!(shown.contains("<body>never sent</body>"), "{shown}");
                    call!($runtime, alice.close());
                    call!($runtime, bob.close());
                })
            }
        }
    };
}

scenarios!(blocking, std, exampple::c2s::blocking::Client);
scenarios!(nonblocking, smol, exampple::c2s::smol::Client);

/// Every scenario with one client (`blocking` or `nonblocking`) against `$server`; `$tag`
/// names the runtime in the resources.
macro_rules! client_tests {
    ($server:ident, $client:ident, $tag:literal) => {
        mod $client {
            use super::*;

            #[test]
            #[ignore = "needs an XMPP server: scripts/test.sh"]
            fn plain_login_and_ping() {
                crate::$client::login(Server::$server, Mechanism::Plain, concat!($tag, "-plain"));
            }

            #[test]
            #[ignore = "needs an XMPP server: scripts/test.sh"]
            fn scram_login_and_ping() {
                crate::$client::login(
                    Server::$server,
                    Mechanism::ScramSha1,
                    concat!($tag, "-scram"),
                );
            }

            #[test]
            #[ignore = "needs an XMPP server: scripts/test.sh"]
            fn wrong_password_plain() {
                crate::$client::wrong_password(
                    Server::$server,
                    Mechanism::Plain,
                    concat!($tag, "-wrong-plain"),
                );
            }

            #[test]
            #[ignore = "needs an XMPP server: scripts/test.sh"]
            fn wrong_password_scram() {
                crate::$client::wrong_password(
                    Server::$server,
                    Mechanism::ScramSha1,
                    concat!($tag, "-wrong-scram"),
                );
            }

            #[test]
            #[ignore = "needs an XMPP server: scripts/test.sh"]
            fn message_alice_to_bob() {
                crate::$client::message(Server::$server, concat!($tag, "-msg"));
            }
        }
    };
}

macro_rules! server_tests {
    ($server:ident, $mod:ident) => {
        mod $mod {
            use super::*;
            client_tests!($server, blocking, "std");
            client_tests!($server, nonblocking, "smol");
        }
    };
}

server_tests!(Prosody, prosody);
server_tests!(Ejabberd, ejabberd);
