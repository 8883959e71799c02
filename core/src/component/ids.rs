//! The ids the component makes up, and the seed of the generator they come from.

use std::time::Instant;

/// The id prefix of the keepalive pings (their answers are consumed by the core).
const KEEPALIVE_ID_PREFIX: &str = "exampple-keepalive-";

/// A UUID v4 (the form of every id the component generates), drawn from the component's
/// generator rather than from the OS, so that a seeded run repeats its ids.
pub(super) fn random_uuid(rng: &mut fastrand::Rng) -> String {
    uuid::Builder::from_random_bytes(rng.u128(..).to_le_bytes())
        .into_uuid()
        .to_string()
}

/// The id of a new keepalive ping.
pub(super) fn keepalive_id(rng: &mut fastrand::Rng) -> String {
    format!("{KEEPALIVE_ID_PREFIX}{}", random_uuid(rng))
}

/// Whether `id` is a keepalive ping's.
pub(super) fn is_keepalive_id(id: &str) -> bool {
    id.starts_with(KEEPALIVE_ID_PREFIX)
}

/// The seed of a component given none: a hash of what the caller passed (its domain and
/// `now`), since the core reads nothing from the OS. Deterministic for the same inputs.
pub(super) fn derived_seed(domain: &str, now: Instant) -> u64 {
    use std::hash::{Hash, Hasher};
    // `DefaultHasher::new()` has fixed keys (unlike `RandomState`): no OS randomness.
    let mut hasher = std::hash::DefaultHasher::new();
    domain.hash(&mut hasher);
    now.hash(&mut hasher);
    hasher.finish()
}
