//! loadgen (`examples/loadgen.rs`), the load generator our users point at their own
//! components, at the wire: it serves a real component (the smol runtime, over loopback
//! TCP), and its report counts what the component answered. The requests of `--stanza`
//! templates reach the component's controllers with their own ids and numbers.

#[path = "../examples/loadgen.rs"]
#[allow(dead_code)]
mod loadgen;

use std::collections::HashSet;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use exampple::{AutoConnect, Condition, Config, Conn, Element, Router, StanzaError};

const DOMAIN: &str = "component.localhost";

async fn ping(conn: Conn, _: Vec<Element>) -> Result<(), StanzaError> {
    conn.iq_resp([]).send()?;
    Ok(())
}

/// Runs loadgen with `args` against a component with `router`; the report.
fn load(router: Router, args: &[&str]) -> loadgen::Report {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let port = listener.local_addr().expect("its address").port();
    let mut all = vec!["--quiet", "--timeout-secs", "60", "--accept-secs", "30"];
    all.extend_from_slice(args);
    let options = loadgen::parse_options(all.into_iter().map(String::from))
        .expect("valid options")
        .expect("options, not --help");
    let config = Config::new(DOMAIN, "secret")
        .host("127.0.0.1")
        .port(port)
        .auto_connect(AutoConnect::Immediately);
    let runtime = exampple_smol::Runtime::new(config, router).expect("a valid router");
    let handle = runtime.handle();
    let component = std::thread::spawn(move || runtime.run());
    let listener = smol::Async::new(listener).expect("a non-blocking listener");
    let report = smol::block_on(loadgen::run(
        &options,
        listener,
        None,
        loadgen::Spawned(None),
    ))
    .expect("loadgen served the component");
    handle.shutdown(Duration::from_millis(100));
    component
        .join()
        .expect("the component's thread")
        .expect("the component stopped cleanly");
    report
}

/// A file holding `text`, removed when dropped.
struct TempFile(std::path::PathBuf);

impl TempFile {
    fn new(name: &str, text: &str) -> TempFile {
        let path = std::env::temp_dir().join(format!(
            "exampple-loadgen-{}-{name}.xml",
            std::process::id()
        ));
        std::fs::write(&path, text).expect("a temporary file");
        TempFile(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("a UTF-8 path")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn every_ping_is_answered_and_timed() {
    let router = Router::new().iq("urn:xmpp", |ns| ns.get("ping", ping));
    let report = load(router, &["--n", "3000", "--window", "50"]);
    assert_eq!(report.received, 3000);
    assert_eq!(report.errors, 0);
    assert_eq!(report.unexpected, 0);
    assert_eq!(report.unsolicited, 0);
    assert!(!report.timed_out);
    assert_eq!(report.latencies.len(), 3000);
    assert!(report.latencies.windows(2).all(|w| w[0] <= w[1]), "sorted");
}

#[test]
fn a_template_reaches_its_controller_once_per_request() {
    // Every request: the id loadgen gave it, and its number in the payload's text. The
    // controller refuses a request whose two disagree, which loadgen counts as an error.
    let seen = Arc::new(Mutex::new(HashSet::new()));
    let router = {
        let seen = seen.clone();
        Router::new().iq("urn:example", move |ns| {
            ns.set("cart", move |conn: Conn, payload: Vec<Element>| {
                let seen = seen.clone();
                async move {
                    let head = conn.stanza();
                    let id = head.attr("id").unwrap_or_default().to_string();
                    let item = payload
                        .first()
                        .and_then(|p| p.get_child("item", "urn:example:cart"))
                        .map(Element::text)
                        .unwrap_or_default();
                    let fits = head.attr("from") == Some("loadgen@localhost/res")
                        && head.attr("to") == Some(DOMAIN)
                        && item.strip_prefix("sku-") == id.strip_prefix('b')
                        && id.len() > 1;
                    if !fits {
                        return Err(StanzaError::new(Condition::BadRequest));
                    }
                    seen.lock().expect("the set").insert(id);
                    conn.iq_resp([]).send()?;
                    Ok(())
                }
            })
        })
    };
    let file = TempFile::new(
        "cart",
        "<iq type='set' id='ignored'>\n  <add xmlns='urn:example:cart'><item>sku-{i}</item></add>\n</iq>\n",
    );
    let report = load(
        router,
        &["--n", "500", "--window", "20", "--stanza", file.path()],
    );
    assert_eq!(report.received, 500);
    assert_eq!(report.errors, 0, "every request's id and number agree");
    assert_eq!(report.unexpected, 0);
    let seen = seen.lock().expect("the set");
    assert_eq!(seen.len(), 500, "each request once, with an id of its own");
    assert!(seen.contains("b0") && seen.contains("b499"));
}

#[test]
fn a_request_nobody_routes_counts_as_an_error() {
    let router = Router::new().iq("urn:xmpp", |ns| ns.get("ping", ping));
    let file = TempFile::new(
        "unrouted",
        "<iq type='get' to='{domain}'><query xmlns='urn:example:nobody'/></iq>",
    );
    let report = load(router, &["--n", "200", "--stanza", file.path()]);
    assert_eq!(report.received, 200, "an error answers the request too");
    assert_eq!(report.errors, 200);
}

#[test]
fn a_template_is_written_once_with_its_placeholders() {
    let file = TempFile::new(
        "placeholders",
        "<iq type='get' from='u{i}@localhost/r' to='{domain}'><q xmlns='urn:example:q' n='{i}'>{id}/{domain}</q></iq>",
    );
    let options = loadgen::parse_options(
        ["--domain", "load.example", "--stanza", file.path()]
            .into_iter()
            .map(String::from),
    )
    .expect("valid options")
    .expect("options");
    let mut sample = Vec::new();
    loadgen::request(&mut sample, 7, &options, "");
    assert_eq!(
        String::from_utf8(sample).expect("UTF-8"),
        "<iq from='u7@localhost/r' id='b7' to='load.example' type='get'><q xmlns='urn:example:q' n='7'>b7/load.example</q></iq>"
    );
}

#[test]
fn templates_that_would_not_be_answered_are_refused() {
    let cases = [
        ("<message to='c'><body>hi</body></message>", "not an iq"),
        ("<iq type='result'/>", "type get or set"),
        ("<iq type='get'/>", "exactly one payload"),
        (
            "<iq type='get'><a xmlns='urn:a'/><b xmlns='urn:b'/></iq>",
            "exactly one payload",
        ),
        ("<iq type='get'><a xmlns='urn:a'></iq>", "well-formed"),
        (
            "<iq xmlns='jabber:client' type='get'><a xmlns='urn:a'/></iq>",
            "not an iq",
        ),
    ];
    for (i, (text, why)) in cases.into_iter().enumerate() {
        let file = TempFile::new(&format!("bad{i}"), text);
        let error = loadgen::parse_options(["--stanza", file.path()].into_iter().map(String::from))
            .expect_err(text);
        assert!(error.contains(why), "{text}: {error}");
    }
    let file = TempFile::new("sized", "<iq type='get'><a xmlns='urn:a'/></iq>");
    let error = loadgen::parse_options(
        ["--size", "1000", "--stanza", file.path()]
            .into_iter()
            .map(String::from),
    )
    .expect_err("--size with --stanza");
    assert!(error.contains("--size"), "{error}");
}
