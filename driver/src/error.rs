//! Why a runtime stopped: apart, so that the loop and the handover, which stop with it, need
//! nothing from the builder that starts them.

use exampple_core::component::ComponentError;

/// Why a runtime stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// The component stopped for good (rejected, invalid router or configuration).
    #[error(transparent)]
    Component(#[from] ComponentError),
    /// A thread of the runtime could not be started.
    #[error("cannot start a runtime thread: {0}")]
    Thread(std::io::Error),
}
