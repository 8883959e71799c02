//! The channel from controllers and [`Sender`]s (any thread) back to the core, and what the
//! core shares with them about the connection (what the server granted, XEP-0356).

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use minidom::Element;

use super::call::{CallSlot, IqCall};
use super::reply::AnswerKind;
use super::{Conn, RequestId, SendError};
use crate::outcome::Outcome;
use crate::privilege::Permissions;

pub(crate) enum OutboxItem {
    Send {
        request: Option<RequestId>,
        stanza: Element,
    },
    /// The answer to a request, written by the core from the request itself: no reply
    /// element is built on the way.
    Answer {
        conn: Conn,
        kind: AnswerKind,
        payload: Vec<Element>,
    },
    Finished {
        request: RequestId,
        outcome: Outcome,
    },
    Call {
        iq: Element,
        timeout: Duration,
        slot: Arc<CallSlot>,
        /// Sent on this connection even when the component hands its calls to an instance
        /// link (a privileged request: the server granted this connection's domain).
        pinned: bool,
    },
}

type WakeFn = Arc<dyn Fn() + Send + Sync>;

/// The channel from controllers (any thread) back to the core.
pub(crate) struct Outbox {
    items: Mutex<Vec<OutboxItem>>,
    wake: Mutex<Option<WakeFn>>,
    pub(crate) connected: AtomicBool,
    pub(crate) closed: AtomicBool,
    /// Stanzas waiting in the core's disconnected queue.
    pub(crate) backlog: AtomicUsize,
    pub(crate) max_queue: usize,
    /// The component's domain, the `from` of what it sends for its users.
    pub(crate) domain: Arc<str>,
    /// What the servers granted on this connection (XEP-0356).
    pub(crate) grants: Grants,
    /// The outbox of the instance's own connection, when the component has one
    /// (`Config::instance_domain`): privileged requests go through it when its domain was
    /// granted the same.
    pub(crate) instance: OnceLock<Arc<Outbox>>,
}

impl Outbox {
    pub(crate) fn new(max_queue: usize, domain: Arc<str>) -> Self {
        Outbox {
            items: Mutex::new(Vec::new()),
            wake: Mutex::new(None),
            connected: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            backlog: AtomicUsize::new(0),
            max_queue,
            domain,
            grants: Grants::default(),
            instance: OnceLock::new(),
        }
    }

    pub(crate) fn set_waker(&self, wake: WakeFn) {
        *self.wake.lock().unwrap_or_else(|p| p.into_inner()) = Some(wake);
    }

    pub(crate) fn push(&self, item: OutboxItem) {
        let was_empty = {
            let mut items = self.items.lock().unwrap_or_else(|p| p.into_inner());
            let was_empty = items.is_empty();
            items.push(item);
            was_empty
        };
        if was_empty {
            let wake = self.wake.lock().unwrap_or_else(|p| p.into_inner()).clone();
            if let Some(wake) = wake {
                wake();
            }
        }
    }

    /// Moves every pending item into `into` (which should be empty).
    pub(crate) fn drain_into(&self, into: &mut Vec<OutboxItem>) {
        let mut items = self.items.lock().unwrap_or_else(|p| p.into_inner());
        std::mem::swap(&mut *items, into);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.items
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
    }

    /// Sends `iq` as a call waiting up to `timeout` for its answer; `pinned`: on this
    /// connection even when the component hands its calls to an instance link.
    pub(super) fn call(
        &self,
        iq: Element,
        timeout: Duration,
        pinned: bool,
    ) -> Result<IqCall, SendError> {
        self.check_send()?;
        let slot = Arc::new(CallSlot::default());
        self.push(OutboxItem::Call {
            iq,
            timeout,
            slot: slot.clone(),
            pinned,
        });
        Ok(IqCall::new(slot))
    }

    pub(crate) fn check_send(&self) -> Result<(), SendError> {
        if self.closed.load(Ordering::Relaxed) {
            return Err(SendError::Closed);
        }
        if !self.connected.load(Ordering::Relaxed)
            && self.backlog.load(Ordering::Relaxed) >= self.max_queue
        {
            return Err(SendError::QueueFull(self.max_queue));
        }
        Ok(())
    }
}

/// A handle that sends stanzas to the core from any thread, outside of a request (for
/// background tasks, timers, bots).
#[derive(Clone)]
pub struct Sender {
    pub(super) outbox: Arc<Outbox>,
}

impl Sender {
    pub(crate) fn new(outbox: Arc<Outbox>) -> Self {
        Sender { outbox }
    }

    /// Sends a stanza (queued while disconnected).
    pub fn send(&self, stanza: Element) -> Result<(), SendError> {
        self.outbox.check_send()?;
        self.outbox.push(OutboxItem::Send {
            request: None,
            stanza,
        });
        Ok(())
    }

    /// Sends an iq and returns a handle that waits for its answer (matched by id and
    /// sender), for at most `timeout`. With a
    /// [`Config::instance_domain`](crate::Config::instance_domain) the iq goes out from that
    /// domain, so that its answer comes back to this instance; an answer that never comes
    /// back (the server handed it to another instance of the shared domain) ends in
    /// [`CallError::Timeout`](super::CallError::Timeout), and the instance that got it
    /// counts it (`Component::stray_results`).
    pub fn call(&self, iq: Element, timeout: Duration) -> Result<IqCall, SendError> {
        self.outbox.call(iq, timeout, false)
    }
}

impl fmt::Debug for Sender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender").finish_non_exhaustive()
    }
}

/// What the servers granted on the current connection, shared by the core (which writes
/// it) and the controllers (which read it).
#[derive(Default)]
pub(crate) struct Grants {
    by_server: Mutex<Vec<Arc<Permissions>>>,
    /// For the ids of the iqs forwarded inside privileged iqs.
    forwarded_ids: AtomicU64,
}

impl Grants {
    pub(crate) fn next_id(&self) -> u64 {
        self.forwarded_ids.fetch_add(1, Ordering::Relaxed)
    }

    /// Keeps `permissions`, in place of what the same server granted before.
    pub(crate) fn grant(&self, permissions: Permissions) {
        let mut all = self.by_server.lock().unwrap_or_else(|p| p.into_inner());
        all.retain(|p| !p.server().eq_ignore_ascii_case(permissions.server()));
        all.push(Arc::new(permissions));
    }

    /// Forgets everything: a new connection waits for new advertisements.
    pub(crate) fn clear(&self) {
        self.by_server
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    pub(crate) fn of(&self, server: &str) -> Option<Arc<Permissions>> {
        self.by_server
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|p| p.server().eq_ignore_ascii_case(server))
            .cloned()
    }

    pub(crate) fn all(&self) -> Vec<Arc<Permissions>> {
        self.by_server
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}
