//! XML namespaces used by the core.

/// The namespace of stanzas on a XEP-0114 component stream.
pub const COMPONENT: &str = "jabber:component:accept";
/// The namespace of stanzas on a client (c2s) stream.
pub const CLIENT: &str = "jabber:client";
/// The namespace of the `<stream:stream>` element.
pub const STREAM: &str = "http://etherx.jabber.org/streams";
/// Stream error conditions (RFC 6120 §4.9.3).
pub const STREAM_ERRORS: &str = "urn:ietf:params:xml:ns:xmpp-streams";
/// Stanza error conditions (RFC 6120 §8.3.3).
pub const STANZA_ERRORS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";
/// XEP-0199: XMPP Ping.
pub const PING: &str = "urn:xmpp:ping";
/// XEP-0030: Service Discovery, info.
pub const DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";
/// XEP-0030: Service Discovery, items.
pub const DISCO_ITEMS: &str = "http://jabber.org/protocol/disco#items";
/// XEP-0004: Data Forms.
pub const DATA_FORMS: &str = "jabber:x:data";
/// XEP-0009: Jabber-RPC.
pub const RPC: &str = "jabber:iq:rpc";
/// XEP-0092: Software Version.
pub const VERSION: &str = "jabber:iq:version";
/// XEP-0297: Stanza Forwarding.
pub const FORWARD: &str = "urn:xmpp:forward:0";
/// XEP-0355: Namespace Delegation, version 1 (ejabberd).
pub const DELEGATION_1: &str = "urn:xmpp:delegation:1";
/// XEP-0355: Namespace Delegation, version 2 (Prosody's mod_delegation).
pub const DELEGATION_2: &str = "urn:xmpp:delegation:2";
/// XEP-0356: Privileged Entity, version 1 (ejabberd).
pub const PRIVILEGE_1: &str = "urn:xmpp:privilege:1";
/// XEP-0356: Privileged Entity, version 2 (Prosody's mod_privilege).
pub const PRIVILEGE_2: &str = "urn:xmpp:privilege:2";
/// RFC 6121 roster management.
pub const ROSTER: &str = "jabber:iq:roster";
/// The `xml:` prefix namespace (for `xml:lang`).
pub const XML: &str = "http://www.w3.org/XML/1998/namespace";
/// RFC 6120 SASL.
pub const SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
/// RFC 6120 resource binding.
pub const BIND: &str = "urn:ietf:params:xml:ns:xmpp-bind";
/// RFC 6120 STARTTLS.
pub const TLS: &str = "urn:ietf:params:xml:ns:xmpp-tls";
/// RFC 3921 session establishment (legacy, still announced by some servers).
pub const SESSION: &str = "urn:ietf:params:xml:ns:xmpp-session";
