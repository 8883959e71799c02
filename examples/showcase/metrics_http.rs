//! `/metrics` in the Prometheus text format, on the address in `EXAMPPLE_METRICS`
//! (`127.0.0.1:9464`, say), when that variable is set.
//!
//! The recorder is `metrics-exporter-prometheus` without its HTTP listener (which would bring
//! hyper and tokio into a smol program): a std thread answers `GET /metrics` with what the
//! recorder renders, and anything else with 404 (or 405 for another method).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use exampple::metrics::{MetricsObserver, REQUEST_DURATION_BUCKETS, REQUEST_DURATION_SECONDS};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// The variable that holds the address to serve on.
pub const VARIABLE: &str = "EXAMPPLE_METRICS";

/// How long one scrape may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest request head read: a scrape's is a few hundred bytes.
const MAX_REQUEST_HEAD: usize = 8 * 1024;

/// How often histogram data is folded into the recorder's buckets.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// When `EXAMPPLE_METRICS` is set: installs the Prometheus recorder, starts serving it, and
/// returns the observer to give the runtime. `None` when the variable is not set.
pub fn serve_from_env() -> Result<Option<Arc<MetricsObserver>>, String> {
    let Some(address) = std::env::var(VARIABLE)
        .ok()
        .filter(|value| !value.trim().is_empty())
    else {
        return Ok(None);
    };
    let address = address.trim();
    let listener = TcpListener::bind(address)
        .map_err(|e| format!("{VARIABLE}={address}: cannot listen: {e}"))?;
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(REQUEST_DURATION_SECONDS.to_string()),
            REQUEST_DURATION_BUCKETS,
        )
        .and_then(PrometheusBuilder::install_recorder)
        .map_err(|e| format!("cannot install the Prometheus recorder: {e}"))?;
    // After the recorder: the observer's metrics are registered with it.
    let observer = Arc::new(MetricsObserver::new());
    let upkeep = handle.clone();
    std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_INTERVAL);
                upkeep.run_upkeep();
            }
        })
        .map_err(|e| format!("cannot start the metrics upkeep thread: {e}"))?;
    let local = listener
        .local_addr()
        .map_or_else(|_| address.to_string(), |a| a.to_string());
    std::thread::Builder::new()
        .name("metrics-http".into())
        .spawn(move || serve(&listener, &handle))
        .map_err(|e| format!("cannot start the metrics server: {e}"))?;
    log::info!(target: "showcase", "metrics on http://{local}/metrics");
    Ok(Some(observer))
}

/// Answers scrapes one at a time (Prometheus scrapes seldom; each has `REQUEST_TIMEOUT`).
fn serve(listener: &TcpListener, handle: &PrometheusHandle) {
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                if let Err(e) = answer(stream, handle) {
                    log::debug!(target: "showcase", "a metrics request failed: {e}");
                }
            }
            Err(e) => log::warn!(target: "showcase", "cannot accept a metrics request: {e}"),
        }
    }
}

/// Reads one request head and answers it; the connection is then closed.
fn answer(mut stream: TcpStream, handle: &PrometheusHandle) -> std::io::Result<()> {
    stream.set_read_timeout(Some(REQUEST_TIMEOUT))?;
    stream.set_write_timeout(Some(REQUEST_TIMEOUT))?;
    let mut head = Vec::with_capacity(512);
    let mut buffer = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        if head.len() > MAX_REQUEST_HEAD {
            return respond(&mut stream, "431 Request Header Fields Too Large", "", "");
        }
        let n = stream.read(&mut buffer)?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buffer[..n]);
    }
    let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    match (method, path) {
        ("GET", "/metrics") => {
            let body = handle.render();
            respond(
                &mut stream,
                "200 OK",
                "text/plain; version=0.0.4; charset=utf-8",
                &body,
            )
        }
        ("GET", _) => respond(&mut stream, "404 Not Found", "text/plain", "not found\n"),
        _ => respond(
            &mut stream,
            "405 Method Not Allowed",
            "text/plain",
            "only GET /metrics\n",
        ),
    }
}

fn respond(
    stream: &mut TcpStream,
    status: &str,
    content_type: &str,
    body: &str,
) -> std::io::Result<()> {
    let mut response = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if !content_type.is_empty() {
        response.push_str(&format!("Content-Type: {content_type}\r\n"));
    }
    if status.starts_with("405") {
        response.push_str("Allow: GET\r\n");
    }
    response.push_str("\r\n");
    response.push_str(body);
    stream.write_all(response.as_bytes())?;
    stream.flush()
}
