//! # exampple-tokio
//!
//! The tokio runtime of exampple: the drive loop of [`exampple_driver`] on a thread of its
//! own, async controllers as [tokio](https://docs.rs/tokio) tasks, sync controllers on
//! tokio's blocking pool. A controller may await anything built on tokio: its timers and
//! sockets, and the libraries gateways call (reqwest, sqlx, ...).
//!
//! Inside a tokio program, [`Runtime::run_async`] runs the component on the program's
//! runtime; elsewhere [`Runtime::run`] starts a runtime of its own.
//!
//! ```no_run
//! use std::time::Duration;
//! use exampple_core::{Config, Conn, Element, Router, StanzaError};
//!
//! async fn slow_ping(conn: Conn, _: Vec<Element>) -> Result<(), StanzaError> {
//!     tokio::time::sleep(Duration::from_millis(10)).await;
//!     conn.iq_resp([]).send()?;
//!     Ok(())
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let router = Router::new().iq("urn:xmpp", |ns| ns.get("ping", slow_ping));
//!     exampple_tokio::Runtime::new(Config::from_env()?, router)?.run_async().await?;
//!     Ok(())
//! }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use exampple_core::component::{ComponentError, Dispatch, DispatchFuture};
use exampple_core::observe::Observer;
use exampple_core::{Config, Router};
use exampple_driver::{Driver, Task};

pub use exampple_driver::{Handle, RuntimeError, block_on};

/// A component ready to run on tokio.
///
/// Async controllers make their first poll on the drive loop's thread, inside the tokio
/// runtime's context: one that answers without waiting (most do) costs no task; one that
/// waits goes on as a tokio task. A sync controller runs on tokio's blocking pool, and may
/// block there (waiting for an iq answer with [`block_on`], say).
#[derive(Debug)]
pub struct Runtime {
    driver: Driver,
    workers: Option<usize>,
}

impl Runtime {
    /// A runtime for `router` connecting as `config` says. Without a
    /// [`Config::seed`](exampple_core::Config::seed) the component is seeded from the OS.
    pub fn new(config: Config, router: Router) -> Result<Self, ComponentError> {
        Ok(Runtime {
            driver: Driver::new(config, router)?,
            workers: None,
        })
    }

    /// Tells `observer` of every handled stanza, each step of the connection's life
    /// (connecting, online, disconnected, delegated, ...) and the traffic, on the core's
    /// thread (see `exampple_core::observe`).
    pub fn observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.driver = self.driver.observer(observer);
        self
    }

    /// The number of worker threads of the runtime [`Runtime::run`] starts (default: tokio's,
    /// the number of CPUs). [`Runtime::run_async`] uses the program's runtime as it is.
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = Some(workers.max(1));
        self
    }

    /// How long a write may block before the connection counts as dead (default 30 s).
    pub fn write_timeout(mut self, timeout: Duration) -> Self {
        self.driver = self.driver.write_timeout(timeout);
        self
    }

    /// A handle to send stanzas, connect or shut down from elsewhere.
    pub fn handle(&self) -> Handle {
        self.driver.handle()
    }

    /// Starts a tokio runtime and runs until the component closes or fails, driving it on
    /// this thread (which must not be a tokio worker: inside a tokio program, use
    /// [`Runtime::run_async`]).
    pub fn run(self) -> Result<(), RuntimeError> {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        if let Some(workers) = self.workers {
            builder.worker_threads(workers);
        }
        let runtime = builder
            .thread_name("exampple-worker")
            .enable_time()
            .build()
            .map_err(RuntimeError::Thread)?;
        let result = drive(self.driver, runtime.handle().clone());
        // Controllers still waiting are dropped; blocking ones are not waited for long.
        runtime.shutdown_timeout(Duration::from_secs(1));
        result
    }

    /// Runs on the current tokio runtime until the component closes or fails, the loop on
    /// one of its blocking threads.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub async fn run_async(self) -> Result<(), RuntimeError> {
        let handle = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || drive(self.driver, handle))
            .await
            .map_err(|e| RuntimeError::Thread(std::io::Error::other(e)))?
    }
}

/// Drives on this thread, inside the runtime's context (so that a controller's first poll,
/// made here, can use tokio's timers and I/O).
fn drive(driver: Driver, handle: tokio::runtime::Handle) -> Result<(), RuntimeError> {
    let _context = handle.enter();
    driver.run(Tokio { handle })
}

/// Where controllers run on tokio.
struct Tokio {
    handle: tokio::runtime::Handle,
}

impl exampple_driver::Runtime for Tokio {
    fn spawn(&self, controller: DispatchFuture) -> Box<dyn Task> {
        Box::new(TokioTask(self.handle.spawn(controller)))
    }

    fn run_sync(&self, dispatch: Dispatch) {
        // Detached: the controller reports its own end to the core.
        drop(self.handle.spawn_blocking(move || {
            if let Some(rest) = dispatch.run() {
                block_on(rest);
            }
        }));
    }
}

/// A tokio task, aborted when dropped.
struct TokioTask(tokio::task::JoinHandle<()>);

impl Task for TokioTask {
    fn is_finished(&self) -> bool {
        self.0.is_finished()
    }
}

impl Drop for TokioTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}
