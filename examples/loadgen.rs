//! A loopback XEP-0114 load generator: load-test your component without a real server.
//!
//! It plays the server's side: listens on `127.0.0.1:PORT`, accepts one component, checks
//! its stream header (`jabber:component:accept`, `to` = the domain) and its handshake,
//! then sends N requests (ping IQs unless told otherwise) keeping at most W in flight, and
//! reports stanzas/s, latency percentiles (p50/p90/p99/max, from queueing a request for
//! write to reading its answer) and, given the component's pid, its idle RSS (after the
//! handshake) and peak RSS (`VmHWM`, after the last answer). The last line of output is
//! JSON.
//!
//!     cargo run --release --example loadgen -- --n 100000 --window 100 \
//!         --spawn target/release/examples/ping
//!
//! `--spawn CMD` starts the component itself (through `sh -c 'exec CMD'`, with
//! `EXAMPPLE_HOST`, `EXAMPPLE_PORT`, `EXAMPPLE_DOMAIN` and `EXAMPPLE_PASSWORD` set), so its
//! pid is known, and kills it at the end. Without it, start your component yourself after
//! the "listening" line, and pass `--pid` for the RSS figures.
//!
//! Requests look like
//! `<iq type='get' id='b{i}' from='user{i%100}@localhost/res' to='DOMAIN'><ping xmlns='urn:xmpp:ping'/></iq>`;
//! `--payload disco` sends a disco#info query instead, `--size BYTES` pads the ping with
//! a text child to about BYTES per request (to see how cost grows with stanza size).
//!
//! `--stanza FILE` sends a request of your own instead, to load the controllers of your
//! component: one `<iq>` of type `get` or `set` with its payload, written as a server would
//! deliver it. loadgen gives every request its own id (any `id` in the file is replaced),
//! adds `to='DOMAIN'` and `from='loadgen@localhost/res'` where the file has none, and
//! replaces `{domain}` with DOMAIN, `{i}` with the request's number (0, 1, 2, ...) and
//! `{id}` with its id anywhere in the file, so that requests can differ:
//!
//!     <iq type='set'><add xmlns='urn:example:cart'><item>sku-{i}</item></add></iq>
//!
//! Any `result` or `error` IQ with the request's id counts as its answer (errors are
//! counted apart). Exit status: 0 when every request was answered, 1 otherwise, 2 for bad
//! options.

use std::cell::RefCell;
use std::io::Write as _;
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, ExitCode, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use exampple::component::handshake_digest;
use smol::future::FutureExt as _;
use smol::io::{AsyncReadExt as _, AsyncWriteExt as _};
use smol::{Async, Timer};

const USAGE: &str =
    "usage: loadgen [--n N] [--window W] [--port PORT] [--domain DOMAIN] [--secret SECRET]
               [--payload ping|disco] [--size BYTES] [--stanza FILE] [--pid PID]
               [--spawn CMD] [--timeout-secs S] [--accept-secs S] [--quiet]
defaults: --n 100000 --window 100 --port 5252 --domain component.localhost --secret secret
          --payload ping --timeout-secs 60 --accept-secs 30
--stanza FILE: your own request, one <iq> get or set; loadgen sets its id, and replaces
          {i} with the request's number, {id} with its id and {domain} with DOMAIN";

#[derive(Debug, Clone)]
pub(crate) struct Options {
    n: u64,
    window: u64,
    port: u16,
    domain: String,
    secret: String,
    payload: Payload,
    size: Option<usize>,
    pid: Option<u32>,
    spawn: Option<String>,
    timeout: Duration,
    accept: Duration,
    quiet: bool,
}

#[derive(Debug, Clone)]
enum Payload {
    Ping,
    Disco,
    /// `--stanza FILE`: the user's own request.
    Stanza(Template),
}

impl Payload {
    fn as_str(&self) -> &'static str {
        match self {
            Payload::Ping => "ping",
            Payload::Disco => "disco",
            Payload::Stanza(_) => "stanza",
        }
    }
}

/// A request of the user's own (`--stanza FILE`): its bytes written once, and cut where
/// each request's id and number go.
#[derive(Debug, Clone)]
struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone)]
enum Part {
    Bytes(Vec<u8>),
    /// The request's id, `b{i}`: answers are matched by it.
    Id,
    /// The request's number, `{i}`.
    Number,
}

/// Where the id goes in the written template (braces need no escaping in XML, so the
/// placeholders come out of the writer as they went in).
const ID_MARK: &str = "{id}";
const NUMBER_MARK: &str = "{i}";

impl Template {
    /// The template in `text`: one iq get or set, as a server would deliver it.
    fn parse(text: &str, domain: &str) -> Result<Template, String> {
        use exampple::{ns, xml};
        let text = text.replace("{domain}", domain);
        let mut iq = xml::parse(text.trim()).map_err(|e| e.to_string())?;
        if iq.name() != "iq" || iq.ns() != ns::COMPONENT {
            return Err(format!(
                "not an iq stanza but <{}/> in {:?} (write it without an xmlns, as a server delivers it)",
                iq.name(),
                iq.ns()
            ));
        }
        match iq.attr("type") {
            Some("get" | "set") => {}
            other => {
                return Err(format!(
                    "an iq of type get or set is needed (one that gets an answer), not type {other:?}"
                ));
            }
        }
        if iq.children().count() != 1 {
            return Err(format!(
                "an iq get or set carries exactly one payload element, not {}",
                iq.children().count()
            ));
        }
        xml::set_attr(&mut iq, "id", ID_MARK);
        if iq.attr("to").is_none() {
            xml::set_attr(&mut iq, "to", domain);
        }
        if iq.attr("from").is_none() {
            xml::set_attr(&mut iq, "from", "loadgen@localhost/res");
        }
        let mut written = Vec::new();
        xml::write_in(&iq, ns::COMPONENT, &mut written).map_err(|e| e.to_string())?;
        let mut parts = Vec::new();
        let (mut start, mut at) = (0, 0);
        while at < written.len() {
            let rest = &written[at..];
            let (part, len) = if rest.starts_with(ID_MARK.as_bytes()) {
                (Part::Id, ID_MARK.len())
            } else if rest.starts_with(NUMBER_MARK.as_bytes()) {
                (Part::Number, NUMBER_MARK.len())
            } else {
                at += 1;
                continue;
            };
            if at > start {
                parts.push(Part::Bytes(written[start..at].to_vec()));
            }
            parts.push(part);
            at += len;
            start = at;
        }
        if start < written.len() {
            parts.push(Part::Bytes(written[start..].to_vec()));
        }
        Ok(Template { parts })
    }

    /// Writes request `i`.
    fn write(&self, i: u64, out: &mut Vec<u8>) {
        for part in &self.parts {
            match part {
                Part::Bytes(bytes) => out.extend_from_slice(bytes),
                Part::Id => {
                    let _ = write!(out, "b{i}");
                }
                Part::Number => {
                    let _ = write!(out, "{i}");
                }
            }
        }
    }
}

pub(crate) fn parse_options(
    mut args: impl Iterator<Item = String>,
) -> Result<Option<Options>, String> {
    let mut o = Options {
        n: 100_000,
        window: 100,
        port: 5252,
        domain: "component.localhost".into(),
        secret: "secret".into(),
        payload: Payload::Ping,
        size: None,
        pid: None,
        spawn: None,
        timeout: Duration::from_secs(60),
        accept: Duration::from_secs(30),
        quiet: false,
    };
    let mut stanza_file = None;
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            println!("{USAGE}");
            return Ok(None);
        }
        if flag == "--quiet" {
            o.quiet = true;
            continue;
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = |v: &str| {
            v.parse::<u64>()
                .map_err(|_| format!("{flag}: not a number: {v}"))
        };
        match flag.as_str() {
            "--n" => o.n = number(&value)?,
            "--window" => o.window = number(&value)?.max(1),
            "--port" => {
                o.port =
                    u16::try_from(number(&value)?).map_err(|_| "--port: too large".to_string())?
            }
            "--domain" => o.domain = value,
            "--secret" => o.secret = value,
            "--payload" => {
                o.payload = match value.as_str() {
                    "ping" => Payload::Ping,
                    "disco" => Payload::Disco,
                    other => return Err(format!("--payload: ping or disco, not {other}")),
                }
            }
            "--size" => o.size = Some(number(&value)? as usize),
            "--stanza" => stanza_file = Some(value),
            "--pid" => {
                o.pid = Some(
                    u32::try_from(number(&value)?).map_err(|_| "--pid: too large".to_string())?,
                )
            }
            "--spawn" => o.spawn = Some(value),
            "--timeout-secs" => o.timeout = Duration::from_secs(number(&value)?),
            "--accept-secs" => o.accept = Duration::from_secs(number(&value)?),
            other => return Err(format!("unknown option {other}")),
        }
    }
    if o.size.is_some() && (!matches!(o.payload, Payload::Ping) || stanza_file.is_some()) {
        return Err("--size pads the ping; it goes with no other payload".into());
    }
    if let Some(file) = stanza_file {
        let text = std::fs::read_to_string(&file).map_err(|e| format!("--stanza {file}: {e}"))?;
        o.payload = Payload::Stanza(
            Template::parse(&text, &o.domain).map_err(|e| format!("--stanza {file}: {e}"))?,
        );
    }
    Ok(Some(o))
}

fn main() -> ExitCode {
    let options = match parse_options(std::env::args().skip(1)) {
        Ok(Some(o)) => o,
        Ok(None) => return ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadgen: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let listener = match TcpListener::bind(("127.0.0.1", options.port)).and_then(Async::new) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("loadgen: cannot listen on 127.0.0.1:{}: {e}", options.port);
            return ExitCode::FAILURE;
        }
    };
    if !options.quiet {
        eprintln!(
            "loadgen: listening on 127.0.0.1:{} for component {}",
            options.port, options.domain
        );
    }
    let mut child = None;
    let mut pid = options.pid;
    if let Some(cmd) = &options.spawn {
        match spawn(cmd, &options) {
            Ok(c) => {
                pid = Some(c.id());
                child = Some(c);
            }
            Err(e) => {
                eprintln!("loadgen: cannot start `{cmd}`: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let result = smol::block_on(run(&options, listener, pid, Spawned(child)));
    match result {
        Ok(report) => {
            report.print(&options);
            if report.received == options.n {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("loadgen: {e}");
            ExitCode::FAILURE
        }
    }
}

fn spawn(cmd: &str, o: &Options) -> std::io::Result<Child> {
    Command::new("sh")
        .arg("-c")
        .arg(format!("exec {cmd}"))
        .env("EXAMPPLE_HOST", "127.0.0.1")
        .env("EXAMPPLE_PORT", o.port.to_string())
        .env("EXAMPPLE_DOMAIN", &o.domain)
        .env("EXAMPPLE_PASSWORD", &o.secret)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
}

/// The spawned component, killed when dropped (on every way out of `run`).
pub(crate) struct Spawned(pub(crate) Option<Child>);

impl Spawned {
    fn stop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What one run measured.
#[derive(Default)]
pub(crate) struct Report {
    /// Requests answered, by a result or an error.
    pub(crate) received: u64,
    /// Of those, answered by an error.
    pub(crate) errors: u64,
    /// Answers with an id loadgen did not send, or already answered.
    pub(crate) unexpected: u64,
    /// Top-level elements that are not iq results or errors.
    pub(crate) unsolicited: u64,
    elapsed: Duration,
    /// Nanoseconds, sorted.
    pub(crate) latencies: Vec<u64>,
    pub(crate) timed_out: bool,
    idle_rss_kb: Option<u64>,
    peak_rss_kb: Option<u64>,
    pub(crate) request_bytes: usize,
}

impl Report {
    fn percentile_us(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return 0.0;
        }
        let rank = ((p / 100.0) * self.latencies.len() as f64).ceil() as usize;
        let index = rank.clamp(1, self.latencies.len()) - 1;
        self.latencies[index] as f64 / 1000.0
    }

    fn rate(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.received as f64 / secs
        } else {
            0.0
        }
    }

    fn print(&self, o: &Options) {
        let (p50, p90, p99) = (
            self.percentile_us(50.0),
            self.percentile_us(90.0),
            self.percentile_us(99.0),
        );
        let max = self.latencies.last().map_or(0.0, |&ns| ns as f64 / 1000.0);
        println!(
            "loadgen: {}/{} answered in {:.3} s: {:.0} stanzas/s, latency p50 {:.1} us, p90 {:.1} us, p99 {:.1} us, max {:.1} us; {} errors, {} unexpected, {} unsolicited{}",
            self.received,
            o.n,
            self.elapsed.as_secs_f64(),
            self.rate(),
            p50,
            p90,
            p99,
            max,
            self.errors,
            self.unexpected,
            self.unsolicited,
            if self.timed_out { " (timed out)" } else { "" }
        );
        if let (Some(idle), Some(peak)) = (self.idle_rss_kb, self.peak_rss_kb) {
            println!(
                "loadgen: component RSS idle {:.1} MiB, peak {:.1} MiB",
                idle as f64 / 1024.0,
                peak as f64 / 1024.0
            );
        }
        let opt = |v: Option<u64>| v.map_or("null".to_string(), |v| v.to_string());
        println!(
            "{{\"n\":{},\"window\":{},\"payload\":\"{}\",\"request_bytes\":{},\"secs\":{:.6},\"stanzas_per_sec\":{:.1},\"p50_us\":{:.1},\"p90_us\":{:.1},\"p99_us\":{:.1},\"max_us\":{:.1},\"received\":{},\"errors\":{},\"unexpected\":{},\"unsolicited\":{},\"timed_out\":{},\"idle_rss_kb\":{},\"peak_rss_kb\":{}}}",
            o.n,
            o.window,
            o.payload.as_str(),
            self.request_bytes,
            self.elapsed.as_secs_f64(),
            self.rate(),
            p50,
            p90,
            p99,
            max,
            self.received,
            self.errors,
            self.unexpected,
            self.unsolicited,
            self.timed_out,
            opt(self.idle_rss_kb),
            opt(self.peak_rss_kb),
        );
    }
}

/// `VmHWM` (peak) or `VmRSS` (now) of a process, in KiB.
fn rss_kb(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

async fn timeout<T>(after: Duration, what: &str) -> Result<T, String> {
    Timer::after(after).await;
    Err(format!("{what} timed out after {after:?}"))
}

/// Writes request `i` to `out`.
pub(crate) fn request(out: &mut Vec<u8>, i: u64, o: &Options, padding: &str) {
    let payload: &[u8] = match &o.payload {
        Payload::Stanza(template) => return template.write(i, out),
        Payload::Ping => b"<ping xmlns='urn:xmpp:ping'/>",
        Payload::Disco => b"<query xmlns='http://jabber.org/protocol/disco#info'/>",
    };
    let _ = write!(
        out,
        "<iq type='get' id='b{i}' from='user{}@localhost/res' to='{}'>",
        i % 100,
        o.domain
    );
    if padding.is_empty() {
        out.extend_from_slice(payload);
    } else {
        // Only the ping is padded (parse_options refuses --size with another payload).
        out.extend_from_slice(b"<ping xmlns='urn:xmpp:ping'><pad>");
        out.extend_from_slice(padding.as_bytes());
        out.extend_from_slice(b"</pad></ping>");
    }
    out.extend_from_slice(b"</iq>");
}

/// Text that pads a request to about `size` bytes.
fn padding_for(size: Option<usize>, o: &Options) -> String {
    let Some(size) = size else {
        return String::new();
    };
    let mut base = Vec::new();
    request(
        &mut base,
        99_999,
        &Options {
            payload: Payload::Ping,
            ..o.clone()
        },
        "",
    );
    let overhead = base.len() + "><pad></pad></ping>".len() - "/>".len();
    const WORDS: &str = "lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua. ";
    WORDS
        .chars()
        .cycle()
        .take(size.saturating_sub(overhead))
        .collect()
}

struct Shared {
    /// When each request was queued for write.
    sent_at: Vec<Option<Instant>>,
    sent: u64,
    done: u64,
    report: Report,
}

/// Serves one component on `listener` and loads it as `o` says.
pub(crate) async fn run(
    o: &Options,
    listener: Async<TcpListener>,
    pid: Option<u32>,
    mut child: Spawned,
) -> Result<Report, String> {
    let (stream, _) = async { listener.accept().await.map_err(|e| e.to_string()) }
        .or(timeout(o.accept, "waiting for the component"))
        .await?;
    drop(listener);
    let _ = stream.get_ref().set_nodelay(true);
    let stream: Rc<Async<TcpStream>> = Rc::new(stream);
    let mut scanner = Scanner::default();
    let mut buffer = vec![0u8; 64 * 1024];

    // The opening: the component's header, ours, its handshake, our answer.
    let opening = async {
        let header = loop {
            if let Some(h) = scanner.header.take() {
                break h;
            }
            let n = (&*stream)
                .read(&mut buffer)
                .await
                .map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("the component closed the connection before its header".to_string());
            }
            scanner.feed(&buffer[..n], &mut |_| {});
        };
        if header.xmlns.as_deref() != Some("jabber:component:accept")
            || header.to.as_deref() != Some(o.domain.as_str())
        {
            let _ = (&*stream).write_all(b"<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' id='x'><stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>").await;
            return Err(format!(
                "bad stream header: xmlns {:?}, to {:?} (expected {})",
                header.xmlns, header.to, o.domain
            ));
        }
        let stream_id = format!("loadgen-{}", std::process::id());
        let ours = format!(
            "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' id='{stream_id}' from='{}'>",
            o.domain
        );
        (&*stream)
            .write_all(ours.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let digest = loop {
            if let Some(d) = scanner.handshake.take() {
                break d;
            }
            let n = (&*stream)
                .read(&mut buffer)
                .await
                .map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("the component closed the connection before its handshake".to_string());
            }
            scanner.feed(&buffer[..n], &mut |_| {});
        };
        if digest.trim() != handshake_digest(&stream_id, &o.secret) {
            let _ = (&*stream).write_all(b"<stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>").await;
            return Err("wrong handshake digest (check --secret)".to_string());
        }
        (&*stream)
            .write_all(b"<handshake/>")
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    };
    opening.or(timeout(o.accept, "the opening")).await?;

    // Let the component settle, then read its idle RSS.
    Timer::after(Duration::from_millis(200)).await;
    let idle_rss_kb = pid.and_then(|p| rss_kb(p, "VmRSS:"));
    let padding = padding_for(o.size, o);
    let mut sample = Vec::new();
    request(&mut sample, 0, o, &padding);

    let shared = Rc::new(RefCell::new(Shared {
        sent_at: vec![None; usize::try_from(o.n).map_err(|_| "--n too large")?],
        sent: 0,
        done: 0,
        report: Report {
            received: 0,
            errors: 0,
            unexpected: 0,
            unsolicited: 0,
            elapsed: Duration::ZERO,
            latencies: Vec::with_capacity(o.n as usize),
            timed_out: false,
            idle_rss_kb,
            peak_rss_kb: None,
            request_bytes: sample.len(),
        },
    }));
    let (credit_tx, credit_rx) = smol::channel::bounded::<()>(1);
    let start = Instant::now();

    // Writer: keeps the window full.
    let writer = {
        let shared = shared.clone();
        let stream = stream.clone();
        let padding = padding.clone();
        async move {
            let mut out = Vec::with_capacity(64 * 1024);
            loop {
                {
                    let mut s = shared.borrow_mut();
                    let now = Instant::now();
                    while s.sent < o.n && s.sent - s.done < o.window {
                        let i = s.sent;
                        request(&mut out, i, o, &padding);
                        s.sent_at[i as usize] = Some(now);
                        s.sent += 1;
                    }
                    if s.sent >= o.n && out.is_empty() {
                        return Ok::<(), String>(());
                    }
                }
                if out.is_empty() {
                    if credit_rx.recv().await.is_err() {
                        return Ok(());
                    }
                    continue;
                }
                (&*stream)
                    .write_all(&out)
                    .await
                    .map_err(|e| format!("write: {e}"))?;
                out.clear();
            }
        }
    };

    // Reader: matches answers, frees window slots.
    let reader = {
        let shared = shared.clone();
        let stream = stream.clone();
        async move {
            let mut buffer = vec![0u8; 256 * 1024];
            loop {
                if shared.borrow().done >= o.n {
                    return Ok::<(), String>(());
                }
                let n = (&*stream)
                    .read(&mut buffer)
                    .await
                    .map_err(|e| format!("read: {e}"))?;
                if n == 0 {
                    return Err("the component closed the connection".to_string());
                }
                let now = Instant::now();
                let mut s = shared.borrow_mut();
                let before = s.done;
                let s = &mut *s;
                scanner.feed(&buffer[..n], &mut |top: &Top| {
                    if top.name != b"iq" || !(top.kind == Kind::Result || top.kind == Kind::Error) {
                        s.report.unsolicited += 1;
                        return;
                    }
                    let slot = top
                        .index
                        .and_then(|i| s.sent_at.get_mut(i as usize))
                        .and_then(Option::take);
                    match slot {
                        Some(at) => {
                            s.report
                                .latencies
                                .push(now.saturating_duration_since(at).as_nanos() as u64);
                            s.report.received += 1;
                            if top.kind == Kind::Error {
                                s.report.errors += 1;
                            }
                            s.done += 1;
                        }
                        None => s.report.unexpected += 1,
                    }
                });
                if s.done > before {
                    s.report.elapsed = now.duration_since(start);
                    let _ = credit_tx.try_send(());
                }
                if scanner.closed {
                    return Err("the component closed its stream".to_string());
                }
            }
        }
    };
    let measured = async {
        let (w, r) = smol::future::zip(writer, reader).await;
        w.and(r)
    };
    let outcome = measured.or(async {
        Timer::after(o.timeout).await;
        Err("timed out".to_string())
    });
    let outcome = outcome.await;
    let mut report = {
        let mut s = shared.borrow_mut();
        if let Err(e) = &outcome {
            eprintln!("loadgen: {e} ({} of {} answered)", s.done, o.n);
            s.report.timed_out = e == "timed out";
        }
        s.report.peak_rss_kb = pid.and_then(|p| rss_kb(p, "VmHWM:"));
        std::mem::take(&mut s.report)
    };
    // The component we started is stopped before the connection closes (it would log
    // the loss and keep reconnecting); one started by hand gets the stream's end.
    if child.0.is_some() {
        child.stop();
    } else {
        let _ = (&*stream).write_all(b"</stream:stream>").await;
    }
    report.latencies.sort_unstable();
    Ok(report)
}

/// The component's stream header, as far as loadgen checks it.
#[derive(Debug, Default)]
struct Header {
    xmlns: Option<String>,
    to: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Kind {
    #[default]
    Other,
    Result,
    Error,
}

/// A complete top-level element of the component's stream.
#[derive(Debug, Default)]
struct Top {
    name: Vec<u8>,
    kind: Kind,
    /// `i` of an id `b{i}`.
    index: Option<u64>,
}

/// An incremental tag scanner for the component's stream: no DOM, just what loadgen
/// needs (the header, the handshake's text, each top-level element's name, type and id).
/// Tags may be split anywhere across reads; attribute order and quotes are free.
#[derive(Default)]
struct Scanner {
    pending: Vec<u8>,
    depth: usize,
    top: Top,
    in_handshake: bool,
    handshake_text: String,
    header: Option<Header>,
    handshake: Option<String>,
    closed: bool,
}

impl Scanner {
    fn feed(&mut self, bytes: &[u8], on_top: &mut dyn FnMut(&Top)) {
        let carried = !self.pending.is_empty();
        let data: Vec<u8>;
        let input: &[u8] = if carried {
            self.pending.extend_from_slice(bytes);
            data = std::mem::take(&mut self.pending);
            &data
        } else {
            bytes
        };
        let mut pos = 0;
        while pos < input.len() {
            let Some(lt) = input[pos..].iter().position(|&b| b == b'<') else {
                self.text(&input[pos..]);
                break;
            };
            self.text(&input[pos..pos + lt]);
            let start = pos + lt;
            let rest = &input[start..];
            let end = if rest.starts_with(b"<!--") {
                find(rest, b"-->").map(|e| e + 3)
            } else if rest.starts_with(b"<![CDATA[") {
                find(rest, b"]]>").map(|e| {
                    self.text(&rest[9..e]);
                    e + 3
                })
            } else if rest.starts_with(b"<?") {
                find(rest, b"?>").map(|e| e + 2)
            } else if rest.len() < 9
                && (b"<![CDATA[".starts_with(rest) || b"<!--".starts_with(rest))
            {
                None
            } else {
                tag_end(rest).map(|e| {
                    self.tag(&rest[..=e], on_top);
                    e + 1
                })
            };
            match end {
                Some(e) => pos = start + e,
                None => {
                    self.pending.extend_from_slice(rest);
                    return;
                }
            }
        }
    }

    fn text(&mut self, text: &[u8]) {
        if self.in_handshake && !text.is_empty() {
            self.handshake_text.push_str(&String::from_utf8_lossy(text));
        }
    }

    fn tag(&mut self, tag: &[u8], on_top: &mut dyn FnMut(&Top)) {
        if tag.starts_with(b"</") {
            self.depth = self.depth.saturating_sub(1);
            match self.depth {
                0 => self.closed = true,
                1 => self.end_top(on_top),
                _ => {}
            }
            return;
        }
        let self_closing = tag.ends_with(b"/>");
        let inner = &tag[1..tag.len() - if self_closing { 2 } else { 1 }];
        let name_len = inner
            .iter()
            .position(|b| b.is_ascii_whitespace())
            .unwrap_or(inner.len());
        let name = &inner[..name_len];
        match self.depth {
            0 => {
                let mut header = Header::default();
                attributes(&inner[name_len..], |k, v| match k {
                    b"xmlns" => header.xmlns = Some(String::from_utf8_lossy(v).into_owned()),
                    b"to" => header.to = Some(String::from_utf8_lossy(v).into_owned()),
                    _ => {}
                });
                self.header = Some(header);
                self.depth = if self_closing { 0 } else { 1 };
                self.closed = self_closing;
            }
            1 => {
                self.top.name.clear();
                self.top.name.extend_from_slice(name);
                self.top.kind = Kind::Other;
                self.top.index = None;
                let top = &mut self.top;
                attributes(&inner[name_len..], |k, v| match k {
                    b"type" => {
                        top.kind = match v {
                            b"result" => Kind::Result,
                            b"error" => Kind::Error,
                            _ => Kind::Other,
                        }
                    }
                    b"id" => {
                        top.index = v
                            .strip_prefix(b"b")
                            .and_then(|d| std::str::from_utf8(d).ok())
                            .and_then(|d| d.parse().ok())
                    }
                    _ => {}
                });
                if self_closing {
                    self.end_top(on_top);
                } else {
                    self.depth = 2;
                    if name == b"handshake" {
                        self.in_handshake = true;
                        self.handshake_text.clear();
                    }
                }
            }
            _ => {
                if !self_closing {
                    self.depth += 1;
                }
            }
        }
    }

    fn end_top(&mut self, on_top: &mut dyn FnMut(&Top)) {
        if self.in_handshake {
            self.in_handshake = false;
            self.handshake = Some(std::mem::take(&mut self.handshake_text));
            return;
        }
        on_top(&self.top);
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The index of the `>` ending the tag that starts `data`, skipping quoted values.
fn tag_end(data: &[u8]) -> Option<usize> {
    let mut quote = None;
    for (i, &b) in data.iter().enumerate().skip(1) {
        match (quote, b) {
            (None, b'\'' | b'"') => quote = Some(b),
            (Some(q), _) if b == q => quote = None,
            (None, b'>') => return Some(i),
            _ => {}
        }
    }
    None
}

/// Calls `f(name, raw value)` for each attribute of a tag's inside after its name.
fn attributes(mut s: &[u8], mut f: impl FnMut(&[u8], &[u8])) {
    loop {
        while let [b, rest @ ..] = s {
            if b.is_ascii_whitespace() {
                s = rest;
            } else {
                break;
            }
        }
        let Some(eq) = s.iter().position(|&b| b == b'=') else {
            return;
        };
        let name = s[..eq].trim_ascii();
        let after = s[eq + 1..].trim_ascii_start();
        let Some((&q, value)) = after.split_first() else {
            return;
        };
        if q != b'\'' && q != b'"' {
            return;
        }
        let Some(close) = value.iter().position(|&b| b == q) else {
            return;
        };
        f(name, &value[..close]);
        s = &value[close + 1..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to=\"component.localhost\"><handshake>abc</handshake><iq from='c' id='b7' to='u' type='result'/><!-- <iq id='b8' type='result'/> --><iq type=\"error\" id=\"b9\"><ping xmlns='urn:xmpp:ping'/><error type='cancel'><x/></error></iq><message id='m'><body><![CDATA[<iq id='b10'/>]]></body></message></stream:stream>";

    fn scan(chunks: &[&[u8]]) -> (Scanner, Vec<(String, Kind, Option<u64>)>) {
        let mut s = Scanner::default();
        let mut tops = Vec::new();
        for c in chunks {
            s.feed(c, &mut |t| {
                tops.push((
                    String::from_utf8_lossy(&t.name).into_owned(),
                    t.kind,
                    t.index,
                ))
            });
        }
        (s, tops)
    }

    #[test]
    fn scanner_survives_every_split() {
        let bytes = STREAM.as_bytes();
        for split in 0..=bytes.len() {
            let (s, tops) = scan(&[&bytes[..split], &bytes[split..]]);
            assert_eq!(
                s.header.as_ref().and_then(|h| h.to.as_deref()),
                Some("component.localhost"),
                "split {split}"
            );
            assert_eq!(s.handshake.as_deref(), Some("abc"), "split {split}");
            assert_eq!(
                tops,
                vec![
                    ("iq".into(), Kind::Result, Some(7)),
                    ("iq".into(), Kind::Error, Some(9)),
                    ("message".into(), Kind::Other, None),
                ],
                "split {split}"
            );
            assert!(s.closed, "split {split}");
        }
    }

    #[test]
    fn padding_reaches_the_size() {
        let o = parse_options(["--size", "4096"].into_iter().map(String::from))
            .unwrap()
            .unwrap();
        let padding = padding_for(o.size, &o);
        let mut out = Vec::new();
        request(&mut out, 99_999, &o, &padding);
        assert_eq!(out.len(), 4096);
    }
}
