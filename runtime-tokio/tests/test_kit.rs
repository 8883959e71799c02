//! The test kit runs controllers on tokio when told to, so that a controller awaiting
//! tokio's timers can be unit-tested (with the kit's default threads it would panic: no
//! reactor).

use std::time::Duration;

use exampple_core::testing::TestComponent;
use exampple_core::{Config, Conn, Element, Router, StanzaError, xml};

async fn slow_ping(conn: Conn, _: Vec<Element>) -> Result<(), StanzaError> {
    tokio::time::sleep(Duration::from_millis(10)).await;
    conn.iq_resp([]).send()?;
    Ok(())
}

#[test]
fn a_controller_awaiting_a_tokio_timer_answers_in_the_test_kit() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_time()
        .build()
        .unwrap();
    let handle = runtime.handle().clone();
    let router = Router::new().iq("urn:xmpp", |ns| ns.get("ping", slow_ping));
    let config = Config::new("component.example.com", "secret").set_from(true);
    let mut component = TestComponent::builder(config, router)
        .spawn_controllers_with(move |run| {
            handle.spawn(run);
        })
        .start();
    component.component_received(xml!(
        "<iq type='get' from='alice@example.com/res' to='component.example.com' id='1'>\
           <ping xmlns='urn:xmpp:ping'/></iq>"
    ));
    component.assert_stanza_received(xml!(
        "<iq type='result' from='component.example.com' to='alice@example.com/res' id='1'/>"
    ));
}
