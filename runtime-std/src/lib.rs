//! # exampple-std
//!
//! The blocking runtime of exampple, for simple bots and programs without an async
//! runtime: a reader thread per connection, the core driven on the calling thread, and a
//! fixed pool of worker threads running sync controllers (with [`SyncControllers::Inline`],
//! they run on the core's thread instead). No protocol logic lives here: everything it
//! does comes from the core's events and deadlines.
//!
//! - [`Runtime`]: run a component from a `Config` and a `Router`;
//! - [`client`]: a blocking XMPP client (c2s) for system tests and bots.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod client;
mod executor;
mod pool;
mod runtime;

pub use runtime::{Handle, Runtime, RuntimeError, SyncControllers};
