//! # exampple-core
//!
//! The sans-IO core of exampple: everything that is XMPP, nothing that is I/O. Bytes and
//! time go in, bytes and events come out; no sockets, no threads, no clock reads.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod config;
pub mod jid;
pub mod ns;
pub mod parser;
pub mod stanza;
pub mod xml;

pub use config::{AutoConnect, Config, ConfigError};
pub use minidom::{Element, Node};
pub use stanza::{
    Condition, ErrorType, IqType, MessageType, PresenceType, StanzaError, StanzaKind, StanzaType,
};
