//! The router: which controller handles which stanza.
//!
//! ```
//! use exampple_core::{Router, Conn, Element, StanzaError};
//! use exampple_core::disco::{Discovery, Identity};
//!
//! fn ping(conn: Conn, _: Vec<Element>) -> Result<(), StanzaError> { conn.iq_resp([]).send()?; Ok(()) }
//! fn items(conn: Conn, _: Vec<Element>) -> Result<(), StanzaError> { conn.iq_resp([]).send()?; Ok(()) }
//! fn available(_: Conn, _: Vec<Element>) {}
//! fn chat(_: Conn, _: Vec<Element>) {}
//! fn not_implemented(conn: Conn, _: Vec<Element>) -> Result<(), StanzaError> {
//!     conn.error(exampple_core::Condition::FeatureNotImplemented).send()?;
//!     Ok(())
//! }
//!
//! let router = Router::new()
//!     .discovery(Discovery::new().identity(Identity::new("component", "generic", "myapp")))
//!     .iq("urn:xmpp", |ns| ns.get("ping", ping))
//!     .iq("http://jabber.org/protocol", |ns| ns.join_with("/").get("disco#items", items))
//!     .presence(|p| p.available(available))
//!     .message(|m| m.chat(chat))
//!     .feature("urn:xmpp:mix:core:1#create")
//!     .envelope("urn:xmpp:delegation:2")
//!     .fallback(not_implemented);
//! assert!(router.namespaces().contains(&"urn:xmpp:ping".to_string()));
//! assert!(router.namespaces().contains(&"http://jabber.org/protocol/disco#items".to_string()));
//! ```
//!
//! # Matching
//!
//! A stanza is matched on its kind (iq, message, presence), its type (`type` attribute;
//! `normal` for a message and `available` for a presence without one) and its payload
//! namespace (the namespace of its first child element). A route's namespace is its block's
//! base joined with the verb's suffix by `:` (or the block's `join_with` separator; the
//! separator is trimmed at the join, and an empty suffix gives the base). A route without a
//! namespace matches any payload of its kind and type.
//!
//! A route may also take only some of the addresses under the component's domain
//! ([`Router::at`] with a [`To`]: a local part, exact or any, and a resource), so that one
//! component hosts puppet users, rooms and fixed entities: among the routes of a kind, type
//! and namespace, the most specific one that takes the stanza's `to` wins (an exact local
//! part, then any local part, then routes without an address).
//!
//! # Precedence
//!
//! Independent of the order routes are defined in:
//! 1. delegation envelopes (`envelope(...)`) are unwrapped, and the inner stanza is routed;
//! 2. disco#info: an iq get of `http://jabber.org/protocol/disco#info` addressed to the
//!    component's bare domain is answered from [`Router::discovery`] (never a result or an
//!    error);
//! 3. the route with the exact kind, type and namespace;
//! 4. the route of that kind and type without a namespace;
//! 5. the fallback;
//! 6. without a fallback: an iq get or set is answered `service-unavailable` (RFC 6120), a
//!    message or presence is dropped with a debug log, and an iq result or error is never
//!    answered.
//!
//! Routes of included routers share one table with the router's own; two routes with the
//! same kind, type and namespace are an error when the component is built (naming both
//! controllers). Lookup is a hash lookup whatever the number of routes.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

use crate::address::{Addressee, To};
use crate::controller::{Controller, Handler};
use crate::disco::{Discovery, NodeDirectory};
use crate::extract::States;
use crate::ns;
use crate::stanza::{IqType, MessageType, PresenceType, StanzaKind, StanzaType};

/// One route: kind, type, namespace (empty: any) and controller.
#[derive(Debug, Clone)]
pub struct Route {
    /// The stanza kind.
    pub kind: StanzaKind,
    /// The stanza type.
    pub stanza_type: StanzaType,
    /// The payload namespace; empty matches any.
    pub namespace: String,
    /// The addresses under the domain it takes (default: all).
    pub to: To,
    /// The controller.
    pub controller: Controller,
}

/// A problem in the router's definition.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RouterError {
    /// Two routes for the same kind, type, namespace and address.
    #[error(
        "duplicate route {kind} {stanza_type} `{namespace}`{}: handled by both {first} and {second}",
        if to.is_empty() { String::new() } else { format!(" to `{to}`") }
    )]
    Duplicate {
        /// The kind.
        kind: StanzaKind,
        /// The type.
        stanza_type: StanzaType,
        /// The namespace (empty: any).
        namespace: String,
        /// The addresses, as [`To`] writes them (empty: all).
        to: String,
        /// The controller defined first.
        first: String,
        /// The controller defined second.
        second: String,
    },
    /// A controller takes a [`State`](crate::extract::State) the router was not given.
    #[error(
        "{controller} takes State<{state}>, but the router has no state of that type: give it with Router::state"
    )]
    MissingState {
        /// The controller.
        controller: String,
        /// The state's type.
        state: &'static str,
    },
}

/// The router builder; see the [module documentation](self).
#[derive(Debug, Clone, Default)]
pub struct Router {
    routes: Vec<Route>,
    discovery: Option<Discovery>,
    features: Vec<String>,
    envelopes: Vec<String>,
    fallback: Option<Controller>,
    states: States,
    /// Nodes the core describes in disco#info and #items (the ad-hoc commands').
    nodes: Option<Arc<dyn NodeDirectory>>,
}

fn join_ns(base: &str, suffix: &str, separator: &str) -> String {
    let trim = |s: &str| -> String {
        let mut s = s;
        if !separator.is_empty() {
            while let Some(rest) = s.strip_prefix(separator) {
                s = rest;
            }
            while let Some(rest) = s.strip_suffix(separator) {
                s = rest;
            }
        }
        s.to_string()
    };
    let (base, suffix) = (trim(base), trim(suffix));
    match (base.is_empty(), suffix.is_empty()) {
        (true, _) => suffix,
        (false, true) => base,
        (false, false) => format!("{base}{separator}{suffix}"),
    }
}

/// The iq routes under one base namespace (see [`Router::iq`]).
#[derive(Debug)]
pub struct IqRoutes {
    base: String,
    separator: String,
    routes: Vec<Route>,
}

impl IqRoutes {
    /// Joins the base and the suffixes with `separator` instead of `:`.
    pub fn join_with(mut self, separator: impl Into<String>) -> Self {
        self.separator = separator.into();
        self
    }

    /// Routes iq of `iq_type` whose payload namespace is base + `suffix`.
    #[track_caller]
    pub fn on<M>(mut self, iq_type: IqType, suffix: &str, handler: impl Handler<M>) -> Self {
        self.routes.push(Route {
            kind: StanzaKind::Iq,
            stanza_type: StanzaType::Iq(iq_type),
            namespace: join_ns(&self.base, suffix, &self.separator),
            to: To::default(),
            controller: handler
                .into_controller()
                .located(std::panic::Location::caller()),
        });
        self
    }

    /// Routes iq get.
    #[track_caller]
    pub fn get<M>(self, suffix: &str, handler: impl Handler<M>) -> Self {
        self.on(IqType::Get, suffix, handler)
    }

    /// Routes iq set.
    #[track_caller]
    pub fn set<M>(self, suffix: &str, handler: impl Handler<M>) -> Self {
        self.on(IqType::Set, suffix, handler)
    }

    /// Routes iq result (answers to iq the component sent without waiting for them).
    #[track_caller]
    pub fn result<M>(self, suffix: &str, handler: impl Handler<M>) -> Self {
        self.on(IqType::Result, suffix, handler)
    }

    /// Routes iq error.
    #[track_caller]
    pub fn error<M>(self, suffix: &str, handler: impl Handler<M>) -> Self {
        self.on(IqType::Error, suffix, handler)
    }
}

macro_rules! typed_block {
    ($(#[$doc:meta])* $name:ident, $kind:ident, $type_enum:ident, { $( $(#[$vdoc:meta])* $verb:ident => $variant:ident ),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name {
            namespace: String,
            routes: Vec<Route>,
        }

        impl $name {
            /// Routes stanzas of `stanza_type` (with the block's namespace).
            #[track_caller]
            pub fn on<M>(mut self, stanza_type: $type_enum, handler: impl Handler<M>) -> Self {
                self.routes.push(Route {
                    kind: StanzaKind::$kind,
                    stanza_type: StanzaType::$kind(stanza_type),
                    namespace: self.namespace.clone(),
                    to: To::default(),
                    controller: handler
                        .into_controller()
                        .located(std::panic::Location::caller()),
                });
                self
            }

            $(
                $(#[$vdoc])*
                #[track_caller]
                pub fn $verb<M>(self, handler: impl Handler<M>) -> Self {
                    self.on($type_enum::$variant, handler)
                }
            )*
        }
    };
}

typed_block!(
    /// The message routes of one payload namespace (see [`Router::message`]).
    MessageRoutes, Message, MessageType, {
    /// Routes messages of type `normal` (or without a type).
    normal => Normal,
    /// Routes `chat` messages.
    chat => Chat,
    /// Routes `groupchat` messages.
    groupchat => Groupchat,
    /// Routes `headline` messages.
    headline => Headline,
    /// Routes `error` messages.
    error => Error,
});

typed_block!(
    /// The presence routes of one payload namespace (see [`Router::presence`]).
    PresenceRoutes, Presence, PresenceType, {
    /// Routes available presences (without a type).
    available => Available,
    /// Routes `unavailable` presences.
    unavailable => Unavailable,
    /// Routes `subscribe` requests.
    subscribe => Subscribe,
    /// Routes `subscribed` approvals.
    subscribed => Subscribed,
    /// Routes `unsubscribe` requests.
    unsubscribe => Unsubscribe,
    /// Routes `unsubscribed` notices.
    unsubscribed => Unsubscribed,
    /// Routes `probe` requests.
    probe => Probe,
    /// Routes `error` presences.
    error => Error,
});

/// A route as listed by [`Router::routes`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteInfo {
    /// The stanza kind.
    pub kind: StanzaKind,
    /// The stanza type.
    pub stanza_type: StanzaType,
    /// The namespace (empty: any).
    pub namespace: String,
    /// The addresses it takes.
    pub to: To,
    /// The controller's name.
    pub controller: String,
}

impl Router {
    /// An empty router.
    pub fn new() -> Self {
        Router::default()
    }

    /// Answers disco#info with this description (identities, extra features and forms); the
    /// routes' namespaces are added as features.
    pub fn discovery(mut self, discovery: Discovery) -> Self {
        self.discovery = Some(discovery);
        self
    }

    /// Adds iq routes under the base namespace `base` (may be empty).
    pub fn iq(mut self, base: &str, routes: impl FnOnce(IqRoutes) -> IqRoutes) -> Self {
        let block = routes(IqRoutes {
            base: base.to_string(),
            separator: ":".into(),
            routes: Vec::new(),
        });
        self.routes.extend(block.routes);
        self
    }

    /// Adds message routes for any payload namespace.
    pub fn message(self, routes: impl FnOnce(MessageRoutes) -> MessageRoutes) -> Self {
        self.message_ns("", routes)
    }

    /// Adds message routes for the payload namespace `namespace`.
    pub fn message_ns(
        mut self,
        namespace: &str,
        routes: impl FnOnce(MessageRoutes) -> MessageRoutes,
    ) -> Self {
        let block = routes(MessageRoutes {
            namespace: namespace.to_string(),
            routes: Vec::new(),
        });
        self.routes.extend(block.routes);
        self
    }

    /// Adds presence routes for any payload namespace.
    pub fn presence(self, routes: impl FnOnce(PresenceRoutes) -> PresenceRoutes) -> Self {
        self.presence_ns("", routes)
    }

    /// Adds presence routes for the payload namespace `namespace`.
    pub fn presence_ns(
        mut self,
        namespace: &str,
        routes: impl FnOnce(PresenceRoutes) -> PresenceRoutes,
    ) -> Self {
        let block = routes(PresenceRoutes {
            namespace: namespace.to_string(),
            routes: Vec::new(),
        });
        self.routes.extend(block.routes);
        self
    }

    /// Adds one route.
    #[track_caller]
    pub fn route<M>(
        mut self,
        stanza_type: StanzaType,
        namespace: &str,
        handler: impl Handler<M>,
    ) -> Self {
        self.routes.push(Route {
            kind: stanza_type.kind(),
            stanza_type,
            namespace: namespace.to_string(),
            to: To::default(),
            controller: handler
                .into_controller()
                .located(std::panic::Location::caller()),
        });
        self
    }

    /// Adds the routes `routes` defines, each taking only the addresses `to` says (a local
    /// part, a resource): one component can host puppet users (`To::any_local()`), rooms
    /// and their occupants, and fixed entities (`To::local("shout")`). A stanza goes to the
    /// most specific route that takes its `to`: an exact local part, then any local part,
    /// then routes without an address.
    pub fn at(self, to: To, routes: impl FnOnce(Router) -> Router) -> Self {
        let mut inner = routes(Router::new());
        for route in &mut inner.routes {
            if route.to.is_any() {
                route.to = to.clone();
            }
        }
        self.include(inner)
    }

    /// Gives controllers the application state `value`: a controller takes it as a
    /// [`State<T>`](crate::extract::State) argument (a clone; share mutable state through an
    /// `Arc`). One value per type; a controller that takes a type the router was not given
    /// makes [`Router::build`] fail with [`RouterError::MissingState`].
    pub fn state<T: Clone + Send + Sync + 'static>(mut self, value: T) -> Self {
        self.states.insert(value);
        self
    }

    /// Announces a feature in disco#info that no route shows.
    pub fn feature(mut self, feature: impl Into<String>) -> Self {
        self.features.push(feature.into());
        self
    }

    /// Unwraps XEP-0355 delegation envelopes of this namespace (`urn:xmpp:delegation:1`,
    /// `urn:xmpp:delegation:2`); call it once per namespace.
    pub fn envelope(mut self, namespace: impl Into<String>) -> Self {
        let namespace = namespace.into();
        if !self.envelopes.contains(&namespace) {
            self.envelopes.push(namespace);
        }
        self
    }

    /// Merges another router's routes, features, envelopes and states (a state of a type
    /// this router has already is kept; not its discovery identities nor its fallback). Anything that converts into a router can be included, e.g. an
    /// [`Rpc`](crate::rpc::Rpc) registry: `.include(rpc)` answers Jabber-RPC calls.
    pub fn include(mut self, other: impl Into<Router>) -> Self {
        let other = other.into();
        self.routes.extend(other.routes);
        for f in other.features {
            if !self.features.contains(&f) {
                self.features.push(f);
            }
        }
        if let Some(d) = other.discovery {
            for f in d.features() {
                if !self.features.contains(f) {
                    self.features.push(f.clone());
                }
            }
        }
        for e in other.envelopes {
            self = self.envelope(e);
        }
        self.states.merge(&other.states);
        if self.nodes.is_none() {
            self.nodes = other.nodes;
        }
        self
    }

    /// Nodes to describe in disco#info and #items (the ad-hoc commands').
    pub(crate) fn with_nodes(mut self, nodes: Arc<dyn NodeDirectory>) -> Self {
        self.nodes = Some(nodes);
        self
    }

    /// The controller for every stanza no route matches.
    #[track_caller]
    pub fn fallback<M>(mut self, handler: impl Handler<M>) -> Self {
        self.fallback = Some(
            handler
                .into_controller()
                .located(std::panic::Location::caller()),
        );
        self
    }

    /// Every route, in definition order (included routers' where they were included).
    pub fn routes(&self) -> Vec<RouteInfo> {
        self.routes
            .iter()
            .map(|r| RouteInfo {
                kind: r.kind,
                stanza_type: r.stanza_type,
                namespace: r.namespace.clone(),
                to: r.to.clone(),
                controller: r.controller.name().to_string(),
            })
            .collect()
    }

    /// The namespaces the component serves: the routes' (those with one), the extra
    /// features and the envelopes, sorted and unique. disco#info itself is not listed.
    pub fn namespaces(&self) -> Vec<String> {
        let mut all: Vec<String> = self
            .routes
            .iter()
            .map(|r| r.namespace.clone())
            .filter(|n| !n.is_empty())
            .chain(self.features.iter().cloned())
            .chain(
                self.discovery
                    .iter()
                    .flat_map(|d| d.features().iter().cloned()),
            )
            .chain(self.envelopes.iter().cloned())
            .collect();
        all.sort();
        all.dedup();
        all
    }

    /// The route table printed one route a line, columns aligned (exampple's `mix
    /// xmpp.routes`); with `color`, in exampple's colours (blue kind, yellow type, green
    /// namespace, white controller module, red function).
    ///
    /// The runtimes never print it on their own: a program that offers a `routes` command
    /// prints this itself, before it runs the component.
    pub fn format_routes(&self, color: bool) -> String {
        let routes = self.routes();
        let addressed = routes.iter().any(|r| !r.to.is_any());
        let address_width = routes
            .iter()
            .map(|r| r.to.to_string().chars().count())
            .max()
            .unwrap_or(0);
        let rows: Vec<[String; 5]> = routes
            .into_iter()
            .map(|r| {
                let (module, function) = match r.controller.rsplit_once("::") {
                    Some((m, f)) => (m.to_string(), f.to_string()),
                    None => (String::new(), r.controller.clone()),
                };
                // The address goes before the namespace when any route has one.
                let namespace = match addressed {
                    true => format!("{:<address_width$} {}", r.to.to_string(), r.namespace),
                    false => r.namespace,
                };
                [
                    r.kind.to_string(),
                    r.stanza_type.to_string(),
                    namespace,
                    module,
                    function,
                ]
            })
            .collect();
        let mut widths = [0usize; 5];
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let colors = ["\x1b[34m", "\x1b[33m", "\x1b[32m", "\x1b[37m", "\x1b[31m"];
        let mut out = String::new();
        for row in rows {
            for (i, cell) in row.iter().enumerate() {
                if color {
                    out.push_str(colors[i]);
                }
                if i + 1 < row.len() {
                    let _ = write!(out, "{cell:<width$} ", width = widths[i]);
                } else {
                    out.push_str(cell);
                }
            }
            if color {
                out.push_str("\x1b[0m");
            }
            out.push('\n');
        }
        out
    }

    /// The namespaces printed one a line (exampple's `mix xmpp.namespaces`); like
    /// [`format_routes`](Self::format_routes), printed only when a program asks for it.
    pub fn format_namespaces(&self) -> String {
        self.namespaces().into_iter().map(|n| n + "\n").collect()
    }

    /// Checks the router and builds its lookup table.
    pub fn build(mut self) -> Result<RouteTable, RouterError> {
        let namespaces = self.namespaces();
        for controller in self
            .routes
            .iter_mut()
            .map(|r| &mut r.controller)
            .chain(self.fallback.as_mut())
        {
            if let Some(need) = controller
                .needs()
                .iter()
                .find(|n| !self.states.has(n.type_id))
            {
                return Err(RouterError::MissingState {
                    controller: controller.name().to_string(),
                    state: need.type_name,
                });
            }
            controller.set_states(&self.states);
        }
        let mut by_type: HashMap<StanzaType, TypeRoutes> = HashMap::new();
        for route in self.routes {
            let entry = by_type.entry(route.stanza_type).or_default();
            let scoped = if route.namespace.is_empty() {
                &mut entry.any
            } else {
                entry
                    .exact
                    .entry(route.namespace.clone().into_boxed_str())
                    .or_default()
            };
            if let Some((_, existing)) = scoped.iter().find(|(to, _)| *to == route.to) {
                return Err(duplicate(&route, existing));
            }
            // Most specific first: the first that takes a stanza's address is its route.
            let at = scoped
                .iter()
                .position(|(to, _)| to.specificity() < route.to.specificity())
                .unwrap_or(scoped.len());
            scoped.insert(at, (route.to, route.controller));
        }
        let mut features = namespaces;
        if !features.iter().any(|f| f == ns::DISCO_INFO) {
            features.push(ns::DISCO_INFO.to_string());
            features.sort();
        }
        Ok(RouteTable {
            by_type,
            nodes: self.nodes,
            fallback: self.fallback,
            discovery: self.discovery,
            features,
            envelopes: self.envelopes,
        })
    }
}

fn duplicate(route: &Route, existing: &Controller) -> RouterError {
    RouterError::Duplicate {
        kind: route.kind,
        stanza_type: route.stanza_type,
        namespace: route.namespace.clone(),
        to: route.to.to_string(),
        first: existing.name().to_string(),
        second: route.controller.name().to_string(),
    }
}

/// The routes of one namespace (or of any), most specific address first: nearly always
/// one, taking every address.
type Scoped = Vec<(To, Controller)>;

#[derive(Debug, Default)]
struct TypeRoutes {
    exact: HashMap<Box<str>, Scoped>,
    any: Scoped,
}

/// The controller of the first route of `scoped` that takes `to`.
fn first_taking<'a>(scoped: &'a Scoped, to: &Addressee<'_>) -> Option<&'a Controller> {
    scoped
        .iter()
        .find(|(taken, _)| taken.matches(to))
        .map(|(_, controller)| controller)
}

/// A checked router, ready for lookups.
#[derive(Debug)]
pub struct RouteTable {
    by_type: HashMap<StanzaType, TypeRoutes>,
    nodes: Option<Arc<dyn NodeDirectory>>,
    fallback: Option<Controller>,
    discovery: Option<Discovery>,
    features: Vec<String>,
    envelopes: Vec<String>,
}

impl RouteTable {
    /// The controller of the exact route, else of the catch-all route of the kind and type,
    /// else the fallback.
    pub fn lookup(&self, stanza_type: StanzaType, namespace: &str) -> Option<&Controller> {
        self.lookup_to(stanza_type, namespace, &Addressee::default())
    }

    /// Like [`RouteTable::lookup`], for a stanza addressed to `to` (see [`Router::at`]).
    pub fn lookup_to(
        &self,
        stanza_type: StanzaType,
        namespace: &str,
        to: &Addressee<'_>,
    ) -> Option<&Controller> {
        self.lookup_route_to(stanza_type, namespace, to)
            .or(self.fallback.as_ref())
    }

    /// Like [`RouteTable::lookup`] without the fallback.
    pub fn lookup_route(&self, stanza_type: StanzaType, namespace: &str) -> Option<&Controller> {
        self.lookup_route_to(stanza_type, namespace, &Addressee::default())
    }

    /// Like [`RouteTable::lookup_to`] without the fallback.
    pub fn lookup_route_to(
        &self,
        stanza_type: StanzaType,
        namespace: &str,
        to: &Addressee<'_>,
    ) -> Option<&Controller> {
        let routes = self.by_type.get(&stanza_type)?;
        routes
            .exact
            .get(namespace)
            .and_then(|scoped| first_taking(scoped, to))
            .or_else(|| first_taking(&routes.any, to))
    }

    /// The fallback, if any.
    pub fn fallback(&self) -> Option<&Controller> {
        self.fallback.as_ref()
    }

    /// The discovery description, if enabled.
    pub fn discovery(&self) -> Option<&Discovery> {
        self.discovery.as_ref()
    }

    /// The disco#info features: every namespace, sorted, disco#info included.
    pub fn features(&self) -> &[String] {
        &self.features
    }

    /// The envelope namespaces.
    pub fn envelopes(&self) -> &[String] {
        &self.envelopes
    }

    /// The nodes the core describes in disco#info and #items, if any.
    pub fn nodes(&self) -> Option<&dyn NodeDirectory> {
        self.nodes.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins() {
        assert_eq!(join_ns("urn:xmpp", "ping", ":"), "urn:xmpp:ping");
        assert_eq!(join_ns("jabber:iq:", "register", ":"), "jabber:iq:register");
        assert_eq!(
            join_ns("http://jabber.org/protocol/", "disco#info", "/"),
            "http://jabber.org/protocol/disco#info"
        );
        assert_eq!(join_ns("urn:foo", "", ":"), "urn:foo");
        assert_eq!(join_ns("", "urn:x", ":"), "urn:x");
        assert_eq!(join_ns("", "", ":"), "");
    }
}
