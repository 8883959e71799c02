//! The blocking component runtime: a reader thread, the core's thread (with a standby to
//! take the core over while a controller blocks it), a bounded worker pool.

use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use exampple_core::component::{Component, ComponentError, Dispatch};
use exampple_core::observe::Observer;
use exampple_core::{Config, Router, Sender};

use crate::driver::{Driver, Input};
pub use crate::error::RuntimeError;

/// Where sync controllers run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyncControllers {
    /// On the core's thread while they answer quickly; when they have held it for over
    /// about a millisecond in one go (one that blocks, or many slow ones) and something
    /// needs the core (input, output from elsewhere, a deadline), a standby thread takes the
    /// core over, the controllers behind go to the worker pool, and so do all of them for
    /// at least 100 ms (the default).
    ///
    /// Controllers that answer in microseconds (most do) then cost no hand-off to another
    /// thread and back, and one that blocks (a database call, say) holds the others up for
    /// a millisecond or two, not for as long as it blocks (up to 40 ms when only a deadline
    /// needs the core). One that waits for an iq answer with
    /// [`IqCall::wait`](exampple_core::IqCall::wait) hands the core over at once, since
    /// only the core can deliver the answer. A controller runs on the thread that called
    /// [`Runtime::run`] or on a pool thread: which one is not fixed.
    #[default]
    Adaptive,
    /// On the worker pool, always: a slow or blocking controller holds up nobody, and every
    /// stanza costs a hand-off to a pool thread and back.
    Pool,
    /// On the core's thread, as soon as the stanza is routed, with no standby: the cheapest
    /// way per stanza, for controllers that never block. While one runs the component does
    /// nothing else (reads no input, answers no keepalive, sends no timeout answer), and one
    /// that waits for an iq answer with [`IqCall::wait`](exampple_core::IqCall::wait) waits
    /// until the call's timeout, since only the core's thread can deliver the answer.
    Inline,
}

/// Controls a running component from elsewhere (any thread).
#[derive(Clone)]
pub struct Handle {
    inputs: mpsc::Sender<Input>,
    sender: Sender,
}

impl Handle {
    /// Sends stanzas (queued while disconnected).
    pub fn sender(&self) -> &Sender {
        &self.sender
    }

    /// Connects now (for `auto_connect` never).
    pub fn connect(&self) {
        let _ = self.inputs.send(Input::Connect);
    }

    /// Stops taking stanzas, lets running controllers finish within `grace`, closes the
    /// stream; `run` then returns.
    pub fn shutdown(&self, grace: Duration) {
        let _ = self.inputs.send(Input::Shutdown(grace));
    }
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle").finish_non_exhaustive()
    }
}

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
pub struct Runtime {
    core: Component,
    inputs: (mpsc::Sender<Input>, mpsc::Receiver<Input>),
    workers: usize,
    sync_controllers: SyncControllers,
    write_timeout: Duration,
}

impl Runtime {
    /// A runtime for `router` connecting as `config` says. Without a
    /// [`Config::seed`](exampple_core::Config::seed) the component is seeded from the OS.
    pub fn new(config: Config, router: Router) -> Result<Self, ComponentError> {
        let core = Component::new(exampple_io::seeded(config), router, Instant::now())?;
        let workers = std::thread::available_parallelism()
            .map_or(4, |n| n.get() * 2)
            .max(4);
        Ok(Runtime {
            core,
            inputs: mpsc::channel(),
            workers,
            sync_controllers: SyncControllers::default(),
            write_timeout: Duration::from_secs(30),
        })
    }

    /// Receives a request event for every handled stanza.
    pub fn observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.core.set_observer(observer);
        self
    }

    /// The number of worker threads running controllers (default: twice the number of
    /// CPUs, at least 4). A controller that blocks holds one worker.
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = workers.max(1);
        self
    }

    /// Where sync controllers run (default: [`SyncControllers::Adaptive`]).
    pub fn sync_controllers(mut self, how: SyncControllers) -> Self {
        self.sync_controllers = how;
        self
    }

    /// How long a write may block before the connection counts as dead (default 30 s).
    pub fn write_timeout(mut self, timeout: Duration) -> Self {
        self.write_timeout = timeout;
        self
    }

    /// A handle to send stanzas, connect or shut down from elsewhere.
    pub fn handle(&self) -> Handle {
        Handle {
            inputs: self.inputs.0.clone(),
            sender: self.core.sender(),
        }
    }

    /// Runs on the calling thread until the component closes or fails.
    ///
    /// It never reads the program's arguments: a program that offers the route and namespace
    /// tables as commands prints [`Router::format_routes`] or [`Router::format_namespaces`]
    /// itself, before building the runtime.
    pub fn run(self) -> Result<(), RuntimeError> {
        let Runtime {
            core,
            inputs,
            workers,
            sync_controllers,
            write_timeout,
            ..
        } = self;
        if sync_controllers == SyncControllers::Adaptive {
            return crate::handover::run(core, inputs, workers, write_timeout);
        }
        let driver = Driver::start(core, inputs, workers, write_timeout, None)?;
        drive_alone(driver, sync_controllers == SyncControllers::Inline)
    }
}

/// Drives the core on this thread until it stops, sync controllers running here (`inline`)
/// or on the pool.
fn drive_alone(mut driver: Driver, inline: bool) -> Result<(), RuntimeError> {
    let mut here: Vec<Dispatch> = Vec::new();
    let result = loop {
        let stop = driver.handle_events(inline.then_some(&mut here));
        if !here.is_empty() {
            here.drain(..).for_each(Dispatch::run);
            driver.take_answers();
        }
        if let Some(result) = stop {
            break result;
        }
        if driver.has_transmit() {
            continue;
        }
        driver.wait_for_input(None);
    };
    driver.finish();
    result
}
