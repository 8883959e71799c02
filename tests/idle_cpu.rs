//! A component whose server is down (or refuses it) waits with capped backoff, not in a busy
//! loop: the CPU it uses while waiting is measured (this process's utime + stime from
//! /proc/self/stat; alone in its test binary so nothing else runs meanwhile).

mod support;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use exampple::{AutoConnect, Config, Router};
use support::{Setup, Which};

fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11).and_then(|u| u.parse().ok()).unwrap_or(0)
        + fields.get(12).and_then(|s| s.parse().ok()).unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

fn waits_quietly(runtime: &str) -> Duration {
    // A port nobody listens on.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = Config::new("component.localhost", "secret")
        .port(port)
        .auto_connect(AutoConnect::Immediately)
        .reconnect_backoff(Duration::from_millis(50), Duration::from_millis(400));
    let cpu_before = cpu_time();
    let started = Instant::now();
    let running = support::start(
        Which::named(runtime),
        config,
        Router::new(),
        Setup::default(),
    );
    std::thread::sleep(Duration::from_secs(3));
    (running.shutdown)(Duration::ZERO);
    running.join.join().unwrap().unwrap();
    let used = cpu_time().saturating_sub(cpu_before);
    eprintln!(
        "{runtime}: {used:?} of CPU in {:?} of refused connections with backoff",
        started.elapsed()
    );
    used
}

#[test]
fn a_server_that_is_down_costs_almost_no_cpu() {
    for runtime in ["smol", "std", "tokio"] {
        let used = waits_quietly(runtime);
        assert!(
            used < Duration::from_millis(500),
            "{runtime} used {used:?} of CPU while waiting"
        );
    }
}
