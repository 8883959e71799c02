//! The blocking std runtime of exampple.
