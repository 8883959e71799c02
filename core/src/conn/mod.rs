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
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::time::Duration;

use minidom::Element;

use crate::delegation::Envelope;
use crate::jid::Jid;
use crate::outcome::Outcome;
use crate::stanza::{self, Condition, Head, StanzaError, StanzaKind, StanzaType};

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
}

impl Outbox {
    pub(crate) fn new(max_queue: usize) -> Self {
        Outbox {
            items: Mutex::new(Vec::new()),
            wake: Mutex::new(None),
            connected: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            backlog: AtomicUsize::new(0),
            max_queue,
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

    fn check_send(&self) -> Result<(), SendError> {
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

/// Shared between a request's [`Conn`]s and the core.
#[derive(Default)]
pub(crate) struct RequestState {
    pub(crate) expired: AtomicBool,
    pub(crate) sent: AtomicUsize,
    /// An answer could not be written as XML, and `internal-server-error` went instead.
    pub(crate) unwritable: AtomicBool,
}

/// A handle that sends stanzas to the core from any thread, outside of a request (for
/// background tasks, timers, bots).
#[derive(Clone)]
pub struct Sender {
    outbox: Arc<Outbox>,
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
    /// sender), for at most `timeout`.
    pub fn call(&self, iq: Element, timeout: Duration) -> Result<IqCall, SendError> {
        self.outbox.check_send()?;
        let slot = Arc::new(CallSlot::default());
        self.outbox.push(OutboxItem::Call {
            iq,
            timeout,
            slot: slot.clone(),
        });
        Ok(IqCall { slot })
    }
}

impl fmt::Debug for Sender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender").finish_non_exhaustive()
    }
}

/// Why an iq call got no result.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// The answer was an error stanza.
    #[error("the iq was answered with an error: {0}")]
    Error(Box<StanzaError>, Box<Element>),
    /// No answer came in time.
    #[error("no answer to the iq in time")]
    Timeout,
    /// The component closed before the answer came.
    #[error("the component closed before the answer came")]
    Closed,
    /// The iq could not be sent.
    #[error("the iq could not be sent: {0}")]
    Send(SendError),
}

type CallState = (Option<Result<Element, CallError>>, Option<Waker>);

#[derive(Default)]
pub(crate) struct CallSlot {
    state: Mutex<CallState>,
}

impl CallSlot {
    pub(crate) fn fulfil(&self, result: Result<Element, CallError>) {
        let waker = {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            if state.0.is_some() {
                return;
            }
            state.0 = Some(result);
            state.1.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// The pending answer of an iq sent with [`Conn::call`] or [`Sender::call`]: `.await` it in
/// an async controller; a sync controller (or any thread) waits for it with the runtimes'
/// `block_on`.
#[must_use = "an IqCall does nothing unless awaited"]
pub struct IqCall {
    slot: Arc<CallSlot>,
}

impl std::future::Future for IqCall {
    type Output = Result<Element, CallError>;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        let mut state = self.slot.state.lock().unwrap_or_else(|p| p.into_inner());
        match state.0.take() {
            Some(result) => Poll::Ready(result),
            None => {
                state.1 = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

impl fmt::Debug for IqCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IqCall").finish_non_exhaustive()
    }
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
            }),
        }
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

    fn reply(&self, stanza: Element) -> Reply<'_> {
        Reply {
            conn: self,
            stanza: ReplyStanza::Built(stanza),
        }
    }

    fn answer(&self, kind: AnswerKind, payload: impl IntoIterator<Item = Element>) -> Reply<'_> {
        Reply {
            conn: self,
            stanza: ReplyStanza::Answer {
                kind,
                payload: payload.into_iter().collect(),
                built: std::cell::OnceCell::new(),
            },
        }
    }

    /// The `result` to an iq, carrying `payload`.
    pub fn iq_resp(&self, payload: impl IntoIterator<Item = Element>) -> Reply<'_> {
        self.answer(AnswerKind::IqResult, payload)
    }

    /// The error answer to an iq (the request payload echoed, then the error).
    pub fn iq_error(&self, error: impl Into<StanzaError>) -> Reply<'_> {
        self.reply(stanza::iq_error(&self.inner.stanza, error))
    }

    /// A message answering a message: same type, addresses swapped, same id.
    pub fn message_resp(&self, payload: impl IntoIterator<Item = Element>) -> Reply<'_> {
        self.answer(AnswerKind::MessageReply, payload)
    }

    /// The error answer to a message.
    pub fn message_error(&self, error: impl Into<StanzaError>) -> Reply<'_> {
        self.reply(stanza::message_error(&self.inner.stanza, error))
    }

    /// The error answer to a presence (addresses swapped).
    pub fn presence_error(&self, error: impl Into<StanzaError>) -> Reply<'_> {
        self.reply(stanza::presence_error(&self.inner.stanza, error))
    }

    /// The error answer to this stanza, whatever its kind: `conn.error(Condition::Forbidden)`
    /// or `conn.error((Condition::BadRequest, "en", "why"))`.
    pub fn error(&self, error: impl Into<StanzaError>) -> Reply<'_> {
        self.reply(stanza::error_reply(&self.inner.stanza, &error.into()))
    }

    /// Sends any stanza as it is (no envelope wrapping; `set_from` and `auto_generate_id`
    /// apply). Use the responders (`iq_resp(...).send()`) to answer the request itself.
    pub fn send(&self, stanza: Element) -> Result<(), SendError> {
        self.push(OutboxItem::Send {
            request: Some(self.inner.request),
            stanza,
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
    pub fn call(&self, iq: Element, timeout: Duration) -> Result<IqCall, SendError> {
        Sender::new(self.inner.outbox.clone()).call(iq, timeout)
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

/// Which answer an [`OutboxItem::Answer`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AnswerKind {
    /// The `result` to an iq.
    IqResult,
    /// A message of the request's type.
    MessageReply,
}

impl AnswerKind {
    /// The answer to `request` as an element.
    pub(crate) fn build(self, request: &Element, payload: Vec<Element>) -> Element {
        match self {
            AnswerKind::IqResult => stanza::iq_result(request, payload),
            AnswerKind::MessageReply => stanza::message_reply(request, payload),
        }
    }

    /// The answer's `type` attribute, given the request's head.
    pub(crate) fn reply_type<'a>(self, request: &Head<'a>) -> Option<&'a str> {
        match self {
            AnswerKind::IqResult => Some("result"),
            AnswerKind::MessageReply => request.kind,
        }
    }
}

/// A response built from a [`Conn`]; [`Reply::send`] sends it (wrapped back into the
/// delegation envelope when the request came in one).
///
/// The answers `iq_resp` and `message_resp` are not built as elements unless asked for
/// ([`Reply::stanza`], [`Reply::map`], [`Reply::into_element`]): sent as they are, the core
/// writes them straight from the request.
#[must_use = "a reply is only sent by calling send()"]
#[derive(Debug)]
pub struct Reply<'a> {
    conn: &'a Conn,
    stanza: ReplyStanza,
}

#[derive(Debug)]
enum ReplyStanza {
    Answer {
        kind: AnswerKind,
        payload: Vec<Element>,
        built: std::cell::OnceCell<Element>,
    },
    Built(Element),
}

impl Reply<'_> {
    /// The reply as it stands (before envelope wrapping).
    pub fn stanza(&self) -> &Element {
        match &self.stanza {
            ReplyStanza::Answer {
                kind,
                payload,
                built,
            } => built.get_or_init(|| kind.build(self.conn.stanza(), payload.clone())),
            ReplyStanza::Built(stanza) => stanza,
        }
    }

    /// Changes the reply before sending it.
    pub fn map(self, f: impl FnOnce(Element) -> Element) -> Self {
        let conn = self.conn;
        Reply {
            conn,
            stanza: ReplyStanza::Built(f(self.unwrapped())),
        }
    }

    /// The reply as it would go on the wire (wrapped when there is an envelope).
    pub fn into_element(self) -> Element {
        let conn = self.conn;
        let stanza = self.unwrapped();
        match conn.envelope() {
            Some(envelope) => envelope.wrap(stanza),
            None => stanza,
        }
    }

    fn unwrapped(self) -> Element {
        match self.stanza {
            ReplyStanza::Answer {
                kind,
                payload,
                built,
            } => built
                .into_inner()
                .unwrap_or_else(|| kind.build(self.conn.stanza(), payload)),
            ReplyStanza::Built(stanza) => stanza,
        }
    }

    /// Sends the reply.
    pub fn send(self) -> Result<(), SendError> {
        let conn = self.conn;
        match self.stanza {
            ReplyStanza::Answer { kind, payload, .. } => conn.push(OutboxItem::Answer {
                conn: conn.clone(),
                kind,
                payload,
            }),
            ReplyStanza::Built(_) => conn.send(self.into_element()),
        }
    }
}
