//! XEP-0356 Privileged Entity: acting for the users of the server the component serves.
//!
//! Right after the handshake, a server that grants the component privileges says which, in
//! an advertisement (one per virtual host, on every connection):
//!
//! ```text
//! <message from='localhost' to='component.localhost'>
//!   <privilege xmlns='urn:xmpp:privilege:2'>
//!     <perm access='roster' type='get'/><perm access='message' type='outgoing'/>
//!   </privilege></message>
//! ```
//!
//! The core keeps what each server granted on the current connection (a reconnection forgets
//! it until the server advertises again) and a controller acts through [`Privileged`]
//! ([`Conn::privileged`](crate::Conn::privileged), [`Sender::privileged`](crate::Sender::privileged)):
//! a user's roster, a message on a user's behalf, an iq on a user's behalf. What was not
//! granted fails at once with [`PrivilegeError::NotGranted`], never with a timeout.
//!
//! Servers speak either generation of the XEP: Prosody's `mod_privilege` speaks
//! `urn:xmpp:privilege:2`, ejabberd 23.01 `urn:xmpp:privilege:1` (no iq permission). A
//! privileged message must be wrapped in the namespace the server advertised (each refuses
//! the other's), which [`Privileged::send_message`] does.
//!
//! With a presence permission, the server sends the users' presences to the component: they
//! arrive as ordinary presence stanzas, routed like any other.
//!
//! ```
//! use exampple_core::privilege::{MessageAccess, Permissions, RosterAccess, Version};
//! use exampple_core::xml;
//!
//! let advertisement = xml::parse(
//!     "<message from='localhost' to='component.localhost'>\
//!      <privilege xmlns='urn:xmpp:privilege:1'>\
//!      <perm access='roster' type='both'/><perm access='message' type='outgoing'/>\
//!      </privilege></message>",
//! ).unwrap();
//! let granted = Permissions::from_advertisement(&advertisement).unwrap();
//! assert_eq!(granted.version(), Version::V1);
//! assert_eq!(granted.server(), "localhost");
//! assert!(granted.roster().can_get() && granted.roster().can_set());
//! assert_eq!(granted.message(), MessageAccess::Outgoing);
//! ```

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use minidom::{Element, Node};

use crate::conn::outbox::Outbox;
use crate::conn::{CallError, IqCall, SendError, Sender};
use crate::jid;
use crate::ns;
use crate::stanza::{Condition, ErrorType, IqType, StanzaError, StanzaKind};
use crate::xml;

/// The generation of XEP-0356 a server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// `urn:xmpp:privilege:1` (XEP-0356 0.2 and 0.3; ejabberd).
    V1,
    /// `urn:xmpp:privilege:2` (XEP-0356 0.4, which adds the iq permission; Prosody).
    V2,
}

impl Version {
    /// The namespace of this generation.
    pub fn namespace(self) -> &'static str {
        match self {
            Version::V1 => ns::PRIVILEGE_1,
            Version::V2 => ns::PRIVILEGE_2,
        }
    }

    /// The generation whose namespace is `namespace`.
    pub fn from_namespace(namespace: &str) -> Option<Version> {
        match namespace {
            ns::PRIVILEGE_1 => Some(Version::V1),
            ns::PRIVILEGE_2 => Some(Version::V2),
            _ => None,
        }
    }
}

/// What the component may do with the users' rosters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RosterAccess {
    /// Nothing.
    #[default]
    None,
    /// Read them.
    Get,
    /// Change them.
    Set,
    /// Read and change them.
    Both,
}

impl RosterAccess {
    /// Whether a roster may be read.
    pub fn can_get(self) -> bool {
        matches!(self, RosterAccess::Get | RosterAccess::Both)
    }

    /// Whether a roster may be changed.
    pub fn can_set(self) -> bool {
        matches!(self, RosterAccess::Set | RosterAccess::Both)
    }

    /// The `type` of the `<perm/>`.
    pub fn as_str(self) -> &'static str {
        match self {
            RosterAccess::None => "none",
            RosterAccess::Get => "get",
            RosterAccess::Set => "set",
            RosterAccess::Both => "both",
        }
    }

    fn parse(text: &str) -> Option<RosterAccess> {
        match text {
            "none" => Some(RosterAccess::None),
            "get" => Some(RosterAccess::Get),
            "set" => Some(RosterAccess::Set),
            "both" => Some(RosterAccess::Both),
            _ => None,
        }
    }
}

/// Whether the component may send messages on the users' behalf.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MessageAccess {
    /// It may not.
    #[default]
    None,
    /// It may send messages from any user of the server.
    Outgoing,
}

impl MessageAccess {
    /// The `type` of the `<perm/>`.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageAccess::None => "none",
            MessageAccess::Outgoing => "outgoing",
        }
    }
}

/// Which presences of the users the server sends to the component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PresenceAccess {
    /// None.
    #[default]
    None,
    /// The presences of the users who share their presence with the component.
    ManagedEntity,
    /// Those, and the presences the users receive from their contacts.
    Roster,
}

impl PresenceAccess {
    /// The `type` of the `<perm/>`.
    pub fn as_str(self) -> &'static str {
        match self {
            PresenceAccess::None => "none",
            PresenceAccess::ManagedEntity => "managed_entity",
            PresenceAccess::Roster => "roster",
        }
    }
}

/// Which iq types of a namespace the component may send on the users' behalf (`:2` only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IqAccess {
    /// `get`.
    Get,
    /// `set`.
    Set,
    /// `get` and `set`.
    Both,
}

impl IqAccess {
    /// Whether an iq of `iq_type` is allowed.
    pub fn allows(self, iq_type: IqType) -> bool {
        match iq_type {
            IqType::Get => matches!(self, IqAccess::Get | IqAccess::Both),
            IqType::Set => matches!(self, IqAccess::Set | IqAccess::Both),
            IqType::Result | IqType::Error => false,
        }
    }

    /// The `type` of the `<namespace/>`.
    pub fn as_str(self) -> &'static str {
        match self {
            IqAccess::Get => "get",
            IqAccess::Set => "set",
            IqAccess::Both => "both",
        }
    }
}

/// What one server (virtual host) granted the component, from its advertisement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permissions {
    version: Version,
    server: String,
    roster: RosterAccess,
    message: MessageAccess,
    presence: PresenceAccess,
    iq: Vec<(String, IqAccess)>,
}

impl Permissions {
    /// Nothing granted yet by `server`, in `version`: add permissions with the builder
    /// methods, for [`Permissions::to_advertisement`] (tests simulating a server).
    pub fn new(version: Version, server: impl Into<String>) -> Permissions {
        Permissions {
            version,
            server: server.into(),
            roster: RosterAccess::None,
            message: MessageAccess::None,
            presence: PresenceAccess::None,
            iq: Vec::new(),
        }
    }

    /// With this roster permission.
    pub fn with_roster(mut self, access: RosterAccess) -> Self {
        self.roster = access;
        self
    }

    /// With this message permission.
    pub fn with_message(mut self, access: MessageAccess) -> Self {
        self.message = access;
        self
    }

    /// With this presence permission.
    pub fn with_presence(mut self, access: PresenceAccess) -> Self {
        self.presence = access;
        self
    }

    /// With an iq permission for `namespace` (`urn:xmpp:privilege:2`).
    pub fn with_iq(mut self, namespace: impl Into<String>, access: IqAccess) -> Self {
        let namespace = namespace.into();
        self.iq.retain(|(n, _)| *n != namespace);
        self.iq.push((namespace, access));
        self
    }

    /// The permissions a server advertises in `stanza`, if it is a message carrying
    /// `<privilege xmlns='urn:xmpp:privilege:1'/>` or `:2` from a server (a bare domain).
    /// Unknown permission values count as not granted.
    pub fn from_advertisement(stanza: &Element) -> Option<Permissions> {
        if stanza.name() != "message" {
            return None;
        }
        let server = stanza.attr("from")?;
        if server.is_empty() || server.contains(['@', '/']) {
            return None;
        }
        let (version, privilege) = stanza.children().find_map(|c| {
            let version = Version::from_namespace(&c.ns())?;
            (c.name() == "privilege").then_some((version, c))
        })?;
        let mut granted = Permissions::new(version, server);
        let namespace = version.namespace();
        for perm in privilege.children().filter(|c| c.is("perm", namespace)) {
            let kind = perm.attr("type").unwrap_or("");
            match perm.attr("access") {
                Some("roster") => granted.roster = RosterAccess::parse(kind).unwrap_or_default(),
                Some("message") if kind == "outgoing" => granted.message = MessageAccess::Outgoing,
                Some("presence") => {
                    granted.presence = match kind {
                        "managed_entity" => PresenceAccess::ManagedEntity,
                        "roster" => PresenceAccess::Roster,
                        _ => PresenceAccess::None,
                    }
                }
                Some("iq") => {
                    for entry in perm.children().filter(|c| c.is("namespace", namespace)) {
                        let access = match entry.attr("type") {
                            Some("get") => IqAccess::Get,
                            Some("set") => IqAccess::Set,
                            Some("both") => IqAccess::Both,
                            _ => continue,
                        };
                        if let Some(ns) = entry.attr("ns").filter(|n| !n.is_empty()) {
                            granted = granted.with_iq(ns, access);
                        }
                    }
                }
                _ => {}
            }
        }
        Some(granted)
    }

    /// The advertisement a server sends to `component` for these permissions.
    pub fn to_advertisement(&self, component: &str) -> Element {
        let namespace = self.version.namespace();
        let mut privilege = Element::bare("privilege", namespace);
        let mut perm = |access: &str, kind: &str| {
            let mut p = Element::bare("perm", namespace);
            xml::set_attr(&mut p, "access", access);
            xml::set_attr(&mut p, "type", kind);
            privilege.append_child(p);
        };
        perm("roster", self.roster.as_str());
        perm("message", self.message.as_str());
        perm("presence", self.presence.as_str());
        if !self.iq.is_empty() {
            let mut p = Element::bare("perm", namespace);
            xml::set_attr(&mut p, "access", "iq");
            for (ns, access) in &self.iq {
                let mut entry = Element::bare("namespace", namespace);
                xml::set_attr(&mut entry, "ns", ns.as_str());
                xml::set_attr(&mut entry, "type", access.as_str());
                p.append_child(entry);
            }
            privilege.append_child(p);
        }
        let mut message = Element::bare("message", ns::COMPONENT);
        xml::set_attr(&mut message, "from", self.server.as_str());
        xml::set_attr(&mut message, "to", component);
        message.append_child(privilege);
        message
    }

    /// The generation of the XEP the server speaks.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The server (virtual host) whose users these permissions are about.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The roster permission.
    pub fn roster(&self) -> RosterAccess {
        self.roster
    }

    /// The message permission.
    pub fn message(&self) -> MessageAccess {
        self.message
    }

    /// The presence permission.
    pub fn presence(&self) -> PresenceAccess {
        self.presence
    }

    /// The iq permissions, by namespace (`urn:xmpp:privilege:2`).
    pub fn iq(&self) -> impl Iterator<Item = (&str, IqAccess)> {
        self.iq.iter().map(|(n, a)| (n.as_str(), *a))
    }

    /// Whether an iq of `iq_type` with a payload in `namespace` may be sent for a user.
    pub fn allows_iq(&self, namespace: &str, iq_type: IqType) -> bool {
        self.iq
            .iter()
            .any(|(n, a)| n == namespace && a.allows(iq_type))
    }
}

impl fmt::Display for Permissions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}): roster {}, message {}, presence {}",
            self.server,
            self.version.namespace(),
            self.roster.as_str(),
            self.message.as_str(),
            self.presence.as_str()
        )?;
        for (ns, access) in &self.iq {
            write!(f, ", iq {ns} {}", access.as_str())?;
        }
        Ok(())
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
        all.retain(|p| !p.server.eq_ignore_ascii_case(&permissions.server));
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
            .find(|p| p.server.eq_ignore_ascii_case(server))
            .cloned()
    }

    pub(crate) fn all(&self) -> Vec<Arc<Permissions>> {
        self.by_server
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

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

/// A subscription state of a roster item (RFC 6121 §2.1.2.5), or `remove` in a roster set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Subscription {
    /// Neither sees the other's presence.
    None,
    /// The user sees the contact's presence.
    To,
    /// The contact sees the user's presence.
    From,
    /// Both.
    Both,
    /// Remove the item (roster set only).
    Remove,
}

impl Subscription {
    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            Subscription::None => "none",
            Subscription::To => "to",
            Subscription::From => "from",
            Subscription::Both => "both",
            Subscription::Remove => "remove",
        }
    }

    fn parse(text: &str) -> Option<Subscription> {
        match text {
            "none" => Some(Subscription::None),
            "to" => Some(Subscription::To),
            "from" => Some(Subscription::From),
            "both" => Some(Subscription::Both),
            "remove" => Some(Subscription::Remove),
            _ => None,
        }
    }
}

/// One contact of a roster (`<item/>` of `jabber:iq:roster`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RosterItem {
    /// The contact's JID.
    pub jid: String,
    /// The name the user gave the contact.
    pub name: Option<String>,
    /// The subscription state (absent in a set means the server keeps it).
    pub subscription: Option<Subscription>,
    /// `subscribe` while a subscription request is pending.
    pub ask: Option<String>,
    /// The groups the contact is in.
    pub groups: Vec<String>,
}

impl RosterItem {
    /// An item for `jid`, without a name, subscription or groups.
    pub fn new(jid: impl Into<String>) -> RosterItem {
        RosterItem {
            jid: jid.into(),
            name: None,
            subscription: None,
            ask: None,
            groups: Vec::new(),
        }
    }

    /// With this name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// With this subscription (`Remove` removes the item).
    pub fn subscription(mut self, subscription: Subscription) -> Self {
        self.subscription = Some(subscription);
        self
    }

    /// In this group too.
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.groups.push(group.into());
        self
    }

    fn from_element(item: &Element) -> Option<RosterItem> {
        Some(RosterItem {
            jid: item.attr("jid")?.to_string(),
            name: item.attr("name").map(str::to_string),
            subscription: item.attr("subscription").and_then(Subscription::parse),
            ask: item.attr("ask").map(str::to_string),
            groups: item
                .children()
                .filter(|c| c.is("group", ns::ROSTER))
                .map(Element::text)
                .collect(),
        })
    }

    fn to_element(&self) -> Element {
        let mut item = Element::bare("item", ns::ROSTER);
        xml::set_attr(&mut item, "jid", self.jid.as_str());
        if let Some(name) = &self.name {
            xml::set_attr(&mut item, "name", name.as_str());
        }
        if let Some(subscription) = self.subscription {
            xml::set_attr(&mut item, "subscription", subscription.as_str());
        }
        for group in &self.groups {
            item.append_child(xml::text_element("group", ns::ROSTER, group));
        }
        item
    }
}

/// A user's roster, as the server gave it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Roster {
    /// The contacts.
    pub items: Vec<RosterItem>,
    /// The roster version (XEP-0237), if the server keeps one.
    pub ver: Option<String>,
}

/// How long a privileged request waits for the server's answer unless told otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Acting for the users of a server, with what it granted (see the [module](self)).
/// From [`Conn::privileged`](crate::Conn::privileged) in a controller, or
/// [`Sender::privileged`](crate::Sender::privileged) anywhere. Its requests are futures:
/// `.await` them in an async controller, wait with the runtime's `block_on` in a sync one.
#[derive(Clone)]
pub struct Privileged {
    outbox: Arc<Outbox>,
    timeout: Duration,
}

impl Privileged {
    pub(crate) fn new(outbox: Arc<Outbox>) -> Privileged {
        Privileged {
            outbox,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// How long each request waits for the server's answer (default [`DEFAULT_TIMEOUT`]);
    /// past it, [`CallError::Timeout`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// What `server` granted on the current connection, if it advertised anything.
    pub fn permissions(&self, server: &str) -> Option<Arc<Permissions>> {
        self.outbox.grants.of(server)
    }

    /// What every server granted on the current connection.
    pub fn granted(&self) -> Vec<Arc<Permissions>> {
        self.outbox.grants.all()
    }

    /// The roster of `user` (a bare JID of a user of a server that granted roster `get` or
    /// `both`).
    pub async fn roster(&self, user: &str) -> Result<Roster, PrivilegeError> {
        let (user, _) = self.user_with(user, "roster get", |p| p.roster.can_get())?;
        let iq = self.iq_to(&user, IqType::Get, Element::bare("query", ns::ROSTER));
        let answer = self.call(iq)?.await?;
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
    /// roster `set` or `both`); [`Subscription::Remove`] removes it.
    pub async fn set_roster(&self, user: &str, item: &RosterItem) -> Result<(), PrivilegeError> {
        let (user, _) = self.user_with(user, "roster set", |p| p.roster.can_set())?;
        let mut query = Element::bare("query", ns::ROSTER);
        query.append_child(item.to_element());
        self.call(self.iq_to(&user, IqType::Set, query))?.await?;
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
        let (_, granted) = self.user_with(&from, "message outgoing", |p| {
            p.message == MessageAccess::Outgoing
        })?;
        let namespace = granted.version.namespace();
        let mut forwarded = Element::bare("forwarded", ns::FORWARD);
        forwarded.append_child(into_client_namespace(message));
        let mut privilege = Element::bare("privilege", namespace);
        privilege.append_child(forwarded);
        let mut outer = Element::bare("message", ns::COMPONENT);
        xml::set_attr(&mut outer, "from", &*self.outbox.domain);
        xml::set_attr(&mut outer, "to", granted.server.as_str());
        outer.append_child(privilege);
        Sender::new(self.outbox.clone()).send(outer)?;
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
        let (user, granted) = self.user_with(user, &permission, |p| {
            p.version == Version::V2 && p.allows_iq(&namespace, iq_type)
        })?;
        let mut inner = into_client_namespace(iq);
        xml::set_attr(&mut inner, "from", user.as_str());
        if inner.attr("to").is_none() {
            xml::set_attr(&mut inner, "to", user.as_str());
        }
        if inner.attr("id").is_none_or(str::is_empty) {
            let id = format!("privileged-{}", self.outbox.grants.next_id());
            xml::set_attr(&mut inner, "id", id);
        }
        let mut wrapper = Element::bare("privileged_iq", granted.version.namespace());
        wrapper.append_child(inner);
        let answer = self.call(self.iq_to(&user, iq_type, wrapper))?.await?;
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

    /// The bare JID of `user`, and what its server granted, if it granted what `allowed`
    /// asks for.
    fn user_with(
        &self,
        user: &str,
        permission: &str,
        allowed: impl Fn(&Permissions) -> bool,
    ) -> Result<(String, Arc<Permissions>), PrivilegeError> {
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
        match self.outbox.grants.of(&server) {
            Some(granted) if allowed(&granted) => Ok((parsed.to_string(), granted)),
            _ => Err(PrivilegeError::NotGranted {
                server,
                permission: permission.to_string(),
            }),
        }
    }

    fn iq_to(&self, user: &str, iq_type: IqType, payload: Element) -> Element {
        let mut iq = Element::bare("iq", ns::COMPONENT);
        xml::set_attr(&mut iq, "type", iq_type.as_str());
        xml::set_attr(&mut iq, "from", &*self.outbox.domain);
        xml::set_attr(&mut iq, "to", user);
        iq.append_child(payload);
        iq
    }

    fn call(&self, iq: Element) -> Result<IqCall, PrivilegeError> {
        Ok(Sender::new(self.outbox.clone()).call(iq, self.timeout)?)
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

/// `stanza` in `jabber:client`: the stanza forwarded inside a wrapper is one the server
/// handles as its user's, and its children in the component namespace go along.
fn into_client_namespace(mut stanza: Element) -> Element {
    let ns = stanza.ns();
    let target = if ns == ns::COMPONENT {
        ns::CLIENT
    } else {
        ns.as_str()
    };
    let mut converted = Element::bare(stanza.name(), target);
    *converted.attrs_mut() = stanza.attrs().clone();
    for node in stanza.take_nodes() {
        match node {
            Node::Element(child) if child.ns() == ns::COMPONENT => {
                converted.append_child(into_client_namespace(child));
            }
            other => converted.append_node(other),
        }
    }
    converted
}

/// Whether `stanza` is a privilege advertisement (a message from a server carrying
/// `<privilege/>`), for the core to keep rather than route.
pub(crate) fn advertised(stanza: &Element) -> Option<Permissions> {
    Permissions::from_advertisement(stanza)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_generations() {
        let v2 = xml::parse(
            "<message from='localhost' to='c.localhost'><privilege xmlns='urn:xmpp:privilege:2'>\
             <perm access='roster' type='get'/><perm access='message' type='outgoing'/>\
             <perm access='iq'><namespace ns='urn:xmpp:mam:2' type='both'/><namespace ns='x' type='bogus'/></perm>\
             </privilege></message>",
        )
        .unwrap();
        let granted = Permissions::from_advertisement(&v2).unwrap();
        assert_eq!(granted.version(), Version::V2);
        assert_eq!(granted.roster(), RosterAccess::Get);
        assert_eq!(granted.message(), MessageAccess::Outgoing);
        assert_eq!(granted.presence(), PresenceAccess::None);
        assert!(granted.allows_iq("urn:xmpp:mam:2", IqType::Set));
        assert!(!granted.allows_iq("x", IqType::Get));
        let v1 = xml::parse(
            "<message from='localhost'><privilege xmlns='urn:xmpp:privilege:1'>\
             <perm type='outgoing' access='message'/><perm type='get' access='roster'/>\
             <perm type='none' access='presence'/></privilege></message>",
        )
        .unwrap();
        let granted = Permissions::from_advertisement(&v1).unwrap();
        assert_eq!(granted.version(), Version::V1);
        assert_eq!(granted.roster(), RosterAccess::Get);
        assert_eq!(granted.message(), MessageAccess::Outgoing);
        // Round trip through the simulated advertisement.
        let again = Permissions::from_advertisement(&granted.to_advertisement("c")).unwrap();
        assert_eq!(again, granted);
    }

    #[test]
    fn only_servers_advertise() {
        let from_user = xml::parse(
            "<message from='mallory@localhost/x'><privilege xmlns='urn:xmpp:privilege:2'>\
             <perm access='roster' type='both'/></privilege></message>",
        )
        .unwrap();
        assert_eq!(Permissions::from_advertisement(&from_user), None);
        let other =
            xml::parse("<message from='localhost'><privilege xmlns='urn:other'/></message>")
                .unwrap();
        assert_eq!(Permissions::from_advertisement(&other), None);
    }

    #[test]
    fn forwarded_stanzas_are_in_the_client_namespace() {
        let message = xml::parse(
            "<message xmlns='jabber:component:accept' from='a@l' to='b@l'><body>hi</body><x xmlns='urn:x'/></message>",
        )
        .unwrap();
        let converted = into_client_namespace(message);
        assert_eq!(
            xml::to_string(&converted),
            "<message xmlns='jabber:client' from='a@l' to='b@l'><body>hi</body><x xmlns='urn:x'/></message>"
        );
    }
}
