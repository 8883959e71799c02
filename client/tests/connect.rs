//! Both clients' connection failures, without a server: a refused connection, a server that
//! never answers (the login timeout), and a policy that needs TLS the build lacks.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use exampple_core::client::{ClientConfig, ClientError, TlsPolicy};

/// An address on loopback where nothing listens.
fn refused_address() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

/// A server that accepts and never says a word; held open until dropped.
fn silent_server() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    (listener, address)
}

fn config(address: &str) -> ClientConfig {
    ClientConfig::new("alice@localhost/test", "alice-pass")
        .unwrap()
        .address(address)
        .allow_plain_without_tls(true)
        .tls(TlsPolicy::Never)
        .login_timeout(Duration::from_millis(300))
}

#[test]
fn blocking_refused() {
    let error = exampple_client::blocking::Client::connect(config(&refused_address())).unwrap_err();
    assert!(matches!(error, ClientError::Io(_)), "{error:?}");
}

#[test]
fn blocking_login_timeout() {
    let (_server, address) = silent_server();
    let started = Instant::now();
    let error = exampple_client::blocking::Client::connect(config(&address)).unwrap_err();
    assert!(matches!(error, ClientError::Timeout(_)), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn blocking_required_tls() {
    let (_server, address) = silent_server();
    let result =
        exampple_client::blocking::Client::connect(config(&address).tls(TlsPolicy::Required));
    if cfg!(feature = "tls") {
        // The policy passes; the silent server times the login out.
        assert!(matches!(result, Err(ClientError::Timeout(_))), "{result:?}");
    } else {
        assert!(matches!(result, Err(ClientError::Config(_))), "{result:?}");
    }
}

#[cfg(feature = "smol")]
#[test]
fn smol_refused() {
    let error = smol::block_on(exampple_client::smol::Client::connect(config(
        &refused_address(),
    )))
    .unwrap_err();
    assert!(matches!(error, ClientError::Io(_)), "{error:?}");
}

#[cfg(feature = "smol")]
#[test]
fn smol_login_timeout() {
    let (_server, address) = silent_server();
    let started = Instant::now();
    let error =
        smol::block_on(exampple_client::smol::Client::connect(config(&address))).unwrap_err();
    assert!(matches!(error, ClientError::Timeout(_)), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
}
