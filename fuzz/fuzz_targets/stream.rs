//! The component's stream input: arbitrary bytes from the server, in arbitrary chunks,
//! after the handshake (or instead of it), with time passing between chunks.
//!
//! Input: byte 0 = config flags, byte 1 = where to start (bit 0: before the server's header,
//! bit 1: after the header, before `<handshake/>`; otherwise online), byte 2 = chunking
//! seed; the rest is what the server sends.
#![no_main]

use std::time::Duration;

use exampple_fuzz::{Driver, SERVER_HEADER, config, router};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [flags, start, seed, rest @ ..] = data else {
        return;
    };
    let config = config(*flags);
    let router = router(flags & 32 != 0);
    let mut driver = if start & 1 != 0 {
        Driver::connected(config, router)
    } else if start & 2 != 0 {
        let mut d = Driver::connected(config, router);
        d.input(SERVER_HEADER);
        d
    } else {
        Driver::online(config, router)
    };
    let mut rest = rest;
    let mut i = 0usize;
    while !rest.is_empty() {
        let size = 1 + (usize::from(*seed) * 7 + i * 13) % 97;
        let (chunk, tail) = rest.split_at(size.min(rest.len()));
        driver.input(chunk);
        if seed & 0x80 != 0 && i.is_multiple_of(3) {
            driver.advance(Duration::from_secs(u64::from(*seed & 0x1f)));
        }
        rest = tail;
        i += 1;
    }
    // Whatever came, the timers still fire sanely.
    driver.advance(Duration::from_secs(60));
    driver.advance(Duration::from_secs(60));
});
