//! The ping controller on the blocking (std) runtime: the std benchmark subject, the twin
//! of `examples/ping.rs`.
//!
//!     EXAMPPLE_HOST=127.0.0.1 EXAMPPLE_PORT=5252 EXAMPPLE_DOMAIN=component.localhost \
//!     EXAMPPLE_PASSWORD=secret cargo run --release --features std --example ping_std
//!
//! The controller is a plain function, which the std runtime runs on the loop's thread with
//! a standby thread ready to take the loop over if it blocks. `PING_ASYNC=1` makes it an
//! async function instead, whose first poll runs on the loop's thread (as on every runtime).
//! SIGTERM or Ctrl-C drains it (`examples/common/signals.rs`).

use exampple::{Config, Conn, Element, Router, StanzaError};

#[path = "common/signals.rs"]
mod signals;

/// Answers XEP-0199 pings with an empty result.
fn ping(conn: Conn, _payload: Vec<Element>) -> Result<(), StanzaError> {
    conn.iq_resp([]).send()?;
    Ok(())
}

/// The same, as an async function.
async fn ping_async(conn: Conn, _payload: Vec<Element>) -> Result<(), StanzaError> {
    conn.iq_resp([]).send()?;
    Ok(())
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("ping_std: {e}");
            std::process::exit(2);
        }
    };
    let set = |name: &str| std::env::var_os(name).is_some_and(|v| v == "1");
    let router = if set("PING_ASYNC") {
        Router::new().iq("urn:xmpp", |ns| ns.get("ping", ping_async))
    } else {
        Router::new().iq("urn:xmpp", |ns| ns.get("ping", ping))
    };
    let result = exampple::std::Runtime::new(config, router)
        .map_err(|e| e.to_string())
        .and_then(|rt| {
            signals::drain_on_signal(rt.handle()).map_err(|e| e.to_string())?;
            rt.run().map_err(|e| e.to_string())
        });
    if let Err(e) = result {
        eprintln!("ping_std: {e}");
        std::process::exit(1);
    }
}
