//! What the component sends: what controllers and senders leave in the outbox, the core's
//! own stanzas and answers, written to the connection or kept for the next one.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use minidom::Element;

use super::{Component, State, calls, ids};
use crate::conn::call::{CallError, CallSlot};
use crate::conn::outbox::OutboxItem;
use crate::conn::reply::AnswerKind;
use crate::conn::{Conn, RequestId};
use crate::delegation::Envelope;
use crate::ns;
use crate::stanza::{self, Condition, Head, StanzaError};
use crate::xml::{self, WriteError};

impl Component {
    /// Takes what controllers and senders left: stanzas, answers, outcomes and calls.
    pub(super) fn drain_outbox(&mut self, now: Instant) {
        let mut items = std::mem::take(&mut self.drained);
        self.outbox.drain_into(&mut items);
        for item in items.drain(..) {
            match item {
                OutboxItem::Send { request, stanza } => self.send_for(now, request, stanza),
                OutboxItem::Answer {
                    conn,
                    kind,
                    payload,
                } => {
                    if conn.is_expired() {
                        log::warn!(target: "exampple", "dropped an answer sent after its request timed out");
                        continue;
                    }
                    self.send_answer(now, &conn, kind, payload);
                }
                OutboxItem::Finished { request, outcome } => {
                    self.finish_request(now, request, outcome)
                }
                OutboxItem::Call {
                    iq,
                    timeout,
                    slot,
                    pinned,
                } => self.start_call(now, iq, timeout, slot, pinned),
            }
        }
        self.drained = items;
        self.close_if_drained(now);
    }

    /// Sends a stanza a controller (for `request`) or a sender sent.
    fn send_for(&mut self, now: Instant, request: Option<RequestId>, stanza: Element) {
        if let Some(request) = request
            && let Some(flight) = self.requests.get(&request)
            && flight.conn.state().expired.load(Ordering::Relaxed)
        {
            log::warn!(target: "exampple", "dropped a stanza sent by {} after its request timed out", flight.controller);
            return;
        }
        // Which request this stanza answers, should it prove unwritable (looked up only for
        // an iq result or error, so messages pay nothing).
        let answer = request
            .filter(|_| is_iq_answer(&stanza))
            .and_then(|request| {
                let conn = &self.requests.get(&request)?.conn;
                answers(conn.stanza(), &stanza).then(|| conn.clone())
            });
        if let Err(error) = self.try_send_stanza(now, stanza)
            && let Some(conn) = answer
        {
            self.answer_unwritable(now, &conn, error);
        }
    }

    /// Sends `iq` and waits up to `timeout` for its answer, for `slot`.
    fn start_call(
        &mut self,
        now: Instant,
        mut iq: Element,
        timeout: Duration,
        slot: Arc<CallSlot>,
        pinned: bool,
    ) {
        if self.is_stopped() {
            slot.fulfil(Err(CallError::Closed));
            return;
        }
        // A call from an address of its own (`room@domain`) stays on the shared domain, and
        // so does a pinned one.
        if let Some(instance) = self.outbox.instance.get()
            && !pinned
            && iq
                .attr("from")
                .is_none_or(|from| from.eq_ignore_ascii_case(&self.domain))
        {
            calls::forward(instance, iq, timeout, slot);
            return;
        }
        self.calls
            .start(&mut iq, now + timeout, slot, &mut self.rng);
        self.send_stanza(now, iq);
    }

    /// Whether a stanza sent now goes to this connection (otherwise to the queue kept for
    /// the next one): online or draining, and the server has not ended its side.
    pub(super) fn writes_stanzas(&self) -> bool {
        matches!(self.state, State::Online | State::Draining) && !self.server_ended
    }

    /// Prepares a stanza and writes it, or queues it while offline.
    pub(super) fn send_stanza(&mut self, now: Instant, stanza: Element) {
        // An unwritable stanza has been logged and dropped; only answers do more about it.
        let _ = self.try_send_stanza(now, stanza);
    }

    /// [`Self::send_stanza`], telling whether XML can carry the stanza (an error is logged,
    /// and nothing written or queued).
    fn try_send_stanza(&mut self, now: Instant, mut stanza: Element) -> Result<(), WriteError> {
        if self.config.set_from
            && stanza.name() != "handshake"
            && !stanza
                .attr("from")
                .is_some_and(|from| under_domain(from, &self.domain))
        {
            xml::set_attr(&mut stanza, "from", &*self.domain);
        }
        if self.config.auto_generate_id && stanza.attr("id").is_none_or(str::is_empty) {
            xml::set_attr(&mut stanza, "id", ids::random_uuid(&mut self.rng));
        }
        // `has_ns` compares in place (`ns()` would allocate a String per stanza).
        if stanza.has_ns(ns::CLIENT) {
            stanza = renamespace(stanza, ns::CLIENT, ns::COMPONENT);
        }
        if self.handling_input {
            // Only the core's own stanzas come here during an input (controllers' answers
            // are drained before it); `release_held` writes or queues them.
            self.held.push(stanza);
            return Ok(());
        }
        self.deliver(now, stanza)
    }

    /// Writes a prepared stanza, or queues it while offline, telling whether XML can carry
    /// it (an error is logged, and nothing written or queued).
    fn deliver(&mut self, now: Instant, stanza: Element) -> Result<(), WriteError> {
        if self.writes_stanzas() {
            return self.write(now, &stanza, true);
        }
        if self.is_stopped() {
            log::warn!(target: "exampple", "dropped a stanza sent after the component stopped");
        } else if self.queue.len() >= self.config.max_queue {
            log::error!(target: "exampple", "dropped a stanza: the queue of {} stanzas kept while disconnected is full", self.config.max_queue);
        } else {
            // Checked now, while whoever sent it can still be told.
            let mut scratch = Vec::new();
            if let Err(error) = xml::write_in(&stanza, ns::COMPONENT, &mut scratch) {
                log::error!(target: "exampple", "dropped a <{}/> that cannot be written as XML: {error}", stanza.name());
                return Err(error);
            }
            self.queue.push_back(stanza);
            self.outbox
                .backlog
                .store(self.queue.len(), Ordering::Relaxed);
        }
        Ok(())
    }

    /// Writes `element` to the connection, marked as a stanza to re-send (`stanza`) or not.
    pub(super) fn write(
        &mut self,
        now: Instant,
        element: &Element,
        stanza: bool,
    ) -> Result<(), WriteError> {
        self.output.element(element, stanza)?;
        self.wrote(now);
        Ok(())
    }

    /// Sends the answer to `conn`'s request. Online, it is written straight from the request
    /// (the reply element is never built); otherwise (queued while disconnected, wrapped in
    /// a delegation envelope, or answering a request outside the component namespace, whose
    /// reply `send_stanza` moves into it) it takes the way of any other stanza.
    fn send_answer(&mut self, now: Instant, conn: &Conn, kind: AnswerKind, payload: Vec<Element>) {
        let request = conn.stanza();
        let direct =
            self.writes_stanzas() && conn.envelope().is_none() && request.has_ns(ns::COMPONENT);
        if !direct {
            let reply = kind.build(request, payload);
            let reply = match conn.envelope() {
                Some(envelope) => envelope.wrap(reply),
                None => reply,
            };
            if let Err(error) = self.try_send_stanza(now, reply) {
                self.answer_unwritable(now, conn, error);
            }
            return;
        }
        let head = Head::of(request);
        let mut attributes = head.reply(kind.reply_type(&head));
        if self.config.set_from
            && !attributes[0]
                .1
                .is_some_and(|from| under_domain(from, &self.domain))
        {
            attributes[0].1 = Some(&self.domain);
        }
        let generated;
        if attributes[1].1.is_none() && self.config.auto_generate_id {
            generated = ids::random_uuid(&mut self.rng);
            attributes[1].1 = Some(&generated);
        }
        match self.output.stanza_of(request.name(), &attributes, &payload) {
            Ok(()) => self.wrote(now),
            Err(error) => self.answer_unwritable(now, conn, error),
        }
    }

    /// The answer to `conn`'s request could not be written (a controller put a character
    /// XML cannot carry in it, say): the requester gets `internal-server-error` rather than
    /// silence, without the internal detail, which is logged.
    fn answer_unwritable(&mut self, now: Instant, conn: &Conn, error: WriteError) {
        log::error!(target: "exampple", "answered {} {:?} with internal-server-error: its answer cannot be written as XML ({error})", conn.stanza().name(), conn.id().unwrap_or(""));
        if conn.state().unwritable.swap(true, Ordering::Relaxed) {
            return;
        }
        let reply = StanzaError::new(Condition::InternalServerError);
        self.answer_error(now, conn.stanza(), conn.envelope(), &reply);
    }

    /// Sends `error` as the answer to `stanza` (wrapped in `envelope`), if it may be answered.
    pub(super) fn answer_error(
        &mut self,
        now: Instant,
        stanza: &Element,
        envelope: Option<&Envelope>,
        error: &StanzaError,
    ) {
        if !stanza::may_answer_with_error(stanza) {
            return;
        }
        let reply = stanza::error_reply(stanza, error);
        let reply = match envelope {
            Some(e) => e.wrap(reply),
            None => reply,
        };
        self.send_stanza(now, reply);
    }

    /// Writes the stanzas kept while disconnected.
    pub(super) fn flush_queue(&mut self, now: Instant) {
        if self.queue.is_empty() {
            return;
        }
        while let Some(stanza) = self.queue.pop_front() {
            // Checked when queued.
            let _ = self.write(now, &stanza, true);
        }
        self.outbox.backlog.store(0, Ordering::Relaxed);
    }

    /// The end of an input: what the core sent while handling it goes to this connection if
    /// it goes on, after the stanzas kept while disconnected if the input completed the
    /// handshake; else all of it waits for the next connection.
    #[cold]
    pub(super) fn release_held(&mut self, now: Instant) {
        if self.writes_stanzas() {
            self.flush_queue(now);
        } else if !self.held.is_empty() {
            log::debug!(target: "exampple", "the input ended the connection: {} stanzas the core sent meanwhile wait for the next one", self.held.len());
        }
        let mut held = std::mem::take(&mut self.held);
        for stanza in held.drain(..) {
            // An unwritable one has been logged; the core's own stanzas answer no request.
            let _ = self.deliver(now, stanza);
        }
        self.held = held;
    }

    /// Keeps the stanzas a failed write left `unsent` for the next connection, before those
    /// sent later, up to `max_queue` (see [`Component::handle_write_failed`]).
    #[cold]
    pub(super) fn requeue(&mut self, unsent: Vec<Element>) {
        if unsent.is_empty() {
            return;
        }
        if self.is_stopped() {
            log::warn!(target: "exampple", "dropped {} stanzas a failed write left unwritten: the component stopped", unsent.len());
            return;
        }
        log::info!(target: "exampple", "{} stanzas a failed write left unwritten wait for the next connection", unsent.len());
        for stanza in unsent.into_iter().rev() {
            self.queue.push_front(stanza);
        }
        if self.queue.len() > self.config.max_queue {
            let dropped = self.queue.len() - self.config.max_queue;
            self.queue.truncate(self.config.max_queue);
            log::error!(target: "exampple", "dropped the {dropped} latest stanzas: the queue of {} stanzas kept while disconnected is full", self.config.max_queue);
        }
        self.outbox
            .backlog
            .store(self.queue.len(), Ordering::Relaxed);
    }
}

/// Whether `stanza` is the answer to the iq `request` (a result or an error with its id).
fn answers(request: &Element, stanza: &Element) -> bool {
    request.name() == "iq"
        && matches!(request.attr("type"), Some("get" | "set"))
        && is_iq_answer(stanza)
        && stanza.attr("id") == request.attr("id")
}

/// Whether `stanza` is an iq result or error.
fn is_iq_answer(stanza: &Element) -> bool {
    stanza.name() == "iq" && matches!(stanza.attr("type"), Some("result" | "error"))
}

/// Moves an element (and its descendants) from namespace `from` to `to`.
fn renamespace(element: Element, from: &str, to: &str) -> Element {
    let mut out = Element::bare(
        element.name(),
        if element.ns() == from {
            to.to_string()
        } else {
            element.ns()
        },
    );
    for ((attr_ns, name), value) in element.attrs().iter() {
        out.attrs_mut()
            .insert(attr_ns.clone(), name.clone(), value.clone());
    }
    for node in element.nodes() {
        match node {
            minidom::Node::Element(child) => {
                out.append_child(renamespace(child.clone(), from, to));
            }
            minidom::Node::Text(text) => out.append_text_node(text.clone()),
        }
    }
    out
}

/// Whether `from` is an address under the component's `domain` (the domain itself, or one of
/// its local parts or resources): `set_from` leaves such a `from` as it is.
fn under_domain(from: &str, domain: &str) -> bool {
    crate::jid::domain_of(from).is_some_and(|d| d.eq_ignore_ascii_case(domain))
}
