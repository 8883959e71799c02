//! SIGTERM and SIGINT drain the component, as a service manager or Ctrl-C expect: it keeps
//! serving, lets its requests in flight finish (up to `EXAMPPLE_DRAIN_SECS`, default 10 s;
//! those still running then get `service-unavailable`), closes its stream and exits 0.
//! A second signal exits at once (status 130).

use std::sync::atomic::{AtomicBool, Ordering};

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// Drains through `handle` on the first SIGTERM or SIGINT, from a thread of its own.
pub fn drain_on_signal(handle: exampple::driver::Handle) -> std::io::Result<()> {
    let mut signals = Signals::new([SIGTERM, SIGINT])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let draining = AtomicBool::new(false);
            for signal in signals.forever() {
                if draining.swap(true, Ordering::Relaxed) {
                    log::warn!(target: "exampple", "signal {signal} during the drain: exiting now");
                    std::process::exit(130);
                }
                log::info!(target: "exampple", "signal {signal}: draining");
                handle.drain();
            }
        })?;
    Ok(())
}
