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
/// (pure ASCII input is stable at once and is not parsed twice).
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

/// Strings already found to be valid JIDs, so that the addresses a stream repeats (the
/// component's own domain in every `to`, the same users in `from`) are validated once.
/// Validity depends on the string alone, so finding it here is as good as checking it.
///
/// Two-way: [`ValidJids::SLOTS`] strings of at most [`ValidJids::MAX_LEN`] bytes; a JID
/// may sit in either of two slots, and a new one replaces the second (so two JIDs that
/// hash alike do not keep evicting each other); a peer sending ever new JIDs only makes it
/// forget.
pub(crate) struct ValidJids {
    slots: Vec<Option<Box<str>>>,
}

impl ValidJids {
    pub(crate) const SLOTS: usize = 512;
    pub(crate) const MAX_LEN: usize = 256;

    pub(crate) fn new() -> Self {
        ValidJids {
            slots: vec![None; Self::SLOTS],
        }
    }

    /// Whether `text` is a valid JID ([`Jid::new`] accepts it).
    pub(crate) fn check(&mut self, text: &str) -> bool {
        let first = slot_of(text) & !1;
        if self.slots[first..first + 2]
            .iter()
            .any(|slot| slot.as_deref() == Some(text))
        {
            return true;
        }
        let valid = Jid::new(text).is_ok();
        if valid && text.len() <= Self::MAX_LEN {
            // The first slot takes the newcomer; what was there moves to the second.
            self.slots[first + 1] = self.slots[first].take();
            self.slots[first] = Some(text.into());
        }
        valid
    }
}

/// A slot for `text`: a multiplicative hash of its bytes, eight at a time.
fn slot_of(text: &str) -> usize {
    let mut hash = text.len() as u64;
    for chunk in text.as_bytes().chunks(8) {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        hash = (hash.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
    (hash >> 32) as usize % ValidJids::SLOTS
}

/// The characters XEP-0106 escapes in a local part, and their escapes.
const ESCAPES: [(char, &str); 10] = [
    (' ', "\\20"),
    ('"', "\\22"),
    ('&', "\\26"),
    ('\'', "\\27"),
    ('/', "\\2f"),
    (':', "\\3a"),
    ('<', "\\3c"),
    ('>', "\\3e"),
    ('@', "\\40"),
    ('\\', "\\5c"),
];

/// The escape sequence starting `text`, if it starts with one (`\20`, ..., `\5c`).
fn escape_at(text: &str) -> Option<(char, usize)> {
    ESCAPES.iter().find_map(|(c, escape)| {
        text.get(..3)
            .filter(|head| head.eq_ignore_ascii_case(escape))
            .map(|_| (*c, 3))
    })
}

/// A foreign identifier as a JID local part (XEP-0106 JID escaping): `d'artagnan@irc.example`
/// becomes `d\27artagnan\40irc.example`, so that a gateway can address it as
/// `d\27artagnan\40irc.example@gw.example`. A backslash is escaped only where it would
/// otherwise read as an escape; every space is escaped (so none leads or trails, which
/// XEP-0106 forbids).
///
/// ```
/// use exampple_core::jid::{escape_local, unescape_local};
///
/// let local = escape_local("d'artagnan@irc.example");
/// assert_eq!(local, r"d\27artagnan\40irc.example");
/// assert_eq!(unescape_local(&local), "d'artagnan@irc.example");
/// assert_eq!(escape_local(r"c:\net"), r"c\3a\net");
/// assert_eq!(escape_local(r"c:\5c"), r"c\3a\5c5c");
/// ```
pub fn escape_local(identifier: &str) -> String {
    let mut out = String::with_capacity(identifier.len());
    for (i, c) in identifier.char_indices() {
        let escaped = match c {
            '\\' => escape_at(&identifier[i..]).is_some(),
            _ => ESCAPES.iter().any(|(e, _)| *e == c && c != '\\'),
        };
        if escaped {
            if let Some((_, escape)) = ESCAPES.iter().find(|(e, _)| *e == c) {
                out.push_str(escape);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The foreign identifier a JID local part escapes (XEP-0106): every escape sequence
/// (`\20` ... `\5c`, either case) becomes its character; anything else stays.
pub fn unescape_local(local: &str) -> String {
    let mut out = String::with_capacity(local.len());
    let mut rest = local;
    while let Some(c) = rest.chars().next() {
        match (c, escape_at(rest)) {
            ('\\', Some((unescaped, len))) => {
                out.push(unescaped);
                rest = &rest[len..];
            }
            _ => {
                out.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_answers_as_the_validator_does() {
        let mut cache = ValidJids::new();
        let samples: Vec<String> = (0..2000)
            .map(|i| match i % 5 {
                0 => format!("user{i}@localhost/res"),
                1 => format!("@bad{i}"),
                2 => "component.localhost".to_string(),
                3 => format!("{}@x.lit", "n".repeat(i % 1500)),
                _ => format!("a{i}@b/c@d"),
            })
            .collect();
        // Twice: the second round answers from the slots where it can.
        for _ in 0..2 {
            for text in &samples {
                assert_eq!(cache.check(text), Jid::new(text).is_ok(), "{text}");
            }
        }
        assert!(
            cache
                .slots
                .iter()
                .flatten()
                .all(|s| s.len() <= ValidJids::MAX_LEN)
        );
    }

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
