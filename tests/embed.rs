//! `examples/embed.rs`, the hand-written loop around the core, against the loopback server:
//! it comes online at once (its stream header is written before it waits for the server's)
//! and answers pings.

#[path = "../examples/embed.rs"]
#[allow(dead_code)]
mod embed;
mod support;

use std::time::{Duration, Instant};

use exampple::{Config, xml};
use support::{DOMAIN, FakeServer, SECRET};

#[test]
fn the_embed_example_comes_online_at_once_and_answers_pings() {
    let server = FakeServer::new();
    // A long opening deadline: a loop that waited for the server's header before writing
    // its own would sit out these 30 s.
    let config = Config::new(DOMAIN, SECRET)
        .host("127.0.0.1")
        .port(server.port())
        .handshake_timeout(Duration::from_secs(30))
        .seed(7);
    let started = Instant::now();
    std::thread::spawn(move || embed::run(config).map_err(|e| e.to_string()));
    let mut session = server.accept(true);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "online after {:?}",
        started.elapsed()
    );
    for i in 0..3 {
        session.send(&xml!(
            "<iq type='get' id='e{i}' from='alice@localhost/r' to='{DOMAIN}'><ping xmlns='urn:xmpp:ping'/></iq>"
        ));
        let answer = session
            .receive(Duration::from_secs(5))
            .expect("the ping is answered");
        assert_eq!(
            xml::to_string(&answer),
            format!(
                "<iq xmlns='jabber:component:accept' from='{DOMAIN}' id='e{i}' to='alice@localhost/r' type='result'/>"
            )
        );
    }
}
