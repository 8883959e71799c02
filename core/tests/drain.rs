//! Graceful drain, stray IQ results and the instance's call link, at the wire: bytes from
//! the server in, bytes to it out, on simulated time.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use exampple_core::component::{Dispatch, Event};
use exampple_core::conn::{CallError, IqCall};
use exampple_core::{Component, Config, Conn, Element, Router, StanzaError, xml};

const DOMAIN: &str = "component.localhost";
const INSTANCE: &str = "i1.component.localhost";
const HEADER: &[u8] = b"<stream:stream xmlns='jabber:component:accept' \
    xmlns:stream='http://etherx.jabber.org/streams' id='s1'>";

fn answer(conn: Conn, _: Vec<Element>) -> Result<(), StanzaError> {
    conn.iq_resp([]).send()?;
    Ok(())
}

fn router() -> Router {
    Router::new().iq("urn:test", |ns| ns.get("work", answer))
}

/// A component for `domain`, online, its opening's output taken.
fn online(config: Config, router: Router, now: Instant) -> Component {
    let mut core = Component::new(config, router, now).expect("a valid configuration");
    core.connect(now);
    while core.poll_event().is_some() {}
    core.handle_connected(now);
    core.handle_input(now, HEADER);
    core.handle_input(now, b"<handshake/>");
    assert!(core.is_online());
    let _ = core.poll_transmit();
    while core.poll_event().is_some() {}
    core
}

/// What the component wrote since last asked, as text.
fn written(core: &mut Component) -> String {
    let mut out = String::new();
    while let Some(bytes) = core.poll_transmit() {
        out.push_str(&String::from_utf8(bytes).expect("UTF-8 output"));
    }
    out
}

/// The controllers the component asked for, not run yet (requests in flight).
fn dispatches(core: &mut Component) -> Vec<Dispatch> {
    let mut held = Vec::new();
    while let Some(event) = core.poll_event() {
        if let Event::Dispatch(dispatch) = event {
            held.push(dispatch);
        }
    }
    held
}

fn request(id: &str) -> Vec<u8> {
    format!("<iq type='get' id='{id}' from='u@localhost/r' to='{DOMAIN}'><work xmlns='urn:test:work'/></iq>")
        .into_bytes()
}

/// Runs a held controller to its end and lets the core take its answer.
fn finish(core: &mut Component, dispatch: Dispatch, now: Instant) {
    assert!(dispatch.run().is_none(), "a sync controller");
    core.handle_outbox(now);
}

fn poll_call(call: &mut IqCall) -> Poll<Result<Element, CallError>> {
    pin!(call).poll(&mut Context::from_waker(Waker::noop()))
}

#[test]
fn a_drain_serves_what_arrives_waits_for_requests_in_flight_then_closes() {
    let t0 = Instant::now();
    let mut core = online(Config::new(DOMAIN, "secret"), router(), t0);
    core.handle_input(t0, &request("before"));
    let before = dispatches(&mut core).pop().expect("dispatched");

    core.close(t0, Duration::from_secs(5));
    assert!(core.is_draining());
    assert_eq!(
        written(&mut core),
        "",
        "the stream stays open for the request in flight"
    );

    // Keeps serving: a request arriving during the drain is handled and answered.
    let t1 = t0 + Duration::from_secs(1);
    core.handle_input(t1, &request("during"));
    let during = dispatches(&mut core)
        .pop()
        .expect("served during the drain");
    finish(&mut core, during, t1);
    assert_eq!(
        written(&mut core),
        format!("<iq from='{DOMAIN}' id='during' to='u@localhost/r' type='result'/>")
    );

    // The last request finishes: its answer goes out, then the stream's close.
    let t2 = t0 + Duration::from_secs(2);
    finish(&mut core, before, t2);
    assert_eq!(
        written(&mut core),
        format!(
            "<iq from='{DOMAIN}' id='before' to='u@localhost/r' type='result'/></stream:stream>"
        )
    );
    assert!(!core.is_stopped(), "waits for the server's close");
    core.handle_input(t2, b"</stream:stream>");
    assert!(matches!(core.poll_event(), Some(Event::Closed)));
    assert!(core.is_stopped());
}

#[test]
fn at_the_drain_deadline_every_unfinished_request_gets_service_unavailable() {
    let t0 = Instant::now();
    let mut core = online(Config::new(DOMAIN, "secret"), router(), t0);
    core.handle_input(t0, &request("a"));
    core.handle_input(t0, &request("b"));
    let mut held = dispatches(&mut core);
    assert_eq!(held.len(), 2);

    core.close(t0, Duration::from_secs(1));
    assert_eq!(core.poll_timeout(), Some(t0 + Duration::from_secs(1)));
    let deadline = t0 + Duration::from_secs(1);
    core.handle_timeout(deadline);
    let error = |id: &str| {
        format!(
            "<iq from='{DOMAIN}' id='{id}' to='u@localhost/r' type='error'><work xmlns='urn:test:work'/>\
             <error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
             <text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>the component is shutting down: try again</text>\
             </error></iq>"
        )
    };
    assert_eq!(
        written(&mut core),
        format!("{}{}</stream:stream>", error("a"), error("b"))
    );
    let cancelled: Vec<_> = std::iter::from_fn(|| core.poll_event())
        .filter(|e| matches!(e, Event::Cancel(_)))
        .collect();
    assert_eq!(cancelled.len(), 2, "both controllers are cancelled");

    // A late answer is not written after the close.
    let late = held.pop().expect("held");
    finish(&mut core, late, deadline);
    assert_eq!(written(&mut core), "");
    core.handle_input(deadline, b"</stream:stream>");
    assert!(matches!(core.poll_event(), Some(Event::Closed)));
}

#[test]
fn the_outbox_is_flushed_before_the_stream_closes() {
    let t0 = Instant::now();
    let mut core = online(Config::new(DOMAIN, "secret"), router(), t0);
    let sender = core.sender();
    sender
        .send(xml!(
            "<message to='u@localhost' id='m1'><body>bye</body></message>"
        ))
        .expect("sent");
    core.drain(t0);
    assert_eq!(
        written(&mut core),
        "<message id='m1' to='u@localhost'><body>bye</body></message></stream:stream>"
    );
    // The server's close does not come: the component stops all the same.
    let timeout = core.poll_timeout().expect("a close timeout");
    core.handle_timeout(timeout);
    assert!(matches!(core.poll_event(), Some(Event::Closed)));
}

#[test]
fn the_drain_timeout_is_a_config_field_with_a_default() {
    let config = Config::new(DOMAIN, "secret");
    assert_eq!(config.drain_timeout, Duration::from_secs(10));
    let t0 = Instant::now();
    let mut core = online(config.drain_timeout(Duration::from_secs(3)), router(), t0);
    core.handle_input(t0, &request("a"));
    let _held = dispatches(&mut core);
    core.drain(t0);
    assert_eq!(core.poll_timeout(), Some(t0 + Duration::from_secs(3)));
}

#[test]
fn a_drain_goes_on_over_a_reconnection_until_its_requests_are_answered() {
    let t0 = Instant::now();
    let mut core = online(Config::new(DOMAIN, "secret"), router(), t0);
    core.handle_input(t0, &request("a"));
    let held = dispatches(&mut core).pop().expect("dispatched");
    core.close(t0, Duration::from_secs(30));

    // The connection is lost mid-drain; the answer waits for the next one.
    core.handle_closed(t0, "reset");
    finish(&mut core, held, t0);
    assert_eq!(core.queued(), 1);
    let reconnect_at = core.poll_timeout().expect("a reconnect");
    core.handle_timeout(reconnect_at);
    assert!(
        std::iter::from_fn(|| core.poll_event()).any(|e| matches!(e, Event::Connect { .. })),
        "reconnects to deliver the answer"
    );
    core.handle_connected(reconnect_at);
    let _header = written(&mut core);
    core.handle_input(reconnect_at, HEADER);
    let _handshake = written(&mut core);
    core.handle_input(reconnect_at, b"<handshake/>");
    assert!(core.is_draining());
    assert_eq!(
        written(&mut core),
        format!("<iq from='{DOMAIN}' id='a' to='u@localhost/r' type='result'/></stream:stream>")
    );
}

#[test]
fn an_iq_result_for_no_call_of_ours_is_counted_and_the_caller_times_out() {
    let t0 = Instant::now();
    let mut core = online(Config::new(DOMAIN, "secret"), router(), t0);
    let mut call = core
        .sender()
        .call(
            xml!("<iq type='get' id='c1' to='u@localhost/r'><ping xmlns='urn:xmpp:ping'/></iq>"),
            Duration::from_secs(5),
        )
        .expect("sent");
    core.handle_outbox(t0);
    assert_eq!(
        written(&mut core),
        "<iq id='c1' to='u@localhost/r' type='get'><ping xmlns='urn:xmpp:ping'/></iq>"
    );
    // The answer to another instance's call lands here instead of ours.
    core.handle_input(
        t0,
        format!("<iq type='result' id='other' from='u@localhost/r' to='{DOMAIN}'/>").as_bytes(),
    );
    assert_eq!(core.stray_results(), 1);
    assert_eq!(written(&mut core), "", "a result is never answered");
    assert!(poll_call(&mut call).is_pending());
    core.handle_timeout(t0 + Duration::from_secs(5));
    assert!(matches!(
        poll_call(&mut call),
        Poll::Ready(Err(CallError::Timeout))
    ));
}

#[test]
fn calls_go_out_from_the_instance_domain_and_its_results_come_back() {
    let t0 = Instant::now();
    let config = Config::new(DOMAIN, "secret").instance_domain(INSTANCE);
    let instance_config = config.instance_config().expect("an instance domain");
    assert_eq!(instance_config.domain, INSTANCE);
    let mut main = online(config, router(), t0);
    let mut instance = online(instance_config, Router::new(), t0);
    main.route_calls_through(&instance);

    let mut call = main
        .sender()
        .call(
            xml!("<iq type='get' id='c1' to='u@localhost/r'><ping xmlns='urn:xmpp:ping'/></iq>"),
            Duration::from_secs(5),
        )
        .expect("sent");
    main.handle_outbox(t0);
    assert_eq!(
        written(&mut main),
        "",
        "not on the shared domain's connection"
    );
    instance.handle_outbox(t0);
    assert_eq!(
        written(&mut instance),
        format!(
            "<iq from='{INSTANCE}' id='c1' to='u@localhost/r' type='get'><ping xmlns='urn:xmpp:ping'/></iq>"
        )
    );
    instance.handle_input(
        t0,
        format!("<iq type='result' id='c1' from='u@localhost/r' to='{INSTANCE}'/>").as_bytes(),
    );
    match poll_call(&mut call) {
        Poll::Ready(Ok(result)) => assert_eq!(result.attr("id"), Some("c1")),
        other => panic!("expected the result, got {other:?}"),
    }
    assert_eq!(instance.stray_results(), 0);

    // A request to the instance domain gets what the core answers itself: no routes there.
    instance.handle_input(
        t0,
        format!("<iq type='get' id='q' from='u@localhost/r' to='{INSTANCE}'><work xmlns='urn:test:work'/></iq>")
            .as_bytes(),
    );
    assert!(written(&mut instance).contains("service-unavailable"));
}

#[test]
fn a_call_through_a_closed_instance_link_fails_at_once() {
    let t0 = Instant::now();
    let config = Config::new(DOMAIN, "secret").instance_domain(INSTANCE);
    let mut instance = online(
        config.instance_config().expect("an instance"),
        Router::new(),
        t0,
    );
    let mut main = online(config, router(), t0);
    main.route_calls_through(&instance);
    instance.close(t0, Duration::ZERO);
    instance.handle_input(t0, b"</stream:stream>");
    assert!(instance.is_stopped());
    let mut call = main
        .sender()
        .call(
            xml!("<iq type='get' to='u@localhost/r'><ping xmlns='urn:xmpp:ping'/></iq>"),
            Duration::from_secs(5),
        )
        .expect("sent");
    main.handle_outbox(t0);
    assert!(matches!(
        poll_call(&mut call),
        Poll::Ready(Err(CallError::Send(_)))
    ));
}

#[test]
fn an_instance_domain_must_differ_from_the_shared_one() {
    let config = Config::new(DOMAIN, "secret").instance_domain(DOMAIN);
    assert!(config.validate().is_err());
    let config = Config::from_lookup(|name| match name {
        "EXAMPPLE_INSTANCE_DOMAIN" => Some(INSTANCE.into()),
        "EXAMPPLE_DRAIN_SECS" => Some("7".into()),
        _ => None,
    })
    .expect("valid");
    assert_eq!(config.instance_domain.as_deref(), Some(INSTANCE));
    assert_eq!(config.drain_timeout, Duration::from_secs(7));
    let bad = Config::from_lookup(|name| (name == "EXAMPPLE_DRAIN_SECS").then(|| "soon".into()));
    assert!(bad.is_err());
}

#[test]
fn a_conflict_is_a_clear_disconnection_retried_at_the_longest_backoff() {
    let t0 = Instant::now();
    let config = Config::new(DOMAIN, "secret")
        .reconnect_backoff(Duration::from_millis(500), Duration::from_secs(30));
    let mut core = Component::new(config, router(), t0).expect("valid");
    core.connect(t0);
    while core.poll_event().is_some() {}
    core.handle_connected(t0);
    core.handle_input(t0, HEADER);
    let _ = written(&mut core);
    // What Prosody sends a second connection for a domain already connected.
    core.handle_input(
        t0,
        b"<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>\
          <text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>Component already connected</text>\
          </stream:error></stream:stream>",
    );
    let disconnected = std::iter::from_fn(|| core.poll_event())
        .find_map(|event| match event {
            Event::Disconnected {
                reason,
                reconnect_at,
            } => Some((reason.to_string(), reconnect_at)),
            _ => None,
        })
        .expect("disconnected, not stopped");
    assert_eq!(
        disconnected.0,
        "stream error from the server: conflict: Component already connected"
    );
    let delay = disconnected.1 - t0;
    assert!(
        delay >= Duration::from_secs(15) && delay <= Duration::from_secs(30),
        "retried at the longest backoff, not at once: {delay:?}"
    );
    assert!(!core.is_stopped());
}

#[test]
fn a_stray_result_is_counted_even_when_a_fallback_takes_it() {
    let t0 = Instant::now();
    let router = router().fallback(|_conn: Conn, _: Vec<Element>| Ok::<(), StanzaError>(()));
    let mut core = online(Config::new(DOMAIN, "secret"), router, t0);
    core.handle_input(
        t0,
        format!("<iq type='error' id='x' from='u@localhost/r' to='{DOMAIN}'/>").as_bytes(),
    );
    assert_eq!(core.stray_results(), 1);
    assert_eq!(dispatches(&mut core).len(), 1, "the fallback still gets it");
}

/// Privileged requests (XEP-0356) go out from a domain the server granted: the instance's
/// own connection when its domain was granted too (so the result comes back here), else the
/// shared domain's, whatever connection the other calls take.
#[test]
fn privileged_requests_take_the_instance_link_only_when_its_domain_was_granted() {
    use exampple_core::privilege::{Permissions, RosterAccess, Version};

    let t0 = Instant::now();
    let config = Config::new(DOMAIN, "secret").instance_domain(INSTANCE);
    let mut main = online(config.clone(), router(), t0);
    let mut instance = online(config.instance_config().unwrap(), Router::new(), t0);
    main.route_calls_through(&instance);
    let grant = |to: &str| {
        Permissions::new(Version::V2, "localhost")
            .with_roster(RosterAccess::Get)
            .to_advertisement(to)
    };
    let privileged = main.sender().privileged();

    // Only the shared domain is granted: the roster get stays on its connection.
    main.handle_input(t0, exampple_core::xml::to_string(&grant(DOMAIN)).as_bytes());
    let roster = privileged.roster("alice@localhost");
    let mut roster = pin!(roster);
    let mut cx = Context::from_waker(Waker::noop());
    assert!(roster.as_mut().poll(&mut cx).is_pending());
    main.handle_outbox(t0);
    instance.handle_outbox(t0);
    let sent = written(&mut main);
    assert!(
        sent.starts_with(&format!("<iq from='{DOMAIN}' id='"))
            && sent.contains("to='alice@localhost' type='get'><query xmlns='jabber:iq:roster'/>"),
        "{sent}"
    );
    assert_eq!(written(&mut instance), "");
    let id = sent
        .split("id='")
        .nth(1)
        .and_then(|s| s.split('\'').next())
        .unwrap();
    main.handle_input(
        t0,
        format!("<iq type='result' id='{id}' from='alice@localhost' to='{DOMAIN}'><query xmlns='jabber:iq:roster'><item jid='bob@localhost'/></query></iq>").as_bytes(),
    );
    match roster.as_mut().poll(&mut cx) {
        Poll::Ready(Ok(roster)) => assert_eq!(roster.items.len(), 1),
        other => panic!("expected the roster, got {other:?}"),
    }

    // The instance's domain is granted too: the request goes out from it.
    instance.handle_input(
        t0,
        exampple_core::xml::to_string(&grant(INSTANCE)).as_bytes(),
    );
    let roster = privileged.roster("alice@localhost");
    let mut roster = pin!(roster);
    assert!(roster.as_mut().poll(&mut cx).is_pending());
    main.handle_outbox(t0);
    instance.handle_outbox(t0);
    assert_eq!(written(&mut main), "");
    let sent = written(&mut instance);
    assert!(
        sent.starts_with(&format!("<iq from='{INSTANCE}' id='")),
        "{sent}"
    );
    let id = sent
        .split("id='")
        .nth(1)
        .and_then(|s| s.split('\'').next())
        .unwrap();
    instance.handle_input(
        t0,
        format!("<iq type='result' id='{id}' from='alice@localhost' to='{INSTANCE}'><query xmlns='jabber:iq:roster'/></iq>").as_bytes(),
    );
    assert!(matches!(roster.as_mut().poll(&mut cx), Poll::Ready(Ok(_))));
}

/// An observer follows the drain: begun with the requests in flight, each one left, the end.
#[test]
fn an_observer_follows_the_drain() {
    use std::sync::{Arc, Mutex};

    use exampple_core::observe::{DrainProgress, LifecycleEvent, Observer, RequestEvent};

    #[derive(Default)]
    struct Steps(Mutex<Vec<DrainProgress>>);
    impl Observer for Steps {
        fn request(&self, _: &RequestEvent) {}
        fn lifecycle(&self, event: &LifecycleEvent) {
            if let LifecycleEvent::Draining { progress } = event {
                self.0.lock().unwrap().push(*progress);
            }
        }
    }
    let t0 = Instant::now();
    let steps = Arc::new(Steps::default());
    let mut core = online(Config::new(DOMAIN, "secret"), router(), t0);
    core.set_observer(steps.clone());
    core.handle_input(t0, &request("a"));
    core.handle_input(t0, &request("b"));
    let mut held = dispatches(&mut core);
    core.close(t0, Duration::from_secs(5));
    finish(&mut core, held.remove(0), t0);
    finish(&mut core, held.remove(0), t0);
    core.handle_input(t0, b"</stream:stream>");
    assert_eq!(
        *steps.0.lock().unwrap(),
        [
            DrainProgress::Begin {
                in_flight: 2,
                grace: Duration::from_secs(5)
            },
            DrainProgress::Left { in_flight: 1 },
            DrainProgress::End
        ]
    );
}
