//! An iq sent to wait for its answer: the slot the core fills, and the future that reads it.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};

use minidom::Element;

use super::SendError;
use crate::stanza::StanzaError;

/// Why an iq call got no result.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// The answer was an error stanza.
    #[error("the iq was answered with an error: {0}")]
    Error(Box<StanzaError>, Box<Element>),
    /// No answer came in time.
    #[error("no answer to the iq in time")]
    Timeout,
    /// The component closed before the answer came.
    #[error("the component closed before the answer came")]
    Closed,
    /// The iq could not be sent.
    #[error("the iq could not be sent: {0}")]
    Send(SendError),
}

type CallState = (Option<Result<Element, CallError>>, Option<Waker>);

/// Where the core puts the answer of one call, for its [`IqCall`] to take.
#[derive(Default)]
pub(crate) struct CallSlot {
    state: Mutex<CallState>,
}

impl CallSlot {
    pub(crate) fn fulfil(&self, result: Result<Element, CallError>) {
        let waker = {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            if state.0.is_some() {
                return;
            }
            state.0 = Some(result);
            state.1.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// The pending answer of an iq sent with [`Conn::call`](super::Conn::call) or
/// [`Sender::call`](super::Sender::call): `.await` it in an async controller; a sync
/// controller (or any thread) waits for it with the runtimes' `block_on`.
#[must_use = "an IqCall does nothing unless awaited"]
pub struct IqCall {
    slot: Arc<CallSlot>,
}

impl IqCall {
    pub(super) fn new(slot: Arc<CallSlot>) -> Self {
        IqCall { slot }
    }
}

impl std::future::Future for IqCall {
    type Output = Result<Element, CallError>;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        let mut state = self.slot.state.lock().unwrap_or_else(|p| p.into_inner());
        match state.0.take() {
            Some(result) => Poll::Ready(result),
            None => {
                state.1 = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

impl fmt::Debug for IqCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IqCall").finish_non_exhaustive()
    }
}
