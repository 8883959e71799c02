//! How a controller's answer goes out: a [`Reply`] built from its [`Conn`], and the two
//! answers ([`AnswerKind`]) the core writes straight from the request.

use minidom::Element;

use super::{Conn, SendError};
use crate::stanza::{self, Head};

/// Which answer an `OutboxItem::Answer` is.
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

impl<'a> Reply<'a> {
    /// A reply that is already an element.
    pub(super) fn built(conn: &'a Conn, stanza: Element) -> Self {
        Reply {
            conn,
            stanza: ReplyStanza::Built(stanza),
        }
    }

    /// An answer the core writes from the request, unless it is asked for as an element.
    pub(super) fn answer(
        conn: &'a Conn,
        kind: AnswerKind,
        payload: impl IntoIterator<Item = Element>,
    ) -> Self {
        Reply {
            conn,
            stanza: ReplyStanza::Answer {
                kind,
                payload: payload.into_iter().collect(),
                built: std::cell::OnceCell::new(),
            },
        }
    }
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
            ReplyStanza::Answer { kind, payload, .. } => conn.send_answer(kind, payload),
            ReplyStanza::Built(_) => conn.send(self.into_element()),
        }
    }
}
