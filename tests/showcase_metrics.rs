//! The showcase as its users run it, with `EXAMPPLE_METRICS` set: started as a process
//! against the loopback XEP-0114 server, sent requests, and its `/metrics` scraped over
//! HTTP: the request counters match the traffic sent, and the connection state follows the
//! connection.

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use exampple::xml;
use support::{DOMAIN, FakeServer};

const T: Duration = Duration::from_secs(10);

/// The showcase, built once with the features `scripts/test.sh` uses (so nothing is
/// rebuilt).
fn showcase() -> std::path::PathBuf {
    support::instances::built_examples().join("showcase")
}

/// Killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A port nobody listens on now.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}

/// The status line, headers and body of `GET path`, or None if nothing listens yet.
fn get(port: u16, path: &str) -> Option<(String, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(T)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: test\r\nAccept: text/plain\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("a head and a body");
    Some((head.to_string(), body.to_string()))
}

/// `/metrics`, waiting for the server to listen.
fn scrape(port: u16) -> String {
    let until = Instant::now() + T;
    loop {
        match get(port, "/metrics") {
            Some((head, body)) => {
                assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
                assert!(
                    head.contains("Content-Type: text/plain; version=0.0.4"),
                    "{head}"
                );
                return body;
            }
            None if Instant::now() < until => std::thread::sleep(Duration::from_millis(20)),
            None => panic!("nothing serves /metrics on port {port}"),
        }
    }
}

/// The value of the sample whose name and labels are `series` exactly (as rendered).
fn sample(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == series).then(|| value.parse().expect("a number"))
        })
}

/// Scrapes until `series` has `value`, or panics with the last scrape.
fn wait_for(port: u16, series: &str, value: f64) {
    let until = Instant::now() + T;
    loop {
        let body = scrape(port);
        if sample(&body, series) == Some(value) {
            return;
        }
        assert!(Instant::now() < until, "{series} never {value}:\n{body}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn showcase_serves_request_counters_that_match_the_traffic() {
    const N: usize = 7;
    let exe = showcase();
    let server = FakeServer::new();
    let metrics_port = free_port();
    let child = Command::new(exe)
        .env("EXAMPPLE_HOST", "127.0.0.1")
        .env("EXAMPPLE_PORT", server.port().to_string())
        .env("EXAMPPLE_DOMAIN", DOMAIN)
        .env("EXAMPPLE_PASSWORD", support::SECRET)
        .env("EXAMPPLE_METRICS", format!("127.0.0.1:{metrics_port}"))
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .spawn()
        .expect("the showcase starts");
    let _running = Running(child);

    let mut session = server.accept(true);
    wait_for(metrics_port, "exampple_connected", 1.0);
    let before = scrape(metrics_port);
    assert_eq!(
        sample(&before, "exampple_stanzas_received_total"),
        Some(0.0)
    );
    assert!(
        !before.contains("exampple_requests_total{"),
        "no request yet:\n{before}"
    );

    for i in 0..N {
        session.send(&xml!(
            "<iq type='get' id='p{i}' from='alice@localhost/r' to='{DOMAIN}'><ping xmlns='urn:xmpp:ping'/></iq>"
        ));
        let answer = session.receive(T).expect("an answer");
        assert_eq!(answer.attr("type"), Some("result"));
    }
    // One request its controller refuses.
    session.send(&xml!(
        "<iq type='get' id='e1' from='alice@localhost/r' to='{DOMAIN}'><raise xmlns='urn:example:raise'/></iq>"
    ));
    session.receive(T).expect("an answer");

    let body = scrape(metrics_port);
    let requests: Vec<(&str, f64)> = body
        .lines()
        .filter(|line| line.starts_with("exampple_requests_total{"))
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').unwrap();
            (series, value.parse().unwrap())
        })
        .collect();
    let count = |route: &str, outcome: &str| {
        let labels = format!("route=\"{route}\",outcome=\"{outcome}\"");
        requests
            .iter()
            .find(|(series, _)| series.contains(&labels))
            .map(|&(_, n)| n)
    };
    assert_eq!(
        count("showcase::app::ping", "success"),
        Some(N as f64),
        "{body}"
    );
    assert_eq!(count("showcase::app::ping", "failure"), Some(0.0), "{body}");
    assert_eq!(
        count("showcase::app::raise", "failure"),
        Some(1.0),
        "{body}"
    );
    let total: f64 = requests.iter().map(|(_, n)| n).sum();
    assert_eq!(total, N as f64 + 1.0, "every request counted once:\n{body}");
    assert_eq!(
        sample(&body, "exampple_stanzas_received_total"),
        Some(N as f64 + 1.0)
    );
    assert_eq!(
        sample(&body, "exampple_stanzas_sent_total"),
        Some(N as f64 + 1.0)
    );
    assert_eq!(sample(&body, "exampple_requests_in_flight"), Some(0.0));
    assert_eq!(sample(&body, "exampple_connected"), Some(1.0));
    assert!(
        body.contains("exampple_request_duration_seconds_bucket{route=\"showcase::app::ping\",outcome=\"success\",le=\"0.001\"}"),
        "a histogram with the suggested buckets:\n{body}"
    );
    assert!(body.contains("# HELP exampple_requests_total "), "{body}");

    // Anything but /metrics is not found.
    let (head, _) = get(metrics_port, "/other").expect("an answer");
    assert!(head.starts_with("HTTP/1.1 404 Not Found\r\n"), "{head}");

    // The server goes away: disconnected; back: connected, one reconnection.
    session.close();
    wait_for(metrics_port, "exampple_connected", 0.0);
    let _session = server.accept(true);
    wait_for(metrics_port, "exampple_connected", 1.0);
    assert_eq!(
        sample(&scrape(metrics_port), "exampple_reconnects_total"),
        Some(1.0)
    );
}

#[test]
fn showcase_refuses_an_address_it_cannot_serve_on() {
    let output = Command::new(showcase())
        .env("EXAMPPLE_PORT", "1")
        .env("EXAMPPLE_METRICS", "not an address")
        .env("RUST_LOG", "off")
        .stdin(Stdio::null())
        .output()
        .expect("the showcase runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("showcase: EXAMPPLE_METRICS=not an address: cannot listen: "),
        "{stderr}"
    );
}
