//! Direct TLS on the component link, against an in-process rustls server on loopback with a
//! CA and certificates made here: the link is TLS from its first byte, stanzas flow both
//! ways inside it (also across a key update and in records of their own for a large one),
//! and a certificate the component cannot verify is refused with a clear error, retried
//! with backoff, and never sees the stream, let alone the secret.

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use exampple::component::handshake_digest;
use exampple::config::DirectTls;
use exampple::parser::{Limits, StreamItem, StreamParser};
use exampple::{Config, Element, Router, xml};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use support::{DOMAIN, SECRET, Which};

/// A test CA.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Ca { issuer }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server configuration with a certificate for `names`, signed by this CA.
    fn server(&self, names: &[&str]) -> Arc<rustls::ServerConfig> {
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params.distinguished_name.push(DnType::CommonName, DOMAIN);
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let chain: Vec<CertificateDer<'static>> = vec![cert.der().clone()];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        Arc::new(config)
    }
}

/// What the component logged (every test of this binary: filter by port).
fn logs() -> &'static Mutex<Vec<String>> {
    static LOGS: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    LOGS.get_or_init(|| Mutex::new(Vec::new()))
}

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, record: &log::Record) {
        if record.level() <= log::Level::Warn {
            let line = format!("{} {}", record.level(), record.args());
            logs().lock().unwrap().push(line);
        }
    }
    fn flush(&self) {}
}

fn capture_logs() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        log::set_boxed_logger(Box::new(Capture)).unwrap();
        log::set_max_level(log::LevelFilter::Warn);
    });
}

/// The lines logged that contain `needle`, once there are at least `count` (the component
/// logs after it has dropped the socket), or after 5 s.
fn logged(needle: &str, count: usize) -> Vec<String> {
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let lines: Vec<String> = logs()
            .lock()
            .unwrap()
            .iter()
            .filter(|line| line.contains(needle))
            .cloned()
            .collect();
        if lines.len() >= count || Instant::now() >= until {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn config(port: u16, tls: DirectTls) -> Config {
    Config::new(DOMAIN, SECRET)
        .port(port)
        .reconnect_backoff(Duration::from_millis(200), Duration::from_millis(400))
        .tls(tls)
}

/// A listener on a free port, and `which` runtime connecting to it at once with `tls`.
fn start(which: Which, tls: DirectTls) -> (TcpListener, support::Running, u16) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let running = support::start(
        which,
        config(port, tls).auto_connect(exampple::AutoConnect::Immediately),
        ping_router(),
        support::Setup::default(),
    );
    (listener, running, port)
}

fn ping(conn: exampple::Conn, _: Vec<Element>) -> Result<(), exampple::StanzaError> {
    conn.iq_resp([]).send()?;
    Ok(())
}

fn ping_router() -> Router {
    Router::new().iq("urn:xmpp", |ns| ns.get("ping", ping))
}

/// The server's side of one TLS connection, XEP-0114 inside.
struct TlsSession {
    tls: rustls::StreamOwned<rustls::ServerConnection, TcpStream>,
    parser: StreamParser,
    pending: Vec<Element>,
}

impl TlsSession {
    /// Accepts the next connection on `listener`: checks that its first bytes are a TLS
    /// handshake record, makes the handshake with `config`, and the XEP-0114 opening.
    fn accept(listener: &TcpListener, config: Arc<rustls::ServerConfig>) -> TlsSession {
        let (socket, _) = listener.accept().unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut first = [0u8; 3];
        let n = socket.peek(&mut first).unwrap();
        assert_eq!(
            &first[..n.min(3)],
            &[0x16, 0x03, 0x01][..n.min(3)],
            "a TLS handshake record first"
        );
        let mut conn = rustls::ServerConnection::new(config).unwrap();
        let mut io = &socket;
        while conn.is_handshaking() {
            conn.complete_io(&mut io).unwrap();
        }
        assert_eq!(conn.server_name(), Some(DOMAIN), "SNI names the domain");
        assert_eq!(
            conn.protocol_version(),
            Some(rustls::ProtocolVersion::TLSv1_3)
        );
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let mut session = TlsSession {
            tls: rustls::StreamOwned::new(conn, socket),
            parser: StreamParser::new(Limits {
                max_stanza_size: 1 << 20,
                max_depth: 64,
            }),
            pending: Vec::new(),
        };
        let header = session.next_item(Duration::from_secs(5));
        assert!(
            matches!(&header, Some(StreamItem::Header(h)) if h.to.as_deref() == Some(DOMAIN)),
            "{header:?}"
        );
        session.write(&format!(
            "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' id='tls1' from='{DOMAIN}'>"
        ));
        let handshake = session
            .receive(Duration::from_secs(5))
            .expect("a handshake");
        assert_eq!(handshake.name(), "handshake");
        assert_eq!(handshake.text(), handshake_digest("tls1", SECRET));
        session.write("<handshake/>");
        session
    }

    fn write(&mut self, text: &str) {
        self.tls.write_all(text.as_bytes()).unwrap();
        self.tls.flush().unwrap();
    }

    fn next_item(&mut self, timeout: Duration) -> Option<StreamItem> {
        let until = Instant::now() + timeout;
        let mut items = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        while Instant::now() < until {
            match self.tls.read(&mut buf) {
                Ok(0) => return None,
                Ok(n) => self.parser.feed(&buf[..n], &mut items).unwrap(),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => panic!("TLS read: {e}"),
            }
            let mut items = items.drain(..);
            if let Some(first) = items.next() {
                for item in items {
                    if let StreamItem::Element(e) = item {
                        self.pending.push(e);
                    }
                }
                return Some(first);
            }
        }
        None
    }

    fn receive(&mut self, timeout: Duration) -> Option<Element> {
        if !self.pending.is_empty() {
            return Some(self.pending.remove(0));
        }
        match self.next_item(timeout)? {
            StreamItem::Element(e) => Some(e),
            other => panic!("not a stanza: {other:?}"),
        }
    }

    fn ping(&mut self, id: &str) {
        self.write(&format!(
            "<iq type='get' id='{id}' from='alice@localhost/tls' to='{DOMAIN}'><ping xmlns='urn:xmpp:ping'/></iq>"
        ));
        let answer = self.receive(Duration::from_secs(5)).expect("an answer");
        assert_eq!(answer.name(), "iq");
        assert_eq!(answer.attr("type"), Some("result"), "{answer:?}");
        assert_eq!(answer.attr("id"), Some(id));
        assert_eq!(answer.attr("to"), Some("alice@localhost/tls"));
    }
}

/// Over TLS: the opening, a ping answered, a server key update, then a ping again and a
/// stanza larger than a TLS record; then a clean shutdown.
fn serves_over_tls(which: Which) {
    let ca = Ca::new("exampple test CA");
    let (listener, running, _) = start(which, DirectTls::ca_pem(ca.pem()));
    let mut session = TlsSession::accept(&listener, ca.server(&[DOMAIN]));
    session.ping("p1");

    // The server asks for a key update: the component's answer (sent with its next records)
    // must reach the server before anything encrypted with its new keys.
    session.tls.conn.refresh_traffic_keys().unwrap();
    session.ping("p2");

    let body = "x".repeat(100 * 1024);
    running
        .sender
        .send(xml!(
            "<message to='alice@localhost' from='{DOMAIN}'><body>{body}</body></message>"
        ))
        .unwrap();
    let message = session
        .receive(Duration::from_secs(5))
        .expect("the large message");
    assert_eq!(message.name(), "message");
    let text = message
        .get_child("body", "jabber:component:accept")
        .map(Element::text);
    assert_eq!(text.map(|t| t.len()), Some(body.len()));

    (running.shutdown)(Duration::from_secs(1));
    let closed = session.next_item(Duration::from_secs(5));
    assert!(matches!(closed, Some(StreamItem::Close)), "{closed:?}");
    session.write("</stream:stream>");
    assert_eq!(running.join.join().unwrap(), Ok(()));
}

/// The raw bytes of one connection the server reads, while it makes a TLS handshake with
/// a certificate the component does not trust: how the handshake failed, and everything
/// the component sent.
fn refuse_once(listener: &TcpListener, config: Arc<rustls::ServerConfig>) -> (String, Vec<u8>) {
    let (socket, _) = listener.accept().unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut conn = rustls::ServerConnection::new(config).unwrap();
    let mut received = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let mut io = &socket;
    let failure = loop {
        while conn.wants_write() {
            conn.write_tls(&mut io).unwrap();
        }
        let n = match io.read(&mut buf) {
            Ok(0) => break "closed without an alert".to_string(),
            Ok(n) => n,
            Err(e) => break format!("read: {e}"),
        };
        received.extend_from_slice(&buf[..n]);
        let mut raw = &buf[..n];
        while !raw.is_empty() {
            conn.read_tls(&mut raw).unwrap();
        }
        if let Err(e) = conn.process_new_packets() {
            break e.to_string();
        }
    };
    // Whatever else comes before the component closes the socket.
    socket
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    while let Ok(n) = io.read(&mut buf) {
        if n == 0 {
            break;
        }
        received.extend_from_slice(&buf[..n]);
    }
    (failure, received)
}

/// A certificate from another CA: the component refuses it (the server gets an alert),
/// logs an error that names the failure, retries with its backoff, sends nothing of its
/// stream on those connections, and connects once the server presents a certificate it
/// trusts.
fn refuses_an_untrusted_certificate(which: Which) {
    capture_logs();
    let trusted = Ca::new("the CA the component trusts");
    let other = Ca::new("another CA");
    let (listener, running, port) = start(which, DirectTls::ca_pem(trusted.pem()));
    let wrong = other.server(&[DOMAIN]);
    let mut attempts = Vec::new();
    for _ in 0..2 {
        let (failure, received) = refuse_once(&listener, wrong.clone());
        attempts.push(Instant::now());
        assert!(
            failure.contains("UnknownCA") || failure.contains("BadCertificate"),
            "the component alerts the server: {failure}"
        );
        let seen = String::from_utf8_lossy(&received);
        for clear in ["stream", "jabber:component:accept", "handshake", SECRET] {
            assert!(
                !seen.contains(clear),
                "`{clear}` went out in the clear: {seen:?}"
            );
        }
    }
    assert!(
        attempts[1] - attempts[0] >= Duration::from_millis(150),
        "retried after the backoff, not at once: {:?}",
        attempts[1] - attempts[0]
    );
    let errors = logged(&format!("cannot connect to 127.0.0.1:{port}"), 2);
    assert!(errors.len() >= 2, "{errors:?}");
    for error in &errors {
        assert!(
            error.starts_with("ERROR")
                && error.contains(&format!(
                    "the server's certificate cannot be verified for `{DOMAIN}`"
                ))
                && error.contains("UnknownIssuer"),
            "{error}"
        );
    }

    // Once the server has a certificate the component trusts, it connects.
    let mut session = TlsSession::accept(&listener, trusted.server(&[DOMAIN]));
    session.ping("after-refusals");
    (running.shutdown)(Duration::from_millis(200));
    assert_eq!(running.join.join().unwrap(), Ok(()));
}

/// A trusted certificate for another name is refused too: the name verified is the
/// component's domain unless `server_name` says otherwise.
fn verifies_the_domain_or_the_configured_name(which: Which) {
    capture_logs();
    let ca = Ca::new("exampple test CA");
    let (listener, running, port) = start(which, DirectTls::ca_pem(ca.pem()));
    let (failure, received) = refuse_once(&listener, ca.server(&["xmpp.example.net"]));
    assert!(failure.contains("BadCertificate"), "{failure}");
    assert!(!String::from_utf8_lossy(&received).contains("stream"));
    let errors = logged(&format!("cannot connect to 127.0.0.1:{port}"), 1);
    assert!(
        errors.iter().any(|e| e.contains("not valid for name")),
        "{errors:?}"
    );
    (running.shutdown)(Duration::from_millis(100));
    assert_eq!(running.join.join().unwrap(), Ok(()));

    let tls = DirectTls::ca_pem(ca.pem()).server_name("xmpp.example.net");
    let (listener, running, _) = start(which, tls);
    let (socket, _) = listener.accept().unwrap();
    let mut conn = rustls::ServerConnection::new(ca.server(&["xmpp.example.net"])).unwrap();
    let mut io = &socket;
    while conn.is_handshaking() {
        conn.complete_io(&mut io).unwrap();
    }
    assert_eq!(conn.server_name(), Some("xmpp.example.net"));
    (running.shutdown)(Duration::from_millis(100));
    assert_eq!(running.join.join().unwrap(), Ok(()));
}

/// A plain XEP-0114 port answers the TLS hello with a stream error in the clear: the
/// component says the port does not speak TLS, and tries again.
#[test]
fn a_plain_port_is_named_as_such() {
    capture_logs();
    let ca = Ca::new("exampple test CA");
    let (listener, running, port) = start(Which::Smol, DirectTls::ca_pem(ca.pem()));
    for _ in 0..2 {
        let (mut socket, _) = listener.accept().unwrap();
        let mut hello = [0u8; 512];
        assert!(socket.read(&mut hello).unwrap() > 0);
        socket
            .write_all(
                format!(
                    "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' \
                     xmlns:stream='http://etherx.jabber.org/streams' id='p' from='{DOMAIN}'>\
                     <stream:error><not-well-formed xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>\
                     </stream:error></stream:stream>"
                )
                .as_bytes(),
            )
            .unwrap();
    }
    let errors = logged(&format!("cannot connect to 127.0.0.1:{port}"), 2);
    assert!(errors.len() >= 2, "{errors:?}");
    assert!(
        errors
            .iter()
            .all(|e| e.contains("the server does not speak TLS on this port")),
        "{errors:?}"
    );
    (running.shutdown)(Duration::from_millis(100));
    assert_eq!(running.join.join().unwrap(), Ok(()));
}

runtime_tests!(
    serves_over_tls,
    refuses_an_untrusted_certificate,
    verifies_the_domain_or_the_configured_name,
);

/// A configuration that cannot work fails when the runtime is built, naming the problem.
#[test]
fn unusable_trust_is_an_error_at_build_time() {
    let missing = "/nonexistent/exampple-ca.pem";
    let e = exampple::smol::Runtime::new(config(5258, DirectTls::ca_file(missing)), Router::new())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(missing) && e.contains("a readable PEM file of CA certificates"),
        "{e}"
    );
    let e = exampple::std::Runtime::new(
        config(5258, DirectTls::ca_pem("not a certificate")),
        Router::new(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("no certificate"), "{e}");
    let e = exampple::tokio::Runtime::new(
        config(5258, DirectTls::system_roots().server_name("not a name!")),
        Router::new(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("not a DNS name or an IP address"), "{e}");
}
