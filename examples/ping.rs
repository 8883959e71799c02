//! A ping controller on the smol runtime: the smol benchmark subject, the twin of
//! `examples/ping_std.rs`.
//!
//!     EXAMPPLE_HOST=127.0.0.1 EXAMPPLE_PORT=5252 EXAMPPLE_DOMAIN=component.localhost \
//!     EXAMPPLE_PASSWORD=secret cargo run --release --example ping
//!
//! SIGTERM or Ctrl-C drains it (`examples/common/signals.rs`).

use exampple::{Config, Conn, Element, Router, StanzaError};

#[path = "common/signals.rs"]
mod signals;

/// Answers XEP-0199 pings with an empty result.
async fn ping(conn: Conn, _payload: Vec<Element>) -> Result<(), StanzaError> {
    conn.iq_resp([]).send()?;
    Ok(())
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("ping: {e}");
            std::process::exit(2);
        }
    };
    let router = Router::new().iq("urn:xmpp", |ns| ns.get("ping", ping));
    let result = exampple::smol::Runtime::new(config, router)
        .map_err(|e| e.to_string())
        .and_then(|rt| {
            signals::drain_on_signal(rt.handle()).map_err(|e| e.to_string())?;
            rt.run().map_err(|e| e.to_string())
        });
    if let Err(e) = result {
        eprintln!("ping: {e}");
        std::process::exit(1);
    }
}
