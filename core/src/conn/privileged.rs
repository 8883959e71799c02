//! [`Privileged`]: acting for the users of the server with what it granted on this
//! connection (XEP-0356; the protocol's data is in [`crate::privilege`]).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use minidom::Element;

use super::call::{CallError, IqCall};
use super::outbox::{Outbox, OutboxItem};
use super::{SendError, Sender};
use crate::jid;
use crate::ns;
use crate::privilege::{MessageAccess, Permissions, Roster, RosterItem, Version};
use crate::stanza::{Condition, ErrorType, IqType, StanzaError, StanzaKind};
use crate::xml;

/// Why a privileged action failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum PrivilegeError {
    /// The server did not grant the permission on this connection (or has not advertised
    /// anything yet).
    #[error("{server} granted this component no {permission} permission")]
    NotGranted {
        /// The server (the user's domain).
        server: String,
        /// The permission, e.g. `roster get`, `message outgoing`, `iq set urn:xmpp:mam:2`.
        permission: String,
    },
    /// The address is not a user's bare JID.
    #[error("`{jid}` is not the bare JID of a user: {reason}")]
    NotAUser {
        /// The address given.
        jid: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The stanza to send on a user's behalf is not one the server would accept.
    #[error("not a stanza a server sends on a user's behalf: {0}")]
    InvalidStanza(&'static str),
    /// The server answered with an error (it refused, or the user's server did).
    #[error("refused: {0}")]
    Refused(Box<StanzaError>),
    /// No answer in time, the component closed, or the request could not be sent.
    #[error(transparent)]
    Call(CallError),
    /// The server's answer does not have the shape XEP-0356 describes.
    #[error("unexpected answer from the server: {0}")]
    UnexpectedAnswer(String),
}

impl From<CallError> for PrivilegeError {
    fn from(error: CallError) -> Self {
        match error {
            CallError::Error(error, _) => PrivilegeError::Refused(error),
            other => PrivilegeError::Call(other),
        }
    }
}

impl From<SendError> for PrivilegeError {
    fn from(error: SendError) -> Self {
        PrivilegeError::Call(CallError::Send(error))
    }
}

/// The answer to the request a controller could not carry out: `forbidden` (auth) for what
/// was not granted, the server's own error for what it refused.
impl From<PrivilegeError> for StanzaError {
    fn from(error: PrivilegeError) -> Self {
        match error {
            PrivilegeError::NotGranted { .. } => StanzaError::new(Condition::Forbidden)
                .with_type(ErrorType::Auth)
                .with_text("en", error.to_string()),
            PrivilegeError::NotAUser { .. } | PrivilegeError::InvalidStanza(_) => {
                StanzaError::new(Condition::BadRequest).with_text("en", error.to_string())
            }
            PrivilegeError::Refused(error) => *error,
            PrivilegeError::Call(CallError::Timeout) => {
                StanzaError::new(Condition::RemoteServerTimeout)
            }
            PrivilegeError::Call(CallError::Send(e)) => e.into(),
            PrivilegeError::Call(_) => StanzaError::new(Condition::ServiceUnavailable),
            PrivilegeError::UnexpectedAnswer(_) => {
                StanzaError::new(Condition::UndefinedCondition).with_type(ErrorType::Cancel)
            }
        }
    }
}

/// Acting for the users of a server, with what it granted (see [`crate::privilege`]).
/// From [`Conn::privileged`](crate::Conn::privileged) in a controller, or
/// [`Sender::privileged`](crate::Sender::privileged) anywhere. Its requests are futures:
/// `.await` them in an async controller, wait with the runtime's `block_on` in a sync one.
#[derive(Clone)]
pub struct Privileged {
    outbox: Arc<Outbox>,
    timeout: Duration,
}

impl Privileged {
    /// How long a request waits for the server's answer unless told otherwise.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

    pub(crate) fn new(outbox: Arc<Outbox>) -> Privileged {
        Privileged {
            outbox,
            timeout: Privileged::DEFAULT_TIMEOUT,
        }
    }

    /// How long each request waits for the server's answer (default [`Privileged::DEFAULT_TIMEOUT`]);
    /// past it, [`CallError::Timeout`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// What `server` granted the component's domain on the current connection, if it
    /// advertised anything.
    pub fn permissions(&self, server: &str) -> Option<Arc<Permissions>> {
        self.outbox.grants.of(server)
    }

    /// What every server granted the component's domain on the current connection.
    pub fn granted(&self) -> Vec<Arc<Permissions>> {
        self.outbox.grants.all()
    }

    /// The roster of `user` (a bare JID of a user of a server that granted roster `get` or
    /// `both`).
    pub async fn roster(&self, user: &str) -> Result<Roster, PrivilegeError> {
        let (user, acting) = self.user_with(user, "roster get", |p| p.roster().can_get())?;
        let iq = acting.iq_to(&user, IqType::Get, Element::bare("query", ns::ROSTER));
        let answer = acting.call(iq, self.timeout)?.await?;
        let query = answer.get_child("query", ns::ROSTER).ok_or_else(|| {
            PrivilegeError::UnexpectedAnswer("a roster result without <query/>".into())
        })?;
        Ok(Roster {
            items: query
                .children()
                .filter(|c| c.is("item", ns::ROSTER))
                .filter_map(RosterItem::from_element)
                .collect(),
            ver: query.attr("ver").map(str::to_string),
        })
    }

    /// Adds or changes `item` in the roster of `user` (a user of a server that granted
    /// roster `set` or `both`); [`Subscription::Remove`](crate::privilege::Subscription::Remove) removes it.
    pub async fn set_roster(&self, user: &str, item: &RosterItem) -> Result<(), PrivilegeError> {
        let (user, acting) = self.user_with(user, "roster set", |p| p.roster().can_set())?;
        let mut query = Element::bare("query", ns::ROSTER);
        query.append_child(item.to_element());
        let iq = acting.iq_to(&user, IqType::Set, query);
        acting.call(iq, self.timeout)?.await?;
        Ok(())
    }

    /// Sends `message` on behalf of its `from`, a bare JID of a user of a server that
    /// granted message `outgoing`: the server delivers it as if that user had sent it (to
    /// the recipient, and to the user's other clients and archive when the server does so).
    ///
    /// The message goes to the server wrapped in `<privilege><forwarded>` in the namespace
    /// that server advertised. A refusal comes later, as a message error from the server
    /// (it cannot be matched to this call).
    pub fn send_message(&self, message: Element) -> Result<(), PrivilegeError> {
        if StanzaKind::from_name(message.name()) != Some(StanzaKind::Message) {
            return Err(PrivilegeError::InvalidStanza("not a <message/>"));
        }
        let from = message
            .attr("from")
            .ok_or(PrivilegeError::InvalidStanza("the message has no `from`"))?
            .to_string();
        if !message.attr("to").is_some_and(jid::is_valid) {
            return Err(PrivilegeError::InvalidStanza(
                "the message has no `to`, or not a valid JID",
            ));
        }
        let (_, acting) = self.user_with(&from, "message outgoing", |p| {
            p.message() == MessageAccess::Outgoing
        })?;
        let namespace = acting.granted.version().namespace();
        let mut forwarded = Element::bare("forwarded", ns::FORWARD);
        forwarded.append_child(xml::into_client_ns(message));
        let mut privilege = Element::bare("privilege", namespace);
        privilege.append_child(forwarded);
        let mut outer = Element::bare("message", ns::COMPONENT);
        xml::set_attr(&mut outer, "from", &*acting.outbox.domain);
        xml::set_attr(&mut outer, "to", acting.granted.server());
        outer.append_child(privilege);
        acting.outbox.check_send()?;
        acting.outbox.push(OutboxItem::Send {
            request: None,
            stanza: outer,
        });
        Ok(())
    }

    /// Sends `iq` (a get or set with one payload) on behalf of `user`, a bare JID of a user
    /// of a server that granted the iq permission for the payload's namespace and the iq's
    /// type (`urn:xmpp:privilege:2`), and returns the answer the server got (an error answer
    /// is [`PrivilegeError::Refused`]). Without a `to`, the iq goes to the user's own bare
    /// JID (their PEP service, their private storage); its `from` is the user.
    pub async fn iq(&self, user: &str, iq: Element) -> Result<Element, PrivilegeError> {
        if iq.name() != "iq" {
            return Err(PrivilegeError::InvalidStanza("not an <iq/>"));
        }
        let iq_type = match iq.attr("type") {
            Some("get") => IqType::Get,
            Some("set") => IqType::Set,
            _ => {
                return Err(PrivilegeError::InvalidStanza(
                    "an iq that is not a get or a set",
                ));
            }
        };
        let mut payloads = iq.children();
        let namespace = match (payloads.next(), payloads.next()) {
            (Some(payload), None) => payload.ns(),
            _ => {
                return Err(PrivilegeError::InvalidStanza(
                    "an iq without exactly one payload",
                ));
            }
        };
        let permission = format!("iq {} {namespace}", iq_type.as_str());
        let (user, acting) = self.user_with(user, &permission, |p| {
            p.version() == Version::V2 && p.allows_iq(&namespace, iq_type)
        })?;
        let mut inner = xml::into_client_ns(iq);
        xml::set_attr(&mut inner, "from", user.as_str());
        if inner.attr("to").is_none() {
            xml::set_attr(&mut inner, "to", user.as_str());
        }
        if inner.attr("id").is_none_or(str::is_empty) {
            let id = format!("privileged-{}", self.outbox.grants.next_id());
            xml::set_attr(&mut inner, "id", id);
        }
        let mut wrapper = Element::bare("privileged_iq", acting.granted.version().namespace());
        wrapper.append_child(inner);
        let outer = acting.iq_to(&user, iq_type, wrapper);
        let answer = acting.call(outer, self.timeout)?.await?;
        let inner_answer = answer
            .children()
            .flat_map(|c| std::iter::once(c).chain(c.children()))
            .flat_map(|c| std::iter::once(c).chain(c.children()))
            .find(|c| c.name() == "iq" && c.ns() == ns::CLIENT)
            .cloned()
            .ok_or_else(|| {
                PrivilegeError::UnexpectedAnswer(
                    "a privileged iq result without the inner iq".into(),
                )
            })?;
        if inner_answer.attr("type") == Some("error") {
            let error = inner_answer
                .get_child("error", ns::CLIENT)
                .and_then(StanzaError::from_element)
                .unwrap_or_else(|| StanzaError::new(Condition::UndefinedCondition));
            return Err(PrivilegeError::Refused(Box::new(error)));
        }
        Ok(inner_answer)
    }

    /// The bare JID of `user`, and the connection to act through for it, if its server
    /// granted that connection what `allowed` asks for. The instance's own connection (see
    /// `Config::instance_domain`) comes first: a server that granted its domain the same
    /// returns the results to this instance; otherwise the shared domain's, the one most
    /// servers grant.
    fn user_with(
        &self,
        user: &str,
        permission: &str,
        allowed: impl Fn(&Permissions) -> bool,
    ) -> Result<(String, Acting), PrivilegeError> {
        let not_a_user = |reason| PrivilegeError::NotAUser {
            jid: user.to_string(),
            reason,
        };
        let parsed = jid::parse(user).map_err(|_| not_a_user("not a valid JID"))?;
        if parsed.node().is_none() {
            return Err(not_a_user("it has no local part"));
        }
        if parsed.resource().is_some() {
            return Err(not_a_user("it has a resource"));
        }
        let server = parsed.domain().as_str().to_string();
        let through = |outbox: &Arc<Outbox>| {
            let granted = outbox.grants.of(&server).filter(|g| allowed(g))?;
            Some(Acting {
                outbox: outbox.clone(),
                granted,
            })
        };
        let acting = self
            .outbox
            .instance
            .get()
            .and_then(through)
            .or_else(|| through(&self.outbox))
            .ok_or_else(|| PrivilegeError::NotGranted {
                server: server.clone(),
                permission: permission.to_string(),
            })?;
        Ok((parsed.to_string(), acting))
    }
}

/// A connection whose domain a server granted what a request needs.
struct Acting {
    outbox: Arc<Outbox>,
    granted: Arc<Permissions>,
}

impl Acting {
    /// An iq to `user` from this connection's domain.
    fn iq_to(&self, user: &str, iq_type: IqType, payload: Element) -> Element {
        let mut iq = Element::bare("iq", ns::COMPONENT);
        xml::set_attr(&mut iq, "type", iq_type.as_str());
        xml::set_attr(&mut iq, "from", &*self.outbox.domain);
        xml::set_attr(&mut iq, "to", user);
        iq.append_child(payload);
        iq
    }

    /// Sends `iq` on this connection, whatever connection the component's other calls take:
    /// the server granted this one's domain.
    fn call(&self, iq: Element, timeout: Duration) -> Result<IqCall, PrivilegeError> {
        Ok(self.outbox.call(iq, timeout, true)?)
    }
}

impl Sender {
    /// Acting for the users of the server, with what it granted (XEP-0356).
    pub fn privileged(&self) -> Privileged {
        Privileged::new(self.outbox.clone())
    }
}

impl fmt::Debug for Privileged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Privileged")
            .field("granted", &self.outbox.grants.all())
            .field("timeout", &self.timeout)
            .finish()
    }
}
