//! Waiting for a future on a thread that is not an executor's: a sync controller waiting
//! for an iq answer ([`IqCall`](exampple_core::IqCall)), say.

use std::cell::RefCell;
use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

thread_local! {
    /// Called on this thread before [`block_on`] blocks: the handover's home thread sets it,
    /// since a controller that waits there for something only the core delivers must let
    /// the core move to another thread first.
    static BEFORE_BLOCKING: RefCell<Option<Arc<dyn Fn()>>> = const { RefCell::new(None) };
}

/// Sets (or clears) what [`block_on`] calls on this thread before it blocks.
pub(crate) fn set_before_blocking(hook: Option<Arc<dyn Fn()>>) {
    BEFORE_BLOCKING.with(|h| *h.borrow_mut() = hook);
}

struct ThreadWaker(std::thread::Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs `future` to its end on this thread, sleeping while it waits: for sync controllers
/// and other threads that are not an executor's. An async controller `.await`s instead.
///
/// ```no_run
/// use std::time::Duration;
/// use exampple_core::{Conn, Element, StanzaError, xml};
///
/// fn relay(conn: Conn, _: Vec<Element>) -> Result<(), StanzaError> {
///     let ping = xml!("<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
///     let answer = exampple_driver::block_on(conn.call(ping, Duration::from_secs(5))?);
///     match answer {
///         Ok(_) => conn.iq_resp([]).send()?,
///         Err(_) => conn.iq_error(exampple_core::Condition::RemoteServerTimeout).send()?,
///     }
///     Ok(())
/// }
/// ```
pub fn block_on<F: Future>(future: F) -> F::Output {
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    let mut told = false;
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        if !told {
            told = true;
            let hook = BEFORE_BLOCKING.with(|h| h.borrow().clone());
            if let Some(hook) = hook {
                hook();
                // The hook may have taken a while: look again before sleeping.
                continue;
            }
        }
        std::thread::park();
    }
}
