//! What an observer is told, wire level: the connection's lifecycle in order through
//! connect, online, delegation, disconnections, reconnections, rejection and close, and the
//! traffic counts for given XML in and out.

mod wire;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use exampple_core::observe::{DrainProgress, LifecycleEvent, Observer, RequestEvent, Traffic};
use exampple_core::{ComponentError, Disconnect, xml};
use wire::Wire;

/// A server's stream header without an id (how Prosody opens before refusing a domain).
const HEADER_NO_ID: &str = "<stream:stream xmlns='jabber:component:accept' \
     xmlns:stream='http://etherx.jabber.org/streams' from='component.localhost'>";

/// Everything the observer is told, in order.
#[derive(Default)]
struct Recorder {
    lifecycle: Mutex<Vec<LifecycleEvent>>,
    traffic: Mutex<Vec<Traffic>>,
    requests: Mutex<Vec<RequestEvent>>,
}

impl Observer for Recorder {
    fn request(&self, event: &RequestEvent) {
        self.requests.lock().unwrap().push(event.clone());
    }

    fn lifecycle(&self, event: &LifecycleEvent) {
        self.lifecycle.lock().unwrap().push(event.clone());
    }

    fn traffic(&self, traffic: &Traffic) {
        self.traffic.lock().unwrap().push(*traffic);
    }
}

impl Recorder {
    fn take_lifecycle(&self) -> Vec<LifecycleEvent> {
        std::mem::take(&mut *self.lifecycle.lock().unwrap())
    }

    /// The stanzas received and sent over every report so far, and the last gauges.
    fn totals(&self) -> (u64, u64, usize, usize) {
        let reports = self.traffic.lock().unwrap();
        let last = reports.last().copied().unwrap_or_default();
        (
            reports.iter().map(|t| t.stanzas_received).sum(),
            reports.iter().map(|t| t.stanzas_sent).sum(),
            last.in_flight,
            last.queued,
        )
    }
}

fn observed() -> (Wire, Arc<Recorder>) {
    let mut wire = Wire::new();
    let recorder = Arc::new(Recorder::default());
    wire.core.set_observer(recorder.clone());
    (wire, recorder)
}

#[test]
fn lifecycle_in_order_through_connect_online_delegation_disconnect_reconnect_close() {
    let (mut wire, recorder) = observed();
    wire.connect_and_handshake("sid-1");
    let events = recorder.take_lifecycle();
    assert_eq!(
        events,
        [
            LifecycleEvent::Connecting {
                address: "127.0.0.1:5252".into()
            },
            LifecycleEvent::Online {
                stream_id: "sid-1".into()
            },
        ]
    );

    // XEP-0355: the server announces what it delegates.
    wire.input(
        "<message from='localhost' to='component.localhost'>\
           <delegation xmlns='urn:xmpp:delegation:2'>\
             <delegated namespace='urn:xmpp:mam:2'/><delegated namespace='jabber:iq:roster'/>\
           </delegation></message>",
    );
    assert_eq!(
        recorder.take_lifecycle(),
        [LifecycleEvent::Delegated {
            namespaces: vec!["urn:xmpp:mam:2".into(), "jabber:iq:roster".into()]
        }]
    );

    // The server closes its stream: disconnected, the next attempt the first since online.
    wire.input("</stream:stream>");
    assert_eq!(wire.sent(), "</stream:stream>");
    let events = recorder.take_lifecycle();
    let [
        LifecycleEvent::Disconnected {
            reason: Disconnect::ServerClosed,
            reconnect_at,
            attempt: 1,
        },
    ] = events.as_slice()
    else {
        panic!("{events:?}")
    };
    assert!(*reconnect_at > wire.now);
    assert_eq!(wire.core.poll_timeout(), Some(*reconnect_at));

    // The reconnection fails, then the next one comes back online.
    wire.now = *reconnect_at;
    wire.core.handle_timeout(wire.now);
    wire.core
        .handle_connect_failed(wire.now, "connection refused");
    let events = recorder.take_lifecycle();
    let [
        LifecycleEvent::Connecting { address },
        LifecycleEvent::Disconnected {
            reason: Disconnect::ConnectFailed(refused),
            reconnect_at,
            attempt: 2,
        },
    ] = events.as_slice()
    else {
        panic!("{events:?}")
    };
    assert_eq!(
        (address.as_str(), refused.as_str()),
        ("127.0.0.1:5252", "connection refused")
    );
    wire.now = *reconnect_at;
    wire.core.handle_timeout(wire.now);
    wire.handshake("sid-2");
    assert_eq!(
        recorder.take_lifecycle(),
        [
            LifecycleEvent::Connecting {
                address: "127.0.0.1:5252".into()
            },
            LifecycleEvent::Online {
                stream_id: "sid-2".into()
            },
        ]
    );

    // A close asked for: the stream is closed, the server answers, closed.
    wire.core.close(wire.now, Duration::from_secs(1));
    assert_eq!(wire.sent(), "</stream:stream>");
    assert_eq!(
        recorder.take_lifecycle(),
        [LifecycleEvent::Draining {
            progress: DrainProgress::Begin {
                in_flight: 0,
                grace: Duration::from_secs(1)
            }
        }],
        "a drain with nothing in flight, and not closed before the server's close"
    );
    wire.input("</stream:stream>");
    assert_eq!(
        recorder.take_lifecycle(),
        [
            LifecycleEvent::Draining {
                progress: DrainProgress::End
            },
            LifecycleEvent::Closed
        ]
    );
}

#[test]
fn a_rejected_component_is_told_failed_with_the_servers_reason() {
    let (mut wire, recorder) = observed();
    wire.core.connect(wire.now);
    wire.core.handle_connected(wire.now);
    wire.sent();
    wire.input(HEADER_NO_ID);
    wire.input(
        "<stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>",
    );
    let events = recorder.take_lifecycle();
    let [
        LifecycleEvent::Connecting { .. },
        LifecycleEvent::Failed {
            error: ComponentError::Rejected(error),
        },
    ] = events.as_slice()
    else {
        panic!("{events:?}")
    };
    assert_eq!(error.condition, "not-authorized");
    assert_eq!(events[1].name(), "failed");
}

#[test]
fn a_handshake_timeout_is_a_disconnection() {
    let (mut wire, recorder) = observed();
    wire.core.connect(wire.now);
    wire.core.handle_connected(wire.now);
    wire.sent();
    // The server never answers the header.
    let deadline = wire.core.poll_timeout().expect("the opening's deadline");
    wire.now = deadline;
    wire.core.handle_timeout(wire.now);
    let events = recorder.take_lifecycle();
    assert!(
        matches!(
            events.as_slice(),
            [
                LifecycleEvent::Connecting { .. },
                LifecycleEvent::Disconnected {
                    reason: Disconnect::HandshakeTimeout,
                    attempt: 1,
                    ..
                }
            ]
        ),
        "{events:?}"
    );
}

#[test]
fn traffic_counts_the_stanzas_in_and_out_and_the_queue() {
    let (mut wire, recorder) = observed();
    wire.connect_and_handshake("sid");
    assert_eq!(
        recorder.totals(),
        (0, 0, 0, 0),
        "the handshake is no stanza"
    );

    for id in ["p1", "p2"] {
        wire.input(&format!(
            "<iq type='get' id='{id}' from='alice@localhost/r' to='component.localhost'>\
               <ping xmlns='urn:xmpp:ping'/></iq>"
        ));
        assert_eq!(
            wire.sent(),
            format!(
                "<iq from='component.localhost' id='{id}' to='alice@localhost/r' type='result'/>"
            )
        );
    }
    // Unrouted: read, dropped, nothing sent.
    wire.input(
        "<message from='alice@localhost/r' to='component.localhost'><body>hi</body></message>",
    );
    assert_eq!(wire.sent(), "");
    // Refused by routing: one error sent.
    wire.input(
        "<iq type='get' id='u1' from='alice@localhost/r' to='component.localhost'>\
           <query xmlns='urn:example:unknown'/></iq>",
    );
    assert!(wire.sent().contains("service-unavailable"));
    assert_eq!(recorder.totals(), (4, 3, 0, 0));
    assert_eq!(recorder.requests.lock().unwrap().len(), 2);

    // Disconnected: what is sent meanwhile waits, and the queue is reported.
    wire.input("</stream:stream>");
    wire.sent();
    let sender = wire.core.sender();
    for id in ["m1", "m2"] {
        sender
            .send(xml!(
                "<message to='bob@localhost' id='{id}'><body>later</body></message>"
            ))
            .unwrap();
    }
    wire.core.handle_outbox(wire.now);
    assert_eq!(recorder.totals(), (4, 3, 0, 2));

    // Back online: both written, the queue is empty again.
    let reconnect_at = wire.core.poll_timeout().unwrap();
    wire.now = reconnect_at;
    wire.core.handle_timeout(wire.now);
    wire.handshake("sid-2");
    let sent = wire.sent();
    assert!(
        sent.contains("id='m1'") && sent.contains("id='m2'"),
        "{sent}"
    );
    assert_eq!(recorder.totals(), (4, 5, 0, 0));
}

#[test]
fn traffic_reports_requests_in_flight() {
    let (mut wire, recorder) = observed();
    wire.connect_and_handshake("sid");
    wire.input(
        "<iq type='get' id='s1' from='alice@localhost/r' to='component.localhost'>\
           <slow xmlns='urn:example:slow'/></iq>",
    );
    assert_eq!(recorder.totals(), (1, 0, 1, 0));
    // Its stanza_timeout passes: answered with remote-server-timeout, nothing in flight.
    wire.now += Duration::from_secs(60);
    wire.core.handle_timeout(wire.now);
    assert!(wire.sent().contains("remote-server-timeout"));
    assert_eq!(recorder.totals(), (1, 1, 0, 0));
}

#[test]
fn without_an_observer_the_component_serves_as_before() {
    // The same traffic with no observer set: the component serves as before.
    let mut wire = Wire::new();
    wire.connect_and_handshake("sid");
    wire.input(
        "<iq type='get' id='p1' from='alice@localhost/r' to='component.localhost'>\
           <ping xmlns='urn:xmpp:ping'/></iq>",
    );
    assert_eq!(
        wire.sent(),
        "<iq from='component.localhost' id='p1' to='alice@localhost/r' type='result'/>"
    );
}

#[test]
fn an_observer_set_after_an_immediate_connect_is_told_connecting() {
    let now = std::time::Instant::now();
    let config = exampple_core::Config::new(wire::DOMAIN, "secret")
        .auto_connect(exampple_core::AutoConnect::Immediately);
    let mut core = exampple_core::Component::new(config, wire::router(), now).unwrap();
    let recorder = Arc::new(Recorder::default());
    core.set_observer(recorder.clone());
    assert_eq!(
        recorder.take_lifecycle(),
        [LifecycleEvent::Connecting {
            address: "127.0.0.1:5252".into()
        }]
    );
    // Set again once connected: nothing to catch up on.
    core.handle_connected(now);
    core.set_observer(recorder.clone());
    assert!(recorder.take_lifecycle().is_empty());
}
