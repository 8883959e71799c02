//! # exampple-std
//!
//! The std runtime of exampple, for bots and programs without an async runtime: the drive
//! loop of [`exampple_driver`] on the thread that calls [`Runtime::run`], a fixed pool of
//! worker threads, and one thread for async controllers that wait.
//!
//! Sync controllers run on the loop's own thread while they answer quickly: handing each
//! stanza to a pool thread and its answer back costs a third of the throughput of a
//! component whose controllers answer in microseconds (see PERFORMANCE.md). When one has
//! held the thread for over a millisecond and something needs the core (input, output from
//! elsewhere, a deadline), or waits for an iq answer with [`block_on`], a standby thread
//! takes the loop over and the controllers behind it go to the pool, for at least 100 ms.
//! A controller that blocks (a database call, say) thus holds the others up for a
//! millisecond or two, not for as long as it blocks. Which thread runs a controller is not
//! fixed.
//!
//! [`Runtime`] runs a component from a `Config` and a `Router`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use exampple_core::component::{ComponentError, Dispatch, DispatchFuture};
use exampple_core::observe::Observer;
use exampple_core::{Config, Router};
use exampple_driver::threads::{Executor, WorkerPool};
use exampple_driver::{Driver, Task};

pub use exampple_driver::{Handle, RuntimeError, block_on};

/// A component ready to run on plain threads.
///
/// ```no_run
/// use exampple_core::{Config, Conn, Element, Router, StanzaError};
///
/// fn ping(conn: Conn, _: Vec<Element>) -> Result<(), StanzaError> {
///     conn.iq_resp([]).send()?;
///     Ok(())
/// }
///
/// let router = Router::new().iq("urn:xmpp", |ns| ns.get("ping", ping));
/// let config = Config::from_env().expect("configuration");
/// exampple_std::Runtime::new(config, router).expect("valid router").run().expect("the component stopped");
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
        let workers = std::thread::available_parallelism()
            .map_or(4, |n| n.get() * 2)
            .max(4);
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

    /// The number of worker threads running sync controllers while one blocks the loop's
    /// thread (default: twice the number of CPUs, at least 4). A controller that blocks
    /// holds one worker.
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

    /// Runs on the calling thread until the component closes or fails.
    ///
    /// It never reads the program's arguments: a program that offers the route and namespace
    /// tables as commands prints [`Router::format_routes`] or [`Router::format_namespaces`]
    /// itself, before building the runtime.
    pub fn run(self) -> Result<(), RuntimeError> {
        let threads = Threads {
            pool: WorkerPool::start(self.workers).map_err(RuntimeError::Thread)?,
            executor: Executor::start().map_err(RuntimeError::Thread)?,
        };
        self.driver.run_with_handover(threads)
    }
}

/// Where controllers run on plain threads.
struct Threads {
    pool: WorkerPool,
    executor: Executor,
}

impl exampple_driver::Runtime for Threads {
    fn spawn(&self, controller: DispatchFuture) -> Box<dyn Task> {
        Box::new(self.executor.spawn(controller))
    }

    fn run_sync(&self, dispatch: Dispatch) {
        self.pool.give(dispatch);
    }

    fn backlog(&self) -> usize {
        self.pool.backlog()
    }

    fn watch(&mut self, now: Instant) -> Option<Instant> {
        self.pool.watch(now)
    }
}
