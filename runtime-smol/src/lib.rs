//! The smol runtime of exampple.
