//! Controllers: plain functions (or async functions) that handle a routed stanza.
//!
//! A controller takes the [`Conn`] and the stanza's payload (its child elements) and returns
//! `Result<(), E>` for any error type `E` (or nothing at all). It answers by calling
//! `send` on the `Conn` as many times as it likes; the return value only reports failure:
//! an `Err` answers the sender with a stanza error (the [`StanzaError`](crate::stanza::StanzaError) itself when the
//! error is one, `internal-server-error` otherwise).
//!
//! ```
//! use exampple_core::{Conn, Element, StanzaError, Condition};
//!
//! fn ping(conn: Conn, _payload: Vec<Element>) -> Result<(), StanzaError> {
//!     conn.iq_resp([]).send()?;
//!     Ok(())
//! }
//!
//! async fn slow(conn: Conn, _payload: Vec<Element>) -> Result<(), StanzaError> {
//!     Err(StanzaError::new(Condition::ItemNotFound).with_text("en", "user not found"))
//! }
//!
//! let router = exampple_core::Router::new()
//!     .iq("urn:xmpp", |ns| ns.get("ping", ping).get("slow", slow));
//! ```

use std::any::Any;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use minidom::Element;

use crate::conn::Conn;
pub use crate::outcome::{BoxError, Outcome};

/// A boxed future of a controller.
pub type BoxFuture = Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send + 'static>>;

type SyncFn = dyn Fn(Conn, Vec<Element>) -> Result<(), BoxError> + Send + Sync + 'static;
type AsyncFn = dyn Fn(Conn, Vec<Element>) -> BoxFuture + Send + Sync + 'static;

/// A type-erased controller, sync or async, with the name it was declared with.
#[derive(Clone)]
pub struct Controller {
    kind: ControllerKind,
    name: Arc<str>,
}

#[derive(Clone)]
enum ControllerKind {
    Sync(Arc<SyncFn>),
    Async(Arc<AsyncFn>),
}

impl Controller {
    /// A controller from a synchronous function.
    pub fn from_sync<F>(name: impl Into<Arc<str>>, f: F) -> Self
    where
        F: Fn(Conn, Vec<Element>) -> Result<(), BoxError> + Send + Sync + 'static,
    {
        Controller {
            kind: ControllerKind::Sync(Arc::new(f)),
            name: name.into(),
        }
    }

    /// A controller from a function returning a future.
    pub fn from_async<F>(name: impl Into<Arc<str>>, f: F) -> Self
    where
        F: Fn(Conn, Vec<Element>) -> BoxFuture + Send + Sync + 'static,
    {
        Controller {
            kind: ControllerKind::Async(Arc::new(f)),
            name: name.into(),
        }
    }

    /// The controller's name (its Rust path, e.g. `myapp::ping::ping`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The name, shared (no copy per request).
    pub(crate) fn name_arc(&self) -> Arc<str> {
        self.name.clone()
    }

    /// Whether the controller is an async function.
    pub fn is_async(&self) -> bool {
        matches!(self.kind, ControllerKind::Async(_))
    }

    /// The controller as a future that never panics (a panic becomes [`Outcome::Panic`]).
    pub fn call(&self, conn: Conn, payload: Vec<Element>) -> ControllerFuture {
        let future: BoxFuture = match &self.kind {
            ControllerKind::Async(f) => match catch_unwind(AssertUnwindSafe(|| f(conn, payload))) {
                Ok(fut) => fut,
                Err(panic) => {
                    let message = panic_message(&*panic);
                    return ControllerFuture {
                        inner: None,
                        early: Some(Outcome::Panic(message)),
                    };
                }
            },
            ControllerKind::Sync(f) => {
                let f = f.clone();
                Box::pin(async move { f(conn, payload) })
            }
        };
        ControllerFuture {
            inner: Some(future),
            early: None,
        }
    }
}

impl std::fmt::Debug for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller")
            .field("name", &self.name)
            .field("async", &self.is_async())
            .finish()
    }
}

/// A controller's future: polls the controller and turns a panic into [`Outcome::Panic`].
#[must_use = "a future does nothing unless polled"]
pub struct ControllerFuture {
    inner: Option<BoxFuture>,
    early: Option<Outcome>,
}

impl Future for ControllerFuture {
    type Output = Outcome;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome> {
        if let Some(outcome) = self.early.take() {
            return Poll::Ready(outcome);
        }
        let Some(inner) = self.inner.as_mut() else {
            return Poll::Ready(Outcome::Panic("controller polled after completion".into()));
        };
        let polled = catch_unwind(AssertUnwindSafe(|| inner.as_mut().poll(cx)));
        let outcome = match polled {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(Ok(()))) => Outcome::Success,
            Ok(Poll::Ready(Err(e))) => Outcome::Failure(e),
            Err(panic) => Outcome::Panic(panic_message(&*panic)),
        };
        self.inner = None;
        Poll::Ready(outcome)
    }
}

fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".to_string()
    }
}

/// What a controller may return: `()` or `Result<(), E>` for any error `E`.
pub trait IntoControllerResult {
    /// The result as a boxed error.
    fn into_controller_result(self) -> Result<(), BoxError>;
}

impl IntoControllerResult for () {
    fn into_controller_result(self) -> Result<(), BoxError> {
        Ok(())
    }
}

impl<E: Into<BoxError>> IntoControllerResult for Result<(), E> {
    fn into_controller_result(self) -> Result<(), BoxError> {
        self.map_err(Into::into)
    }
}

/// Marker for synchronous handlers.
pub struct SyncHandler<R>(std::marker::PhantomData<fn() -> R>);
/// Marker for async handlers.
pub struct AsyncHandler<F>(std::marker::PhantomData<fn() -> F>);

/// Anything that can be a controller: `fn(Conn, Vec<Element>) -> R` or an async fn, where R
/// is `()` or `Result<(), E>`. The marker `M` tells the two apart; it is inferred.
pub trait Handler<M>: Send + Sync + 'static {
    /// The type-erased controller.
    fn into_controller(self) -> Controller;
}

impl<F, R> Handler<SyncHandler<R>> for F
where
    F: Fn(Conn, Vec<Element>) -> R + Send + Sync + 'static,
    R: IntoControllerResult,
{
    fn into_controller(self) -> Controller {
        Controller::from_sync(std::any::type_name::<F>(), move |conn, payload| {
            self(conn, payload).into_controller_result()
        })
    }
}

impl<F, Fut> Handler<AsyncHandler<Fut>> for F
where
    F: Fn(Conn, Vec<Element>) -> Fut + Send + Sync + 'static,
    Fut: Future + Send + 'static,
    Fut::Output: IntoControllerResult,
{
    fn into_controller(self) -> Controller {
        Controller::from_async(std::any::type_name::<F>(), move |conn, payload| {
            let fut = self(conn, payload);
            Box::pin(async move { fut.await.into_controller_result() })
        })
    }
}

impl Handler<()> for Controller {
    fn into_controller(self) -> Controller {
        self
    }
}
