//! STARTTLS end to end: both runtimes' clients against a scripted server that upgrades to
//! TLS with rustls (a test CA and a `localhost` certificate valid 2020–2120, made with
//! openssl for this test only).
//!
//! Runs with the `tls` feature: `cargo test --all-features --test client_tls`.
#![cfg(feature = "tls")]

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use exampple::client::{ClientConfig, ClientError, TlsPolicy};
use exampple::parser::{Limits, StreamItem, StreamParser};
use exampple::sasl::{self, Mechanism};
use exampple::{Element, xml};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

const CA: &str = "-----BEGIN CERTIFICATE-----
MIIBajCCARCgAwIBAgICEAAwCgYIKoZIzj0EAwIwGzEZMBcGA1UEAwwQZXhhbXBw
bGUgdGVzdCBDQTAgFw0yMDAxMDEwMDAwMDBaGA8yMTIwMDEwMTAwMDAwMFowGzEZ
MBcGA1UEAwwQZXhhbXBwbGUgdGVzdCBDQTBZMBMGByqGSM49AgEGCCqGSM49AwEH
A0IABBpjKoQlDQdHZZyZTmxYmoDNqukhaI250sIDhUw4EctViyXy9FfYffkT7SeF
mfDqzQhoq5z1DTNch8ObiParSayjQjBAMA8GA1UdEwEB/wQFMAMBAf8wDgYDVR0P
AQH/BAQDAgEGMB0GA1UdDgQWBBQQ+qt9tI7PjZWwaxTVWr0o2gncCzAKBggqhkjO
PQQDAgNIADBFAiEAot/y9612DXu4c9Ml5xblUE44/DsfjHBdMGMfE4CgC9ACIF2d
plc7hQ8dZKqST0haQAS6yI2Z68mdgxBDo7pPmU5f
-----END CERTIFICATE-----";
const CERT: &str = "-----BEGIN CERTIFICATE-----
MIIBrjCCAVSgAwIBAgICEAEwCgYIKoZIzj0EAwIwGzEZMBcGA1UEAwwQZXhhbXBw
bGUgdGVzdCBDQTAgFw0yMDAxMDEwMDAwMDBaGA8yMTIwMDEwMTAwMDAwMFowFDES
MBAGA1UEAwwJbG9jYWxob3N0MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEaJpN
LH8fADfKtkOZuIlu4VTvPANJA/2tRHXHzy0psFFSFfGDwiulgfGG4FGD3bfIqFWq
yIeysZsVHJIfnXLz86OBjDCBiTAUBgNVHREEDTALgglsb2NhbGhvc3QwDAYDVR0T
AQH/BAIwADAOBgNVHQ8BAf8EBAMCB4AwEwYDVR0lBAwwCgYIKwYBBQUHAwEwHwYD
VR0jBBgwFoAUEPqrfbSOz42VsGsU1Vq9KNoJ3AswHQYDVR0OBBYEFBvSyJlZH3xy
1lxsdwnS3LLPF/sTMAoGCCqGSM49BAMCA0gAMEUCIQCHfK6vlvJ0yHJGkNn523Kc
jpx0UaD+eFn3y4JMpLnT7AIgGRah/aZLbui2b4MVQ+RYEULA53NLbqx5IYgXI7LT
hF0=
-----END CERTIFICATE-----";
const KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg4iXLCZKq4QfTqMPy
kjMqoNA1WexvC8MzunS723lXZP6hRANCAARomk0sfx8AN8q2Q5m4iW7hVO88A0kD
/a1EdcfPLSmwUVIV8YPCK6WB8YbgUYPdt8ioVarIh7KxmxUckh+dcvPz
-----END PRIVATE KEY-----";

const TIMEOUT: Duration = Duration::from_secs(5);
const HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='tls-test' from='localhost' version='1.0'>";

/// Reads stream items from whatever the server talks over (TCP, then TLS).
struct Peer {
    parser: StreamParser,
    items: VecDeque<StreamItem>,
}

impl Peer {
    fn new() -> Self {
        Peer {
            parser: StreamParser::new(Limits::default()),
            items: VecDeque::new(),
        }
    }

    fn next(&mut self, io: &mut dyn Read) -> Result<StreamItem, String> {
        let mut buf = [0u8; 4096];
        loop {
            if let Some(item) = self.items.pop_front() {
                return Ok(item);
            }
            let n = io.read(&mut buf).map_err(|e| format!("server read: {e}"))?;
            if n == 0 {
                return Err("the client closed the connection".into());
            }
            let mut out = Vec::new();
            self.parser
                .feed(&buf[..n], &mut out)
                .map_err(|e| e.to_string())?;
            self.items.extend(out);
        }
    }

    fn element(&mut self, io: &mut dyn Read) -> Result<Element, String> {
        match self.next(io)? {
            StreamItem::Element(e) => Ok(e),
            other => Err(format!("expected an element, got {other:?}")),
        }
    }

    fn header(&mut self, io: &mut dyn Read) -> Result<(), String> {
        match self.next(io)? {
            StreamItem::Header(h) if h.to.as_deref() == Some("localhost") => Ok(()),
            other => Err(format!("expected a stream header, got {other:?}")),
        }
    }
}

fn send(io: &mut dyn Write, text: &str) -> Result<(), String> {
    io.write_all(text.as_bytes())
        .and_then(|()| io.flush())
        .map_err(|e| format!("server write: {e}"))
}

/// A server that requires STARTTLS, accepts PLAIN for alice, binds `alice@localhost/tls`
/// and answers one ping. Returns the elements the client sent after TLS, serialised.
fn start_server() -> (String, JoinHandle<Result<Vec<String>, String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let handle = std::thread::spawn(move || {
        let (mut tcp, _) = listener.accept().map_err(|e| e.to_string())?;
        tcp.set_read_timeout(Some(TIMEOUT))
            .map_err(|e| e.to_string())?;
        let mut peer = Peer::new();
        peer.header(&mut tcp)?;
        send(
            &mut tcp,
            &format!(
                "{HEADER}<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>"
            ),
        )?;
        let starttls = peer.element(&mut tcp)?;
        if !starttls.is("starttls", "urn:ietf:params:xml:ns:xmpp-tls") {
            return Err(format!(
                "expected <starttls/>, got {}",
                xml::to_string(&starttls)
            ));
        }
        send(
            &mut tcp,
            "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
        )?;

        let certs = vec![CertificateDer::from_pem_slice(CERT.as_bytes()).unwrap()];
        let key = PrivateKeyDer::from_pem_slice(KEY.as_bytes()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        let conn = rustls::ServerConnection::new(Arc::new(config)).unwrap();
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        let mut seen = Vec::new();

        let mut peer = Peer::new();
        peer.header(&mut tls)?;
        // PLAIN only: allowed because the stream is now encrypted.
        send(
            &mut tls,
            &format!(
                "{HEADER}<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>"
            ),
        )?;
        let auth = peer.element(&mut tls)?;
        seen.push(xml::to_string(&auth));
        if sasl::decode(&auth.text()).map_err(|e| e.to_string())? != b"\0alice\0alice-pass" {
            send(
                &mut tls,
                "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/></failure>",
            )?;
            return Ok(seen);
        }
        send(
            &mut tls,
            "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>",
        )?;

        let mut peer = Peer::new();
        peer.header(&mut tls)?;
        send(
            &mut tls,
            &format!(
                "{HEADER}<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><required/></bind></stream:features>"
            ),
        )?;
        let bind = peer.element(&mut tls)?;
        let id = bind.attr("id").unwrap_or_default().to_string();
        send(
            &mut tls,
            &format!(
                "<iq type='result' id='{id}'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>alice@localhost/tls</jid></bind></iq>"
            ),
        )?;
        loop {
            match peer.next(&mut tls)? {
                StreamItem::Element(el) => {
                    seen.push(xml::to_string(&el));
                    if el.name() == "iq" && el.attr("type") == Some("get") {
                        let id = el.attr("id").unwrap_or_default();
                        send(
                            &mut tls,
                            &format!("<iq type='result' id='{id}' from='localhost'/>"),
                        )?;
                    }
                }
                StreamItem::Close => {
                    send(&mut tls, "</stream:stream>")?;
                    tls.conn.send_close_notify();
                    let _ = tls.flush();
                    return Ok(seen);
                }
                StreamItem::Header(_) => return Err("unexpected stream header".into()),
            }
        }
    });
    (address, handle)
}

fn ca_file() -> std::path::PathBuf {
    static PATH: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    PATH.get_or_init(|| {
        let path =
            std::env::temp_dir().join(format!("exampple-test-ca-{}.pem", std::process::id()));
        std::fs::write(&path, CA).unwrap();
        path
    })
    .clone()
}

fn config(address: &str) -> ClientConfig {
    ClientConfig::new("alice@localhost/tls", "alice-pass")
        .unwrap()
        .address(address)
        .mechanisms([Mechanism::Plain])
        .tls(TlsPolicy::Required)
        .tls_ca_file(ca_file())
        .login_timeout(TIMEOUT)
}

fn ping() -> Element {
    xml::parse("<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>").unwrap()
}

fn check_seen(seen: Vec<String>) {
    assert_eq!(
        seen.first().map(String::as_str),
        Some(
            "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAGFsaWNlLXBhc3M=</auth>"
        )
    );
    assert!(
        seen.iter()
            .any(|s| s.starts_with("<presence xmlns='jabber:client' id=")),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .any(|s| s.contains("<ping xmlns='urn:xmpp:ping'/>")),
        "{seen:?}"
    );
}

#[test]
fn std_client_over_starttls() {
    let (address, server) = start_server();
    let client = exampple::c2s::blocking::Client::connect(config(&address)).unwrap();
    assert_eq!(client.jid().to_string(), "alice@localhost/tls");
    let pong = client.request(ping(), TIMEOUT).unwrap();
    assert_eq!(pong.attr("type"), Some("result"));
    client.close();
    assert!(client.is_closed());
    check_seen(server.join().unwrap().unwrap());
}

#[test]
fn smol_client_over_starttls() {
    let (address, server) = start_server();
    smol::block_on(async {
        let client = exampple::c2s::smol::Client::connect(config(&address))
            .await
            .unwrap();
        assert_eq!(client.jid().to_string(), "alice@localhost/tls");
        let pong = client.request(ping(), TIMEOUT).await.unwrap();
        assert_eq!(pong.attr("type"), Some("result"));
        client.close().await;
    });
    check_seen(server.join().unwrap().unwrap());
}

#[test]
fn an_untrusted_certificate_fails_the_login() {
    // Without the test CA, the web PKI roots do not vouch for the server.
    let (address, server) = start_server();
    let mut untrusted = config(&address);
    untrusted.tls_ca_file = None;
    let error = exampple::c2s::blocking::Client::connect(untrusted).unwrap_err();
    assert!(
        matches!(&error, ClientError::Tls(text) if text.contains("certificate")),
        "{error:?}"
    );
    assert!(server.join().unwrap().is_err(), "the handshake must fail");
}
