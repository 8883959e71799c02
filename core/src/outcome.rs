//! How a controller ended, and the error type it may fail with.
//!
//! These live apart from [`controller`](crate::controller) so that [`conn`](crate::conn),
//! which carries outcomes back to the component, and `controller`, which takes a
//! [`Conn`](crate::conn::Conn), do not import each other. Both types are re-exported from
//! `controller` and from the crate root; this module is not public.

use crate::stanza::{Condition, StanzaError};

/// Any error a controller returns.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// How a controller ended.
#[derive(Debug)]
pub enum Outcome {
    /// It returned `Ok`.
    Success,
    /// It returned an error.
    Failure(BoxError),
    /// It panicked, with this message.
    Panic(String),
}

/// The first [`StanzaError`] in `error`'s chain (itself, then its sources): an application
/// error that wraps one (`#[from]`/`#[source]` with thiserror, `anyhow`'s context) answers
/// with its condition, not `internal-server-error`.
fn stanza_error_in(error: &(dyn std::error::Error + 'static)) -> Option<StanzaError> {
    let mut next = Some(error);
    while let Some(e) = next {
        if let Some(stanza_error) = e.downcast_ref::<StanzaError>() {
            return Some(stanza_error.clone());
        }
        next = e.source();
    }
    None
}

impl Outcome {
    /// The stanza error that answers this outcome, if it failed.
    pub fn stanza_error(&self) -> Option<StanzaError> {
        match self {
            Outcome::Success => None,
            Outcome::Failure(e) => Some(
                stanza_error_in(e.as_ref())
                    .unwrap_or_else(|| StanzaError::new(Condition::InternalServerError)),
            ),
            Outcome::Panic(_) => Some(StanzaError::new(Condition::InternalServerError)),
        }
    }
}
