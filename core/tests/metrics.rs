//! The `metrics` feature: what `MetricsObserver` records for given XML traffic, read back
//! from a debugging recorder.

mod wire;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use exampple_core::metrics::{
    CONNECTED, MetricsObserver, OUTBOUND_QUEUE_DEPTH, RECONNECTS_TOTAL, REQUEST_DURATION_SECONDS,
    REQUESTS_IN_FLIGHT, REQUESTS_TOTAL, STANZAS_RECEIVED_TOTAL, STANZAS_SENT_TOTAL,
};
use exampple_core::xml;
use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use metrics_util::registry::{AtomicStorage, Registry};
use wire::Wire;

/// A recorder that keeps every value as it stands (a debugging recorder's snapshot resets
/// them), and what was described.
struct Kept {
    registry: Registry<Key, AtomicStorage>,
    described: std::sync::Mutex<Vec<String>>,
}

impl Kept {
    fn new() -> Kept {
        Kept {
            registry: Registry::atomic(),
            described: Default::default(),
        }
    }

    fn key(name: &str, labels: &[(&str, &str)]) -> Key {
        let labels: Vec<metrics::Label> = labels
            .iter()
            .map(|(k, v)| metrics::Label::new(k.to_string(), v.to_string()))
            .collect();
        Key::from_parts(name.to_string(), labels)
    }

    fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        let counters = self.registry.get_counter_handles();
        let counter = counters
            .get(&Kept::key(name, labels))
            .unwrap_or_else(|| panic!("no {name} {labels:?} in {:?}", counters.keys()));
        counter.load(Ordering::SeqCst)
    }

    fn gauge(&self, name: &str) -> f64 {
        let gauges = self.registry.get_gauge_handles();
        let gauge = gauges.get(&Kept::key(name, &[])).expect(name);
        f64::from_bits(gauge.load(Ordering::SeqCst))
    }

    fn durations(&self, labels: &[(&str, &str)]) -> Vec<f64> {
        let histograms = self.registry.get_histogram_handles();
        let histogram = histograms
            .get(&Kept::key(REQUEST_DURATION_SECONDS, labels))
            .unwrap_or_else(|| panic!("no durations for {labels:?}"));
        histogram.data()
    }

    /// Every label value of every series.
    fn label_values(&self) -> Vec<String> {
        let mut keys: Vec<Key> = self.registry.get_counter_handles().into_keys().collect();
        keys.extend(self.registry.get_histogram_handles().into_keys());
        keys.iter()
            .flat_map(|key| {
                key.labels()
                    .map(|l| l.value().to_string())
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    fn describe(&self, name: KeyName) {
        self.described
            .lock()
            .unwrap()
            .push(name.as_str().to_string());
    }
}

impl Recorder for Kept {
    fn describe_counter(&self, key: KeyName, _: Option<Unit>, _: SharedString) {
        self.describe(key);
    }

    fn describe_gauge(&self, key: KeyName, _: Option<Unit>, _: SharedString) {
        self.describe(key);
    }

    fn describe_histogram(&self, key: KeyName, _: Option<Unit>, _: SharedString) {
        self.describe(key);
    }

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        self.registry
            .get_or_create_counter(key, |c| Counter::from_arc(c.clone()))
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        self.registry
            .get_or_create_gauge(key, |g| Gauge::from_arc(g.clone()))
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        self.registry
            .get_or_create_histogram(key, |h| Histogram::from_arc(h.clone()))
    }
}

fn iq(id: &str, payload: &str) -> String {
    format!(
        "<iq type='get' id='{id}' from='alice@localhost/r' to='component.localhost'>{payload}</iq>"
    )
}

// The routes are the controllers' names (their paths in this test crate).
const PING: &str = "metrics::wire::ping";
const OOPS: &str = "metrics::wire::oops";
const SLOW: &str = "metrics::wire::slow";

#[test]
fn requests_connection_and_traffic_are_recorded() {
    let kept = Kept::new();
    metrics::with_local_recorder(&kept, || {
        let mut wire = Wire::new();
        wire.core.set_observer(Arc::new(MetricsObserver::new()));
        // Described and present before any traffic.
        for name in [
            REQUESTS_TOTAL,
            REQUEST_DURATION_SECONDS,
            CONNECTED,
            STANZAS_SENT_TOTAL,
        ] {
            assert!(
                kept.described.lock().unwrap().iter().any(|d| d == name),
                "{name}"
            );
        }
        assert_eq!(kept.gauge(CONNECTED), 0.0);
        assert_eq!(kept.counter(STANZAS_RECEIVED_TOTAL, &[]), 0);

        wire.connect_and_handshake("sid");
        assert_eq!(kept.gauge(CONNECTED), 1.0);

        for id in ["p1", "p2", "p3"] {
            wire.input(&iq(id, "<ping xmlns='urn:xmpp:ping'/>"));
        }
        wire.input(&iq("o1", "<oops xmlns='urn:example:oops'/>"));
        assert!(wire.sent().contains("not-allowed"));
        wire.input(&iq("s1", "<slow xmlns='urn:example:slow'/>"));
        assert_eq!(kept.gauge(REQUESTS_IN_FLIGHT), 1.0);
        wire.now += Duration::from_secs(10);
        wire.core.handle_timeout(wire.now);
        assert!(wire.sent().contains("remote-server-timeout"));
        assert_eq!(kept.gauge(REQUESTS_IN_FLIGHT), 0.0);
        // Unrouted, in a namespace the sender chose: read, refused, never a label.
        wire.input(&iq("x1", "<query xmlns='urn:sender:chosen'/>"));
        assert!(wire.sent().contains("service-unavailable"));

        let requests = |route, outcome| {
            kept.counter(REQUESTS_TOTAL, &[("route", route), ("outcome", outcome)])
        };
        assert_eq!(requests(PING, "success"), 3);
        assert_eq!(requests(PING, "failure"), 0);
        assert_eq!(requests(OOPS, "failure"), 1);
        assert_eq!(requests(SLOW, "timeout"), 1);
        assert_eq!(
            kept.durations(&[("route", SLOW), ("outcome", "timeout")]),
            [5.0],
            "a timeout lasts the stanza_timeout"
        );
        assert_eq!(
            kept.durations(&[("route", PING), ("outcome", "success")])
                .len(),
            3
        );
        let labels = kept.label_values();
        assert!(
            labels
                .iter()
                .all(|l| !l.contains("urn:") && !l.contains('@')),
            "no label comes from a stanza: {labels:?}"
        );
        assert_eq!(kept.counter(STANZAS_RECEIVED_TOTAL, &[]), 6);
        assert_eq!(
            kept.counter(STANZAS_SENT_TOTAL, &[]),
            6,
            "3 results, 3 errors"
        );

        // The server goes away: disconnected, what is sent waits, then a reconnection.
        wire.input("</stream:stream>");
        wire.sent();
        assert_eq!(kept.gauge(CONNECTED), 0.0);
        wire.core
            .sender()
            .send(xml!(
                "<message to='bob@localhost' id='m1'><body>later</body></message>"
            ))
            .unwrap();
        wire.core.handle_outbox(wire.now);
        assert_eq!(kept.gauge(OUTBOUND_QUEUE_DEPTH), 1.0);
        assert_eq!(kept.counter(RECONNECTS_TOTAL, &[]), 0);
        wire.now = wire.core.poll_timeout().unwrap();
        wire.core.handle_timeout(wire.now);
        wire.handshake("sid-2");
        assert!(wire.sent().contains("id='m1'"));
        assert_eq!(kept.counter(RECONNECTS_TOTAL, &[]), 1);
        assert_eq!(kept.gauge(CONNECTED), 1.0);
        assert_eq!(kept.gauge(OUTBOUND_QUEUE_DEPTH), 0.0);
        assert_eq!(kept.counter(STANZAS_SENT_TOTAL, &[]), 7);

        wire.core.close(wire.now, Duration::from_secs(1));
        wire.input("</stream:stream>");
        assert_eq!(kept.gauge(CONNECTED), 0.0);
    });
}
