//! # exampple-core
//!
//! The sans-IO core of exampple: everything that is XMPP, nothing that is I/O. Bytes and
//! time go in, bytes and events come out; no sockets, no threads, no blocking waits, no clock
//! reads, no OS randomness (the test kit aside, which runs controllers on threads of its
//! own). The runtimes drive it: `exampple-driver` and its smol, tokio and std adapters.
//!
//! - [`component`]: the XEP-0114 connection state machine;
//! - [`router`], [`controller`], [`conn`]: routing stanzas to controllers and answering;
//! - [`stanza`], [`xml`](mod@xml), [`jid`]: building and reading stanzas;
//! - [`disco`], [`delegation`], [`privilege`]: XEP-0030, XEP-0355 and XEP-0356;
//! - [`parser`]: the incremental stream parser with its limits;
//! - [`config`], [`observe`]: options, request and lifecycle events, traffic, logs;
//!   `metrics` (feature `metrics`) records them through the `metrics` crate.
#![forbid(unsafe_code)]
// On docs.rs (nightly rustdoc), each feature-gated item shows the feature it needs.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

pub mod address;
#[cfg(feature = "client")]
pub mod client;
pub mod commands;
pub mod component;
pub mod config;
pub mod conn;
pub mod controller;
pub mod delegation;
pub mod disco;
pub mod extract;
pub mod forms;
mod in_flight;
pub mod jid;
pub mod matching;
#[cfg(feature = "metrics")]
#[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
pub mod metrics;
pub mod ns;
pub mod observe;
mod outcome;
pub mod parser;
pub mod privilege;
pub mod router;
pub mod rpc;
#[cfg(feature = "client")]
pub mod sasl;
pub mod stanza;
#[cfg(feature = "testing")]
pub mod testing;
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
pub mod tls;
pub mod xml;

/// The payload types of [xmpp-parsers](https://docs.rs/xmpp-parsers) (feature
/// `xmpp-parsers`): take one with [`extract::Payload`], answer with one (`Into<Element>`).
#[cfg(feature = "xmpp-parsers")]
pub use xmpp_parsers as parsers;

/// What the code `xml!` generates relies on; not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::xml::build::*;
}

// The runtime-only types (`Dispatch`, `Event`) stay in `component`, out of the everyday
// names at the root.
pub use component::{Component, ComponentError, Disconnect, StreamError};
pub use config::{AutoConnect, Config, ConfigError};
pub use conn::{
    CallError, Conn, IqCall, PrivilegeError, Privileged, Reply, RequestId, SendError, Sender,
};
pub use controller::{BoxError, Controller, Handler, Outcome};
pub use disco::{Discovery, Identity};
pub use minidom::{Element, Node};
pub use router::{Router, RouterError};
pub use stanza::{
    Condition, ErrorType, IqType, MessageType, PresenceType, StanzaError, StanzaKind, StanzaType,
};
