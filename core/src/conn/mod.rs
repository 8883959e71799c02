//! [`Conn`]: what a controller knows about the stanza it handles, and how it answers.
//!
//! ```
//! use exampple_core::{Conn, Element, Condition, StanzaError};
//!
//! fn version(conn: Conn, _payload: Vec<Element>) -> Result<(), StanzaError> {
//!     let query = exampple_core::xml!(
//!         "<query xmlns='jabber:iq:version'><name>exampple</name><version>1.0</version></query>"
//!     );
//!     conn.iq_resp([query]).send()?;
//!     Ok(())
//! }
//!
//! fn register(conn: Conn, _payload: Vec<Element>) -> Result<(), StanzaError> {
//!     // Answer with an error explicitly ...
//!     conn.error((Condition::NotAllowed, "en", "registration is closed")).send()?;
//!     // ... or return one: the framework answers the sender with it.
//!     Err(Condition::NotAllowed.into())
//! }
//! ```

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use minidom::Element;

use crate::delegation::Envelope;
use crate::jid::Jid;
use crate::stanza::{self, Condition, Head, StanzaError, StanzaKind, StanzaType};

pub(crate) mod call;
pub(crate) mod outbox;
pub(crate) mod privileged;
pub(crate) mod reply;

pub use call::{CallError, IqCall};
pub use outbox::Sender;
pub use privileged::{PrivilegeError, Privileged};
pub use reply::Reply;

use outbox::{Outbox, OutboxItem};
use reply::AnswerKind;

/// Identifies one routed stanza while it is being handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub(crate) u64);

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Why a stanza could not be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The component is disconnected and its bounded queue is full.
    #[error("the component is disconnected and its queue of {0} stanzas is full")]
    QueueFull(usize),
    /// The request already got `remote-server-timeout`; late answers are dropped.
    #[error("the request timed out and was answered with remote-server-timeout")]
    TimedOut,
    /// The component has stopped.
    #[error("the component is closed")]
    Closed,
}

impl From<SendError> for StanzaError {
    fn from(e: SendError) -> Self {
        let condition = match e {
            SendError::QueueFull(_) => Condition::ResourceConstraint,
            SendError::TimedOut => Condition::RemoteServerTimeout,
            SendError::Closed => Condition::ServiceUnavailable,
        };
        StanzaError::new(condition)
    }
}

/// Shared between a request's [`Conn`]s and the core.
#[derive(Default)]
pub(crate) struct RequestState {
    pub(crate) expired: AtomicBool,
    pub(crate) sent: AtomicUsize,
    /// An answer could not be written as XML, and `internal-server-error` went instead.
    pub(crate) unwritable: AtomicBool,
}

struct ConnInner {
    request: RequestId,
    outbox: Arc<Outbox>,
    state: RequestState,
    domain: Arc<str>,
    kind: StanzaKind,
    stanza_type: StanzaType,
    xmlns: String,
    stanza: Element,
    envelope: Option<Envelope>,
    received_at: Instant,
}

/// The connection as a controller sees it: the stanza being handled (kind, type, id, from,
/// to, payload namespace, the stanza itself, a delegation envelope), the component's
/// domain, and the means to answer.
///
/// Cloning is cheap; a clone answers the same request.
#[derive(Clone)]
pub struct Conn {
    inner: Arc<ConnInner>,
}

pub(crate) struct ConnParts {
    pub(crate) request: RequestId,
    pub(crate) outbox: Arc<Outbox>,
    pub(crate) domain: Arc<str>,
    pub(crate) kind: StanzaKind,
    pub(crate) stanza_type: StanzaType,
    pub(crate) xmlns: String,
    pub(crate) stanza: Element,
    pub(crate) envelope: Option<Envelope>,
    pub(crate) received_at: Instant,
}

impl Conn {
    pub(crate) fn new(parts: ConnParts) -> Self {
        Conn {
            inner: Arc::new(ConnInner {
                request: parts.request,
                outbox: parts.outbox,
                state: RequestState::default(),
                domain: parts.domain,
                kind: parts.kind,
                stanza_type: parts.stanza_type,
                xmlns: parts.xmlns,
                stanza: parts.stanza,
                envelope: parts.envelope,
                received_at: parts.received_at,
            }),
        }
    }

    /// When the core routed the stanza, on the component's clock (the `now` it was given;
    /// the simulated time in the test kit): for deadlines a controller keeps, such as the
    /// lifetime of an ad-hoc command's session.
    pub fn received_at(&self) -> Instant {
        self.inner.received_at
    }

    /// The request this conn answers.
    pub fn request_id(&self) -> RequestId {
        self.inner.request
    }

    /// The component's domain.
    pub fn domain(&self) -> &str {
        &self.inner.domain
    }

    /// The stanza kind: iq, message or presence.
    pub fn kind(&self) -> StanzaKind {
        self.inner.kind
    }

    /// The stanza type (`normal` for a message and `available` for a presence without one).
    pub fn stanza_type(&self) -> StanzaType {
        self.inner.stanza_type
    }

    /// The stanza's `id`.
    pub fn id(&self) -> Option<&str> {
        self.head().id
    }

    /// The stanza's `from`, as written.
    pub fn from(&self) -> Option<&str> {
        self.head().from
    }

    /// The stanza's `to`, as written.
    pub fn to(&self) -> Option<&str> {
        self.head().to
    }

    /// The stanza's `type`, `id`, `from` and `to` at once.
    pub fn head(&self) -> Head<'_> {
        Head::of(&self.inner.stanza)
    }

    /// The sender's JID, parsed (`None` when absent or invalid).
    pub fn from_jid(&self) -> Option<Jid> {
        self.from().and_then(|j| Jid::new(j).ok())
    }

    /// The recipient's JID, parsed (`None` when absent or invalid).
    pub fn to_jid(&self) -> Option<Jid> {
        self.to().and_then(|j| Jid::new(j).ok())
    }

    /// The payload namespace: the namespace of the stanza's first child element (empty
    /// when it has none).
    pub fn xmlns(&self) -> &str {
        &self.inner.xmlns
    }

    /// The stanza as received (the inner stanza when it came in a delegation envelope).
    pub fn stanza(&self) -> &Element {
        &self.inner.stanza
    }

    /// The delegation envelope the stanza came in, if any.
    pub fn envelope(&self) -> Option<&Envelope> {
        self.inner.envelope.as_ref()
    }

    /// What the core and the request's conns share (in the conn's own allocation).
    pub(crate) fn state(&self) -> &RequestState {
        &self.inner.state
    }

    /// Whether the request already timed out (late answers are dropped).
    pub fn is_expired(&self) -> bool {
        self.inner.state.expired.load(Ordering::Relaxed)
    }

    /// The `result` to an iq, carrying `payload`.
    pub fn iq_resp(&self, payload: impl IntoIterator<Item = Element>) -> Reply<'_> {
        Reply::answer(self, AnswerKind::IqResult, payload)
    }

    /// The error answer to an iq (the request payload echoed, then the error).
    pub fn iq_error(&self, error: impl Into<StanzaError>) -> Reply<'_> {
        Reply::built(self, stanza::iq_error(&self.inner.stanza, error))
    }

    /// A message answering a message: same type, addresses swapped, same id.
    pub fn message_resp(&self, payload: impl IntoIterator<Item = Element>) -> Reply<'_> {
        Reply::answer(self, AnswerKind::MessageReply, payload)
    }

    /// The error answer to a message.
    pub fn message_error(&self, error: impl Into<StanzaError>) -> Reply<'_> {
        Reply::built(self, stanza::message_error(&self.inner.stanza, error))
    }

    /// The error answer to a presence (addresses swapped).
    pub fn presence_error(&self, error: impl Into<StanzaError>) -> Reply<'_> {
        Reply::built(self, stanza::presence_error(&self.inner.stanza, error))
    }

    /// The error answer to this stanza, whatever its kind: `conn.error(Condition::Forbidden)`
    /// or `conn.error((Condition::BadRequest, "en", "why"))`.
    pub fn error(&self, error: impl Into<StanzaError>) -> Reply<'_> {
        Reply::built(self, stanza::error_reply(&self.inner.stanza, &error.into()))
    }

    /// Sends any stanza as it is (no envelope wrapping; `set_from` and `auto_generate_id`
    /// apply). Use the responders (`iq_resp(...).send()`) to answer the request itself.
    pub fn send(&self, stanza: Element) -> Result<(), SendError> {
        self.push(OutboxItem::Send {
            request: Some(self.inner.request),
            stanza,
        })
    }

    /// Sends an answer the core writes straight from the request ([`Reply::send`]).
    fn send_answer(&self, kind: AnswerKind, payload: Vec<Element>) -> Result<(), SendError> {
        self.push(OutboxItem::Answer {
            conn: self.clone(),
            kind,
            payload,
        })
    }

    fn push(&self, item: OutboxItem) -> Result<(), SendError> {
        if self.is_expired() {
            return Err(SendError::TimedOut);
        }
        self.inner.outbox.check_send()?;
        self.inner.state.sent.fetch_add(1, Ordering::Relaxed);
        self.inner.outbox.push(item);
        Ok(())
    }

    /// Sends an iq and returns a handle that waits for the answer (matched by id and
    /// sender) for at most `timeout`: `.await` it, or wait for it with the runtimes' `block_on`.
    /// See [`Sender::call`] for where it goes out from and where its answer lands.
    pub fn call(&self, iq: Element, timeout: Duration) -> Result<IqCall, SendError> {
        Sender::new(self.inner.outbox.clone()).call(iq, timeout)
    }

    /// Acting for the users of the server, with what it granted (XEP-0356): their rosters,
    /// messages and iqs on their behalf.
    pub fn privileged(&self) -> Privileged {
        self.sender().privileged()
    }

    /// A handle to send stanzas after this controller returns.
    pub fn sender(&self) -> Sender {
        Sender::new(self.inner.outbox.clone())
    }
}

impl fmt::Debug for Conn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Conn")
            .field("request", &self.inner.request)
            .field("domain", &self.inner.domain)
            .field("kind", &self.inner.kind)
            .field("type", &self.inner.stanza_type)
            .field("id", &self.id())
            .field("from", &self.from())
            .field("to", &self.to())
            .field("xmlns", &self.inner.xmlns)
            .field("envelope", &self.inner.envelope.is_some())
            .finish()
    }
}
