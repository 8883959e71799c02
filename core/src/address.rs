//! Routing by the addressed JID: a component answers for every address under its domain
//! (`gw.example`, `alice%irc.example@gw.example`, `room@gw.example/nick`), and a route may
//! take only some of them ([`To`]). A controller reads the parts it was addressed with
//! ([`Addressed`]).
//!
//! ```
//! use exampple_core::address::{Addressed, To};
//! use exampple_core::{Conn, Router, StanzaError, stanza, MessageType};
//!
//! fn shout(conn: Conn, to: Addressed) -> Result<(), StanzaError> {
//!     let body = conn.stanza().get_child("body", "jabber:component:accept").map(|b| b.text());
//!     conn.send(
//!         stanza::message(MessageType::Chat)
//!             .to(conn.from().unwrap_or_default())
//!             .from(conn.to().unwrap_or_default())
//!             .body(body.unwrap_or_default().to_uppercase())
//!             .build(),
//!     )?;
//!     assert_eq!(to.local.as_deref(), Some("shout"));
//!     Ok(())
//! }
//!
//! let router = Router::new().at(To::local("shout"), |r| r.message(|m| m.chat(shout)));
//! ```

use std::fmt;

use crate::extract::{FromRequest, Request};
use crate::stanza::StanzaError;

/// What a route asks of one part of the addressed JID.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum Part {
    /// Anything, or nothing (the default).
    #[default]
    Any,
    /// This value (a local part compares as written; XEP-0106 escapes are not undone).
    Exact(String),
    /// Some value, whichever.
    Present,
}

impl Part {
    fn matches(&self, part: Option<&str>) -> bool {
        match self {
            Part::Any => true,
            Part::Exact(value) => part == Some(value.as_str()),
            Part::Present => part.is_some(),
        }
    }

    /// How much it asks: an exact value before a present one before anything.
    fn specificity(&self) -> u8 {
        match self {
            Part::Any => 0,
            Part::Present => 1,
            Part::Exact(_) => 2,
        }
    }
}

/// Which addresses under the component's domain a route takes: a local part and a resource,
/// each any (the default), exact, or present. More specific routes win: an exact local part
/// before any local part before none asked.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct To {
    /// The local part (`shout` in `shout@gw.example`).
    pub local: Part,
    /// The resource (`nick` in `room@gw.example/nick`).
    pub resource: Part,
}

impl To {
    /// Stanzas to `local@domain` (any resource).
    pub fn local(local: impl Into<String>) -> Self {
        To {
            local: Part::Exact(local.into()),
            resource: Part::Any,
        }
    }

    /// Stanzas to any `local@domain` (puppets, rooms), not to the domain itself.
    pub fn any_local() -> Self {
        To {
            local: Part::Present,
            resource: Part::Any,
        }
    }

    /// The same, only with this resource.
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.resource = Part::Exact(resource.into());
        self
    }

    /// The same, only with some resource (`room@domain/nick`).
    pub fn any_resource(mut self) -> Self {
        self.resource = Part::Present;
        self
    }

    /// Whether it takes every address (a route without [`Router::at`](crate::Router::at)).
    pub fn is_any(&self) -> bool {
        *self == To::default()
    }

    /// Whether a stanza addressed with these parts is for it.
    pub fn matches(&self, addressee: &Addressee<'_>) -> bool {
        self.local.matches(addressee.local) && self.resource.matches(addressee.resource)
    }

    /// How much it asks (the local part counts first).
    pub(crate) fn specificity(&self) -> u8 {
        self.local.specificity() * 3 + self.resource.specificity()
    }
}

impl fmt::Display for To {
    /// `shout@`, `*@`, `room@/nick`, `*@/*`, or nothing for any address.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.local {
            Part::Any => {}
            Part::Exact(local) => write!(f, "{local}@")?,
            Part::Present => f.write_str("*@")?,
        }
        match &self.resource {
            Part::Any => Ok(()),
            Part::Exact(resource) => write!(f, "/{resource}"),
            Part::Present => f.write_str("/*"),
        }
    }
}

/// The local part and resource of a stanza's `to`, as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Addressee<'a> {
    /// The local part, if any.
    pub local: Option<&'a str>,
    /// The resource, if any.
    pub resource: Option<&'a str>,
}

impl<'a> Addressee<'a> {
    /// The parts of `to` (a valid JID, as the core has checked it before routing).
    pub fn of(to: Option<&'a str>) -> Self {
        let Some(to) = to else {
            return Addressee::default();
        };
        let (bare, resource) = match to.split_once('/') {
            Some((bare, resource)) => (bare, Some(resource)),
            None => (to, None),
        };
        let local = bare.split_once('@').map(|(local, _)| local);
        Addressee { local, resource }
    }
}

/// The parts of the JID a stanza was addressed to, as a controller argument: the local part
/// and the resource, as written (XEP-0106 escapes kept: undo them with
/// [`jid::unescape_local`](crate::jid::unescape_local)).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Addressed {
    /// The local part (`shout` of `shout@gw.example`), if any.
    pub local: Option<String>,
    /// The resource, if any.
    pub resource: Option<String>,
}

impl FromRequest for Addressed {
    fn from_request(request: &mut Request<'_>) -> Result<Self, StanzaError> {
        let addressee = Addressee::of(request.conn.to());
        Ok(Addressed {
            local: addressee.local.map(str::to_string),
            resource: addressee.resource.map(str::to_string),
        })
    }
}
