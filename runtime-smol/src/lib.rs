//! # exampple-smol
//!
//! The smol runtime of exampple: the drive loop of [`exampple_driver`] on the thread that
//! calls [`Runtime::run`], async controllers on a [smol](https://docs.rs/smol) executor with
//! one thread per CPU, sync controllers on smol's blocking pool. An async controller may
//! await anything that runs on smol (async-io timers and sockets, async-channel, ...).
//!
//! [`Runtime`] runs a component from a `Config` and a `Router`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use exampple_core::component::{ComponentError, Dispatch, DispatchFuture};
use exampple_core::observe::Observer;
use exampple_core::{Config, Router};
use exampple_driver::{Driver, Task};

pub use exampple_driver::{Handle, RuntimeError, block_on};

/// A component ready to run on smol.
///
/// Async controllers make their first poll on the drive loop's thread: one that answers
/// without waiting (most do) costs no task and no hand-off to another thread; one that waits
/// goes on as a task on the executor. As on any executor, a controller should not block or
/// compute for long inside a poll; a sync controller may block (it runs on smol's blocking
/// pool, and waits for an iq answer with [`block_on`]).
///
/// ```no_run
/// use exampple_core::{Config, Conn, Element, Router, StanzaError};
///
/// async fn ping(conn: Conn, _: Vec<Element>) -> Result<(), StanzaError> {
///     conn.iq_resp([]).send()?;
///     Ok(())
/// }
///
/// let router = Router::new().iq("urn:xmpp", |ns| ns.get("ping", ping));
/// let config = Config::from_env().expect("configuration");
/// exampple_smol::Runtime::new(config, router).expect("valid router").run().expect("the component stopped");
/// ```
#[derive(Debug)]
pub struct Runtime {
    driver: Driver,
    workers: usize,
}

impl Runtime {
    /// A runtime for `router` connecting as `config` says. Without a
    /// [`Config::seed`](exampple_core::Config::seed) the component is seeded from the OS.
    pub fn new(config: Config, router: Router) -> Result<Self, ComponentError> {
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        Ok(Runtime {
            driver: Driver::new(config, router)?,
            workers,
        })
    }

    /// Tells `observer` of every handled stanza, each step of the connection's life
    /// (connecting, online, disconnected, delegated, ...) and the traffic, on the core's
    /// thread (see `exampple_core::observe`).
    pub fn observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.driver = self.driver.observer(observer);
        self
    }

    /// The number of executor threads running async controllers (default: the number of
    /// CPUs).
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = workers.max(1);
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

    /// Runs until the component closes or fails, driving it on this thread.
    ///
    /// It never reads the program's arguments: a program that offers the route and namespace
    /// tables as commands prints [`Router::format_routes`] or [`Router::format_namespaces`]
    /// itself, before building the runtime (see the showcase example).
    pub fn run(self) -> Result<(), RuntimeError> {
        let executor = Arc::new(smol::Executor::new());
        let (stop, stopped) = smol::channel::bounded::<()>(1);
        let mut threads = Vec::new();
        for i in 0..self.workers {
            let (executor, stopped) = (executor.clone(), stopped.clone());
            let thread = std::thread::Builder::new()
                .name(format!("exampple-worker-{i}"))
                .spawn(move || smol::block_on(executor.run(stopped.recv())))
                .map_err(RuntimeError::Thread)?;
            threads.push(thread);
        }
        let result = self.driver.run(Smol { executor });
        drop(stop);
        for thread in threads {
            let _ = thread.join();
        }
        result
    }
}

/// Where controllers run on smol.
struct Smol {
    executor: Arc<smol::Executor<'static>>,
}

impl exampple_driver::Runtime for Smol {
    fn spawn(&self, controller: DispatchFuture) -> Box<dyn Task> {
        Box::new(SmolTask(self.executor.spawn(controller)))
    }

    fn run_sync(&self, dispatch: Dispatch) {
        smol::unblock(move || {
            if let Some(rest) = dispatch.run() {
                block_on(rest);
            }
        })
        .detach();
    }
}

/// Dropping a smol task cancels it.
struct SmolTask(smol::Task<()>);

impl Task for SmolTask {
    fn is_finished(&self) -> bool {
        self.0.is_finished()
    }
}
