//! The connection's lifecycle and traffic reach the observer from every runtime (smol, std,
//! tokio), against the loopback XEP-0114 server: connecting, online, delegated,
//! disconnected with its next attempt, connecting again, online again, closed.

mod support;

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use exampple::observe::{DrainProgress, LifecycleEvent, Observer, RequestEvent, Traffic};
use exampple::{AutoConnect, Config, Conn, Disconnect, Element, Router, StanzaError, xml};
use support::{DOMAIN, FakeServer, SECRET, Setup, Which};

const T: Duration = Duration::from_secs(5);

/// Passes each lifecycle event to the test, and adds the traffic up.
struct Watcher {
    lifecycle: Mutex<mpsc::Sender<LifecycleEvent>>,
    traffic: Mutex<(u64, u64)>,
}

impl Observer for Watcher {
    fn request(&self, _: &RequestEvent) {}

    fn lifecycle(&self, event: &LifecycleEvent) {
        let _ = self.lifecycle.lock().unwrap().send(event.clone());
    }

    fn traffic(&self, traffic: &Traffic) {
        let mut totals = self.traffic.lock().unwrap();
        totals.0 += traffic.stanzas_received;
        totals.1 += traffic.stanzas_sent;
    }
}

fn ping(conn: Conn, _: Vec<Element>) -> Result<(), StanzaError> {
    conn.iq_resp([]).send()?;
    Ok(())
}

fn next(events: &mpsc::Receiver<LifecycleEvent>) -> LifecycleEvent {
    events.recv_timeout(T).expect("a lifecycle event")
}

fn lifecycle_reaches_the_observer(which: Which) {
    let server = FakeServer::new();
    let (tx, events) = mpsc::channel();
    let watcher = Arc::new(Watcher {
        lifecycle: Mutex::new(tx),
        traffic: Mutex::new((0, 0)),
    });
    let config = Config::new(DOMAIN, SECRET)
        .port(server.port())
        .auto_connect(AutoConnect::Immediately)
        .reconnect_backoff(Duration::from_millis(50), Duration::from_millis(100));
    let router = Router::new().iq("urn:xmpp", |ns| ns.get("ping", ping));
    let running = support::start(
        which,
        config,
        router,
        Setup {
            observer: Some(watcher.clone()),
            ..Setup::default()
        },
    );
    let address = format!("127.0.0.1:{}", server.port());

    let mut session = server.accept(true);
    assert_eq!(
        next(&events),
        LifecycleEvent::Connecting {
            address: address.clone()
        }
    );
    assert_eq!(
        next(&events),
        LifecycleEvent::Online {
            stream_id: "abc123".into()
        }
    );

    session.write(
        "<message from='localhost' to='component.localhost'>\
           <delegation xmlns='urn:xmpp:delegation:2'><delegated namespace='urn:xmpp:mam:2'/>\
           </delegation></message>",
    );
    assert_eq!(
        next(&events),
        LifecycleEvent::Delegated {
            namespaces: vec!["urn:xmpp:mam:2".into()]
        }
    );
    session.send(&xml!(
        "<iq type='get' id='p1' from='alice@localhost/r' to='{DOMAIN}'><ping xmlns='urn:xmpp:ping'/></iq>"
    ));
    assert_eq!(
        session.receive(T).expect("the answer").attr("id"),
        Some("p1")
    );
    let until = Instant::now() + T;
    while *watcher.traffic.lock().unwrap() != (2, 1) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        *watcher.traffic.lock().unwrap(),
        (2, 1),
        "the delegation and the ping in, the answer out"
    );

    // The server drops the connection: disconnected, and the next attempt comes when told.
    session.close();
    let dropped = Instant::now();
    match next(&events) {
        LifecycleEvent::Disconnected {
            reason: Disconnect::ConnectionLost(_) | Disconnect::ServerClosed,
            reconnect_at,
            attempt: 1,
        } => assert!(reconnect_at <= dropped + Duration::from_millis(200)),
        other => panic!("{other:?}"),
    }
    let session = server.accept(true);
    assert_eq!(next(&events), LifecycleEvent::Connecting { address });
    assert_eq!(
        next(&events),
        LifecycleEvent::Online {
            stream_id: "abc123".into()
        }
    );

    (running.shutdown)(Duration::from_secs(1));
    let mut session = session;
    assert!(session.receive_close(T), "the component closed its stream");
    session.write("</stream:stream>");
    // Nothing in flight: the drain begins and ends at once.
    assert_eq!(
        next(&events),
        LifecycleEvent::Draining {
            progress: DrainProgress::Begin {
                in_flight: 0,
                grace: Duration::from_secs(1)
            }
        }
    );
    assert_eq!(
        next(&events),
        LifecycleEvent::Draining {
            progress: DrainProgress::End
        }
    );
    assert_eq!(next(&events), LifecycleEvent::Closed);
    assert_eq!(running.join.join().unwrap(), Ok(()));
    assert!(events.try_recv().is_err(), "nothing after closed");
}

runtime_tests!(lifecycle_reaches_the_observer);
