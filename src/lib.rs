//! # exampple
//!
//! A framework for XMPP components (XEP-0114) the way Phoenix writes web apps: a router,
//! controllers, easy stanza building, and first-class testing.
//!
//! This crate re-exports the sans-IO core ([`exampple_core`]) at its root, and the runtimes
//! behind features: `smol` (default) and `blocking` (feature `std`). The test kit is
//! `testing` (feature `testing`); the c2s client for system tests and bots is `client` and
//! `sasl` here and `client` in each runtime (feature `client`; `tls` adds STARTTLS).
//!
//! ```
//! use exampple::{Conn, Element, Router, StanzaError};
//!
//! fn ping(conn: Conn, _payload: Vec<Element>) -> Result<(), StanzaError> {
//!     conn.iq_resp([]).send()?;
//!     Ok(())
//! }
//!
//! let router = Router::new().iq("urn:xmpp", |ns| ns.get("ping", ping));
//! ```
#![forbid(unsafe_code)]

pub use exampple_core::*;

/// The async runtime on smol (feature `smol`, on by default).
#[cfg(feature = "smol")]
pub use exampple_smol as smol;

/// The blocking runtime on std threads (feature `std`).
#[cfg(feature = "std")]
pub use exampple_std as blocking;

/// The README's code blocks, compiled and run as doctests (with every feature on, as
/// `scripts/test.sh` runs them).
#[cfg(all(
    doctest,
    feature = "smol",
    feature = "std",
    feature = "testing",
    feature = "client"
))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
