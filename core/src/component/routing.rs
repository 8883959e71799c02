//! Where a stanza from the server goes, decided and not done: [`route`] reads the stanza,
//! the route table and what the component knows, and returns a [`Route`] that the
//! component acts on.

use std::collections::BTreeSet;

use minidom::Element;

use super::calls::PendingCalls;
use super::ids;
use crate::address::Addressee;
use crate::controller::Controller;
use crate::delegation::{self, Envelope};
use crate::jid::{self, ValidJids};
use crate::ns;
use crate::router::RouteTable;
use crate::stanza::{
    self, Condition, Head, IqType, MessageType, StanzaError, StanzaKind, StanzaType,
};
use crate::xml;

/// What the component does with a stanza from the server.
pub(super) enum Route {
    /// Hands it to a controller.
    Dispatch(Routed),
    /// Answers it with this stanza, made by the core (the disco#info of its domain).
    Answer(Element),
    /// Answers it with this error (if the stanza may be answered).
    Refuse(StanzaError),
    /// Answers with this error a presence of a type the component does not know (RFC 6120
    /// §8.3.3.1), and says so in the log.
    UnknownPresenceType(StanzaError),
    /// Hands it to the call it answers.
    CallAnswer,
    /// An iq result or error that answers no call of ours and that no route asks for (the
    /// answer to another instance's call, when several share the domain): counted, then
    /// handed to the fallback if there is one.
    StrayResult(Option<Routed>),
    /// Nothing: no one asked for it, and no one is to be answered.
    Drop(Dropped),
}

/// A stanza for a controller.
pub(super) struct Routed {
    pub(super) controller: Controller,
    pub(super) stanza_type: StanzaType,
    /// The payload namespace (see [`payload_ns`]).
    pub(super) xmlns: String,
}

/// Why a stanza is dropped.
pub(super) enum Dropped {
    /// The answer to our own keepalive ping: any input already proved the peer alive.
    KeepaliveAnswer,
    /// An iq without a type: no error answer can be made for it.
    UntypedIq,
    /// A stanza that is no request has a malformed JID in this attribute.
    MalformedJid(&'static str),
    /// No route takes a stanza that is no request.
    Unrouted {
        kind: StanzaKind,
        stanza_type: StanzaType,
        xmlns: String,
    },
}

/// What routing reads besides the stanza.
pub(super) struct Context<'a> {
    pub(super) table: &'a RouteTable,
    /// The component's domain.
    pub(super) domain: &'a str,
    pub(super) calls: &'a PendingCalls,
    /// The JIDs found valid so far: a cache, which changes no decision.
    pub(super) jids: &'a mut ValidJids,
}

/// Where `stanza`, of `kind` (unwrapped from `envelope`, if it came in one), goes.
pub(super) fn route(
    cx: Context<'_>,
    kind: StanzaKind,
    stanza: &Element,
    envelope: Option<&Envelope>,
) -> Route {
    // Read once: the checks below all look at these attributes.
    let head = Head::of(stanza);
    // (Answers are never wrapped in an envelope: only a `set` is unwrapped.)
    if kind == StanzaKind::Iq && matches!(head.kind, Some("result" | "error")) {
        if head.id.is_some_and(ids::is_keepalive_id) {
            return Route::Drop(Dropped::KeepaliveAnswer);
        }
        if cx.calls.answers(stanza) {
            return Route::CallAnswer;
        }
    }
    let stanza_type = match typed(kind, head.kind) {
        Ok(stanza_type) => stanza_type,
        Err(route) => return route,
    };
    let is_request = matches!(stanza_type, StanzaType::Iq(IqType::Get | IqType::Set));
    if is_request && let Some(error) = malformed_request(&head, stanza) {
        return Route::Refuse(error);
    }
    if let Some(attr) = malformed_jid(&head, cx.jids) {
        if !is_request {
            return Route::Drop(Dropped::MalformedJid(attr));
        }
        let text = format!("malformed `{attr}` JID");
        return Route::Refuse(StanzaError::new(Condition::JidMalformed).with_text("en", text));
    }
    let xmlns = payload_ns(stanza);
    if stanza_type == StanzaType::Iq(IqType::Get)
        && xmlns == ns::DISCO_INFO
        && let Some(route) = disco_info(&cx, stanza, envelope)
    {
        return route;
    }
    if stanza_type == StanzaType::Iq(IqType::Get)
        && xmlns == ns::DISCO_ITEMS
        && let Some(route) = command_items(&cx, &head, stanza, envelope)
    {
        return route;
    }
    let to = Addressee::of(head.to);
    if matches!(stanza_type, StanzaType::Iq(IqType::Result | IqType::Error))
        && cx.table.lookup_route_to(stanza_type, &xmlns, &to).is_none()
    {
        // Answers no call of ours and no route asks for it: counted even when a fallback
        // takes it.
        return Route::StrayResult(cx.table.fallback().map(|controller| Routed {
            controller: controller.clone(),
            stanza_type,
            xmlns,
        }));
    }
    match cx.table.lookup_to(stanza_type, &xmlns, &to) {
        Some(controller) => Route::Dispatch(Routed {
            controller: controller.clone(),
            stanza_type,
            xmlns,
        }),
        None if is_request => Route::Refuse(StanzaError::new(Condition::ServiceUnavailable)),
        None => Route::Drop(Dropped::Unrouted {
            kind,
            stanza_type,
            xmlns,
        }),
    }
}

/// The stanza's type from its `type` attribute, or what to do with a stanza whose type
/// the component does not know.
fn typed(kind: StanzaKind, type_attr: Option<&str>) -> Result<StanzaType, Route> {
    let bad_request =
        |text: &'static str| StanzaError::new(Condition::BadRequest).with_text("en", text);
    match (kind, StanzaType::of(kind, type_attr)) {
        (_, Some(stanza_type)) => Ok(stanza_type),
        // RFC 6121 §5.2.2: a message of unknown type is `normal`.
        (StanzaKind::Message, None) => Ok(StanzaType::Message(MessageType::Normal)),
        (StanzaKind::Iq, None) if type_attr.is_some() => {
            Err(Route::Refuse(bad_request("invalid or missing iq type")))
        }
        (StanzaKind::Iq, None) => Err(Route::Drop(Dropped::UntypedIq)),
        // RFC 6120 §8.3.3.1: a type the receiver does not know is a bad request.
        (StanzaKind::Presence, None) => Err(Route::UnknownPresenceType(bad_request(
            "invalid presence type",
        ))),
    }
}

/// Why an iq get or set cannot be handled as it is, if it cannot.
fn malformed_request(head: &Head<'_>, stanza: &Element) -> Option<StanzaError> {
    let bad_request =
        |text: &'static str| Some(StanzaError::new(Condition::BadRequest).with_text("en", text));
    // RFC 6120 §8.1.3: an iq must have an id, or its answer cannot be matched.
    if head.id.is_none_or(str::is_empty) {
        return bad_request("an iq must carry an id");
    }
    let mut payloads = stanza.children();
    let first = payloads.next();
    if first.is_none() || payloads.next().is_some() {
        return bad_request("an iq get or set must carry exactly one payload element");
    }
    None
}

/// The attribute, `from` or `to`, that holds a malformed JID, if one does.
fn malformed_jid(head: &Head<'_>, jids: &mut ValidJids) -> Option<&'static str> {
    [("from", head.from), ("to", head.to)]
        .into_iter()
        .find(|(_, value)| value.is_some_and(|jid| !jids.check(jid)))
        .map(|(attr, _)| attr)
}

/// The payload namespace: that of the first child; children in the stanza's own namespace
/// (a message's `<body>`) have none, as in exampple.
fn payload_ns(stanza: &Element) -> String {
    match stanza.children().next() {
        Some(child) if !child.has_ns(ns::COMPONENT) && !child.has_ns(ns::CLIENT) => child.ns(),
        _ => String::new(),
    }
}

/// The core's answer to a disco#info query to the bare domain; `None` when the router
/// should handle it.
fn disco_info(cx: &Context<'_>, stanza: &Element, envelope: Option<&Envelope>) -> Option<Route> {
    if envelope.is_some()
        || !stanza
            .attr("to")
            .is_some_and(|to| jid::is_domain(to, cx.domain))
    {
        return None;
    }
    let query = stanza.children().next()?;
    let table = cx.table;
    if let Some(node) = query.attr("node")
        && let Some(info) = table.nodes().and_then(|n| n.info(node))
    {
        return Some(Route::Answer(stanza::iq_result(stanza, [info])));
    }
    let answer = match (query.attr("node"), table.discovery()) {
        (None, Some(discovery)) => discovery.info_query(None, table.features()),
        (None, None) => return None,
        (Some(node), discovery) => match delegation::delegated_namespace_of_node(node) {
            Some(delegated) => delegated_info(node, delegated, table.features()),
            None if discovery.is_some()
                || table
                    .lookup_route(StanzaType::Iq(IqType::Get), ns::DISCO_INFO)
                    .is_none() =>
            {
                return Some(Route::Refuse(StanzaError::new(Condition::ItemNotFound)));
            }
            None => return None,
        },
    };
    Some(Route::Answer(stanza::iq_result(stanza, [answer])))
}

/// disco#items on the node the router's node directory lists (the ad-hoc commands' node),
/// addressed to the component's domain: what the sender may use there (XEP-0050 §2.2).
fn command_items(
    cx: &Context<'_>,
    head: &Head<'_>,
    stanza: &Element,
    envelope: Option<&Envelope>,
) -> Option<Route> {
    let nodes = cx.table.nodes()?;
    let query = stanza.children().next()?;
    if envelope.is_some()
        || query.attr("node") != Some(nodes.items_node())
        || !head.to.is_some_and(|to| jid::is_domain(to, cx.domain))
    {
        return None;
    }
    let requester = head.from.and_then(|from| crate::jid::Jid::new(from).ok());
    let items = nodes.items(cx.domain, requester.as_ref());
    Some(Route::Answer(stanza::iq_result(stanza, [items])))
}

/// The disco#info of the delegation `node` (XEP-0355): the namespace delegated, and the
/// features of the component under it.
fn delegated_info(node: &str, delegated: &str, features: &[String]) -> Element {
    let features: Vec<String> = features
        .iter()
        .filter(|f| *f == delegated || f.starts_with(&format!("{delegated}#")))
        .cloned()
        .collect();
    let mut query = Element::bare("query", ns::DISCO_INFO);
    xml::set_attr(&mut query, "node", node);
    for feature in features
        .into_iter()
        .chain(std::iter::once(delegated.to_string()))
        .collect::<BTreeSet<_>>()
    {
        let mut el = Element::bare("feature", ns::DISCO_INFO);
        xml::set_attr(&mut el, "var", feature);
        query.append_child(el);
    }
    query
}
