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
//! it until the server advertises again) and a controller acts through
//! [`Privileged`](crate::conn::Privileged) ([`Conn::privileged`](crate::Conn::privileged),
//! [`Sender::privileged`](crate::Sender::privileged)): a user's roster, a message on a user's
//! behalf, an iq on a user's behalf. What was not granted fails at once with
//! [`PrivilegeError::NotGranted`](crate::conn::PrivilegeError::NotGranted), never with a
//! timeout. This module holds the protocol's data (what was granted, rosters); the acting is
//! the connection's.
//!
//! Servers speak either generation of the XEP: Prosody's `mod_privilege` speaks
//! `urn:xmpp:privilege:2`, ejabberd 23.01 `urn:xmpp:privilege:1` (no iq permission). A
//! privileged message must be wrapped in the namespace the server advertised (each refuses
//! the other's), which [`Privileged::send_message`](crate::conn::Privileged::send_message)
//! does.
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

use minidom::Element;

use crate::ns;
use crate::stanza::IqType;
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

    pub(crate) fn from_element(item: &Element) -> Option<RosterItem> {
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

    pub(crate) fn to_element(&self) -> Element {
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
        let converted = xml::into_client_ns(message);
        assert_eq!(
            xml::to_string(&converted),
            "<message xmlns='jabber:client' from='a@l' to='b@l'><body>hi</body><x xmlns='urn:x'/></message>"
        );
    }
}
