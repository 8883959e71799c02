//! Observability: request events for metrics, and the per-stanza log record.
//!
//! Every routed stanza ends in exactly one [`RequestEvent`] (success, failure or timeout,
//! with its duration) delivered to the [`Observer`] set on the component, and in one `log`
//! record (`info` on success, `error` otherwise) with the key-values `elapsed_time`,
//! `stanza_id`, `stanza_type`, `type`, `xmlns`, `from_jid` and `to_jid`.
//!
//! ```
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use exampple_core::observe::{Observer, RequestEvent, RequestOutcome};
//!
//! #[derive(Default)]
//! struct Metrics { failures: AtomicU64 }
//!
//! impl Observer for Metrics {
//!     fn request(&self, event: &RequestEvent) {
//!         if event.outcome != RequestOutcome::Success {
//!             self.failures.fetch_add(1, Ordering::Relaxed);
//!         }
//!     }
//! }
//! ```

use std::time::Duration;

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

/// Receives a [`RequestEvent`] for each handled stanza. Called on the core's thread: keep
/// it quick (update counters, send to a channel).
pub trait Observer: Send + Sync + 'static {
    /// A request ended.
    fn request(&self, event: &RequestEvent);
}

/// An observer that logs each event at `debug` (target `exampple::request`).
#[derive(Debug, Clone, Copy, Default)]
pub struct LogObserver;

impl Observer for LogObserver {
    fn request(&self, event: &RequestEvent) {
        log::debug!(
            target: "exampple::request",
            "request {} in {:?}: {} {} {} ({})",
            event.outcome.as_str(),
            event.duration,
            event.kind,
            event.stanza_type,
            event.xmlns,
            event.controller
        );
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
pub(crate) fn log_request(event: &RequestEvent, detail: Option<&str>) {
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
