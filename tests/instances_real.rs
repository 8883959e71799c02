//! Several instances of one component on real servers, each test on a private server of
//! its own (started with the project's scripts under `$EXAMPPLE_TEST_XMPP_DIR`):
//!
//! - ejabberd with instance domains (`global_routes: false`): two showcase processes, each
//!   with its private domain, answer every roundtrip (their pings' results come back to the
//!   instance that asked); without instance domains the results scatter, and every caller
//!   still gets an answer (a timeout error), never silence.
//! - Prosody allows one connection per component: what it sends a second one (a `conflict`
//!   stream error), and an exampple component that waits as a standby and takes over.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use exampple::c2s::blocking::Client;
use exampple::xml;
use support::instances::{
    COMPONENT, ServerGuard, Showcase, answer_pings, iq_get, login, outcome, xmpp_dir,
};

const T: Duration = Duration::from_secs(15);

/// The ejabberd tests take turns: they share one server, which each starts and stops.
static EJABBERD: Mutex<()> = Mutex::new(());

/// The instance domains' ejabberd of these tests.
fn ejabberd_with_instances() -> ServerGuard {
    let dir = xmpp_dir().join("ejabberd-instances");
    ServerGuard::start(
        "ejabberd-up",
        "ejabberd-down",
        vec![
            ("XMPP_DIR", dir.display().to_string()),
            ("EJABBERD_NODE", "ejabberd-inst@localhost".into()),
            ("EJABBERD_DIST_PORT", "5295".into()),
            ("C2S_PORT", "5228".into()),
            ("COMPONENT_PORT", "5259".into()),
            ("XMPP_DELEGATION", "0".into()),
            (
                "INSTANCE_DOMAINS",
                "i1.component.localhost i2.component.localhost".into(),
            ),
        ],
    )
}

/// Sends `count` roundtrips from `client`, 10 at a time; the outcome of each.
fn roundtrips(client: &Client, count: usize) -> Vec<String> {
    let mut outcomes = Vec::new();
    for _ in 0..count.div_ceil(10) {
        let ids: Vec<String> = (0..10)
            .map(|_| {
                client
                    .send(iq_get(xml!("<roundtrip xmlns='urn:example:roundtrip'/>")))
                    .expect("sent")
            })
            .collect();
        for id in ids {
            let pattern = xml!("<iq id='{id}'/>");
            let answer = client
                .wait_for(&pattern, exampple::matching::Match::Subset, T)
                .map(|a| outcome(&a))
                .unwrap_or_else(|_| "unanswered".into());
            outcomes.push(answer);
        }
    }
    outcomes
}

#[test]
#[ignore = "starts its own ejabberd (scripts/xmpp/ejabberd-up); run by scripts/test.sh"]
fn ejabberd_instance_domains_bring_every_roundtrip_back() {
    let _turn = EJABBERD.lock().unwrap_or_else(|p| p.into_inner());
    let _server = ejabberd_with_instances();
    let logs = xmpp_dir().join("ejabberd-instances/showcases");
    let env = |instance: &str| {
        vec![
            (
                "EXAMPPLE_INSTANCE_DOMAIN",
                format!("{instance}.component.localhost"),
            ),
            ("EXAMPPLE_STANZA_TIMEOUT_MS", "10000".to_string()),
        ]
    };
    let one = Showcase::start("i1", 5259, &logs, &env("i1"));
    let two = Showcase::start("i2", 5259, &logs, &env("i2"));
    for (showcase, instance) in [(&one, "i1"), (&two, "i2")] {
        showcase.wait_online(COMPONENT, T);
        showcase.wait_online(&format!("{instance}.component.localhost"), T);
    }
    let alice = Arc::new(login("127.0.0.1:5228", "alice", "roundtrips"));
    let stop = Arc::new(AtomicBool::new(false));
    let answering = answer_pings(alice.clone(), stop.clone());

    // Both instances take requests (ejabberd balances the shared domain at random).
    let mut names = std::collections::BTreeSet::new();
    for _ in 0..20 {
        let answer = alice
            .request(iq_get(xml!("<instance xmlns='urn:example:instance'/>")), T)
            .expect("an answer");
        let name = answer
            .get_child("instance", "urn:example:instance")
            .and_then(|i| i.attr("name"))
            .unwrap_or_default()
            .to_string();
        names.insert(name);
    }
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        ["i1.component.localhost", "i2.component.localhost"],
        "both instances answer, each naming its own domain"
    );

    let outcomes = roundtrips(&alice, 40);
    let ok = outcomes.iter().filter(|o| *o == "result").count();
    println!(
        "roundtrips with instance domains: {ok}/{} answered with a result",
        outcomes.len()
    );
    assert_eq!(
        ok,
        outcomes.len(),
        "every roundtrip comes back: {outcomes:?}"
    );
    stop.store(true, Ordering::Relaxed);
    let _ = answering.join();
}

#[test]
#[ignore = "starts its own ejabberd (scripts/xmpp/ejabberd-up); run by scripts/test.sh"]
fn ejabberd_without_instance_domains_scatters_results_but_never_hangs_a_caller() {
    let _turn = EJABBERD.lock().unwrap_or_else(|p| p.into_inner());
    let _server = ejabberd_with_instances();
    let logs = xmpp_dir().join("ejabberd-instances/showcases-shared");
    // The call timeout (5 s) ends a roundtrip whose result went to the other instance.
    let env = [("EXAMPPLE_STANZA_TIMEOUT_MS", "10000".to_string())];
    let one = Showcase::start("s1", 5259, &logs, &env);
    let two = Showcase::start("s2", 5259, &logs, &env);
    one.wait_online(COMPONENT, T);
    two.wait_online(COMPONENT, T);
    let alice = Arc::new(login("127.0.0.1:5228", "alice", "scatter"));
    let stop = Arc::new(AtomicBool::new(false));
    let answering = answer_pings(alice.clone(), stop.clone());
    let outcomes = roundtrips(&alice, 20);
    let ok = outcomes.iter().filter(|o| *o == "result").count();
    let timeouts = outcomes
        .iter()
        .filter(|o| *o == "remote-server-timeout")
        .count();
    println!(
        "roundtrips without instance domains: {ok} results, {timeouts} remote-server-timeout of {}",
        outcomes.len()
    );
    assert_eq!(
        ok + timeouts,
        outcomes.len(),
        "every caller is answered: {outcomes:?}"
    );
    let strays: usize = [&one, &two]
        .iter()
        .map(|s| {
            std::fs::read_to_string(&s.log)
                .unwrap_or_default()
                .matches("answers no call of this instance")
                .count()
        })
        .sum();
    assert_eq!(
        strays, timeouts,
        "each lost result is logged as a stray where it landed"
    );
    stop.store(true, Ordering::Relaxed);
    let _ = answering.join();
}

/// Reads from `stream` until `until` holds for what came, or the timeout.
fn read_until(stream: &mut std::net::TcpStream, until: impl Fn(&str) -> bool) -> String {
    use std::io::Read;
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("a timeout");
    let deadline = Instant::now() + T;
    let mut text = String::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline && !until(&text) {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => text.push_str(&String::from_utf8_lossy(&buf[..n])),
            Err(_) => {}
        }
    }
    text
}

/// Opens a component stream at `port` and authenticates; what the server answered.
fn authenticate(port: u16) -> (std::net::TcpStream, String) {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connects");
    stream
        .write_all(
            format!(
                "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' \
                 xmlns:stream='http://etherx.jabber.org/streams' to='{COMPONENT}'>"
            )
            .as_bytes(),
        )
        .expect("written");
    let header = read_until(&mut stream, |t| t.contains(" id="));
    let id = header
        .split(" id=")
        .nth(1)
        .and_then(|rest| rest.get(1..))
        .and_then(|rest| rest.split(['\'', '"']).next())
        .expect("a stream id")
        .to_string();
    let digest = exampple::component::handshake_digest(&id, "secret");
    stream
        .write_all(format!("<handshake>{digest}</handshake>").as_bytes())
        .expect("written");
    let answer = read_until(&mut stream, |t| {
        t.contains("handshake") || t.contains("error")
    });
    (stream, answer)
}

#[test]
#[ignore = "starts its own Prosody (scripts/xmpp/prosody-up); run by scripts/test.sh"]
fn prosody_refuses_a_second_connection_with_conflict_and_the_standby_takes_over() {
    let dir = xmpp_dir().join("prosody-conflict");
    let _server = ServerGuard::start(
        "prosody-up",
        "prosody-down",
        vec![
            ("XMPP_DIR", dir.display().to_string()),
            ("C2S_PORT", "5242".into()),
            ("COMPONENT_PORT", "5272".into()),
            ("XMPP_DELEGATION", "0".into()),
        ],
    );
    // What Prosody really sends: the first connection is accepted, the second refused.
    let (first, accepted) = authenticate(5272);
    assert!(accepted.contains("<handshake/>"), "{accepted}");
    let (_second, refused) = authenticate(5272);
    assert!(
        refused.contains("<conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>")
            && refused.contains("Component already connected"),
        "a conflict stream error: {refused}"
    );
    println!("Prosody to a second connection: {refused}");

    // An exampple instance started meanwhile waits as a standby, and takes over once the
    // first connection is gone.
    let logs = dir.join("showcases");
    let standby = Showcase::start("standby", 5272, &logs, &[]);
    let until = Instant::now() + T;
    while !std::fs::read_to_string(&standby.log)
        .unwrap_or_default()
        .contains("another connection holds component.localhost")
    {
        assert!(Instant::now() < until, "no conflict logged by the standby");
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(first);
    // reconnect_max is 30 s by default: the standby retries within it.
    standby.wait_online(COMPONENT, Duration::from_secs(40));
    let alice = login("127.0.0.1:5242", "alice", "conflict");
    let answer = alice
        .request(iq_get(xml!("<ping xmlns='urn:xmpp:ping'/>")), T)
        .expect("an answer");
    assert_eq!(outcome(&answer), "result");
}
