//! # exampple-std
//!
//! The blocking runtime of exampple, for simple bots and programs without an async
//! runtime: a reader thread per connection, the core driven on the calling thread, and a
//! fixed pool of worker threads. Sync controllers run on the core's thread while they
//! answer quickly; while one blocks, a standby thread drives the core and the others go to
//! the pool ([`SyncControllers`] has the other choices). No protocol logic lives here:
//! everything it does comes from the core's events and deadlines.
//!
//! - [`Runtime`]: run a component from a `Config` and a `Router`;
//! - `client` (feature `client`): a blocking XMPP client (c2s) for system tests and bots.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "client")]
pub mod client;
mod driver;
mod error;
mod executor;
mod handover;
mod pool;
mod runtime;
mod watch;

pub use runtime::{Handle, Runtime, RuntimeError, SyncControllers};
