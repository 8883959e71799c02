//! The second connection of an instance with a private domain of its own
//! ([`Config::instance_domain`]): the component's IQ calls go out through it, so that their
//! results come back to this instance and not to whichever instance of the shared domain
//! the server picks.
//!
//! It is a core of its own ([`Component`]) driven by a [`DriveLoop`] of its own on a thread
//! of its own: connecting, reconnecting, keepalives and the call table are the core's, as
//! for any component, and nothing here depends on the runtime. It has no routes: what the
//! server sends to the instance domain besides call results gets what the core answers by
//! itself (disco#info of the domain, `service-unavailable` to other requests).

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use exampple_core::component::{Component, ComponentError, Dispatch, DispatchFuture};
use exampple_core::{Config, Router};

use crate::connection::Dialer;
use crate::drive_loop::{DriveLoop, Input};
use crate::error::RuntimeError;
use crate::runtime::{Runtime, Task};

/// The instance's connection, built with the component and not started yet.
pub(crate) struct InstanceLink {
    core: Component,
    dialer: Dialer,
    inputs: (mpsc::Sender<Input>, mpsc::Receiver<Input>),
}

impl InstanceLink {
    /// The link `config` asks for (none without an instance domain), its calls taken from
    /// `shared`, the component of the shared domain.
    pub(crate) fn for_component(
        config: &Config,
        shared: &mut Component,
    ) -> Result<Option<InstanceLink>, ComponentError> {
        let Some(instance) = config.instance_config() else {
            return Ok(None);
        };
        let dialer = Dialer::new(&instance)?;
        let core = Component::new(instance, Router::new(), Instant::now())?;
        shared.route_calls_through(&core);
        Ok(Some(InstanceLink {
            core,
            dialer,
            inputs: mpsc::channel(),
        }))
    }

    /// Drives the link on a thread of its own until [`RunningInstance::stop`].
    pub(crate) fn start(self, write_timeout: Duration) -> Result<RunningInstance, RuntimeError> {
        let domain = self.core.config().domain.clone();
        let shutdown = self.inputs.0.clone();
        let driver = DriveLoop::new(
            self.core,
            NoControllers,
            self.inputs,
            write_timeout,
            self.dialer,
            None,
        );
        let thread = std::thread::Builder::new()
            .name("exampple-instance".into())
            .spawn(move || {
                let result = driver.run();
                if let Err(e) = &result {
                    // The shared domain goes on serving; its calls now fail at once.
                    log::error!(target: "exampple", "the instance connection for {domain} stopped: {e}; IQ calls fail until the component restarts");
                }
                result
            })
            .map_err(RuntimeError::Thread)?;
        Ok(RunningInstance { shutdown, thread })
    }
}

/// The instance's connection, being driven.
pub(crate) struct RunningInstance {
    shutdown: mpsc::Sender<Input>,
    thread: JoinHandle<Result<(), RuntimeError>>,
}

impl RunningInstance {
    /// Closes the connection (the component of the shared domain has stopped: no call of
    /// its waits any more) and waits for its thread.
    pub(crate) fn stop(self) {
        let _ = self.shutdown.send(Input::Shutdown(Some(Duration::ZERO)));
        // Its failure, if any, was logged when it happened.
        let _ = self.thread.join();
    }
}

/// The runtime of a core without routes: it never dispatches to a controller. Should it
/// ever, the controller runs on a thread of its own rather than being dropped.
struct NoControllers;

impl Runtime for NoControllers {
    fn spawn(&self, controller: DispatchFuture) -> Box<dyn Task> {
        Box::new(ThreadTask(std::thread::spawn(move || {
            crate::block::block_on(controller);
        })))
    }

    fn run_sync(&self, dispatch: Dispatch) {
        std::thread::spawn(move || {
            if let Some(rest) = dispatch.run() {
                crate::block::block_on(rest);
            }
        });
    }
}

struct ThreadTask(JoinHandle<()>);

impl Task for ThreadTask {
    fn is_finished(&self) -> bool {
        self.0.is_finished()
    }
}
