//! The showcase component: every capability of exampple in one small program.
//!
//!     cargo run --example showcase            # connect (EXAMPPLE_* variables, defaults for a local Prosody)
//!     cargo run --example showcase routes     # print the route table
//!     cargo run --example showcase namespaces # print the namespaces
//!
//! `scripts/demo.sh` starts a private Prosody, runs this and drives it with a client.
//!
//! SIGTERM or Ctrl-C drains it: it keeps serving, lets its requests in flight finish for up
//! to `EXAMPPLE_DRAIN_SECS` (default 10), answers those still running `service-unavailable`,
//! closes its stream and exits 0. With `EXAMPPLE_INSTANCE_DOMAIN` (say
//! `i1.component.localhost`) it also connects under that private domain, and its IQ calls
//! (the roundtrip's ping) go out from there, so their results come back to this instance.
//!
//! The runtime never reads the arguments: the two listing commands are this program's own,
//! answered by [`app::listing`] before any configuration is read.

use std::io::IsTerminal;

mod app;
#[path = "../common/signals.rs"]
mod signals;

fn main() {
    if let Some(command) = std::env::args().nth(1)
        && let Some(table) = app::listing(&command, std::io::stdout().is_terminal())
    {
        print!("{table}");
        return;
    }
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let config = match app::config_from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("showcase: {e}");
            std::process::exit(2);
        }
    };
    let router = app::router_for(config.instance_domain.clone());
    let runtime = match exampple::smol::Runtime::new(config, router) {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("showcase: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = signals::drain_on_signal(runtime.handle()) {
        eprintln!("showcase: cannot handle signals: {e}");
        std::process::exit(1);
    }
    if let Err(e) = runtime.run() {
        eprintln!("showcase: {e}");
        std::process::exit(1);
    }
}
