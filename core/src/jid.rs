//! JIDs: parse, validate, format; bare, full and domain forms.
//!
//! This re-exports the [`jid`](https://docs.rs/jid) crate of the xmpp-rs project, which
//! implements RFC 7622 (PRECIS profiles, IDNA domains, length limits): a JID validator
//! written by hand would be wrong in the corners that matter on a trust boundary.
//!
//! ```
//! use exampple_core::jid::{Jid, BareJid};
//!
//! let jid = Jid::new("Alice@Example.com/Phone").unwrap();
//! assert_eq!(jid.node().map(|n| n.as_str()), Some("alice"));
//! assert_eq!(jid.domain().as_str(), "example.com");
//! assert_eq!(jid.resource().map(|r| r.as_str()), Some("Phone"));
//! assert_eq!(jid.to_bare().to_string(), "alice@example.com");
//! assert!(jid.is_full());
//! assert!(Jid::new("a@b@c").is_err());
//! assert_eq!(exampple_core::jid::domain_of("room@muc.example.com/nick"), Some("muc.example.com"));
//! let _: BareJid = "component.example.com".parse().unwrap();
//! ```

pub use jid::{BareJid, DomainPart, Error as JidError, FullJid, Jid, NodePart, ResourcePart};

/// Parses and validates a JID.
///
/// The `jid` crate's normalisation is not always idempotent: nameprep case-folds before
/// NFKC, so `x@㋌` gets the domain `Hg`, which normalises again to `hg`. This parses the
/// printed form again until it is stable, so that two spellings of one JID compare equal
/// (found by fuzzing; pure ASCII input is stable at once and is not parsed twice).
pub fn parse(text: &str) -> Result<Jid, JidError> {
    let mut jid = Jid::new(text)?;
    if text.is_ascii() {
        return Ok(jid);
    }
    for _ in 0..4 {
        let again = Jid::new(&jid.to_string())?;
        if again.as_str() == jid.as_str() {
            break;
        }
        jid = again;
    }
    Ok(jid)
}

/// Whether `text` is a valid JID (see [`parse`]).
pub fn is_valid(text: &str) -> bool {
    parse(text).is_ok()
}

/// The domain part of a JID as written, without validating it (cheap: no allocation).
pub fn domain_of(text: &str) -> Option<&str> {
    let without_resource = text.split('/').next()?;
    let domain = without_resource.rsplit('@').next()?;
    (!domain.is_empty()).then_some(domain)
}

/// The bare part of a JID as written (`node@domain` or `domain`), without validating it.
pub fn bare_of(text: &str) -> &str {
    text.split('/').next().unwrap_or(text)
}

/// Whether the JID as written is a bare domain (no node, no resource), compared with
/// `domain` case-insensitively.
pub fn is_domain(text: &str, domain: &str) -> bool {
    !text.contains(['@', '/']) && text.eq_ignore_ascii_case(domain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let full = parse("juliet@capulet.lit/balcony").unwrap();
        assert!(full.is_full());
        assert_eq!(full.to_bare().to_string(), "juliet@capulet.lit");
        let domain = parse("capulet.lit").unwrap();
        assert!(domain.is_bare() && domain.node().is_none());
        assert!(!is_valid(""));
        assert!(!is_valid("@capulet.lit"));
        assert!(!is_valid("/x"));
        assert!(!is_valid(&format!("{}@x.lit", "n".repeat(1024))));
        assert_eq!(bare_of("a@b/c/d"), "a@b");
        assert_eq!(domain_of("a@b/c@d"), Some("b"));
        assert!(is_domain("Component.Localhost", "component.localhost"));
        assert!(!is_domain("a@component.localhost", "component.localhost"));
    }
}
