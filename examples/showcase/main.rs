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
//! The runtime never reads the arguments: the two listing commands are this program's own,
//! answered by [`app::listing`] before any configuration is read.

use std::io::IsTerminal;
use std::sync::Arc;

use exampple::observe::Observer;

mod app;
#[cfg(feature = "metrics")]
mod metrics_http;

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
    let runtime = match exampple::smol::Runtime::new(config, app::router()) {
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
