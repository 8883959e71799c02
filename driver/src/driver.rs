//! [`Driver`]: a component ready to be driven, what every runtime's `Runtime` builder holds,
//! and its [`Handle`].

use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use exampple_core::component::{Component, ComponentError};
use exampple_core::observe::Observer;
use exampple_core::{Config, Router, Sender};

use crate::connection::Dialer;
use crate::drive_loop::{DriveLoop, Input};
use crate::error::RuntimeError;
use crate::instance::{InstanceLink, RunningInstance};
use crate::runtime::Runtime;

/// A component ready to be driven: the core, the channel its loop waits on, and the loop's
/// settings. Each runtime's `Runtime` builder wraps one and says where controllers run.
pub struct Driver {
    core: Component,
    inputs: (mpsc::Sender<Input>, mpsc::Receiver<Input>),
    write_timeout: Duration,
    dialer: Dialer,
    /// The connection of the instance's private domain, when the configuration names one.
    instance: Option<InstanceLink>,
}

impl Driver {
    /// The write timeout unless set: a server that reads nothing of our output for this
    /// long counts as gone.
    pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(30);

    /// A component for `router` connecting as `config` says. Without a
    /// [`Config::seed`](exampple_core::Config::seed) it is seeded from the OS. With
    /// [`Config::tls`](exampple_core::Config::tls), the trust anchors are read here (an
    /// unreadable CA file is an error now, not at each attempt).
    ///
    /// With a [`Config::instance_domain`](exampple_core::Config::instance_domain) the
    /// driver also opens a connection authenticated for that domain (same server, secret
    /// and TLS), and the component's IQ calls go out through it, so that their results come
    /// back to this instance; it closes when the component has.
    pub fn new(config: Config, router: Router) -> Result<Driver, ComponentError> {
        let dialer = Dialer::new(&config)?;
        let config = seeded(config);
        let mut core = Component::new(config.clone(), router, Instant::now())?;
        let instance = InstanceLink::for_component(&config, &mut core)?;
        Ok(Driver {
            core,
            inputs: mpsc::channel(),
            write_timeout: Self::DEFAULT_WRITE_TIMEOUT,
            dialer,
            instance,
        })
    }

    /// Tells `observer` of every handled stanza, each step of the connection's life
    /// (connecting, online, disconnected, delegated, ...) and the traffic, on the core's
    /// thread (see `exampple_core::observe`).
    pub fn observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.core.set_observer(observer);
        self
    }

    /// How long a write may block before the connection counts as dead (default
    /// [`Driver::DEFAULT_WRITE_TIMEOUT`]).
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

    /// Drives the component on this thread until it closes or fails, async controllers
    /// that wait and sync controllers going to `runtime`.
    pub fn run<R: Runtime>(mut self, runtime: R) -> Result<(), RuntimeError> {
        let instance = self.start_instance()?;
        let result = DriveLoop::new(
            self.core,
            runtime,
            self.inputs,
            self.write_timeout,
            self.dialer,
            None,
        )
        .run();
        if let Some(instance) = instance {
            instance.stop();
        }
        result
    }

    /// Drives the component on this thread until it closes or fails, running sync
    /// controllers on this thread too while they answer quickly; a standby thread takes the
    /// loop over while one blocks, and `runtime` gets the others meanwhile (see the
    /// handover module).
    pub fn run_with_handover<R: Runtime>(mut self, runtime: R) -> Result<(), RuntimeError> {
        let instance = self.start_instance()?;
        let result = crate::handover::run(
            self.core,
            runtime,
            self.inputs,
            self.write_timeout,
            self.dialer,
        );
        if let Some(instance) = instance {
            instance.stop();
        }
        result
    }

    /// Starts driving the instance's connection, if there is one; it is driven until the
    /// component stops.
    fn start_instance(&mut self) -> Result<Option<RunningInstance>, RuntimeError> {
        self.instance
            .take()
            .map(|link| link.start(self.write_timeout))
            .transpose()
    }
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("domain", &self.core.config().domain)
            .field("write_timeout", &self.write_timeout)
            .finish_non_exhaustive()
    }
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

    /// Connects now (for `auto_connect` never, or to skip a backoff delay).
    pub fn connect(&self) {
        let _ = self.inputs.send(Input::Connect);
    }

    /// Drains the component within `grace` ([`Component::close`]): it goes on serving what
    /// arrives, lets the requests in flight finish, answers those still running at the
    /// deadline with `service-unavailable`, writes what is queued, closes the stream and
    /// waits for the server's close; `run` then returns `Ok`.
    pub fn shutdown(&self, grace: Duration) {
        let _ = self.inputs.send(Input::Shutdown(Some(grace)));
    }

    /// Drains the component within its
    /// [`Config::drain_timeout`](exampple_core::Config::drain_timeout) (see
    /// [`Handle::shutdown`]): what a SIGTERM handler calls.
    pub fn drain(&self) {
        let _ = self.inputs.send(Input::Shutdown(None));
    }
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle").finish_non_exhaustive()
    }
}

/// A seed from the OS's randomness, for a [`Config`](exampple_core::Config) that sets none:
/// the core reads no randomness itself, so the programs that drive it (the runtimes, an
/// embedding) seed it here, and components sharing a server do not generate the same ids.
pub fn os_seed() -> u64 {
    uuid::Uuid::new_v4().as_u64_pair().0
}

/// Gives `config` a seed from the OS ([`os_seed`]) unless it has one.
pub fn seeded(mut config: exampple_core::Config) -> exampple_core::Config {
    config.seed.get_or_insert_with(os_seed);
    config
}
