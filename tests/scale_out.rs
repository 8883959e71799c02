//! Scale-out on a real 2-node ejabberd cluster (started by the test itself with
//! `scripts/xmpp/ejabberd-cluster-up` under `$EXAMPPLE_TEST_XMPP_DIR/cluster`, stopped at its
//! end): the showcase as three instances, two on node 1 and one on node 2, each with its
//! private instance domain; alice on node 1 and bob on node 2 send requests (slow ones too).
//!
//! 1. baseline, three instances: every request answered;
//! 2. drain: SIGTERM to an instance on node 1 while slow requests are in flight: every
//!    request answered (those past the drain's deadline with `service-unavailable`), and the
//!    instance exits 0;
//! 3. roundtrips with two instances: 100% come back (each instance pings from its domain);
//! 4. kill: SIGKILL to the other instance on node 1 with slow requests in flight: only its
//!    in-flight requests may be lost; the requests sent after it fail over to node 2;
//! 5. restart: the killed instance is started again and takes traffic again.
//!
//! It prints a table of requests sent, answered, errored and lost per event (the README
//! shows it).

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use exampple::c2s::blocking::Client;
use exampple::matching::Match;
use exampple::{Element, xml};
use support::instances::{
    COMPONENT, ServerGuard, Showcase, answer_pings, iq_get, login, outcome, xmpp_dir,
};

const T: Duration = Duration::from_secs(20);
const NODE_1: u16 = 5255;
const NODE_2: u16 = 5256;
/// A slow request that finishes within the drain.
const SLOW_MS: u64 = 1_500;
/// A slow request that outlasts the drain.
const LONG_MS: u64 = 8_000;
const DRAIN_SECS: &str = "3";

/// What came of a batch of requests.
#[derive(Default, Debug, Clone, Copy)]
struct Tally {
    sent: usize,
    answered: usize,
    errored: usize,
    lost: usize,
}

impl Tally {
    fn add(&mut self, other: Tally) {
        self.sent += other.sent;
        self.answered += other.answered;
        self.errored += other.errored;
        self.lost += other.lost;
    }
}

/// A user of the cluster: their client and what answers the component's pings to them.
struct User {
    client: Arc<Client>,
    stop: Arc<AtomicBool>,
    answering: Option<std::thread::JoinHandle<()>>,
}

impl User {
    fn login(c2s: &str, name: &str) -> User {
        let client = Arc::new(login(c2s, name, "scale-out"));
        let stop = Arc::new(AtomicBool::new(false));
        let answering = Some(answer_pings(client.clone(), stop.clone()));
        User {
            client,
            stop,
            answering,
        }
    }

    /// Sends every payload of `payloads` at once; the ids, in order.
    fn send(&self, payloads: &[Element]) -> Vec<String> {
        payloads
            .iter()
            .map(|p| self.client.send(iq_get(p.clone())).expect("sent"))
            .collect()
    }

    /// Waits until `deadline` for the answer to each of `ids`: tallied, and the answers.
    fn collect(&self, ids: &[String], deadline: Instant) -> (Tally, Vec<Option<Element>>) {
        let mut tally = Tally {
            sent: ids.len(),
            ..Tally::default()
        };
        let mut answers = Vec::new();
        for id in ids {
            let left = deadline.saturating_duration_since(Instant::now());
            let answer = self
                .client
                .wait_for(&xml!("<iq id='{id}'/>"), Match::Subset, left)
                .ok();
            match answer.as_ref().map(outcome).as_deref() {
                Some("result") => tally.answered += 1,
                Some(_) => tally.errored += 1,
                None => tally.lost += 1,
            }
            answers.push(answer);
        }
        (tally, answers)
    }
}

impl Drop for User {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(answering) = self.answering.take() {
            let _ = answering.join();
        }
    }
}

fn ping() -> Element {
    xml!("<ping xmlns='urn:xmpp:ping'/>")
}

fn slow(ms: u64) -> Element {
    xml!("<slow xmlns='urn:example:slow' ms='{ms}'/>")
}

fn instance() -> Element {
    xml!("<instance xmlns='urn:example:instance'/>")
}

fn roundtrip() -> Element {
    xml!("<roundtrip xmlns='urn:example:roundtrip'/>")
}

/// A mixed batch: pings, instance names, slow requests and one that outlasts a drain.
fn batch() -> Vec<Element> {
    let mut payloads = Vec::new();
    for _ in 0..10 {
        payloads.push(ping());
    }
    for _ in 0..4 {
        payloads.push(instance());
    }
    for _ in 0..5 {
        payloads.push(slow(SLOW_MS));
    }
    payloads.push(slow(LONG_MS));
    payloads
}

/// Sends `payloads` from every user, runs `during` once they are in flight, and tallies
/// the answers (and the instance names among them).
fn run_batch(
    users: &[&User],
    payloads: &[Element],
    during: impl FnOnce(),
) -> (Tally, std::collections::BTreeSet<String>) {
    let sent: Vec<Vec<String>> = users.iter().map(|u| u.send(payloads)).collect();
    // The controllers are running: slow requests are in flight.
    std::thread::sleep(Duration::from_millis(300));
    during();
    let deadline = Instant::now() + T;
    let mut total = Tally::default();
    let mut names = std::collections::BTreeSet::new();
    for (user, ids) in users.iter().zip(&sent) {
        let (tally, answers) = user.collect(ids, deadline);
        total.add(tally);
        for answer in answers.iter().flatten() {
            if let Some(name) = answer
                .get_child("instance", "urn:example:instance")
                .and_then(|i| i.attr("name"))
            {
                names.insert(name.to_string());
            }
        }
    }
    (total, names)
}

fn start(name: &str, port: u16) -> Showcase {
    let logs = xmpp_dir().join("cluster/showcases");
    let showcase = Showcase::start(
        name,
        port,
        &logs,
        &[
            (
                "EXAMPPLE_INSTANCE_DOMAIN",
                format!("{name}.component.localhost"),
            ),
            ("EXAMPPLE_STANZA_TIMEOUT_MS", "20000".into()),
            ("EXAMPPLE_DRAIN_SECS", DRAIN_SECS.into()),
        ],
    );
    showcase.wait_online(COMPONENT, T);
    showcase.wait_online(&format!("{name}.component.localhost"), T);
    showcase
}

#[test]
#[ignore = "starts its own 2-node ejabberd cluster (scripts/xmpp/ejabberd-cluster-up); run by scripts/test.sh"]
fn three_instances_on_a_cluster_drained_killed_and_restarted() {
    let _cluster = ServerGuard::start(
        "ejabberd-cluster-up",
        "ejabberd-cluster-down",
        vec![
            (
                "CLUSTER_DIR",
                xmpp_dir().join("cluster").display().to_string(),
            ),
            ("XMPP_DELEGATION", "0".into()),
            (
                "INSTANCE_DOMAINS",
                "i1.component.localhost i2.component.localhost i3.component.localhost".into(),
            ),
        ],
    );
    let mut i1 = start("i1", NODE_1);
    let i2 = start("i2", NODE_1);
    let _i3 = start("i3", NODE_2);
    let alice = User::login("127.0.0.1:5225", "alice");
    let bob = User::login("127.0.0.1:5226", "bob");
    let users = [&alice, &bob];
    let mut table: Vec<(&str, Tally)> = Vec::new();

    let (baseline, names) = run_batch(&users, &batch(), || {});
    table.push(("baseline, 3 instances", baseline));
    assert_eq!(baseline.lost, 0, "{baseline:?}");
    assert!(names.len() >= 2, "several instances answer: {names:?}");

    let (drain, _) = run_batch(&users, &batch(), || i1.signal("TERM"));
    table.push(("drain (SIGTERM i1)", drain));
    let status = i1.exit_within(T).expect("i1 exits after its drain");
    assert!(status.success(), "a drained instance exits 0, not {status}");

    let roundtrips: Vec<Element> = (0..20).map(|_| roundtrip()).collect();
    let (two, _) = run_batch(&users, &roundtrips, || {});
    table.push(("roundtrips, 2 instances", two));

    let (kill, _) = run_batch(&users, &batch(), || i2.signal("KILL"));
    table.push(("kill (SIGKILL i2)", kill));
    let (failover, names) = run_batch(&users, &batch(), || {});
    table.push(("after the kill, 1 instance", failover));
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        ["i3.component.localhost"],
        "the survivor takes everything"
    );

    drop(i2);
    let _i2 = start("i2", NODE_1);
    let (restart, names) = run_batch(&users, &batch(), || {});
    table.push(("restart (i2 again)", restart));

    println!("\n| event | sent | answered | errored | lost |\n|---|---|---|---|---|");
    for (event, t) in &table {
        println!(
            "| {event} | {} | {} | {} | {} |",
            t.sent, t.answered, t.errored, t.lost
        );
    }

    assert_eq!(drain.lost, 0, "a drain answers every request: {drain:?}");
    assert_eq!(
        two.answered, two.sent,
        "100% of roundtrips with two instances: {two:?}"
    );
    // Only the killed instance's requests in flight may be lost: at most the slow ones.
    let slow_per_batch = 2 * 6;
    assert!(kill.lost <= slow_per_batch, "{kill:?}");
    assert_eq!(failover.lost + failover.errored, 0, "{failover:?}");
    assert_eq!(restart.lost + restart.errored, 0, "{restart:?}");
    assert!(
        names.contains("i2.component.localhost"),
        "the restarted instance takes traffic again: {names:?}"
    );
}
