//! # exampple-driver
//!
//! The drive loop of exampple's runtimes, written once: it owns the turn around the sans-IO
//! core (connect, read, write, timers, dispatch, outbox, server-end detection, reconnect)
//! and the [`Handle`] to a running component. What differs between runtimes is behind the
//! small [`Runtime`] trait: where a controller runs. The smol, tokio and std runtimes are
//! each an implementation of it and a builder around [`Driver`].
//!
//! The loop runs on one thread, which waits on one channel: the reader thread of the
//! connection (which reads the socket and tokenises beside the loop: [`SharedLexer`]),
//! controllers' output, and the [`Handle`]'s commands all arrive there, with the core's
//! next deadline as the timeout. Each turn writes what the core has (one write per drain),
//! takes the core's events, and hands the next input to the core; every `handle_*` call can
//! leave more to write and new events, which the next turn drains before it waits again.
//!
//! A program that writes its own loop around the core instead needs none of this: see the
//! `embed` example.
#![forbid(unsafe_code)]
// On docs.rs (nightly rustdoc), each feature-gated item shows the feature it needs.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

mod block;
pub mod connection;
mod drive_loop;
mod driver;
mod error;
mod handover;
mod instance;
mod runtime;
pub mod shared_lexer;
mod socket;
mod splitter;
pub mod threads;
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
pub mod tls;
mod watch;

pub use block::block_on;
pub use driver::{Driver, Handle, os_seed, seeded};
pub use error::RuntimeError;
pub use runtime::{Runtime, Task};
pub use shared_lexer::SharedLexer;
