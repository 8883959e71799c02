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

impl Outcome {
    /// The stanza error that answers this outcome, if it failed.
    pub fn stanza_error(&self) -> Option<StanzaError> {
        match self {
            Outcome::Success => None,
            Outcome::Failure(e) => Some(match e.downcast_ref::<StanzaError>() {
                Some(stanza_error) => stanza_error.clone(),
                None => StanzaError::new(Condition::InternalServerError),
            }),
            Outcome::Panic(_) => Some(StanzaError::new(Condition::InternalServerError)),
        }
    }
}
