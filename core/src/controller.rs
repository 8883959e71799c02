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
use crate::extract::{FromRequest, Need, Request, States};
pub use crate::outcome::{BoxError, Outcome};

/// A boxed future of a controller.
pub type BoxFuture = Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send + 'static>>;

type SyncFn = dyn Fn(Conn, &States) -> Result<(), BoxError> + Send + Sync + 'static;
type AsyncFn = dyn Fn(Conn, &States) -> BoxFuture + Send + Sync + 'static;

/// A type-erased controller, sync or async, with the name it was declared with.
#[derive(Clone)]
pub struct Controller {
    kind: ControllerKind,
    name: Arc<str>,
    /// The states its extractors need (checked when the router is built); none for most.
    needs: Option<Arc<[Need]>>,
    /// The router's state, given when the router is built.
    states: States,
}

#[derive(Clone)]
enum ControllerKind {
    Sync(Arc<SyncFn>),
    Async(Arc<AsyncFn>),
}

impl Controller {
    /// A controller from a synchronous function of the conn and the payload.
    pub fn from_sync<F>(name: impl Into<Arc<str>>, f: F) -> Self
    where
        F: Fn(Conn, Vec<Element>) -> Result<(), BoxError> + Send + Sync + 'static,
    {
        Self::sync_with_state(name, Vec::new(), move |conn, _| {
            let payload = conn.stanza().children().cloned().collect();
            f(conn, payload)
        })
    }

    /// A controller from a function of the conn and the payload returning a future.
    pub fn from_async<F>(name: impl Into<Arc<str>>, f: F) -> Self
    where
        F: Fn(Conn, Vec<Element>) -> BoxFuture + Send + Sync + 'static,
    {
        Self::async_with_state(name, Vec::new(), move |conn, _| {
            let payload = conn.stanza().children().cloned().collect();
            f(conn, payload)
        })
    }

    fn sync_with_state<F>(name: impl Into<Arc<str>>, needs: Vec<Need>, f: F) -> Self
    where
        F: Fn(Conn, &States) -> Result<(), BoxError> + Send + Sync + 'static,
    {
        Controller {
            kind: ControllerKind::Sync(Arc::new(f)),
            name: name.into(),
            needs: (!needs.is_empty()).then(|| needs.into()),
            states: States::default(),
        }
    }

    fn async_with_state<F>(name: impl Into<Arc<str>>, needs: Vec<Need>, f: F) -> Self
    where
        F: Fn(Conn, &States) -> BoxFuture + Send + Sync + 'static,
    {
        Controller {
            kind: ControllerKind::Async(Arc::new(f)),
            name: name.into(),
            needs: (!needs.is_empty()).then(|| needs.into()),
            states: States::default(),
        }
    }

    /// The states its arguments need.
    pub(crate) fn needs(&self) -> &[Need] {
        self.needs.as_deref().unwrap_or_default()
    }

    /// Gives it the router's state.
    pub(crate) fn set_states(&mut self, states: &States) {
        if self.needs.is_some() {
            self.states = states.clone();
        }
    }

    /// Names a closure after where it was given to the router: a closure's type name ends
    /// in `{{closure}}`, which says nothing in a route listing or a log.
    pub(crate) fn located(mut self, at: &std::panic::Location<'_>) -> Self {
        if let Some(prefix) = self.name.strip_suffix("::{{closure}}") {
            // The enclosing function, and the place (a closure inside a closure keeps the
            // outermost function's path).
            let function = prefix.split("::{{closure}}").next().unwrap_or(prefix);
            self.name = format!(
                "{function}::{{closure at {}:{}}}",
                at.file().rsplit('/').next().unwrap_or(at.file()),
                at.line()
            )
            .into();
        }
        self
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
    pub fn call(&self, conn: Conn) -> ControllerFuture {
        let future: BoxFuture = match &self.kind {
            ControllerKind::Async(f) => {
                match catch_unwind(AssertUnwindSafe(|| f(conn, &self.states))) {
                    Ok(fut) => fut,
                    Err(panic) => {
                        let message = panic_message(&*panic);
                        return ControllerFuture {
                            inner: None,
                            early: Some(Outcome::Panic(message)),
                        };
                    }
                }
            }
            ControllerKind::Sync(f) => {
                let f = f.clone();
                let states = self.states.clone();
                Box::pin(async move { f(conn, &states) })
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

/// Marker for synchronous handlers, by argument types and return type.
pub struct SyncHandler<A, R>(std::marker::PhantomData<fn(A) -> R>);
/// Marker for async handlers, by argument types and future type.
pub struct AsyncHandler<A, F>(std::marker::PhantomData<fn(A) -> F>);

/// Anything that can be a controller: a function (or closure) of a [`Conn`] and up to three
/// [extractors](crate::extract) (`Vec<Element>`, `Element`, `State<T>`, `Payload<T>`...),
/// sync or async, returning `()` or `Result<(), E>`. The marker `M` tells the kinds apart;
/// it is inferred.
pub trait Handler<M>: Send + Sync + 'static {
    /// The type-erased controller.
    fn into_controller(self) -> Controller;
}

/// The states `A`'s extractors need.
fn needs_of(needs: &[Option<Need>]) -> Vec<Need> {
    needs.iter().flatten().copied().collect()
}

macro_rules! handlers {
    ($($arg:ident),*) => {
        impl<F, R, $($arg,)*> Handler<SyncHandler<($($arg,)*), R>> for F
        where
            F: Fn(Conn, $($arg),*) -> R + Send + Sync + 'static,
            R: IntoControllerResult,
            $($arg: FromRequest,)*
        {
            #[allow(non_snake_case, unused_mut, unused_variables)]
            fn into_controller(self) -> Controller {
                let needs = needs_of(&[$($arg::need()),*]);
                Controller::sync_with_state(
                    std::any::type_name::<F>(),
                    needs,
                    move |conn, states| {
                        let mut request = Request::new(&conn, states);
                        $(let $arg = $arg::from_request(&mut request)?;)*
                        self(conn, $($arg),*).into_controller_result()
                    },
                )
            }
        }

        impl<F, Fut, $($arg,)*> Handler<AsyncHandler<($($arg,)*), Fut>> for F
        where
            F: Fn(Conn, $($arg),*) -> Fut + Send + Sync + 'static,
            Fut: Future + Send + 'static,
            Fut::Output: IntoControllerResult,
            $($arg: FromRequest,)*
        {
            #[allow(non_snake_case, unused_mut, unused_variables)]
            fn into_controller(self) -> Controller {
                let needs = needs_of(&[$($arg::need()),*]);
                Controller::async_with_state(
                    std::any::type_name::<F>(),
                    needs,
                    move |conn, states| {
                        let mut request = Request::new(&conn, states);
                        $(let $arg = match $arg::from_request(&mut request) {
                            Ok(value) => value,
                            Err(e) => return Box::pin(std::future::ready(Err(e.into()))),
                        };)*
                        let fut = self(conn, $($arg),*);
                        Box::pin(async move { fut.await.into_controller_result() })
                    },
                )
            }
        }
    };
}

handlers!();
handlers!(A1);
handlers!(A1, A2);
handlers!(A1, A2, A3);

impl Handler<()> for Controller {
    fn into_controller(self) -> Controller {
        self
    }
}
