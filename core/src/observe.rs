//! Observability: request events, the connection's lifecycle, traffic counts, and the
//! per-stanza log record.
//!
//! An [`Observer`] set on the component (`Component::set_observer`, or `.observer(..)` on
//! any runtime's builder) is told, on the core's thread:
//!
//! - [`Observer::request`]: every routed stanza ends in exactly one [`RequestEvent`]
//!   (success, failure or timeout, with its duration and controller);
//! - [`Observer::lifecycle`]: each [`LifecycleEvent`] of the connection: connecting,
//!   online, disconnected (why, when the next attempt starts, which attempt it is),
//!   delegated namespaces (XEP-0355), failed, closed;
//! - [`Observer::traffic`]: the stanzas read and written since the last report, the
//!   requests in flight and the stanzas queued for the next connection ([`Traffic`]), at the
//!   end of each `handle_*` call that changed them (never per stanza).
//!
//! The last two do nothing unless implemented. Each request also ends in one `log` record
//! (`info` on success, `error` otherwise) with the key-values `elapsed_time`, `stanza_id`,
//! `stanza_type`, `type`, `xmlns`, `from_jid` and `to_jid`. The `metrics` feature records
//! all of it through the `metrics` crate (`exampple_core::metrics::MetricsObserver`).
//!
//! ```
//! use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
//! use exampple_core::observe::{LifecycleEvent, Observer, RequestEvent, RequestOutcome};
//!
//! #[derive(Default)]
//! struct Health { failures: AtomicU64, online: AtomicBool }
//!
//! impl Observer for Health {
//!     fn request(&self, event: &RequestEvent) {
//!         if event.outcome != RequestOutcome::Success {
//!             self.failures.fetch_add(1, Ordering::Relaxed);
//!         }
//!     }
//!
//!     fn lifecycle(&self, event: &LifecycleEvent) {
//!         match event {
//!             LifecycleEvent::Online { .. } => self.online.store(true, Ordering::Relaxed),
//!             LifecycleEvent::Disconnected { reason, reconnect_at, .. } => {
//!                 self.online.store(false, Ordering::Relaxed);
//!                 eprintln!("disconnected ({reason}), next attempt at {reconnect_at:?}");
//!             }
//!             _ => {}
//!         }
//!     }
//! }
//! ```

pub use crate::component::observer::{
    DrainProgress, LifecycleEvent, Observer, RequestEvent, RequestOutcome, Traffic, format_elapsed,
};

/// An observer that logs each request and lifecycle event at `debug` (targets
/// `exampple::request` and `exampple::lifecycle`).
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

    fn lifecycle(&self, event: &LifecycleEvent) {
        log::debug!(target: "exampple::lifecycle", "{}: {event:?}", event.name());
    }
}
