//! What the component tells an [`Observer`]: each request's end, the connection's life, and
//! its traffic; re-exported (with the documentation) by [`crate::observe`].
//!
//! They live with the component because a lifecycle event carries the component's own
//! reasons ([`Disconnect`], [`ComponentError`]).

use std::time::{Duration, Instant};

use super::Component;
use super::dispatch::InFlight;
use super::event::{ComponentError, Disconnect};
use crate::privilege::Permissions;
use crate::stanza::{StanzaKind, StanzaType};

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestOutcome {
    /// The controller returned `Ok`.
    Success,
    /// The controller returned an error or panicked; the sender got a stanza error.
    Failure,
    /// The controller took longer than `stanza_timeout`; the sender got
    /// `remote-server-timeout`.
    Timeout,
}

impl RequestOutcome {
    /// Every outcome, in the order of their declaration.
    pub const ALL: [RequestOutcome; 3] = [
        RequestOutcome::Success,
        RequestOutcome::Failure,
        RequestOutcome::Timeout,
    ];

    /// `success`, `failure` or `timeout`.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestOutcome::Success => "success",
            RequestOutcome::Failure => "failure",
            RequestOutcome::Timeout => "timeout",
        }
    }
}

/// One handled stanza, for metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestEvent {
    /// How it ended.
    pub outcome: RequestOutcome,
    /// From routing to the end (for a timeout, the `stanza_timeout`).
    pub duration: Duration,
    /// The stanza kind.
    pub kind: StanzaKind,
    /// The stanza type.
    pub stanza_type: StanzaType,
    /// The payload namespace.
    pub xmlns: String,
    /// The stanza id.
    pub id: Option<String>,
    /// The sender.
    pub from: Option<String>,
    /// The recipient.
    pub to: Option<String>,
    /// The controller's name.
    pub controller: String,
}

/// A step in the life of the component's connection, as the core takes it (the same moments
/// as its [`Event`](super::Event)s to the runtime, which the runtimes do not pass on).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum LifecycleEvent {
    /// A connection to `address` is being opened (the first, or a reconnection).
    Connecting {
        /// `host:port`.
        address: String,
    },
    /// The handshake succeeded: the component is online.
    Online {
        /// The server's stream id.
        stream_id: String,
    },
    /// The connection ended; another is tried at `reconnect_at`.
    Disconnected {
        /// Why.
        reason: Disconnect,
        /// When the next attempt starts.
        reconnect_at: Instant,
        /// Which attempt that will be since the component was last online (1 for the first
        /// reconnection after a connection that was online).
        attempt: u32,
    },
    /// The server announced namespaces delegated to the component (XEP-0355).
    Delegated {
        /// The namespaces of this announcement.
        namespaces: Vec<String>,
    },
    /// A server said what it grants the component (XEP-0356), until the connection ends.
    Privileged {
        /// What it granted.
        permissions: Permissions,
    },
    /// A drain moved on (see `Component::drain`).
    Draining {
        /// How far it is.
        progress: DrainProgress,
    },
    /// The component stopped for good: the failure will not heal by itself.
    Failed {
        /// Why.
        error: ComponentError,
    },
    /// The component closed as asked and stopped.
    Closed,
}

impl LifecycleEvent {
    /// A short stable name: `connecting`, `online`, `disconnected`, `delegated`,
    /// `privileged`, `draining`, `failed`, `closed` (for a log field or a metric label).
    pub fn name(&self) -> &'static str {
        match self {
            LifecycleEvent::Connecting { .. } => "connecting",
            LifecycleEvent::Online { .. } => "online",
            LifecycleEvent::Disconnected { .. } => "disconnected",
            LifecycleEvent::Delegated { .. } => "delegated",
            LifecycleEvent::Privileged { .. } => "privileged",
            LifecycleEvent::Draining { .. } => "draining",
            LifecycleEvent::Failed { .. } => "failed",
            LifecycleEvent::Closed => "closed",
        }
    }
}

/// A step of a drain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DrainProgress {
    /// The drain began.
    Begin {
        /// Requests running then.
        in_flight: usize,
        /// How long they have, at most.
        grace: Duration,
    },
    /// A request finished and others are still running.
    Left {
        /// Requests still running.
        in_flight: usize,
    },
    /// The deadline came: the requests still running were answered `service-unavailable`.
    Deadline {
        /// How many.
        abandoned: usize,
    },
    /// The stream is closed: the drain is over.
    End,
}

/// What went through the component since the last report, and where its queues stand now.
///
/// Reported at the end of the `handle_*` calls that moved something (input, the outbox,
/// timers, `send`), never per stanza: the counts add up over the reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Traffic {
    /// Stanzas read from the server since the last report.
    pub stanzas_received: u64,
    /// Stanzas written to the connection since the last report (the keepalive pings
    /// included; a stanza written again after a failed write counts again).
    pub stanzas_sent: u64,
    /// Requests being handled now.
    pub in_flight: usize,
    /// Stanzas waiting for the next connection now.
    pub queued: usize,
}

/// Told what the component does: a [`RequestEvent`] for each handled stanza, a
/// [`LifecycleEvent`] for each step of the connection's life, and its [`Traffic`]. Called
/// on the core's thread: keep it quick (update counters, send to a channel).
pub trait Observer: Send + Sync + 'static {
    /// A request ended.
    fn request(&self, event: &RequestEvent);

    /// The connection moved on (connecting, online, disconnected, ...). Does nothing unless
    /// implemented.
    fn lifecycle(&self, event: &LifecycleEvent) {
        let _ = event;
    }

    /// Stanzas went through or the queues changed since the last report. Does nothing
    /// unless implemented.
    fn traffic(&self, traffic: &Traffic) {
        let _ = traffic;
    }
}

/// The core's running counts, and what the observer was last told of them.
#[derive(Debug, Default)]
pub(super) struct Tally {
    /// Stanzas read from the server, in all.
    pub(super) received: u64,
    reported_received: u64,
    reported_sent: u64,
    reported_in_flight: usize,
    reported_queued: usize,
}

impl Component {
    /// Tells the observer, if any, of a step in the connection's life (`event` is built only
    /// for one).
    pub(super) fn observe_lifecycle(&self, event: impl FnOnce() -> LifecycleEvent) {
        if let Some(observer) = &self.observer {
            observer.lifecycle(&event());
        }
    }

    /// Tells the observer, if any, what went through since the last report, if anything did.
    pub(super) fn report_traffic(&mut self) {
        let Some(observer) = &self.observer else {
            return;
        };
        let tally = &mut self.tally;
        let sent = self.output.stanzas_written();
        let traffic = Traffic {
            stanzas_received: tally.received - tally.reported_received,
            stanzas_sent: sent - tally.reported_sent,
            in_flight: self.requests.len(),
            queued: self.queue.len(),
        };
        if traffic.stanzas_received == 0
            && traffic.stanzas_sent == 0
            && traffic.in_flight == tally.reported_in_flight
            && traffic.queued == tally.reported_queued
        {
            return;
        }
        tally.reported_received = tally.received;
        tally.reported_sent = sent;
        tally.reported_in_flight = traffic.in_flight;
        tally.reported_queued = traffic.queued;
        observer.traffic(&traffic);
    }
}

// With the observer's types rather than in `dispatch`: `dispatch` then needs nothing of
// this module, which names the component's own events.
impl InFlight {
    /// Tells the log and `observer` how the request ended.
    pub(super) fn report(
        &self,
        observer: Option<&dyn Observer>,
        outcome: RequestOutcome,
        duration: Duration,
        detail: Option<&str>,
    ) {
        // The event costs a handful of allocations: build it only for someone who reads it.
        let level = if outcome == RequestOutcome::Success {
            log::Level::Info
        } else {
            log::Level::Error
        };
        if observer.is_none() && !log::log_enabled!(target: "exampple", level) {
            return;
        }
        let conn = &self.conn;
        let event = RequestEvent {
            outcome,
            duration,
            kind: conn.kind(),
            stanza_type: conn.stanza_type(),
            xmlns: conn.xmlns().to_string(),
            id: conn.id().map(str::to_string),
            from: conn.from().map(str::to_string),
            to: conn.to().map(str::to_string),
            controller: self.controller.to_string(),
        };
        log_request(&event, detail);
        if let Some(observer) = observer {
            observer.request(&event);
        }
    }
}

/// `elapsed_time` as exampple writes it: `<n>ms` under a second, `<s>.<mmm>s` above.
///
/// ```
/// use std::time::Duration;
/// use exampple_core::observe::format_elapsed;
/// assert_eq!(format_elapsed(Duration::from_micros(1500)), "1ms");
/// assert_eq!(format_elapsed(Duration::from_millis(5000)), "5.000s");
/// ```
pub fn format_elapsed(elapsed: Duration) -> String {
    let ms = elapsed.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else {
        format!("{}.{:03}s", ms / 1000, ms % 1000)
    }
}

/// Writes the per-stanza log record.
pub(super) fn log_request(event: &RequestEvent, detail: Option<&str>) {
    let level = if event.outcome == RequestOutcome::Success {
        log::Level::Info
    } else {
        log::Level::Error
    };
    if !log::log_enabled!(target: "exampple", level) {
        return;
    }
    let message = match (event.outcome, detail) {
        (RequestOutcome::Success, _) => "success".to_string(),
        (RequestOutcome::Failure, Some(d)) => format!("error: {d}"),
        (RequestOutcome::Failure, None) => "error".to_string(),
        (RequestOutcome::Timeout, _) => "error timeout".to_string(),
    };
    log::log!(
        target: "exampple",
        level,
        elapsed_time = format_elapsed(event.duration).as_str(),
        stanza_id = event.id.as_deref().unwrap_or(""),
        stanza_type = event.kind.as_str(),
        "type" = event.stanza_type.as_str(),
        xmlns = event.xmlns.as_str(),
        from_jid = event.from.as_deref().unwrap_or(""),
        to_jid = event.to.as_deref().unwrap_or("");
        "{message}"
    );
}
