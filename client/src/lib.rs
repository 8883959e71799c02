//! # exampple-client
//!
//! The c2s XMPP clients of exampple, for system tests and bots: each logs in to a server as
//! a user (SASL SCRAM-SHA-1 or PLAIN, STARTTLS with the `tls` feature), binds a resource,
//! sends stanzas, waits for the next one matching a pattern, and sends iqs and waits for
//! their answers. Several clients in one test play several users.
//!
//! The protocol is the sans-IO client of [`exampple_core::client`]; this crate only moves
//! its bytes and time, in two ways:
//!
//! - [`blocking::Client`]: blocking, over [`std::net::TcpStream`] with a reader thread per
//!   client; for tests and programs without an async runtime;
//! - `smol::Client` (feature `smol`): async, on [smol](https://docs.rs/smol).
//!
//! Features: `smol` (the async client), `tls` (STARTTLS for both, with rustls, the *ring*
//! provider and the web PKI roots; without it a STARTTLS offer is declined). The `exampple`
//! facade re-exports this crate as `exampple::c2s` (feature `client`).
#![forbid(unsafe_code)]
// On docs.rs (nightly rustdoc), each feature-gated item shows the feature it needs.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

pub mod blocking;
#[cfg(feature = "smol")]
pub mod smol;

mod common;
