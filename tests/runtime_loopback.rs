//! Both runtimes against a loopback XEP-0114 server in the test: handshake, concurrent
//! controllers, stanza_timeout, reconnect with the outage queue, rejection, shutdown.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use exampple::observe::{Observer, RequestEvent, RequestOutcome};
use exampple::{AutoConnect, Config, Conn, Element, Router, StanzaError, xml};
use support::{DOMAIN, FakeServer, SECRET, Setup, Which};

/// How long a test waits for something that should come (a failure guard, not a bound).
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

/// Holds controllers until the test opens it, so that what must happen while a controller
/// is busy is checked by order, not by how long things take. Waits are bounded by a guard
/// (3 T) so that a test that never opens it fails instead of hanging.
#[derive(Clone, Default)]
struct Gate(Arc<(Mutex<GateState>, Condvar)>);

#[derive(Default)]
struct GateState {
    open: bool,
    /// Controllers that passed the gate and returned.
    returned: usize,
}

impl Gate {
    fn open(&self) {
        self.0.0.lock().unwrap().open = true;
        self.0.1.notify_all();
    }

    fn is_open(&self) -> bool {
        self.0.0.lock().unwrap().open
    }

    /// Blocks the calling thread until the gate is open.
    fn wait(&self) {
        let guard = self.0.0.lock().unwrap();
        let (guard, _) = self
            .0
            .1
            .wait_timeout_while(guard, 3 * T, |s| !s.open)
            .unwrap();
        assert!(guard.open, "the test never opened the gate");
    }

    fn note_returned(&self) {
        self.0.0.lock().unwrap().returned += 1;
        self.0.1.notify_all();
    }

    /// Waits until `n` controllers have returned.
    fn wait_returned(&self, n: usize) {
        let guard = self.0.0.lock().unwrap();
        let (guard, _) = self
            .0
            .1
            .wait_timeout_while(guard, T, |s| s.returned < n)
            .unwrap();
        assert!(guard.returned >= n, "{} of {n} returned", guard.returned);
    }
}

/// A boxed controller future, for the async controllers built by closures.
type Answering = std::pin::Pin<Box<dyn Future<Output = Result<(), StanzaError>> + Send>>;

/// Waits for the gate before it answers: its first poll (on the core's thread) returns
/// pending, and the executor finishes it.
fn waits_then_answers(gate: Gate) -> impl Fn(Conn, Vec<Element>) -> Answering + Send + Sync {
    move |conn: Conn, _: Vec<Element>| {
        let gate = gate.clone();
        Box::pin(async move {
            while !gate.is_open() {
                async_io::Timer::after(Duration::from_millis(1)).await;
            }
            conn.iq_resp([]).send()?;
            Ok(())
        })
    }
}

/// Blocks its thread until the gate opens, then tries to answer (too late, when its
/// stanza_timeout has passed).
fn slow(gate: Gate) -> impl Fn(Conn, Vec<Element>) -> Result<(), StanzaError> + Send + Sync {
    move |conn: Conn, _: Vec<Element>| {
        gate.wait();
        let _ = conn.iq_resp([]).send();
        gate.note_returned();
        Ok(())
    }
}

fn router() -> Router {
    router_with(Gate::default())
}

/// The test router, its slow and waiting controllers held by `gate`.
fn router_with(gate: Gate) -> Router {
    Router::new()
        .iq("urn:xmpp", |ns| ns.get("ping", ping))
        .iq("urn:test", |ns| {
            ns.get("slow", slow(gate.clone()))
                .get("async", async_ping)
                .get("waits", waits_then_answers(gate))
        })
}

fn request(id: &str, ns: &str) -> Element {
    xml!("<iq type='get' id='{id}' from='alice@localhost/r' to='{DOMAIN}'><q xmlns='{ns}'/></iq>")
}

/// [`request`] for `urn:test:{what}`, as bytes to write (several may go in one write).
fn ask(id: &str, what: &str) -> String {
    xml::to_string(&request(id, &format!("urn:test:{what}")))
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

/// Shuts the component down; it closes its stream, the server answers with its own close,
/// and the runtime returns `Ok`.
fn close_cleanly(
    join: std::thread::JoinHandle<Result<(), String>>,
    shutdown: Box<dyn Fn(Duration) + Send>,
    mut session: support::Session,
) {
    shutdown(Duration::from_secs(1));
    assert!(session.receive_close(T), "the component closed its stream");
    session.write("</stream:stream>");
    assert_eq!(join.join().unwrap(), Ok(()));
}

fn start(which: &Which, config: Config, router: Router, observer: Arc<Count>) -> Started {
    let setup = Setup {
        observer: Some(observer),
        thread_name: Some(RUNTIME_THREAD),
        ..Setup::default()
    };
    let running = support::start(*which, config, router, setup);
    (running.join, running.shutdown, running.sender)
}

/// The name of the thread that runs the runtime (and so its core).
const RUNTIME_THREAD: &str = "the-runtime";

/// A fake server and `which` runtime connected to it, with the test router held by a new
/// gate: the server, the runtime, the gate, the request counts and the accepted session.
fn start_gated(which: &Which) -> (FakeServer, Started, Gate, Arc<Count>, support::Session) {
    let server = FakeServer::new();
    let count = Arc::new(Count::default());
    let gate = Gate::default();
    let started = start(
        which,
        config(server.port()),
        router_with(gate.clone()),
        count.clone(),
    );
    let session = server.accept(true);
    (server, started, gate, count, session)
}

fn serves_and_reconnects(which: Which) {
    let (server, (join, shutdown, sender), gate, count, mut session) = start_gated(&which);

    // While a slow controller is held, a fast one is answered and the slow one gets
    // remote-server-timeout (after its stanza_timeout, which cannot come early).
    let sent = Instant::now();
    session.send(&request("slow-1", "urn:test:slow"));
    session.send(&request("p1", "urn:xmpp:ping"));
    session.send(&request("a1", "urn:test:async"));
    let mut got = Vec::new();
    for _ in 0..3 {
        let s = session.receive(T).expect("an answer");
        let condition = s
            .get_child("error", "jabber:component:accept")
            .and_then(|e| e.children().next())
            .map(|c| c.name().to_string());
        got.push((
            s.attr("id").unwrap().to_string(),
            s.attr("type").unwrap().to_string(),
            condition,
        ));
    }
    let timed_out_after = sent.elapsed();
    got.sort();
    let expected = [
        ("a1", "result", None),
        ("p1", "result", None),
        ("slow-1", "error", Some("remote-server-timeout")),
    ];
    let got_ref: Vec<_> = got
        .iter()
        .map(|(id, kind, c)| (id.as_str(), kind.as_str(), c.as_deref()))
        .collect();
    assert_eq!(got_ref, expected);
    assert!(
        timed_out_after >= Duration::from_millis(500),
        "{timed_out_after:?}"
    );
    // Its late answer, once it returns, is not delivered: the next stanza is the next ping's.
    gate.open();
    gate.wait_returned(1);
    session.send(&request("p-late", "urn:xmpp:ping"));
    assert_eq!(session.receive(T).unwrap().attr("id"), Some("p-late"));

    // The connection drops; a stanza sent while the component reconnects (it has noticed
    // the drop: it is connecting again) arrives first after the handshake.
    session.close();
    let mut session = server.accept_then(true, || {
        sender
            .send(xml!(
                "<message to='bob@localhost' id='during-outage'><body>hi</body></message>"
            ))
            .unwrap();
    });
    let queued = session.receive(T).expect("the queued stanza");
    assert_eq!(queued.attr("id"), Some("during-outage"));
    session.send(&request("p2", "urn:xmpp:ping"));
    assert_eq!(session.receive(T).unwrap().attr("id"), Some("p2"));

    close_cleanly(join, shutdown, session);
    assert_eq!(count.0.load(Ordering::SeqCst), 4);
    assert_eq!(count.1.load(Ordering::SeqCst), 1);
}

/// An async controller that waits is moved off the core's thread after its first poll and
/// still answers, woken by its timer; a ping sent behind it is answered while it waits.
fn async_controllers_that_wait_still_answer(which: Which) {
    let (_server, (join, shutdown, _sender), gate, count, mut session) = start_gated(&which);
    session.send(&request("w1", "urn:test:waits"));
    session.send(&request("p1", "urn:xmpp:ping"));
    let first = session.receive(T).expect("an answer");
    assert_eq!(
        first.attr("id"),
        Some("p1"),
        "the ping is not held up by the wait"
    );
    gate.open();
    let second = session.receive(T).expect("the waiting controller's answer");
    assert_eq!(
        (second.attr("id"), second.attr("type")),
        (Some("w1"), Some("result"))
    );
    close_cleanly(join, shutdown, session);
    assert_eq!(count.0.load(Ordering::SeqCst), 2);
}

/// Answers with the name of the thread it runs on.
fn where_am_i(conn: Conn, _: Vec<Element>) -> Result<(), StanzaError> {
    conn.iq_resp([thread_element()]).send()?;
    Ok(())
}

fn thread_element() -> Element {
    let thread = std::thread::current().name().unwrap_or("").to_string();
    xml!("<thread xmlns='urn:test:thread'>{thread}</thread>")
}

/// The thread an answer says its controller ran on.
fn thread_of(answer: &Element) -> String {
    answer
        .get_child("thread", "urn:test:thread")
        .map(Element::text)
        .unwrap_or_else(|| panic!("no thread in {}", xml::to_string(answer)))
}

/// Where a sync controller runs: on the loop's own thread on std (a standby takes the loop
/// over if it blocks), on the runtime's blocking pool on smol and tokio. The controller tells
/// its thread in the answer's payload.
fn sync_controllers_run_where_the_runtime_puts_them(which: Which) {
    let server = FakeServer::new();
    let router = Router::new().iq("urn:test", |ns| ns.get("thread", where_am_i));
    let (join, handle, _sender) = start(
        &which,
        config(server.port()),
        router,
        Arc::new(Count::default()),
    );
    let mut session = server.accept(true);
    for i in 0..3 {
        session.write(&ask(&format!("t{i}"), "thread"));
        let answer = session.receive(T).expect("an answer");
        assert_eq!(
            (answer.attr("id"), answer.attr("type")),
            (Some(format!("t{i}").as_str()), Some("result"))
        );
        assert_eq!(answer.attr("to"), Some("alice@localhost/r"));
        let thread = thread_of(&answer);
        if which == Which::Std {
            assert_eq!(thread, RUNTIME_THREAD);
        } else {
            assert_ne!(thread, RUNTIME_THREAD);
        }
    }
    close_cleanly(join, handle, session);
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

/// Down at the start, then hanging up on every connection: the runtime keeps trying, with
/// delays that grow. Reconnect delays are 50 ms doubling to 800 ms, each 50-100 % of that
/// (but at least 50 ms), so the gap before the k-th connection after the first is at least
/// 50, 50, 100, 200, 400 ms whatever attempts were refused before: lower bounds, which a
/// loaded machine only makes easier to meet (the exact delays are checked in the core).
fn server_down_at_start_backs_off(which: Which) {
    let port = FakeServer::new().port();
    let config =
        config(port).reconnect_backoff(Duration::from_millis(50), Duration::from_millis(800));
    let (join, shutdown, _sender) = start(&which, config, router(), Arc::new(Count::default()));
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let mut accepted = Vec::new();
    for _ in 0..6 {
        let (stream, _) = listener.accept().unwrap();
        accepted.push(Instant::now());
        drop(stream);
    }
    let gaps: Vec<Duration> = accepted.windows(2).map(|w| w[1] - w[0]).collect();
    eprintln!("gaps between connections: {gaps:?}");
    for (gap, at_least) in gaps.iter().zip([50, 50, 100, 200, 400]) {
        assert!(*gap >= Duration::from_millis(at_least), "{gaps:?}");
    }
    shutdown(Duration::ZERO);
    assert_eq!(join.join().unwrap(), Ok(()));
}

/// A server that reads a large backlog steadily but more slowly than `write_timeout` would
/// allow for the whole of it is alive: every stanza arrives, in order, on the one
/// connection. (The write timeout counts from the last bytes the server took.)
fn a_slow_steady_reader_is_not_hung_up_on(which: Which) {
    let _ = env_logger::builder().is_test(true).try_init();
    let server = FakeServer::new();
    let setup = Setup {
        write_timeout: Some(Duration::from_secs(1)),
        ..Setup::default()
    };
    let running = support::start(which, config(server.port()), router(), setup);
    let mut session = server.accept(true);
    // 16 MiB: more than the loopback socket buffers hold, so the writes wait for the
    // reader, and take some 4 s at 64 KiB every 10 ms. A blocked writer is woken when half
    // the send buffer is free (megabytes), which this reader frees within the 1 s.
    // (192 KiB a message: below the test server's stanza limit of 256 KiB)
    let body = "z".repeat(192 * 1024);
    let message = xml!("<message to='a@b'><body>{body}</body></message>");
    let count = 85;
    for i in 0..count {
        let mut m = message.clone();
        xml::set_attr(&mut m, "id", format!("m{i}"));
        running.sender.send(m).expect("online, not queued");
    }
    let mut ids = Vec::new();
    while ids.len() < count {
        let Some(m) = session.receive_paced(T, 64 * 1024, Duration::from_millis(10)) else {
            break;
        };
        ids.push(m.attr("id").unwrap_or_default().to_string());
    }
    let expected: Vec<String> = (0..count).map(|i| format!("m{i}")).collect();
    assert_eq!(
        ids, expected,
        "every message, in order, on the one connection"
    );
    assert!(
        server.try_accept(Duration::from_millis(100)).is_none(),
        "no reconnect: the component did not give up on the reader"
    );
    close_cleanly(running.join, running.shutdown, session);
}

/// exampple-std's pool wakes a worker for a batch only when none is awake, so an awake
/// worker held by a blocking controller must not leave the requests queued behind it
/// waiting: the core wakes more workers when the pool stops taking work. Three controllers
/// that block (until the test lets them go) on four workers, and twenty pings behind them
/// in the same batch.
#[test]
fn std_pool_does_not_queue_fast_requests_behind_a_blocking_one() {
    let server = FakeServer::new();
    let config = config(server.port()).stanza_timeout(Duration::from_secs(5));
    let gate = Gate::default();
    let rt = exampple::std::Runtime::new(config, router_with(gate.clone()))
        .unwrap()
        .workers(4);
    let handle = rt.handle();
    let join = std::thread::spawn(move || rt.run().map_err(|e| e.to_string()));
    let mut session = server.accept(true);
    // Three controllers that block, then pings: one batch or several, the pings are
    // answered while the slow ones are still held.
    let mut burst = String::new();
    for i in 0..3 {
        burst.push_str(&ask(&format!("slow-{i}"), "slow"));
    }
    for i in 0..20 {
        burst.push_str(&xml::to_string(&request(&format!("p{i}"), "urn:xmpp:ping")));
    }
    session.write(&burst);
    for _ in 0..20 {
        let answer = session.receive(T).expect("an answer");
        let id = answer.attr("id").unwrap_or_default();
        assert!(id.starts_with('p'), "a slow one ended first: {id}");
    }
    gate.open();
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
/// and a 1 s stanza_timeout, of 1000 requests only those that were routed (a few hundred)
/// time out; the others are read once the pool is free again and answered.
#[test]
fn std_stops_reading_while_the_pool_is_backed_up() {
    let gate = Gate::default();
    let held = Arc::new(AtomicUsize::new(0));
    let hold_first_two = {
        let gate = gate.clone();
        move |conn: Conn, _: Vec<Element>| -> Result<(), StanzaError> {
            // The first holds the loop's thread (the standby takes the loop over), the next
            // two both workers.
            if held.fetch_add(1, Ordering::SeqCst) < 3 {
                gate.wait();
            }
            let _ = conn.iq_resp([]).send();
            Ok(())
        }
    };
    let server = FakeServer::new();
    let stanza_timeout = Duration::from_secs(1);
    let config = config(server.port()).stanza_timeout(stanza_timeout);
    let router = Router::new().iq("urn:test", |ns| ns.get("hold", hold_first_two));
    let rt = exampple::std::Runtime::new(config, router)
        .unwrap()
        .workers(2);
    let handle = rt.handle();
    let join = std::thread::spawn(move || rt.run().map_err(|e| e.to_string()));
    let mut session = server.accept(true);
    let mut burst = String::new();
    for i in 0..1000 {
        burst.push_str(&ask(&format!("h{i}"), "hold"));
    }
    session.write(&burst);
    // While both workers are held, the routed requests time out; the component is quiet
    // once they all have (waiting longer only makes the check below stricter). Then the
    // held two are let go, and every request is answered once (their late answers are
    // dropped).
    let (mut timeouts, mut results) = (0, 0);
    while timeouts + results < 1000 {
        let wait = if gate.is_open() {
            T
        } else {
            2 * stanza_timeout
        };
        match session.receive(wait) {
            Some(answer) if answer.attr("type") == Some("error") => timeouts += 1,
            Some(_) => results += 1,
            None if !gate.is_open() => gate.open(),
            None => panic!("{timeouts} timeouts and {results} results, then nothing"),
        }
    }
    gate.open();
    eprintln!("{timeouts} of 1000 requests timed out, {results} answered");
    assert!(timeouts > 0, "the routed requests time out");
    assert!(timeouts < 600, "{timeouts}: the whole burst was taken in");
    assert_eq!(timeouts + results, 1000);
    handle.shutdown(Duration::from_secs(1));
    session.close();
    assert_eq!(join.join().unwrap(), Ok(()));
}

/// A sync controller that holds whatever thread runs it until the gate opens, then answers
/// with that thread's name (the answer may find the stream closed by then).
fn blocks(gate: Gate) -> impl Fn(Conn, Vec<Element>) -> Result<(), StanzaError> + Send + Sync {
    move |conn: Conn, _: Vec<Element>| {
        gate.wait();
        let _ = conn.iq_resp([thread_element()]).send();
        Ok(())
    }
}

/// std's default with two routes, `urn:test:thread` ([`where_am_i`]) and `urn:test:block`
/// ([`blocks`], held by `gate`), connected to a fake server; its stanza timeout is 5 s.
fn std_default_with_a_blocking_route(gate: &Gate) -> (FakeServer, Started, support::Session) {
    let server = FakeServer::new();
    let config = config(server.port()).stanza_timeout(Duration::from_secs(5));
    let router = Router::new().iq("urn:test", |ns| {
        ns.get("thread", where_am_i)
            .get("block", blocks(gate.clone()))
    });
    let started = start(&Which::Std, config, router, Arc::new(Count::default()));
    let session = server.accept(true);
    (server, started, session)
}

/// exampple-std's default runs sync controllers on the core's thread, and moves the core
/// to its standby thread when one blocks: the requests behind it (in its run, and written
/// later) are answered on the pool while it blocks, and once it has ended the core is back
/// on its own thread. Each controller answers with its thread's name.
#[test]
fn std_default_moves_the_core_off_a_blocking_controller() {
    let gate = Gate::default();
    let (_server, (join, shutdown, _sender), mut session) =
        std_default_with_a_blocking_route(&gate);
    session.write(&ask("before", "thread"));
    let answer = session.receive(T).expect("an answer");
    assert_eq!(thread_of(&answer), RUNTIME_THREAD);

    // One write: the blocking controller first, twenty quick ones behind it; twenty more
    // once those are answered, while it still blocks.
    let mut burst = ask("block", "block");
    for i in 0..20 {
        burst.push_str(&ask(&format!("t{i}"), "thread"));
    }
    session.write(&burst);
    for round in 0..2 {
        if round == 1 {
            let later: String = (20..40).map(|i| ask(&format!("t{i}"), "thread")).collect();
            session.write(&later);
        }
        for _ in 0..20 {
            let answer = session.receive(T).expect("an answer");
            let id = answer.attr("id").unwrap_or_default().to_string();
            assert!(id.starts_with('t'), "the blocking one ended first: {id}");
            let thread = thread_of(&answer);
            assert!(
                thread.starts_with("exampple-worker-"),
                "{id} ran on {thread}"
            );
        }
    }
    gate.open();
    let answer = session.receive(T).expect("the blocking one's answer");
    assert_eq!(answer.attr("id"), Some("block"));
    assert_eq!(thread_of(&answer), RUNTIME_THREAD);
    // Once its controller has returned, the core goes back to its own thread.
    let until = Instant::now() + T;
    for i in 0.. {
        let id = format!("after-{i}");
        session.write(&ask(&id, "thread"));
        let answer = session.receive(T).expect("an answer");
        assert_eq!(answer.attr("id"), Some(id.as_str()));
        if thread_of(&answer) == RUNTIME_THREAD {
            break;
        }
        assert!(
            Instant::now() < until,
            "the core stayed on {}",
            thread_of(&answer)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    close_cleanly(join, shutdown, session);
}

/// A controller blocks the core's thread and nothing else comes in (no input, no output
/// from elsewhere to wake the standby): the request's stanza_timeout is still answered on
/// time, with remote-server-timeout, while the controller still blocks.
#[test]
fn std_default_answers_a_timeout_while_its_controller_blocks_alone() {
    let server = FakeServer::new();
    let config = config(server.port()).stanza_timeout(Duration::from_millis(300));
    let gate = Gate::default();
    let (join, shutdown, _sender) = start(
        &Which::Std,
        config,
        router_with(gate.clone()),
        Arc::new(Count::default()),
    );
    let mut session = server.accept(true);
    let sent = Instant::now();
    session.send(&request("slow", "urn:test:slow"));
    let answer = session.receive(T).expect("an answer");
    let took = sent.elapsed();
    let text = xml::to_string(&answer);
    assert_eq!(answer.attr("type"), Some("error"), "{text}");
    assert!(text.contains("remote-server-timeout"), "{text}");
    assert!(took >= Duration::from_millis(300), "{took:?}");
    gate.open();
    close_cleanly(join, shutdown, session);
}

/// A sync controller on std's default may wait for the answer to an iq of its own
/// ([`exampple::block_on`]): the standby takes the core over, sends the iq and delivers the answer.
/// (Were the loop to stay on the blocked thread, this would wait for the call's 3 s timeout.)
#[test]
fn std_default_lets_a_sync_controller_wait_for_an_iq_answer() {
    fn asks_the_server(conn: Conn, _: Vec<Element>) -> Result<(), StanzaError> {
        let call = conn.call(
            xml!("<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>"),
            Duration::from_secs(3),
        )?;
        let answered = match exampple::block_on(call) {
            Ok(answer) => answer.attr("type").unwrap_or_default().to_string(),
            Err(e) => format!("no answer: {e}"),
        };
        conn.iq_resp([xml!("<asked xmlns='urn:test:asked'>{answered}</asked>")])
            .send()?;
        Ok(())
    }
    let server = FakeServer::new();
    let router = Router::new().iq("urn:test", |ns| ns.get("ask", asks_the_server));
    let (join, shutdown, _sender) = start(
        &Which::Std,
        config(server.port()).stanza_timeout(Duration::from_secs(5)),
        router,
        Arc::new(Count::default()),
    );
    let mut session = server.accept(true);
    let asked = Instant::now();
    session.write(&ask("ask", "ask"));
    let call = session.receive(T).expect("the controller's iq");
    // Its iq is in the outbox of a core held by the controller itself: the wait's block
    // hook moves the core to the standby, which sends it at once (without the hook, at its
    // next look for deadlines, up to 20 ms: a matter of speed, not checked here).
    eprintln!(
        "the controller's iq reached the server {:?} after the request",
        asked.elapsed()
    );
    assert_eq!(call.attr("to"), Some("localhost"));
    let id = call.attr("id").expect("an id").to_string();
    let answered = Instant::now();
    session.write(&format!(
        "<iq type='result' id='{id}' from='localhost' to='{DOMAIN}'/>"
    ));
    let answer = session.receive(T).expect("the controller's answer");
    let took = answered.elapsed();
    assert_eq!(
        (answer.attr("id"), answer.attr("type")),
        (Some("ask"), Some("result"))
    );
    let asked = answer
        .get_child("asked", "urn:test:asked")
        .map(Element::text);
    assert_eq!(asked.as_deref(), Some("result"));
    eprintln!("the controller had its answer {took:?} after the server sent it");
    close_cleanly(join, shutdown, session);
}

/// Controllers that each take half a millisecond of CPU, forty in one write: one at a time
/// none of them holds the core's thread for long, but together they do, and a request that
/// comes meanwhile makes the standby take over: the rest are spread over the pool's threads
/// rather than run one after the other on the core's. So that the run lasts until then
/// whatever the machine's load, the last of the forty spins on until the late request has
/// run: which it can only do on the pool, once the standby has taken over.
#[test]
fn std_default_spreads_a_long_run_of_controllers_over_the_pool() {
    let late_ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let spins = move |conn: Conn, _: Vec<Element>| -> Result<(), StanzaError> {
        let until = Instant::now() + Duration::from_micros(500);
        let guard = Instant::now() + T;
        match conn.id() {
            Some("s40") => late_ran.store(true, Ordering::SeqCst),
            Some("s39") => {
                while !late_ran.load(Ordering::SeqCst) && Instant::now() < guard {
                    std::hint::spin_loop();
                }
            }
            _ => {}
        }
        while Instant::now() < until {
            std::hint::spin_loop();
        }
        conn.iq_resp([thread_element()]).send()?;
        Ok(())
    };
    let server = FakeServer::new();
    let config = config(server.port()).stanza_timeout(Duration::from_secs(10));
    let router = Router::new().iq("urn:test", |ns| ns.get("spin", spins));
    let (join, shutdown, _sender) = start(&Which::Std, config, router, Arc::new(Count::default()));
    let mut session = server.accept(true);
    let burst: String = (0..40).map(|i| ask(&format!("s{i}"), "spin")).collect();
    session.write(&burst);
    session.write(&ask("s40", "spin"));
    let mut threads = std::collections::BTreeMap::<String, usize>::new();
    for _ in 0..41 {
        let answer = session.receive(2 * T).expect("an answer");
        assert_eq!(answer.attr("type"), Some("result"));
        let thread = thread_of(&answer);
        if answer.attr("id") == Some("s40") {
            assert!(thread.starts_with("exampple-worker-"), "{thread}");
        }
        *threads.entry(thread).or_default() += 1;
    }
    eprintln!("controllers per thread: {threads:?}");
    let on_workers: usize = threads
        .iter()
        .filter(|(thread, _)| thread.starts_with("exampple-worker-"))
        .map(|(_, n)| n)
        .sum();
    assert_eq!(
        on_workers + threads.get(RUNTIME_THREAD).copied().unwrap_or(0),
        41
    );
    close_cleanly(join, shutdown, session);
}

/// The component is shut down while a controller holds the core's thread, so the standby
/// drives the close: the stream is closed within the grace period, the blocked
/// controller's late answer is not sent, and `run` returns `Ok` once the controller
/// returns, on the thread that called it.
#[test]
fn std_default_shuts_down_while_a_controller_blocks_the_core_thread() {
    let gate = Gate::default();
    let (_server, (join, shutdown, _sender), mut session) =
        std_default_with_a_blocking_route(&gate);
    session.write(&ask("block", "block"));
    // A request behind it makes the standby take over; its answer shows the core moved.
    session.write(&ask("t", "thread"));
    let answer = session.receive(T).expect("an answer");
    assert_eq!(answer.attr("id"), Some("t"));
    assert!(thread_of(&answer).starts_with("exampple-worker-"));

    shutdown(Duration::from_millis(200));
    // The standby answers the blocked request at the drain's deadline and closes the stream
    // while the controller still blocks; nothing else comes first.
    assert!(session.receive_close(T), "the component closed its stream");
    let answer = session
        .receive(Duration::ZERO)
        .expect("the blocked request's answer");
    assert_eq!(answer.attr("id"), Some("block"));
    assert!(
        xml::to_string(&answer).contains("<service-unavailable"),
        "{}",
        xml::to_string(&answer)
    );
    assert!(
        session.receive(Duration::ZERO).is_none(),
        "nothing else before the close"
    );
    session.write("</stream:stream>");
    // run returns once the blocked controller has returned, not before (a deadline, so
    // that a core that lost the stop fails the test rather than hang it).
    let (returned, run_result) = std::sync::mpsc::channel();
    std::thread::spawn(move || returned.send(join.join().unwrap()));
    assert!(
        run_result.recv_timeout(Duration::from_millis(100)).is_err(),
        "run returned while a controller still ran"
    );
    gate.open();
    let result = run_result.recv_timeout(T).expect("run returned");
    assert_eq!(result, Ok(()));
    // The blocked controller's late answer went nowhere.
    assert!(session.receive(Duration::from_millis(100)).is_none());
}

/// On the tokio runtime an async controller may await tokio's timers (and so its I/O and
/// the libraries built on it): its first poll, on the loop's thread, is inside the tokio
/// runtime's context, and it goes on as a tokio task.
#[test]
fn tokio_controllers_await_tokio_timers() {
    async fn sleeps(conn: Conn, _: Vec<Element>) -> Result<(), StanzaError> {
        tokio::time::sleep(Duration::from_millis(20)).await;
        conn.iq_resp([thread_element()]).send()?;
        Ok(())
    }
    let server = FakeServer::new();
    let router = Router::new().iq("urn:test", |ns| ns.get("sleep", sleeps));
    let (join, shutdown, _sender) = start(
        &Which::Tokio,
        config(server.port()),
        router,
        Arc::new(Count::default()),
    );
    let mut session = server.accept(true);
    for i in 0..3 {
        session.write(&ask(&format!("s{i}"), "sleep"));
        let answer = session.receive(T).expect("an answer after the sleep");
        assert_eq!(
            (answer.attr("id"), answer.attr("type")),
            (Some(format!("s{i}").as_str()), Some("result"))
        );
        assert!(thread_of(&answer).starts_with("exampple-worker"));
    }
    close_cleanly(join, shutdown, session);
}

runtime_tests!(
    async_controllers_that_wait_still_answer,
    a_slow_steady_reader_is_not_hung_up_on,
    serves_and_reconnects,
    wrong_secret_stops_without_a_storm,
    server_down_at_start_backs_off,
    sync_controllers_run_where_the_runtime_puts_them,
);
