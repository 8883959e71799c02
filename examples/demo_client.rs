//! Drives the showcase as a logged-in user and prints a transcript; used by `scripts/demo.sh`.
//!
//!     DEMO_C2S=127.0.0.1:5222 DEMO_COMPONENT=component.localhost cargo run --features client --example demo_client
//!
//! Exits with status 1 if any step does not get the expected answer.

use std::time::{Duration, Instant};

use exampple::c2s::blocking::Client;
use exampple::client::ClientConfig;
use exampple::matching::{Match, pretty};
use exampple::{Element, xml};

const T: Duration = Duration::from_secs(10);

struct Demo {
    client: Client,
    component: String,
    failures: usize,
    steps: usize,
}

impl Demo {
    fn show(label: &str, stanza: &Element) {
        for (i, line) in pretty(stanza).lines().enumerate() {
            println!("  {} {line}", if i == 0 { label } else { "  " });
        }
    }

    /// Sends an iq and checks the answer against `expected` (a subset pattern).
    fn step(&mut self, title: &str, request: Element, expected: Element) -> Option<Element> {
        self.steps += 1;
        println!("\n## {}. {title}", self.steps);
        Demo::show("->", &request);
        let started = Instant::now();
        match self.client.request(request, T) {
            Ok(answer) => {
                Demo::show("<-", &answer);
                match Match::Subset.check(&exampple::client::into_client_ns(expected), &answer) {
                    Ok(()) => {
                        println!("  ok ({} ms)", started.elapsed().as_millis());
                        Some(answer)
                    }
                    Err(m) => {
                        println!("  FAILED: {}", m.summary());
                        self.failures += 1;
                        None
                    }
                }
            }
            Err(e) => {
                println!("  FAILED: {e}");
                self.failures += 1;
                None
            }
        }
    }

    fn iq(&self, kind: &str, payload: Element) -> Element {
        xml!("<iq type='{kind}' to='{}'>{}</iq>", self.component, payload)
    }
}

fn main() {
    let c2s = std::env::var("DEMO_C2S").unwrap_or_else(|_| "127.0.0.1:5222".into());
    let component =
        std::env::var("DEMO_COMPONENT").unwrap_or_else(|_| "component.localhost".into());
    let config = ClientConfig::new("alice@localhost/demo", "alice-pass")
        .expect("a valid JID")
        .address(&c2s)
        .allow_plain_without_tls(true)
        .login_timeout(T);
    let client = match Client::connect(config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("demo: alice cannot log in to {c2s}: {e}");
            std::process::exit(1);
        }
    };
    println!(
        "# logged in as {} through {c2s}; talking to {component}",
        client.jid()
    );
    let mut demo = Demo {
        client,
        component: component.clone(),
        failures: 0,
        steps: 0,
    };

    // Wait until the component is connected to the server.
    let until = Instant::now() + T;
    while demo
        .client
        .request(
            demo.iq("get", xml!("<ping xmlns='urn:xmpp:ping'/>")),
            Duration::from_secs(2),
        )
        .map(|r| r.attr("type") != Some("result"))
        .unwrap_or(true)
    {
        if Instant::now() > until {
            eprintln!("demo: the showcase never answered a ping");
            std::process::exit(1);
        }
        std::thread::sleep(Duration::from_millis(200));
    }

    let ping = demo.iq("get", xml!("<ping xmlns='urn:xmpp:ping'/>"));
    demo.step(
        "ping (XEP-0199)",
        ping,
        xml!("<iq type='result' from='{component}'/>"),
    );
    let version = demo.iq("get", xml!("<query xmlns='jabber:iq:version'/>"));
    demo.step(
        "software version (XEP-0092)",
        version,
        xml!(
            "<iq type='result'><query xmlns='jabber:iq:version'><name>exampple</name></query></iq>"
        ),
    );
    let disco = demo.iq(
        "get",
        xml!("<query xmlns='http://jabber.org/protocol/disco#info'/>"),
    );
    demo.step(
        "service discovery (XEP-0030, with an XEP-0128 form)",
        disco,
        xml!(
            "<iq type='result'><query xmlns='http://jabber.org/protocol/disco#info'>\
             <identity category='component' type='generic' name='showcase'/>\
             <feature var='urn:xmpp:mix:core:1#create'/>\
             <x xmlns='jabber:x:data' type='result'><field var='max-file-size'><value>1048576</value></field></x>\
             </query></iq>"
        ),
    );
    let form = demo.iq("get", xml!("<query xmlns='urn:example:form'/>"));
    demo.step(
        "get a data form (XEP-0004)",
        form,
        xml!("<iq type='result'><query xmlns='urn:example:form'><x xmlns='jabber:x:data' type='form'><title>Personal Details</title></x></query></iq>"),
    );
    // The values are data: any string is sent as it is, never as markup.
    let submit = |fields: &[(&str, &str)]| {
        let fields = fields.iter().map(|(var, value)| {
            xml!("<field xmlns='jabber:x:data' var='{var}'><value>{value}</value></field>")
        });
        xml!(
            "<query xmlns='urn:example:form'><x xmlns='jabber:x:data' type='submit'>\
             <field var='FORM_TYPE'><value>urn:example:form</value></field>{}</x></query>",
            fields
        )
    };
    let valid = demo.iq("set", submit(&[("name", "Ada"), ("gender", "F")]));
    demo.step("submit a valid form", valid, xml!("<iq type='result'/>"));
    let invalid = demo.iq("set", submit(&[("gender", "X")]));
    demo.step(
        "submit an invalid form",
        invalid,
        xml!(
            "<iq type='error'><error type='modify'><bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
             <text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>name: name is required; gender: gender use invalid option `X`</text></error></iq>"
        ),
    );
    // Parameters are elements of their own, so each says its namespace.
    let call = |method: &str, params: Vec<Element>| {
        xml!(
            "<query xmlns='jabber:iq:rpc'><methodCall><methodName>{method}</methodName><params>{}</params></methodCall></query>",
            params
        )
    };
    let int = |n: i64| xml!("<param xmlns='jabber:iq:rpc'><value><int>{n}</int></value></param>");
    let add = demo.iq("set", call("examples.add", vec![int(20), int(22)]));
    demo.step(
        "Jabber-RPC examples.add(20, 22) (XEP-0009)",
        add,
        xml!("<iq type='result'><query xmlns='jabber:iq:rpc'><methodResponse><params><param><value><int>42</int></value></param></params></methodResponse></query></iq>"),
    );
    let echo = demo.iq(
        "set",
        call(
            "examples.echo",
            vec![xml!(
                "<param xmlns='jabber:iq:rpc'><value><string>hello</string></value></param>"
            )],
        ),
    );
    demo.step(
        "Jabber-RPC examples.echo(\"hello\")",
        echo,
        xml!("<iq type='result'><query xmlns='jabber:iq:rpc'><methodResponse><params><param><value><string>hello</string></value></param></params></methodResponse></query></iq>"),
    );

    // A chat message and its echo.
    demo.steps += 1;
    println!("\n## {}. chat message", demo.steps);
    let message = xml!(
        "<message type='chat' to='{component}' id='chat1'><body>Hello, showcase!</body></message>"
    );
    Demo::show("->", &message);
    let expected = xml!(
        "<message type='chat' from='{component}'><body>echo: Hello, showcase!</body></message>"
    );
    let outcome = match demo.client.send(message) {
        Ok(_) => demo
            .client
            .wait_for(&expected, Match::Subset, T)
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    match outcome {
        Ok(reply) => {
            Demo::show("<-", &reply);
            println!("  ok");
        }
        Err(e) => {
            println!("  FAILED: {e}");
            demo.failures += 1;
        }
    }

    let raise = demo.iq("get", xml!("<query xmlns='urn:example:raise'/>"));
    demo.step(
        "a controller that returns an error",
        raise,
        xml!(
            "<iq type='error'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
             <text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>user not found</text></error></iq>"
        ),
    );
    let crash = demo.iq("get", xml!("<query xmlns='urn:example:crash'/>"));
    demo.step(
        "a controller that panics",
        crash,
        xml!("<iq type='error'><error><internal-server-error xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"),
    );
    let slow = demo.iq("get", xml!("<query xmlns='urn:example:slow'/>"));
    demo.step(
        "a controller slower than stanza_timeout (6 s)",
        slow,
        xml!("<iq type='error'><error type='wait'><remote-server-timeout xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"),
    );
    let delegated =
        xml!("<iq type='get' to='localhost'><query xmlns='urn:example:delegated'/></iq>");
    demo.step(
        "a request to alice's own server, delegated to the component (XEP-0355)",
        delegated,
        xml!("<iq type='result' from='localhost'><query xmlns='urn:example:delegated'><answer>42</answer></query></iq>"),
    );
    let roster = demo.iq("get", xml!("<roster xmlns='urn:example:privileged'/>"));
    demo.step(
        "alice's roster, read by the component through the server's privilege (XEP-0356)",
        roster,
        xml!("<iq type='result'><roster xmlns='urn:example:privileged'/></iq>"),
    );
    let notify = demo.iq(
        "set",
        xml!("<notify xmlns='urn:example:privileged' to='alice@localhost'>sent for alice</notify>"),
    );
    demo.step(
        "a message the component sends on alice's behalf (here to alice herself)",
        notify,
        xml!("<iq type='result'/>"),
    );
    let pattern = exampple::client::into_client_ns(xml!(
        "<message from='alice@localhost'><body>sent for alice</body></message>"
    ));
    match demo.client.wait_for(&pattern, Match::Subset, T) {
        Ok(message) => {
            Demo::show("<-", &message);
            println!("  ok");
        }
        Err(e) => {
            println!("  FAILED: {e}");
            demo.failures += 1;
        }
    }
    let ping = demo.iq("get", xml!("<ping xmlns='urn:xmpp:ping'/>"));
    demo.step("still serving", ping, xml!("<iq type='result'/>"));

    demo.client.close();
    println!("\n# {} steps, {} failed", demo.steps, demo.failures);
    if demo.failures > 0 {
        std::process::exit(1);
    }
}
