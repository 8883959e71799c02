//! Metrics through the [`metrics`](https://docs.rs/metrics) facade (feature `metrics`): a
//! [`MetricsObserver`] records what the component's [`Observer`] is told, and whatever
//! recorder the program installs (Prometheus, StatsD, ...) exports it.
//!
//! | name | kind | labels | what |
//! |---|---|---|---|
//! | `exampple_requests_total` | counter | `route`, `outcome` | requests handled by a controller |
//! | `exampple_request_duration_seconds` | histogram | `route`, `outcome` | from routing to the controller's end |
//! | `exampple_stanzas_received_total` | counter | | stanzas read from the server |
//! | `exampple_stanzas_sent_total` | counter | | stanzas written to the server |
//! | `exampple_connected` | gauge | | 1 while online (handshake done), else 0 |
//! | `exampple_reconnects_total` | counter | | connection attempts after the first |
//! | `exampple_outbound_queue_depth` | gauge | | stanzas kept for the next connection |
//! | `exampple_requests_in_flight` | gauge | | requests being handled |
//!
//! `route` is the controller's name, `outcome` one of `success`, `failure`, `timeout`: both
//! come from the program, never from a stanza, so the number of series stays bounded
//! whatever senders send. Each route's counters and histograms appear (at zero) when it
//! handles its first request. With a Prometheus recorder, give the duration histogram
//! buckets ([`REQUEST_DURATION_BUCKETS`]), or it is exported as a summary.
//!
//! Install the recorder first, then create the observer: its handles belong to the
//! recorder installed when it registers them.
//!
//! ```
//! use std::sync::Arc;
//! use exampple_core::metrics::MetricsObserver;
//! # use exampple_core::{Component, Config, Router};
//!
//! // metrics::set_global_recorder(...) comes first.
//! let observer = Arc::new(MetricsObserver::new());
//! # let now = std::time::Instant::now();
//! # let mut component = Component::new(Config::new("c.localhost", "secret"), Router::new(), now)?;
//! component.set_observer(observer); // or `.observer(observer)` on a runtime's builder
//! # Ok::<(), exampple_core::ComponentError>(())
//! ```

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use ::metrics::{Counter, Gauge, Histogram, Unit};

use crate::observe::{LifecycleEvent, Observer, RequestEvent, RequestOutcome, Traffic};

/// Requests handled by a controller, by `route` and `outcome`.
pub const REQUESTS_TOTAL: &str = "exampple_requests_total";
/// How long requests took, by `route` and `outcome`.
pub const REQUEST_DURATION_SECONDS: &str = "exampple_request_duration_seconds";
/// Stanzas read from the server.
pub const STANZAS_RECEIVED_TOTAL: &str = "exampple_stanzas_received_total";
/// Stanzas written to the server.
pub const STANZAS_SENT_TOTAL: &str = "exampple_stanzas_sent_total";
/// 1 while the component is online, else 0.
pub const CONNECTED: &str = "exampple_connected";
/// Connection attempts after the first.
pub const RECONNECTS_TOTAL: &str = "exampple_reconnects_total";
/// Stanzas kept for the next connection.
pub const OUTBOUND_QUEUE_DEPTH: &str = "exampple_outbound_queue_depth";
/// Requests being handled.
pub const REQUESTS_IN_FLIGHT: &str = "exampple_requests_in_flight";

/// Histogram buckets (seconds) that suit request durations, from a millisecond to the
/// default `stanza_timeout` and beyond: for a recorder that asks for buckets (Prometheus's
/// `set_buckets_for_metric`).
pub const REQUEST_DURATION_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The series of one route: a counter and a histogram per outcome.
struct RouteSeries {
    requests: [Counter; 3],
    durations: [Histogram; 3],
}

impl RouteSeries {
    fn register(route: &str) -> RouteSeries {
        let route = route.to_string();
        RouteSeries {
            requests: RequestOutcome::ALL.map(|outcome| {
                ::metrics::counter!(REQUESTS_TOTAL, "route" => route.clone(), "outcome" => outcome.as_str())
            }),
            durations: RequestOutcome::ALL.map(|outcome| {
                ::metrics::histogram!(REQUEST_DURATION_SECONDS, "route" => route.clone(), "outcome" => outcome.as_str())
            }),
        }
    }
}

/// An [`Observer`] that records the component's requests, connection and traffic as the
/// metrics listed in the [module documentation](self), through the recorder installed when
/// it was created.
pub struct MetricsObserver {
    stanzas_received: Counter,
    stanzas_sent: Counter,
    connected: Gauge,
    reconnects: Counter,
    queue_depth: Gauge,
    in_flight: Gauge,
    /// Whether a connection was attempted already (the next one is a reconnection).
    attempted: AtomicBool,
    /// The series of each route seen. Routes are the program's controllers, so this stays
    /// small; the lock is only ever taken on the core's thread.
    routes: Mutex<HashMap<String, RouteSeries>>,
}

impl MetricsObserver {
    /// Describes the metrics to the installed recorder and registers them: the connection
    /// gauge starts at 0, the counters at 0.
    pub fn new() -> MetricsObserver {
        describe();
        let observer = MetricsObserver {
            stanzas_received: ::metrics::counter!(STANZAS_RECEIVED_TOTAL),
            stanzas_sent: ::metrics::counter!(STANZAS_SENT_TOTAL),
            connected: ::metrics::gauge!(CONNECTED),
            reconnects: ::metrics::counter!(RECONNECTS_TOTAL),
            queue_depth: ::metrics::gauge!(OUTBOUND_QUEUE_DEPTH),
            in_flight: ::metrics::gauge!(REQUESTS_IN_FLIGHT),
            attempted: AtomicBool::new(false),
            routes: Mutex::new(HashMap::new()),
        };
        // Present from the start, so that a scrape before any traffic shows them.
        observer.connected.set(0.0);
        observer.queue_depth.set(0.0);
        observer.in_flight.set(0.0);
        for counter in [
            &observer.stanzas_received,
            &observer.stanzas_sent,
            &observer.reconnects,
        ] {
            counter.increment(0);
        }
        observer
    }
}

impl Default for MetricsObserver {
    fn default() -> Self {
        MetricsObserver::new()
    }
}

impl std::fmt::Debug for MetricsObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsObserver").finish_non_exhaustive()
    }
}

fn outcome_index(outcome: RequestOutcome) -> usize {
    match outcome {
        RequestOutcome::Success => 0,
        RequestOutcome::Failure => 1,
        RequestOutcome::Timeout => 2,
    }
}

impl Observer for MetricsObserver {
    fn request(&self, event: &RequestEvent) {
        // A poisoned lock only means a recorder panicked mid-update: the map is still whole.
        let mut routes = self
            .routes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !routes.contains_key(event.controller.as_str()) {
            let series = RouteSeries::register(&event.controller);
            routes.insert(event.controller.clone(), series);
        }
        let Some(series) = routes.get(event.controller.as_str()) else {
            return;
        };
        let i = outcome_index(event.outcome);
        series.requests[i].increment(1);
        series.durations[i].record(event.duration.as_secs_f64());
    }

    fn lifecycle(&self, event: &LifecycleEvent) {
        match event {
            LifecycleEvent::Connecting { .. } if self.attempted.swap(true, Ordering::Relaxed) => {
                self.reconnects.increment(1);
            }
            LifecycleEvent::Online { .. } => self.connected.set(1.0),
            LifecycleEvent::Disconnected { .. }
            | LifecycleEvent::Failed { .. }
            | LifecycleEvent::Closed => self.connected.set(0.0),
            _ => {}
        }
    }

    fn traffic(&self, traffic: &Traffic) {
        self.stanzas_received.increment(traffic.stanzas_received);
        self.stanzas_sent.increment(traffic.stanzas_sent);
        self.in_flight.set(traffic.in_flight as f64);
        self.queue_depth.set(traffic.queued as f64);
    }
}

/// Describes each metric (unit and help text) to the installed recorder.
fn describe() {
    ::metrics::describe_counter!(
        REQUESTS_TOTAL,
        Unit::Count,
        "Requests handled by a controller, by route (controller) and outcome."
    );
    ::metrics::describe_histogram!(
        REQUEST_DURATION_SECONDS,
        Unit::Seconds,
        "How long requests took, from routing to the controller's end, by route and outcome."
    );
    ::metrics::describe_counter!(
        STANZAS_RECEIVED_TOTAL,
        Unit::Count,
        "Stanzas read from the XMPP server."
    );
    ::metrics::describe_counter!(
        STANZAS_SENT_TOTAL,
        Unit::Count,
        "Stanzas written to the XMPP server."
    );
    ::metrics::describe_gauge!(
        CONNECTED,
        "1 while the component is online (handshake done), else 0."
    );
    ::metrics::describe_counter!(
        RECONNECTS_TOTAL,
        Unit::Count,
        "Connection attempts after the first."
    );
    ::metrics::describe_gauge!(
        OUTBOUND_QUEUE_DEPTH,
        Unit::Count,
        "Stanzas kept for the next connection while disconnected."
    );
    ::metrics::describe_gauge!(
        REQUESTS_IN_FLIGHT,
        Unit::Count,
        "Requests being handled by controllers."
    );
}
