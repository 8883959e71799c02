//! The connection's life: connecting, the opening (header and handshake), online,
//! draining and closing, disconnections with their backoff, and the timers of each state.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use minidom::Element;

use super::event::{ComponentError, Disconnect, Event};
use super::observer::{DrainProgress, LifecycleEvent};
use super::stream::{self, StreamError, TopLevel};
use super::timers::Timer;
use super::{Component, State, ids};
use crate::ns;
use crate::observe::RequestOutcome;
use crate::parser::{StreamBuilder, StreamHeader, StreamItem, StreamLexer};
use crate::stanza::{self, Condition, IqType, StanzaError};
use crate::xml;

/// How many times the reconnect delay doubles at most: past this it is `reconnect_max`
/// for any practical `reconnect_min`.
const MAX_BACKOFF_DOUBLINGS: u32 = 20;

/// How long the server has to close its stream after ours.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

impl Component {
    /// Waits until `at` to connect.
    pub(super) fn wait(&mut self, at: Instant) {
        self.state = State::Waiting;
        self.timers.set(Timer::Reconnect, at);
    }

    /// The TCP connection is open: a new stream starts.
    pub(super) fn open(&mut self, now: Instant) {
        self.output.reset();
        // What a server granted holds for one connection: the next says it again.
        self.outbox.grants.clear();
        self.lexer = StreamLexer::new(self.lexer.limits());
        self.builder = StreamBuilder::new();
        stream::write_header(&mut self.output, &self.config.domain);
        self.wrote(now);
        self.heard(now);
        self.header_without_id = false;
        self.server_ended = false;
        self.state = State::Opening;
        self.timers
            .set(Timer::Opening, now + self.config.handshake_timeout);
    }

    /// Handles one parsed item; false when the connection ended.
    pub(super) fn on_item(&mut self, now: Instant, item: StreamItem) -> bool {
        match (self.state, item) {
            (State::Opening, StreamItem::Header(header)) => self.on_header(now, header),
            (State::Opening | State::Handshaking, StreamItem::Element(el)) => {
                self.on_opening_element(now, el)
            }
            (State::Opening | State::Handshaking, StreamItem::Close) => {
                self.disconnect(now, Disconnect::ServerClosed);
                false
            }
            (State::Online | State::Draining, StreamItem::Element(el)) => {
                self.on_top_level(now, el)
            }
            (State::Online | State::Draining, StreamItem::Close) => {
                stream::write_close(&mut self.output);
                self.disconnect(now, Disconnect::ServerClosed);
                false
            }
            (State::Closing, StreamItem::Close) => {
                self.finish_close();
                false
            }
            (State::Closing, _) => true,
            (_, StreamItem::Header(_)) => {
                self.refuse_stream(now, "not-well-formed", "a second stream header".into());
                false
            }
            _ => true,
        }
    }

    fn on_header(&mut self, now: Instant, header: StreamHeader) -> bool {
        if !header.is_stream() || header.default_ns.as_deref() != Some(ns::COMPONENT) {
            let reason = format!(
                "stream header `{}` with namespace {:?}",
                header.name,
                header.default_ns.as_deref().unwrap_or("")
            );
            self.refuse_stream(now, "invalid-namespace", reason);
            return false;
        }
        let Some(id) = header.id.filter(|id| !id.is_empty()) else {
            // A server refusing the component (Prosody for an unknown domain) opens its
            // stream without an id and sends a stream error next: wait for it, so the
            // failure carries the server's reason. Anything else gets invalid-id.
            self.header_without_id = true;
            return true;
        };
        stream::write_handshake(&mut self.output, &id, &self.config.password);
        self.wrote(now);
        self.handshake_stream_id = Some(id);
        self.state = State::Handshaking;
        true
    }

    /// An element before the handshake completed: only the handshake's answer or a stream
    /// error may come.
    fn on_opening_element(&mut self, now: Instant, el: Element) -> bool {
        if self.state == State::Handshaking && el.name() == "handshake" && el.has_ns(ns::COMPONENT)
        {
            self.go_online(now);
            return true;
        }
        if el.name() == "error" && el.ns() == ns::STREAM {
            self.on_stream_error(now, &el);
        } else if self.state == State::Opening && self.header_without_id {
            let reason = format!("stream header without an id, then <{}/>", el.name());
            self.refuse_stream(now, "invalid-id", reason);
        } else {
            let reason = format!("<{}/> received before the handshake completed", el.name());
            self.refuse_stream(now, "not-authorized", reason);
        }
        false
    }

    /// An element directly under the stream, once online.
    fn on_top_level(&mut self, now: Instant, el: Element) -> bool {
        match stream::top_level(&el) {
            TopLevel::Stanza(kind) => {
                self.on_stanza(now, kind, el);
                true
            }
            TopLevel::Ignored(what) => {
                log::debug!(target: "exampple", "ignored {what} from the server");
                true
            }
            TopLevel::StreamError => {
                self.on_stream_error(now, &el);
                false
            }
            TopLevel::Unsupported => {
                // RFC 6120 §4.9.3.25: neither a stanza nor the stream's own.
                let reason = format!(
                    "<{}/> in namespace {:?} directly under the stream",
                    el.name(),
                    el.ns()
                );
                self.refuse_stream(now, "unsupported-stanza-type", reason);
                false
            }
        }
    }

    /// The server's stream error: the component stops if it was rejected, else reconnects.
    fn on_stream_error(&mut self, now: Instant, el: &Element) {
        let error = StreamError::from_element(el);
        if error.is_permanent() {
            self.fail(ComponentError::Rejected(error));
        } else {
            if error.condition == "conflict" {
                self.on_conflict(&error);
            }
            self.disconnect(now, Disconnect::StreamError(error));
        }
    }

    /// Another connection holds the component's domain (Prosody allows one per component:
    /// it refuses a second, or with `component_conflict_resolve = "kick_old"` replaces the
    /// first). Retrying at once would fight the other connection, so the retries wait the
    /// longest backoff (`reconnect_max`, with jitter): a standby that takes over within
    /// that once the other connection is gone.
    #[cold]
    fn on_conflict(&mut self, error: &StreamError) {
        log::error!(target: "exampple", "another connection holds {} ({error}): the server allows one connection for this domain (on Prosody see component_conflict_resolve); retrying at the longest backoff", self.config.domain);
        self.attempts = self.attempts.max(MAX_BACKOFF_DOUBLINGS);
    }

    /// Sends a stream error for input the component cannot accept, and ends the connection.
    pub(super) fn refuse_stream(&mut self, now: Instant, condition: &'static str, reason: String) {
        stream::write_error(&mut self.output, condition);
        self.disconnect(now, Disconnect::BadInput { condition, reason });
    }

    fn go_online(&mut self, now: Instant) {
        let stream_id = self.handshake_stream_id.take().unwrap_or_default();
        log::info!(target: "exampple", "online as {} (stream {stream_id})", self.config.domain);
        self.state = match self.drain_deadline {
            // Reconnected during a drain: it goes on, for the answers still to come.
            Some(deadline) => {
                self.timers.set(Timer::Drain, deadline);
                State::Draining
            }
            None => State::Online,
        };
        self.attempts = 0;
        self.outbox.connected.store(true, Ordering::Relaxed);
        // During an input, at its end (`release_held`): the input may end the connection.
        if !self.handling_input {
            self.flush_queue(now);
        }
        self.observe_lifecycle(|| LifecycleEvent::Online {
            stream_id: stream_id.clone(),
        });
        self.events.push_back(Event::Online { stream_id });
    }

    fn backoff(&mut self) -> Duration {
        let min = self.config.reconnect_min.max(Duration::from_millis(1));
        let exp = min.saturating_mul(1u32 << self.attempts.min(MAX_BACKOFF_DOUBLINGS));
        let capped = exp.min(self.config.reconnect_max);
        // Full jitter over the upper half: between 50% and 100% of the capped delay.
        let fraction = 0.5 + self.rng.u32(0..1000) as f64 / 2000.0;
        self.attempts = self.attempts.saturating_add(1);
        capped.mul_f64(fraction).max(min.min(capped))
    }

    /// The connection ended: another is tried after the backoff.
    pub(super) fn disconnect(&mut self, now: Instant, reason: Disconnect) {
        self.outbox.connected.store(false, Ordering::Relaxed);
        self.timers.stop(Timer::KeepaliveAnswer);
        let delay = self.backoff();
        let reconnect_at = now + delay;
        log::warn!(target: "exampple", "disconnected ({reason}); reconnecting in {delay:?} (attempt {})", self.attempts);
        self.wait(reconnect_at);
        self.observe_lifecycle(|| LifecycleEvent::Disconnected {
            reason: reason.clone(),
            reconnect_at,
            attempt: self.attempts,
        });
        self.events.push_back(Event::Disconnected {
            reason,
            reconnect_at,
        });
    }

    fn fail(&mut self, error: ComponentError) {
        log::error!(target: "exampple", "stopped: {error}");
        self.stop(State::Failed);
        self.observe_lifecycle(|| LifecycleEvent::Failed {
            error: error.clone(),
        });
        self.events.push_back(Event::Failed(error));
    }

    pub(super) fn finish_close(&mut self) {
        if self.drain_deadline.is_some() {
            self.report_drain(DrainProgress::End);
        }
        self.stop(State::Closed);
        self.observe_lifecycle(|| LifecycleEvent::Closed);
        self.events.push_back(Event::Closed);
    }

    /// The component stops for good (`Failed` or `Closed`).
    fn stop(&mut self, state: State) {
        self.outbox.connected.store(false, Ordering::Relaxed);
        self.outbox.closed.store(true, Ordering::Relaxed);
        self.state = state;
        self.calls.fail_all();
    }

    /// Starts draining the online connection: serving goes on, and the stream closes once
    /// the requests in flight have finished, or at `now + grace`.
    pub(super) fn drain_within(&mut self, now: Instant, grace: Duration) {
        self.state = State::Draining;
        let deadline = now + grace;
        self.drain_deadline = Some(deadline);
        self.timers.set(Timer::Drain, deadline);
        self.report_drain(DrainProgress::Begin {
            in_flight: self.requests.len(),
            grace,
        });
        self.close_if_drained(now);
    }

    /// Closes once draining has no request left to wait for.
    pub(super) fn close_if_drained(&mut self, now: Instant) {
        if self.state == State::Draining && self.requests.is_empty() {
            self.begin_closing(now);
        }
    }

    /// A request finished during a drain.
    pub(super) fn drain_request_finished(&mut self) {
        if self.drain_deadline.is_some() && !self.requests.is_empty() {
            self.report_drain(DrainProgress::Left {
                in_flight: self.requests.len(),
            });
        }
    }

    /// The drain's deadline: every request still running is answered
    /// `service-unavailable` and its controller cancelled, then the stream closes (or,
    /// without a connection to close, the component stops).
    fn drain_deadline_reached(&mut self, now: Instant) {
        let abandoned = self.requests.len();
        let error = StanzaError::new(Condition::ServiceUnavailable)
            .with_text("en", "the component is shutting down: try again");
        while let Some((request, flight)) = self.requests.pop_any() {
            let ran = now.saturating_duration_since(flight.started);
            let outcome = (
                RequestOutcome::Failure,
                ran,
                Some("the drain's deadline came first"),
            );
            self.abandon(now, request, flight, &error, outcome);
        }
        self.report_drain(DrainProgress::Deadline { abandoned });
        if self.state == State::Draining {
            self.begin_closing(now);
        } else {
            if abandoned > 0 {
                log::warn!(target: "exampple", "drain: not connected at its deadline; the answers of {abandoned} requests are lost");
            }
            self.finish_close();
        }
    }

    /// Says how a drain is going: the one place that reports it.
    pub(super) fn report_drain(&self, progress: DrainProgress) {
        self.observe_lifecycle(|| LifecycleEvent::Draining { progress });
        match progress {
            DrainProgress::Begin { in_flight, grace } => {
                log::info!(target: "exampple", "draining: {in_flight} requests in flight, closing within {grace:?}")
            }
            DrainProgress::Left { in_flight } => {
                log::info!(target: "exampple", "draining: {in_flight} requests left")
            }
            DrainProgress::Deadline { abandoned: 0 } => {}
            DrainProgress::Deadline { abandoned } => {
                log::warn!(target: "exampple", "draining: deadline reached, {abandoned} requests answered with service-unavailable")
            }
            DrainProgress::End => {
                log::info!(target: "exampple", "drained: the stream is closed")
            }
        }
    }

    fn begin_closing(&mut self, now: Instant) {
        stream::write_close(&mut self.output);
        self.wrote(now);
        self.state = State::Closing;
        self.timers.set(Timer::Close, now + CLOSE_TIMEOUT);
    }

    /// Fires the due timers of the state the component is in, in their order, until one
    /// changes the state (whose own timers then wait for the next call).
    pub(super) fn fire_timers(&mut self, now: Instant) {
        let state = self.state;
        for &timer in state.timers() {
            if self.state != state {
                break;
            }
            if self.timers.is_expired(timer, now) {
                self.timers.stop(timer);
                self.on_timer(now, timer);
            }
        }
        self.close_if_drained(now);
    }

    fn on_timer(&mut self, now: Instant, timer: Timer) {
        match timer {
            Timer::Reconnect => self.connect(now),
            Timer::Opening => self.disconnect(now, Disconnect::HandshakeTimeout),
            Timer::KeepaliveAnswer => self.disconnect(now, Disconnect::KeepaliveTimeout),
            Timer::Ping => self.ping(now),
            Timer::Keepalive => {
                stream::write_whitespace(&mut self.output);
                self.wrote(now);
            }
            Timer::Drain => self.drain_deadline_reached(now),
            Timer::Close => self.finish_close(),
        }
    }

    /// Asks the server whether it is still there (XEP-0199).
    fn ping(&mut self, now: Instant) {
        let to = self
            .config
            .domain
            .split_once('.')
            .map_or(self.config.domain.as_str(), |(_, parent)| parent);
        let mut iq = stanza::iq(IqType::Get)
            .id(ids::keepalive_id(&mut self.rng))
            .from(self.config.domain.as_str())
            .to(to)
            .payload(Element::bare("ping", ns::PING))
            .build();
        xml::trim(&mut iq);
        // Not re-sent: it asks about this connection only.
        let _ = self.write(now, &iq, false);
        self.timers
            .set(Timer::KeepaliveAnswer, now + self.config.ping_timeout);
    }

    /// Output went to the server: a whitespace keepalive can wait a whole interval.
    pub(super) fn wrote(&mut self, now: Instant) {
        if let Some(ping) = self.config.ping {
            self.timers.set(Timer::Keepalive, now + ping);
        }
    }

    /// Input came from the server: it is there, and a ping can wait a whole interval.
    pub(super) fn heard(&mut self, now: Instant) {
        self.timers.stop(Timer::KeepaliveAnswer);
        if let Some(ping) = self.config.ping {
            self.timers.set(Timer::Ping, now + ping);
        }
    }
}
