//! A ping controller on the tokio runtime: the tokio benchmark subject, the twin of
//! `examples/ping.rs` (smol) and `examples/ping_std.rs`.
//!
//!     EXAMPPLE_HOST=127.0.0.1 EXAMPPLE_PORT=5252 EXAMPPLE_DOMAIN=component.localhost \
//!     EXAMPPLE_PASSWORD=secret cargo run --release --features tokio --example ping_tokio
//!
//! `PING_SLEEP_MS=N` makes the controller await a tokio timer of N ms before it answers,
//! which only works with a tokio reactor behind it. SIGTERM or Ctrl-C drains it
//! (`examples/common/signals.rs`).

use std::time::Duration;

use exampple::{Config, Conn, Element, Router, StanzaError};

#[path = "common/signals.rs"]
mod signals;

/// Answers XEP-0199 pings with an empty result.
async fn ping(conn: Conn, _payload: Vec<Element>) -> Result<(), StanzaError> {
    conn.iq_resp([]).send()?;
    Ok(())
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("ping_tokio: {e}");
            std::process::exit(2);
        }
    };
    let sleep = std::env::var("PING_SLEEP_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
        .map(Duration::from_millis);
    let router = match sleep {
        Some(sleep) => Router::new().iq("urn:xmpp", move |ns| {
            ns.get(
                "ping",
                move |conn: Conn, _payload: Vec<Element>| async move {
                    tokio::time::sleep(sleep).await;
                    conn.iq_resp([]).send()
                },
            )
        }),
        None => Router::new().iq("urn:xmpp", |ns| ns.get("ping", ping)),
    };
    let runtime = match exampple::tokio::Runtime::new(config, router) {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("ping_tokio: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = signals::drain_on_signal(runtime.handle()) {
        eprintln!("ping_tokio: {e}");
        std::process::exit(1);
    }
    if let Err(e) = runtime.run_async().await {
        eprintln!("ping_tokio: {e}");
        std::process::exit(1);
    }
}
