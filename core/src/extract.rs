//! What a controller takes besides its [`Conn`]: the payload as it likes it, and the
//! application's state.
//!
//! A controller is a function of a `Conn` and up to three *extractors*, in any order:
//!
//! | extractor | what it is | when it cannot be had |
//! |---|---|---|
//! | `Vec<Element>` | every child element of the stanza | never fails |
//! | [`Element`] | the first child element: an iq's one payload | `bad-request` |
//! | `Option<Element>` | the first child element, if any | never fails |
//! | [`State<T>`] | a clone of the `T` given to [`Router::state`](crate::Router::state) | the router is refused when built |
//! | [`Payload<T>`] | the first child converted with `T: TryFrom<Element>` (an `xmpp-parsers` type, say) | `bad-request`, with the conversion's error as text |
//!
//! An extractor that fails answers the request with its stanza error; the controller does
//! not run. The payload stays in the conn's stanza until an extractor copies what it takes:
//! a controller of the `Conn` alone copies nothing.
//!
//! ```
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use exampple_core::extract::State;
//! use exampple_core::{Conn, Element, Router, StanzaError, xml};
//!
//! #[derive(Default)]
//! struct Hits(AtomicU64);
//!
//! fn hit(conn: Conn, State(hits): State<Arc<Hits>>, _query: Element) -> Result<(), StanzaError> {
//!     let n = hits.0.fetch_add(1, Ordering::Relaxed) + 1;
//!     conn.iq_resp([xml!("<hits xmlns='urn:example:hits'>{n}</hits>")]).send()?;
//!     Ok(())
//! }
//!
//! let router = Router::new()
//!     .state(Arc::new(Hits::default()))
//!     .iq("urn:example", |ns| ns.set("hits", hit));
//! ```

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::Arc;

use minidom::Element;

use crate::conn::Conn;
use crate::stanza::{Condition, StanzaError};

/// The values given to [`Router::state`](crate::Router::state), one per type.
#[derive(Clone, Default)]
pub struct States {
    /// Shared: every controller that takes a state holds the router's, and a clone is a
    /// count; none (no allocation, no count) for the controllers that take none.
    values: Option<Arc<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>>,
}

impl States {
    /// Adds `value` (replacing one of the same type).
    pub(crate) fn insert<T: Clone + Send + Sync + 'static>(&mut self, value: T) {
        let values = self.values.get_or_insert_with(Default::default);
        Arc::make_mut(values).insert(TypeId::of::<T>(), Arc::new(value));
    }

    /// Adds the values of `other` whose types this one has none of.
    pub(crate) fn merge(&mut self, other: &States) {
        for (type_id, value) in other.values.iter().flat_map(|v| v.iter()) {
            if !self.has(*type_id) {
                let values = self.values.get_or_insert_with(Default::default);
                Arc::make_mut(values).insert(*type_id, value.clone());
            }
        }
    }

    /// The value of type `T`, if the router was given one.
    pub fn get<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        self.values
            .as_ref()?
            .get(&TypeId::of::<T>())
            .and_then(|v| v.downcast_ref::<T>())
            .cloned()
    }

    /// Whether there is a value of the type.
    pub(crate) fn has(&self, type_id: TypeId) -> bool {
        self.values
            .as_ref()
            .is_some_and(|v| v.contains_key(&type_id))
    }
}

impl std::fmt::Debug for States {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("States")
            .field("types", &self.values.as_ref().map_or(0, |v| v.len()))
            .finish()
    }
}

/// What extractors take from: the request's conn (its stanza holds the payload) and the
/// router's state.
pub struct Request<'a> {
    /// The request's conn.
    pub conn: &'a Conn,
    states: &'a States,
}

impl<'a> Request<'a> {
    pub(crate) fn new(conn: &'a Conn, states: &'a States) -> Self {
        Request { conn, states }
    }

    /// The payload: the stanza's child elements.
    pub fn payload(&self) -> impl Iterator<Item = &'a Element> + 'a {
        self.conn.stanza().children()
    }

    /// The router's state.
    pub fn states(&self) -> &States {
        self.states
    }
}

/// A state a controller needs: its type, and its name for the error that says it is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Need {
    /// The type.
    pub type_id: TypeId,
    /// The type's name.
    pub type_name: &'static str,
}

/// A controller argument taken from the request. See the [module documentation](self).
pub trait FromRequest: Sized + Send + 'static {
    /// Takes the argument, or the stanza error that answers the request instead.
    fn from_request(request: &mut Request<'_>) -> Result<Self, StanzaError>;

    /// The state it needs, checked when the router is built (none by default).
    fn need() -> Option<Need> {
        None
    }
}

impl FromRequest for Vec<Element> {
    fn from_request(request: &mut Request<'_>) -> Result<Self, StanzaError> {
        Ok(request.payload().cloned().collect())
    }
}

impl FromRequest for Option<Element> {
    fn from_request(request: &mut Request<'_>) -> Result<Self, StanzaError> {
        Ok(request.payload().next().cloned())
    }
}

impl FromRequest for Element {
    fn from_request(request: &mut Request<'_>) -> Result<Self, StanzaError> {
        request.payload().next().cloned().ok_or_else(|| {
            StanzaError::new(Condition::BadRequest).with_text("en", "the stanza has no payload")
        })
    }
}

/// The application state of type `T` given to [`Router::state`](crate::Router::state), as a
/// controller argument (a clone: share mutable state through an `Arc`).
#[derive(Debug, Clone, Copy, Default)]
pub struct State<T>(pub T);

impl<T: Clone + Send + Sync + 'static> FromRequest for State<T> {
    fn from_request(request: &mut Request<'_>) -> Result<Self, StanzaError> {
        // Checked when the router was built: missing only for a controller run by hand.
        request.states.get::<T>().map(State).ok_or_else(|| {
            log::error!(target: "exampple", "no state of type {}", std::any::type_name::<T>());
            StanzaError::new(Condition::InternalServerError)
        })
    }

    fn need() -> Option<Need> {
        Some(Need {
            type_id: TypeId::of::<T>(),
            type_name: std::any::type_name::<T>(),
        })
    }
}

/// The first payload element as a `T` (`T: TryFrom<Element>`: the payload types of
/// `xmpp-parsers`, or your own). A payload that does not convert answers `bad-request`,
/// with the conversion's error as the text.
#[derive(Debug, Clone, Copy, Default)]
pub struct Payload<T>(pub T);

impl<T> FromRequest for Payload<T>
where
    T: TryFrom<Element> + Send + 'static,
    T::Error: std::fmt::Display,
{
    fn from_request(request: &mut Request<'_>) -> Result<Self, StanzaError> {
        let element = Element::from_request(request)?;
        T::try_from(element)
            .map(Payload)
            .map_err(|e| StanzaError::new(Condition::BadRequest).with_text("en", e.to_string()))
    }
}
