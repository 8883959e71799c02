//! A bot on the std runtime (plain threads): answers pings and echoes chat messages.
//!
//!     cargo run --features std --example bot_std
//!
//! SIGTERM or Ctrl-C drains it (`examples/common/signals.rs`).

use exampple::{Config, Conn, Element, MessageType, Router, StanzaError, stanza};

#[path = "common/signals.rs"]
mod signals;

fn ping(conn: Conn, _payload: Vec<Element>) -> Result<(), StanzaError> {
    conn.iq_resp([]).send()?;
    Ok(())
}

fn echo(conn: Conn, payload: Vec<Element>) -> Result<(), StanzaError> {
    let Some(body) = payload.iter().find(|e| e.name() == "body") else {
        return Ok(());
    };
    let reply = stanza::message(MessageType::Chat)
        .to(conn.from().unwrap_or_default())
        .from(conn.to().unwrap_or_default())
        .body(format!("echo: {}", body.text()))
        .build();
    conn.send(reply)?;
    Ok(())
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("bot_std: {e}");
            std::process::exit(2);
        }
    };
    let router = Router::new()
        .iq("urn:xmpp", |ns| ns.get("ping", ping))
        .message(|m| m.chat(echo));
    let result = exampple::std::Runtime::new(config, router)
        .map_err(|e| e.to_string())
        .and_then(|rt| {
            signals::drain_on_signal(rt.handle()).map_err(|e| e.to_string())?;
            rt.run().map_err(|e| e.to_string())
        });
    if let Err(e) = result {
        eprintln!("bot_std: {e}");
        std::process::exit(1);
    }
}
