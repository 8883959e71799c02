//! # exampple
//!
//! A framework for XMPP components (XEP-0114) the way Phoenix writes web apps: a router,
//! controllers, easy stanza building, and first-class testing.
//!
//! This crate re-exports the sans-IO core ([`exampple_core`]) at its root, and the runtimes
//! behind features of the same names: `smol` (default), `tokio` and `std` (plain threads).
//! Each has a `Runtime` that runs a component from a `Config` and a `Router`; [`block_on`]
//! waits for an iq answer in a sync controller. Controllers take [`extract`]ors (the payload
//! element, `State<T>`, typed payloads: `parsers` with the feature `xmpp-parsers`); ad-hoc
//! commands are [`commands`]. The test kit is `testing` (feature `testing`). The c2s clients for system tests and bots are
//! `c2s` (feature `client`: `c2s::blocking::Client`, and `c2s::smol::Client` when `smol` is
//! on too; `tls` adds STARTTLS), on the sans-IO client core `client` and `sasl` here.
//! What the component does (requests, the connection's lifecycle, traffic) reaches an
//! [`observe::Observer`]; the `metrics` feature records it through the `metrics` crate
//! (`metrics::MetricsObserver`).
//! The feature `tls` (rustls) also gives the component link direct TLS:
//! [`Config::tls`](exampple_core::Config::tls) with a [`config::DirectTls`].
//! The drive loop the runtimes share is the `exampple-driver` crate (also `exampple::driver`,
//! hidden here), for writing a runtime of your own.
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
// On docs.rs (nightly rustdoc), each feature-gated item shows the feature it needs.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub use exampple_core::*;

pub use exampple_driver::block_on;

/// The runtime on smol (feature `smol`, on by default).
#[cfg(feature = "smol")]
pub use exampple_smol as smol;

/// The runtime on tokio (feature `tokio`).
#[cfg(feature = "tokio")]
pub use exampple_tokio as tokio;

/// The runtime on plain std threads, for programs without an async runtime (feature `std`).
#[cfg(feature = "std")]
pub use exampple_std as std;

/// The c2s clients for system tests and bots, blocking and on smol (feature `client`).
#[cfg(feature = "client")]
pub use exampple_client as c2s;

/// The drive loop the runtimes share and the [`Runtime`](driver::Runtime) trait behind it:
/// for a runtime of your own (runtime-only: not in the everyday docs).
#[doc(hidden)]
pub use exampple_driver as driver;

/// The README's code blocks, compiled and run as doctests (with every feature on, as
/// `scripts/test.sh` runs them).
#[cfg(all(
    doctest,
    feature = "smol",
    feature = "std",
    feature = "tokio",
    feature = "testing",
    feature = "client",
    feature = "xmpp-parsers",
    feature = "metrics"
))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
