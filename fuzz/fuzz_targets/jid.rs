//! JID parsing (the `jid` crate behind `exampple_core::jid`) and the cheap helpers that
//! read a JID as written.
#![no_main]

use exampple_core::jid::{self, Jid};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = jid::domain_of(text);
    let bare = jid::bare_of(text);
    assert!(text.starts_with(bare));
    let _ = jid::is_domain(text, "component.localhost");
    // `Jid::new` itself is not idempotent (nameprep folds case before NFKC, so `x@㋌`
    // gets the domain `Hg`); `jid::parse` normalises to a fixed point.
    let _ = Jid::new(text);
    if let Ok(parsed) = jid::parse(text) {
        // What was accepted prints as a JID that parses to the same JID.
        let printed = parsed.to_string();
        let again = jid::parse(&printed).expect("a printed JID parses");
        assert_eq!(again, parsed, "{text:?} -> {printed:?}");
        assert_eq!(again.to_string(), printed);
        let bare = parsed.to_bare();
        let bare_again = jid::parse(&bare.to_string()).expect("a bare JID parses");
        assert!(bare_again.is_bare());
        assert_eq!(parsed.domain().as_str(), bare.domain().as_str());
        assert!(jid::is_valid(&printed));
    }
});
