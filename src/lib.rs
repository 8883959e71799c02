//! exampple: a framework for XMPP components (XEP-0114).
pub use exampple_core::*;
