//! A request handed to a controller: the [`Dispatch`] the runtime runs, the
//! [`DispatchFuture`] that reports its end to the core, and what the core keeps of the
//! request meanwhile ([`InFlight`]; the observer module reports how it ended).

use std::sync::Arc;
use std::time::Instant;

use crate::conn::outbox::{Outbox, OutboxItem};
use crate::conn::{Conn, RequestId};
use crate::controller::{Controller, ControllerFuture};

/// A stanza to hand to a controller.
pub struct Dispatch {
    /// The request.
    pub request: RequestId,
    /// The controller to run.
    pub controller: Controller,
    /// The conn it gets. The payload is in the conn's stanza: the controller's arguments
    /// copy only what they take (nothing for a controller of the conn alone).
    pub conn: Conn,
    pub(super) outbox: Arc<Outbox>,
}

impl Dispatch {
    /// Whether the controller is async.
    pub fn is_async(&self) -> bool {
        self.controller.is_async()
    }

    /// Runs the controller on this thread until it ends or has to wait, and reports its
    /// outcome to the core when it ends.
    ///
    /// A sync controller always runs to its end here (`None`). An async one is polled once:
    /// most answer without waiting (`None`); one that waits is returned, to be polled to its
    /// end where the program runs futures (a task of its executor). The core never waits.
    #[must_use = "an async controller that waits goes on only if its future is polled"]
    pub fn run(self) -> Option<DispatchFuture> {
        let mut future = self.into_future();
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match std::future::Future::poll(std::pin::Pin::new(&mut future), &mut cx) {
            std::task::Poll::Ready(()) => None,
            std::task::Poll::Pending => Some(future),
        }
    }

    /// The controller as a future that reports its outcome to the core when it ends.
    ///
    /// It is `Unpin`: a runtime can poll it where it is (most controllers finish in their
    /// first poll) and move it into a task only if it has to wait.
    pub fn into_future(self) -> DispatchFuture {
        let Dispatch {
            request,
            controller,
            conn,
            outbox,
        } = self;
        DispatchFuture {
            future: controller.call(conn),
            request,
            outbox,
        }
    }
}

/// A running controller ([`Dispatch::into_future`]): reports its outcome to the core when it
/// ends.
#[must_use = "a future does nothing unless polled"]
pub struct DispatchFuture {
    future: ControllerFuture,
    request: RequestId,
    outbox: Arc<Outbox>,
}

impl std::future::Future for DispatchFuture {
    type Output = ();

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        match std::pin::Pin::new(&mut self.future).poll(cx) {
            std::task::Poll::Ready(outcome) => {
                self.outbox.push(OutboxItem::Finished {
                    request: self.request,
                    outcome,
                });
                std::task::Poll::Ready(())
            }
            std::task::Poll::Pending => std::task::Poll::Pending,
        }
    }
}

impl std::fmt::Debug for DispatchFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DispatchFuture")
            .field("request", &self.request)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Dispatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatch")
            .field("request", &self.request)
            .field("controller", &self.controller.name())
            .field("conn", &self.conn)
            .finish_non_exhaustive()
    }
}

/// What the core keeps of a request being handled.
pub(super) struct InFlight {
    pub(super) conn: Conn,
    pub(super) controller: Arc<str>,
    pub(super) started: Instant,
}
