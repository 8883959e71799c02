//! The showcase component: every capability of exampple in one small program.
//!
//!     cargo run --example showcase            # connect (EXAMPPLE_* variables, defaults for a local Prosody)
//!     cargo run --example showcase routes     # print the route table
//!     cargo run --example showcase namespaces # print the namespaces
//!
//!     EXAMPPLE_PORT=5258 EXAMPPLE_TLS=1 EXAMPPLE_CA_FILE=ca.pem cargo run --features tls --example showcase
//!                                             # direct TLS to a TLS component port, trusting ca.pem
//!
//! `scripts/demo.sh` starts a private Prosody, runs this and drives it with a client;
//! `tests/tls_real.rs` runs it over ejabberd's TLS component listener.
//!
//! With `EXAMPPLE_METRICS=127.0.0.1:9464` (and the `metrics` feature), it serves its metrics
//! in the Prometheus text format on `http://127.0.0.1:9464/metrics`.
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
use std::sync::Arc;

use exampple::observe::Observer;

mod app;
#[cfg(feature = "metrics")]
mod metrics_http;
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
    let runtime = match metrics_observer() {
        Ok(Some(observer)) => runtime.observer(observer),
        Ok(None) => runtime,
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

/// The observer recording the metrics served on `EXAMPPLE_METRICS`, when it is set.
#[cfg(feature = "metrics")]
fn metrics_observer() -> Result<Option<Arc<dyn Observer>>, String> {
    Ok(metrics_http::serve_from_env()?.map(|observer| observer as Arc<dyn Observer>))
}

/// Without the `metrics` feature, `EXAMPPLE_METRICS` is refused rather than ignored.
#[cfg(not(feature = "metrics"))]
fn metrics_observer() -> Result<Option<Arc<dyn Observer>>, String> {
    match std::env::var("EXAMPPLE_METRICS") {
        Ok(value) if !value.trim().is_empty() => Err(
            "EXAMPPLE_METRICS is set, but this showcase was built without the `metrics` \
             feature (cargo run --features metrics --example showcase)"
                .to_string(),
        ),
        _ => Ok(None),
    }
}
