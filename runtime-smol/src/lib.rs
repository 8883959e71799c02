//! # exampple-smol
//!
//! The async runtime of exampple, on [smol](https://docs.rs/smol): a task drives the sans-IO
//! core (socket, timers, reconnects), async controllers run as tasks on an executor with
//! one thread per CPU, sync controllers on smol's blocking pool. No protocol logic lives
//! here: everything it does comes from the core's events and deadlines.
//!
//! - [`Runtime`]: run a component from a `Config` and a `Router`;
//! - `client` (feature `client`): an XMPP client (c2s) for system tests and bots.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "client")]
pub mod client;
mod reader;
mod runtime;

pub use runtime::{Handle, Runtime, RuntimeError, SyncControllers};
