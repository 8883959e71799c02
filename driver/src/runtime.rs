//! What differs between runtimes: where a controller runs. Everything else (connecting,
//! reading, writing, timers, reconnecting) is the drive loop's, the same for all.

use std::time::Instant;

use exampple_core::component::{Dispatch, DispatchFuture};

/// Where controllers run, for one runtime: the part of a runtime that is not the drive loop.
///
/// The drive loop polls an async controller once on its own thread (most answer without
/// waiting, and then cost no task); one that has to wait is handed to [`Runtime::spawn`].
/// Sync controllers go to [`Runtime::run_sync`], which may run them anywhere except the
/// drive loop's thread, since they may block (the std runtime's handover, which runs them
/// on the loop's thread while they answer quickly, is a drive strategy of its own:
/// [`Driver::run_with_handover`](crate::Driver::run_with_handover)).
///
/// An implementation is a few lines on any executor: see the smol, tokio and std runtimes.
pub trait Runtime: Send + 'static {
    /// Polls `controller` to its end on the runtime's executor. Dropping the returned task
    /// cancels the controller (its request has timed out).
    fn spawn(&self, controller: DispatchFuture) -> Box<dyn Task>;

    /// Runs a sync controller to its end (`dispatch.run()`) where it may block.
    fn run_sync(&self, dispatch: Dispatch);

    /// How many sync controllers wait for a thread to run on: while there are many, the
    /// drive loop reads no more input, so that requests wait in the kernel's buffer rather
    /// than in memory. Zero (the default) for runtimes whose blocking pool grows.
    fn backlog(&self) -> usize {
        0
    }

    /// Called on every turn of the loop: the runtime may act on its own deadline (the std
    /// runtime wakes another worker when the awake ones are blocked) and returns the next
    /// one, if any (default: none).
    fn watch(&mut self, now: Instant) -> Option<Instant> {
        let _ = now;
        None
    }
}

/// A spawned controller ([`Runtime::spawn`]). Dropping it cancels the controller.
pub trait Task: Send {
    /// Whether the controller has ended (the loop forgets finished tasks from time to time).
    fn is_finished(&self) -> bool;
}
