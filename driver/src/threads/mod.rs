//! The parts of a runtime on plain threads: a worker pool for sync controllers and a
//! one-thread executor for async ones that wait. The std runtime is these two behind the
//! [`Runtime`](crate::Runtime) trait.

mod executor;
mod pool;

pub use executor::{Executor, ThreadTask};
pub use pool::WorkerPool;
