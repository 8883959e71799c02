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

mod blocking {
    use super::*;
    use exampple_std::client::Client;

    pub fn login(server: Server, mechanism: Mechanism, tag: &str) {
        let alice = Client::connect(config(server, "alice", "alice-pass", mechanism, tag))
            .unwrap_or_else(|e| panic!("login with {mechanism}: {e}"));
        assert_eq!(
            alice.jid().to_string(),
            format!("alice@localhost/{tag}-{}", std::process::id())
        );
        let pong = alice.request(ping(), TIMEOUT).unwrap();
        assert_eq!(
            pong.attr("type"),
            Some("result"),
            "{}",
            xml::to_string(&pong)
        );
        assert_eq!(pong.attr("from"), Some("localhost"));
        alice.close();
        assert!(alice.is_closed());
    }

    pub fn wrong_password(server: Server, mechanism: Mechanism, tag: &str) {
        assert_not_authorized(Client::connect(config(
            server,
            "alice",
            "wrong-pass",
            mechanism,
            tag,
        )));
    }

    pub fn message(server: Server, tag: &str) {
        let bob =
            Client::connect(config(server, "bob", "bob-pass", Mechanism::ScramSha1, tag)).unwrap();
        let alice =
            Client::connect(config(server, "alice", "alice-pass", Mechanism::Plain, tag)).unwrap();
        let body = format!("hello from {tag}");
        alice
            .send(xml!(
                "<message to='{}' type='chat'><body>{body}</body></message>",
                bob.jid()
            ))
            .unwrap();
        let pattern = xml!("<message type='chat'><body>{body}</body></message>");
        let received = bob.wait_for(&pattern, Match::Subset, TIMEOUT).unwrap();
        assert_eq!(
            received.attr("from").map(exampple::jid::bare_of),
            Some("alice@localhost"),
            "{}",
            xml::to_string(&received)
        );
        // A wait that finds nothing says what it waited for.
        let missing = xml::parse("<message><body>never sent</body></message>").unwrap();
        let error = bob
            .wait_for(&missing, Match::Subset, Duration::from_millis(200))
            .unwrap_err();
        let shown = error.to_string();
        assert!(shown.contains("<body>never sent</body>"), "{shown}");
        alice.close();
        bob.close();
    }
}

mod nonblocking {
    use super::*;
    use exampple_smol::client::Client;

    pub fn login(server: Server, mechanism: Mechanism, tag: &str) {
        smol::block_on(async {
            let alice = Client::connect(config(server, "alice", "alice-pass", mechanism, tag))
                .await
                .unwrap_or_else(|e| panic!("login with {mechanism}: {e}"));
            assert_eq!(
                alice.jid().to_string(),
                format!("alice@localhost/{tag}-{}", std::process::id())
            );
            let pong = alice.request(ping(), TIMEOUT).await.unwrap();
            assert_eq!(
                pong.attr("type"),
                Some("result"),
                "{}",
                xml::to_string(&pong)
            );
            alice.close().await;
            assert!(alice.is_closed());
        })
    }

    pub fn wrong_password(server: Server, mechanism: Mechanism, tag: &str) {
        smol::block_on(async {
            assert_not_authorized(
                Client::connect(config(server, "alice", "wrong-pass", mechanism, tag)).await,
            );
        })
    }

    pub fn message(server: Server, tag: &str) {
        smol::block_on(async {
            let bob = Client::connect(config(server, "bob", "bob-pass", Mechanism::ScramSha1, tag))
                .await
                .unwrap();
            let alice =
                Client::connect(config(server, "alice", "alice-pass", Mechanism::Plain, tag))
                    .await
                    .unwrap();
            let body = format!("hello from {tag}");
            alice
                .send(xml!(
                    "<message to='{}' type='chat'><body>{body}</body></message>",
                    bob.jid()
                ))
                .await
                .unwrap();
            let pattern = xml!("<message type='chat'><body>{body}</body></message>");
            let received = bob
                .wait_for(&pattern, Match::Subset, TIMEOUT)
                .await
                .unwrap();
            assert_eq!(
                received.attr("from").map(exampple::jid::bare_of),
                Some("alice@localhost")
            );
            alice.close().await;
            bob.close().await;
        })
    }
}

macro_rules! server_tests {
    ($server:ident, $mod:ident) => {
        mod $mod {
            use super::*;
            #[test]
            #[ignore = "needs an XMPP server: scripts/test.sh"]
            fn std_plain_login_and_ping() {
                blocking::login(Server::$server, Mechanism::Plain, "std-plain");
            }

            #[test]
            #[ignore = "needs an XMPP server: scripts/test.sh"]
            fn std_scram_login_and_ping() {
                blocking::login(Server::$server, Mechanism::ScramSha1, "std-scram");
            }

            #[test]
            #[ignore = "needs an XMPP server: scripts/test.sh"]
            fn std_wrong_password_plain() {
                blocking::wrong_password(Server::$server, Mechanism::Plain, "std-wrong-plain");
            }

            #[test]
            #[ignore = "needs an XMPP server: scripts/test.sh"]
            fn std_wrong_password_scram() {
                blocking::wrong_password(Server::$server, Mechanism::ScramSha1, "std-wrong-scram");
            }

            #[test]
            #[ignore = "needs an XMPP server: scripts/test.sh"]
            fn std_message_alice_to_bob() {
                blocking::message(Server::$server, "std-msg");
            }

            #[test]
            #[ignore = "needs an XMPP server: scripts/test.sh"]
            fn smol_plain_login_and_ping() {
                nonblocking::login(Server::$server, Mechanism::Plain, "smol-plain");
            }

            #[test]
            #[ignore = "needs an XMPP server: scripts/test.sh"]
            fn smol_scram_login_and_ping() {
                nonblocking::login(Server::$server, Mechanism::ScramSha1, "smol-scram");
            }

            #[test]
            #[ignore = "needs an XMPP server: scripts/test.sh"]
            fn smol_wrong_password_plain() {
                nonblocking::wrong_password(Server::$server, Mechanism::Plain, "smol-wrong-plain");
            }

            #[test]
            #[ignore = "needs an XMPP server: scripts/test.sh"]
            fn smol_wrong_password_scram() {
                nonblocking::wrong_password(
                    Server::$server,
                    Mechanism::ScramSha1,
                    "smol-wrong-scram",
                );
            }

            #[test]
            #[ignore = "needs an XMPP server: scripts/test.sh"]
            fn smol_message_alice_to_bob() {
                nonblocking::message(Server::$server, "smol-msg");
            }
        }
    };
}

server_tests!(Prosody, prosody);
server_tests!(Ejabberd, ejabberd);
