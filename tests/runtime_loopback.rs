//! Both runtimes against a loopback XEP-0114 server in the test: handshake, concurrent
//! controllers, stanza_timeout, reconnect with the outage queue, rejection, shutdown.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use exampple::observe::{Observer, RequestEvent, RequestOutcome};
use exampple::{AutoConnect, Config, Conn, Element, Router, StanzaError, xml};
use support::{DOMAIN, FakeServer, SECRET};

const T: Duration = Duration::from_secs(5);

fn config(port: u16) -> Config {
    Config::new(DOMAIN, SECRET)
        .port(port)
        .auto_connect(AutoConnect::Immediately)
        .stanza_timeout(Duration::from_millis(500))
        .reconnect_backoff(Duration::from_millis(50), Duration::from_millis(200))
}

fn ping(conn: Conn, _: Vec<Element>) -> Result<(), StanzaError> {
    conn.iq_resp([]).send()?;
    Ok(())
}

async fn async_ping(conn: Conn, _: Vec<Element>) -> Result<(), StanzaError> {
    conn.iq_resp([]).send()?;
    Ok(())
}

/// Waits before it answers: its first poll (on the core's thread) returns pending, and the
/// executor finishes it.
async fn waits_then_answers(conn: Conn, _: Vec<Element>) -> Result<(), StanzaError> {
    async_io::Timer::after(Duration::from_millis(50)).await;
    conn.iq_resp([]).send()?;
    Ok(())
}

fn slow(conn: Conn, _: Vec<Element>) -> Result<(), StanzaError> {
    std::thread::sleep(Duration::from_secs(2));
    let _ = conn.iq_resp([]).send();
    Ok(())
}

fn router() -> Router {
    Router::new()
        .iq("urn:xmpp", |ns| ns.get("ping", ping))
        .iq("urn:test", |ns| {
            ns.get("slow", slow)
                .get("async", async_ping)
                .get("waits", waits_then_answers)
        })
}

fn request(id: &str, ns: &str) -> Element {
    xml!("<iq type='get' id='{id}' from='alice@localhost/r' to='{DOMAIN}'><q xmlns='{ns}'/></iq>")
}

#[derive(Default)]
struct Count(AtomicUsize, AtomicUsize);

impl Observer for Count {
    fn request(&self, event: &RequestEvent) {
        match event.outcome {
            RequestOutcome::Success => self.0.fetch_add(1, Ordering::SeqCst),
            _ => self.1.fetch_add(1, Ordering::SeqCst),
        };
    }
}

/// The runtime's thread, a shutdown function and a sender.
type Started = (
    std::thread::JoinHandle<Result<(), String>>,
    Box<dyn Fn(Duration) + Send>,
    exampple::Sender,
);

enum Which {
    Smol,
    Std,
}

fn start(which: &Which, config: Config, router: Router, observer: Arc<Count>) -> Started {
    start_with(which, config, router, observer, false)
}

/// The name of the thread that runs the runtime (and so its core).
const RUNTIME_THREAD: &str = "the-runtime";

/// Like [`start`]; with `inline_sync`, sync controllers run on the core's thread
/// (`SyncControllers::Executor` on smol, `SyncControllers::Inline` on std).
fn start_with(
    which: &Which,
    config: Config,
    router: Router,
    observer: Arc<Count>,
    inline_sync: bool,
) -> Started {
    let thread = std::thread::Builder::new().name(RUNTIME_THREAD.into());
    match which {
        Which::Smol => {
            use exampple::smol::SyncControllers;
            let how = if inline_sync {
                SyncControllers::Executor
            } else {
                SyncControllers::BlockingPool
            };
            let rt = exampple::smol::Runtime::new(config, router)
                .unwrap()
                .observer(observer)
                .sync_controllers(how);
            let handle = rt.handle();
            let sender = handle.sender().clone();
            let join = thread
                .spawn(move || rt.run().map_err(|e| e.to_string()))
                .unwrap();
            (join, Box::new(move |grace| handle.shutdown(grace)), sender)
        }
        Which::Std => {
            use exampple::blocking::SyncControllers;
            let how = if inline_sync {
                SyncControllers::Inline
            } else {
                SyncControllers::Pool
            };
            let rt = exampple::blocking::Runtime::new(config, router)
                .unwrap()
                .observer(observer)
                .sync_controllers(how);
            let handle = rt.handle();
            let sender = handle.sender().clone();
            let join = thread
                .spawn(move || rt.run().map_err(|e| e.to_string()))
                .unwrap();
            (join, Box::new(move |grace| handle.shutdown(grace)), sender)
        }
    }
}

fn serves_and_reconnects(which: Which) {
    let server = FakeServer::new();
    let count = Arc::new(Count::default());
    let (join, shutdown, sender) = start(&which, config(server.port()), router(), count.clone());
    let mut session = server.accept(true);

    // A slow controller does not hold up a fast one; it gets remote-server-timeout.
    session.send(&request("slow-1", "urn:test:slow"));
    session.send(&request("p1", "urn:xmpp:ping"));
    session.send(&request("a1", "urn:test:async"));
    let mut got = Vec::new();
    let started = Instant::now();
    for _ in 0..3 {
        let s = session.receive(T).expect("an answer");
        got.push((
            s.attr("id").unwrap().to_string(),
            s.attr("type").unwrap().to_string(),
            started.elapsed(),
        ));
    }
    let mut fast: Vec<&str> = got[..2].iter().map(|g| g.0.as_str()).collect();
    fast.sort();
    assert_eq!(fast, ["a1", "p1"], "{got:?}");
    assert_eq!(
        (got[2].0.as_str(), got[2].1.as_str()),
        ("slow-1", "error"),
        "{got:?}"
    );
    assert!(
        got[2].2 >= Duration::from_millis(400) && got[2].2 < Duration::from_millis(1500),
        "{got:?}"
    );

    // The connection drops; a stanza sent meanwhile arrives after the reconnect.
    session.close();
    std::thread::sleep(Duration::from_millis(20));
    sender
        .send(xml!(
            "<message to='bob@localhost' id='during-outage'><body>hi</body></message>"
        ))
        .unwrap();
    let mut session = server.accept(true);
    let queued = session.receive(T).expect("the queued stanza");
    assert_eq!(queued.attr("id"), Some("during-outage"));
    session.send(&request("p2", "urn:xmpp:ping"));
    assert_eq!(session.receive(T).unwrap().attr("id"), Some("p2"));
    // The late answer of the slow controller was never delivered.
    assert!(session.receive(Duration::from_millis(100)).is_none());

    shutdown(Duration::from_secs(1));
    // The component closes its stream; the server answers with its own close.
    std::thread::sleep(Duration::from_millis(100));
    session.write("</stream:stream>");
    assert_eq!(join.join().unwrap(), Ok(()));
    assert_eq!(count.0.load(Ordering::SeqCst), 3);
    assert_eq!(count.1.load(Ordering::SeqCst), 1);
}

/// An async controller that waits is moved off the core's thread after its first poll and
/// still answers, woken by its timer; a ping sent behind it is answered first.
fn async_controllers_that_wait_still_answer(which: Which) {
    let server = FakeServer::new();
    let count = Arc::new(Count::default());
    let (join, shutdown, _sender) = start(&which, config(server.port()), router(), count.clone());
    let mut session = server.accept(true);
    let sent = Instant::now();
    session.send(&request("w1", "urn:test:waits"));
    session.send(&request("p1", "urn:xmpp:ping"));
    let first = session.receive(T).expect("an answer");
    assert_eq!(
        first.attr("id"),
        Some("p1"),
        "the ping is not held up by the wait"
    );
    let second = session.receive(T).expect("the waiting controller's answer");
    assert_eq!(
        (second.attr("id"), second.attr("type")),
        (Some("w1"), Some("result"))
    );
    assert!(
        sent.elapsed() >= Duration::from_millis(50),
        "{:?}",
        sent.elapsed()
    );
    shutdown(Duration::from_secs(1));
    std::thread::sleep(Duration::from_millis(100));
    session.write("</stream:stream>");
    assert_eq!(join.join().unwrap(), Ok(()));
    assert_eq!(count.0.load(Ordering::SeqCst), 2);
}

#[test]
fn smol_async_controllers_that_wait_still_answer() {
    async_controllers_that_wait_still_answer(Which::Smol);
}

#[test]
fn std_async_controllers_that_wait_still_answer() {
    async_controllers_that_wait_still_answer(Which::Std);
}

/// Where a sync controller runs, as the runtimes' options say: on a pool by default, on
/// the core's own thread with `SyncControllers::Inline` (std) or `::Executor` (smol). The
/// controller tells its thread in the answer's payload.
fn sync_controller_runs_where_configured(which: Which, inline: bool) {
    fn where_am_i(conn: Conn, _: Vec<Element>) -> Result<(), StanzaError> {
        let thread = std::thread::current().name().unwrap_or("").to_string();
        conn.iq_resp([xml!("<thread xmlns='urn:test:thread'>{thread}</thread>")])
            .send()?;
        Ok(())
    }
    let server = FakeServer::new();
    let router = Router::new().iq("urn:test", |ns| ns.get("thread", where_am_i));
    let (join, handle, _sender) = start_with(
        &which,
        config(server.port()),
        router,
        Arc::new(Count::default()),
        inline,
    );
    let mut session = server.accept(true);
    for i in 0..3 {
        session.write(&format!(
            "<iq type='get' id='t{i}' from='alice@localhost/r' to='{DOMAIN}'><q xmlns='urn:test:thread'/></iq>"
        ));
        let answer = session.receive(T).expect("an answer");
        assert_eq!(
            (answer.attr("id"), answer.attr("type")),
            (Some(format!("t{i}").as_str()), Some("result"))
        );
        assert_eq!(answer.attr("to"), Some("alice@localhost/r"));
        let thread = answer
            .get_child("thread", "urn:test:thread")
            .expect("the controller's thread")
            .text();
        if inline {
            assert_eq!(thread, RUNTIME_THREAD);
        } else {
            assert_ne!(thread, RUNTIME_THREAD);
            if matches!(which, Which::Std) {
                assert!(thread.starts_with("exampple-worker-"), "{thread}");
            }
        }
    }
    handle(Duration::from_secs(1));
    std::thread::sleep(Duration::from_millis(100));
    session.write("</stream:stream>");
    assert_eq!(join.join().unwrap(), Ok(()));
}

#[test]
fn smol_sync_controllers_on_the_blocking_pool() {
    sync_controller_runs_where_configured(Which::Smol, false);
}

#[test]
fn smol_sync_controllers_on_the_executor() {
    sync_controller_runs_where_configured(Which::Smol, true);
}

#[test]
fn std_sync_controllers_on_the_pool() {
    sync_controller_runs_where_configured(Which::Std, false);
}

#[test]
fn std_sync_controllers_inline() {
    sync_controller_runs_where_configured(Which::Std, true);
}

fn wrong_secret_stops_without_a_storm(which: Which) {
    let server = FakeServer::new();
    let (join, _shutdown, _sender) = start(
        &which,
        config(server.port()),
        router(),
        Arc::new(Count::default()),
    );
    let session = server.accept(false);
    let result = join.join().unwrap();
    let error = result.unwrap_err();
    assert!(
        error.contains("not-authorized") && error.contains("Invalid handshake"),
        "{error}"
    );
    drop(session);
    assert!(
        server.try_accept(Duration::from_millis(500)).is_none(),
        "no reconnect after a rejection"
    );
}

fn server_down_at_start_backs_off(which: Which) {
    // Nobody listens on this port at first.
    let server = FakeServer::new();
    let port = server.port();
    drop(server);
    let (join, shutdown, _sender) =
        start(&which, config(port), router(), Arc::new(Count::default()));
    std::thread::sleep(Duration::from_millis(600));
    let server = std::net::TcpListener::bind(("127.0.0.1", port));
    if let Ok(listener) = server {
        listener.set_nonblocking(false).unwrap();
        let (stream, _) = listener.accept().unwrap();
        drop(stream);
    }
    shutdown(Duration::ZERO);
    assert_eq!(join.join().unwrap(), Ok(()));
}

#[test]
fn smol_serves_and_reconnects() {
    serves_and_reconnects(Which::Smol);
}

#[test]
fn std_serves_and_reconnects() {
    serves_and_reconnects(Which::Std);
}

#[test]
fn smol_wrong_secret() {
    wrong_secret_stops_without_a_storm(Which::Smol);
}

#[test]
fn std_wrong_secret() {
    wrong_secret_stops_without_a_storm(Which::Std);
}

#[test]
fn smol_server_down_at_start() {
    server_down_at_start_backs_off(Which::Smol);
}

#[test]
fn std_server_down_at_start() {
    server_down_at_start_backs_off(Which::Std);
}

/// exampple-std's pool wakes a worker for a batch only when none is awake, so an awake
/// worker held by a blocking controller must not leave the requests queued behind it
/// waiting: the core wakes more workers when the pool stops taking work. Three controllers
/// that block for 2 s on four workers, and twenty pings behind them in the same batch.
#[test]
fn std_pool_does_not_queue_fast_requests_behind_a_blocking_one() {
    let server = FakeServer::new();
    let config = config(server.port()).stanza_timeout(Duration::from_secs(5));
    let rt = exampple::blocking::Runtime::new(config, router())
        .unwrap()
        .workers(4);
    let handle = rt.handle();
    let join = std::thread::spawn(move || rt.run().map_err(|e| e.to_string()));
    let mut session = server.accept(true);
    // Three controllers that block for 2 s, then pings: one batch or several, the pings
    // are answered long before the slow ones end.
    let mut burst = String::new();
    for i in 0..3 {
        burst.push_str(&xml::to_string(&request(
            &format!("slow-{i}"),
            "urn:test:slow",
        )));
    }
    for i in 0..20 {
        burst.push_str(&xml::to_string(&request(&format!("p{i}"), "urn:xmpp:ping")));
    }
    let sent = Instant::now();
    session.write(&burst);
    let mut pings = 0;
    while pings < 20 {
        let answer = session.receive(T).expect("an answer");
        let id = answer.attr("id").unwrap_or_default();
        assert!(id.starts_with('p'), "a slow one ended first: {id}");
        pings += 1;
    }
    let took = sent.elapsed();
    eprintln!("20 pings behind 3 blocking controllers answered in {took:?}");
    assert!(took < Duration::from_secs(1), "{took:?}");
    for _ in 0..3 {
        let answer = session.receive(T).expect("the slow answers");
        assert!(answer.attr("id").unwrap_or_default().starts_with("slow-"));
    }
    handle.shutdown(Duration::from_secs(1));
    session.close();
    assert_eq!(join.join().unwrap(), Ok(()));
}

/// exampple-std takes no more input while many dispatches wait for the pool, so requests
/// wait in the input and the kernel's buffer rather than in the process. Seen on the wire:
/// only a routed request has a deadline, so with both workers held by blocking controllers
/// and a 1 s stanza_timeout, 1000 requests get at most a few hundred timeouts in the first
/// 1.5 s (those that were routed), not all 1000.
#[test]
fn std_stops_reading_while_the_pool_is_backed_up() {
    static HELD: AtomicUsize = AtomicUsize::new(0);
    fn hold_first_two(conn: Conn, _: Vec<Element>) -> Result<(), StanzaError> {
        if HELD.fetch_add(1, Ordering::SeqCst) < 2 {
            std::thread::sleep(Duration::from_millis(2500));
        }
        let _ = conn.iq_resp([]).send();
        Ok(())
    }
    let server = FakeServer::new();
    let config = config(server.port()).stanza_timeout(Duration::from_secs(1));
    let router = Router::new().iq("urn:test", |ns| ns.get("hold", hold_first_two));
    let rt = exampple::blocking::Runtime::new(config, router)
        .unwrap()
        .workers(2);
    let handle = rt.handle();
    let join = std::thread::spawn(move || rt.run().map_err(|e| e.to_string()));
    let mut session = server.accept(true);
    let mut burst = String::new();
    for i in 0..1000 {
        burst.push_str(&xml::to_string(&request(&format!("h{i}"), "urn:test:hold")));
    }
    session.write(&burst);
    let start = Instant::now();
    let mut timeouts = 0;
    while let Some(answer) =
        session.receive(Duration::from_millis(1500).saturating_sub(start.elapsed()))
    {
        if answer.attr("type") == Some("error") {
            timeouts += 1;
        }
        if start.elapsed() > Duration::from_millis(1500) {
            break;
        }
    }
    eprintln!("{timeouts} of 1000 requests timed out in the first 1.5 s");
    assert!(timeouts > 0, "the routed requests time out");
    assert!(timeouts < 600, "{timeouts}: the whole burst was taken in");
    handle.shutdown(Duration::from_secs(1));
    session.close();
    assert_eq!(join.join().unwrap(), Ok(()));
}
