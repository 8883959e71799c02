//! What the server sends: its input read item by item, its stanzas routed (the decision is
//! [`routing`]'s) and acted on, and the requests they start, until they finish or time out.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use minidom::Element;

use super::Component;
use super::dispatch::{Dispatch, InFlight};
use super::event::Event;
use super::observer::{LifecycleEvent, RequestOutcome};
use super::routing::{self, Context, Dropped, Route, Routed};
use crate::conn::{Conn, ConnParts, RequestId};
use crate::controller::Outcome;
use crate::delegation::{self, Envelope};
use crate::parser::Tokens;
use crate::privilege::Permissions;
use crate::stanza::{Condition, Head, IqType, StanzaError, StanzaKind, StanzaType};
use crate::xml;

impl Component {
    /// Reads the items `tokens` make, until one ends the connection (see
    /// [`Component::handle_tokens`]).
    pub(super) fn read(&mut self, now: Instant, tokens: &mut Tokens) {
        self.heard(now);
        let mut items = std::mem::take(&mut self.items);
        let result = self.builder.build(tokens, &mut items);
        self.handling_input = true;
        let mut alive = true;
        for item in items.drain(..) {
            if alive {
                alive = self.on_item(now, item);
            }
        }
        self.items = items;
        if alive && let Err(error) = result {
            self.refuse_stream(now, error.condition(), error.to_string());
        }
        self.handling_input = false;
        if !(self.held.is_empty() && self.queue.is_empty()) {
            self.release_held(now);
        }
        // A drain that reconnected with nothing left in flight closes after the queue.
        self.close_if_drained(now);
    }

    /// A stanza of `kind` from the server (in the component namespace).
    pub(super) fn on_stanza(&mut self, now: Instant, kind: StanzaKind, mut stanza: Element) {
        self.tally.received += 1;
        if log::log_enabled!(target: "exampple::wire", log::Level::Trace) {
            log::trace!(target: "exampple::wire", "received packet: {}", xml::to_string(&stanza));
        }
        if self.config.trimmed {
            xml::trim(&mut stanza);
        }
        if kind == StanzaKind::Message
            && let Some(namespaces) = delegation::advertised_namespaces(&stanza)
        {
            self.on_delegation(namespaces);
            return;
        }
        if kind == StanzaKind::Message
            && let Some(permissions) = Permissions::from_advertisement(&stanza)
        {
            self.on_privilege(permissions);
            return;
        }
        let (stanza, envelope) = match self.table.envelopes().is_empty() {
            true => (stanza, None),
            false => match Envelope::unwrap(&stanza, self.table.envelopes()) {
                Some((envelope, inner)) => (inner, Some(envelope)),
                None => (stanza, None),
            },
        };
        let Some(kind) = StanzaKind::from_name(stanza.name()) else {
            return;
        };
        let cx = Context {
            table: &self.table,
            domain: &self.domain,
            calls: &self.calls,
            jids: &mut self.valid_jids,
        };
        let route = routing::route(cx, kind, &stanza, envelope.as_ref());
        self.act(now, kind, route, stanza, envelope);
    }

    /// An iq result or error that answers no call of ours: with several instances on one
    /// domain, most likely the answer to another instance's call (whose caller times out).
    #[cold]
    fn on_stray_result(&mut self, stanza: &Element) {
        self.stray_results += 1;
        let head = Head::of(stanza);
        log::warn!(target: "exampple", "an iq {} (id {:?}) from {:?} answers no call of this instance (stray result #{}): another instance on this domain may be waiting for it; see Config::instance_domain", head.kind.unwrap_or(""), head.id.unwrap_or(""), head.from.unwrap_or(""), self.stray_results);
    }

    /// The server delegates `namespaces` to the component (XEP-0355).
    fn on_delegation(&mut self, namespaces: Vec<String>) {
        log::info!(target: "exampple", "the server delegates {namespaces:?} to this component");
        for n in &namespaces {
            if !self.delegated.contains(n) {
                self.delegated.push(n.clone());
            }
        }
        self.observe_lifecycle(|| LifecycleEvent::Delegated {
            namespaces: namespaces.clone(),
        });
        self.events.push_back(Event::Delegated { namespaces });
    }

    /// A server says what it grants the component (XEP-0356), for this connection.
    fn on_privilege(&mut self, permissions: Permissions) {
        log::info!(target: "exampple", "privileges granted by {permissions}");
        self.outbox.grants.grant(permissions.clone());
        self.observe_lifecycle(|| LifecycleEvent::Privileged {
            permissions: permissions.clone(),
        });
        self.events.push_back(Event::Privileged { permissions });
    }

    /// Does what routing decided for `stanza`.
    fn act(
        &mut self,
        now: Instant,
        kind: StanzaKind,
        route: Route,
        stanza: Element,
        envelope: Option<Envelope>,
    ) {
        match route {
            Route::Dispatch(routed) => self.dispatch(now, kind, routed, stanza, envelope),
            Route::Answer(reply) => self.send_stanza(now, reply),
            Route::Refuse(error) => self.answer_error(now, &stanza, envelope.as_ref(), &error),
            Route::UnknownPresenceType(error) => {
                let head = Head::of(&stanza);
                log::debug!(target: "exampple", "refused a presence of unknown type {:?} from {:?} with bad-request", head.kind.unwrap_or(""), head.from.unwrap_or(""));
                self.answer_error(now, &stanza, envelope.as_ref(), &error);
            }
            Route::CallAnswer => self.calls.complete(stanza),
            Route::StrayResult(fallback) => {
                self.on_stray_result(&stanza);
                if let Some(routed) = fallback {
                    self.dispatch(now, kind, routed, stanza, envelope);
                }
            }
            Route::Drop(Dropped::MalformedJid(attr)) => {
                log::debug!(target: "exampple", "dropped a stanza with a malformed `{attr}`");
            }
            Route::Drop(Dropped::Unrouted {
                kind,
                stanza_type,
                xmlns,
            }) => {
                log::debug!(target: "exampple", "dropped an unrouted {kind} of type {stanza_type} ({xmlns})");
            }
            Route::Drop(Dropped::KeepaliveAnswer | Dropped::UntypedIq) => {}
        }
    }

    /// Hands a routed stanza to its controller, unless too many requests are in flight.
    fn dispatch(
        &mut self,
        now: Instant,
        kind: StanzaKind,
        routed: Routed,
        stanza: Element,
        envelope: Option<Envelope>,
    ) {
        let Routed {
            controller,
            stanza_type,
            xmlns,
        } = routed;
        if self.requests.len() >= self.config.max_in_flight {
            self.refuse_busy(now, stanza_type, &stanza, envelope.as_ref());
            return;
        }
        let request = RequestId(self.next_request);
        self.next_request += 1;
        let conn = Conn::new(ConnParts {
            request,
            outbox: self.outbox.clone(),
            domain: self.domain.clone(),
            kind,
            stanza_type,
            xmlns,
            stanza,
            envelope,
            received_at: now,
        });
        let deadline = now + self.config.stanza_timeout;
        let controller_name: Arc<str> = controller.name_arc();
        self.requests.insert(
            request,
            deadline,
            InFlight {
                conn: conn.clone(),
                controller: controller_name,
                started: now,
            },
        );
        self.events.push_back(Event::Dispatch(Dispatch {
            request,
            controller,
            conn,
            outbox: self.outbox.clone(),
        }));
    }

    /// Too many requests are in flight: a request is refused, anything else dropped.
    #[cold]
    fn refuse_busy(
        &mut self,
        now: Instant,
        stanza_type: StanzaType,
        stanza: &Element,
        envelope: Option<&Envelope>,
    ) {
        log::warn!(target: "exampple", "too many requests in flight ({}): refusing one", self.requests.len());
        if matches!(stanza_type, StanzaType::Iq(IqType::Get | IqType::Set)) {
            let error = StanzaError::new(Condition::ResourceConstraint)
                .with_text("en", "too many requests");
            self.answer_error(now, stanza, envelope, &error);
        }
    }

    /// A controller ended: its error, if any, answers the request, and the request is
    /// reported.
    pub(super) fn finish_request(&mut self, now: Instant, request: RequestId, outcome: Outcome) {
        let Some(flight) = self.requests.remove(&request) else {
            // Already timed out (and answered).
            if let Outcome::Panic(message) = &outcome {
                log::error!(target: "exampple", "request {request} panicked after its timeout: {message}");
            }
            return;
        };
        self.drain_request_finished();
        let duration = now.saturating_duration_since(flight.started);
        let conn = &flight.conn;
        let error = outcome.stanza_error();
        let detail = match &outcome {
            Outcome::Success => None,
            Outcome::Failure(e) => Some(e.to_string()),
            Outcome::Panic(m) => Some(format!("panic: {m}")),
        };
        // The requester already has internal-server-error for an answer that could not be
        // written: one error answer only, and the request failed.
        if conn.state().unwritable.load(Ordering::Relaxed) {
            let detail = detail.map_or_else(
                || "its answer cannot be written as XML".to_string(),
                |d| format!("its answer cannot be written as XML; then {d}"),
            );
            flight.report(
                self.observer.as_deref(),
                RequestOutcome::Failure,
                duration,
                Some(&detail),
            );
            return;
        }
        if let Some(error) = &error {
            self.answer_error(now, conn.stanza(), conn.envelope(), error);
        } else if matches!(
            conn.stanza_type(),
            StanzaType::Iq(IqType::Get | IqType::Set)
        ) && conn.state().sent.load(Ordering::Relaxed) == 0
        {
            log::warn!(target: "exampple", "{} returned without answering the iq {:?}", flight.controller, conn.id().unwrap_or(""));
        }
        let outcome = if error.is_some() {
            RequestOutcome::Failure
        } else {
            RequestOutcome::Success
        };
        flight.report(
            self.observer.as_deref(),
            outcome,
            duration,
            detail.as_deref(),
        );
    }

    /// Answers the requests whose time is up with `remote-server-timeout`, and tells the
    /// runtime to abandon their controllers.
    pub(super) fn expire_requests(&mut self, now: Instant) {
        while let Some((request, flight)) = self.requests.pop_expired(now) {
            let error = StanzaError::new(Condition::RemoteServerTimeout)
                .with_text("en", "the request took too long to be processed");
            let outcome = (RequestOutcome::Timeout, self.config.stanza_timeout, None);
            self.abandon(now, request, flight, &error, outcome);
            self.drain_request_finished();
        }
    }

    /// Gives up on a request (taken out of the table): `error` answers it, its late answers
    /// are dropped, the runtime is told to cancel its controller, and it is reported with
    /// `outcome` (how it ended, after how long, and why).
    pub(super) fn abandon(
        &mut self,
        now: Instant,
        request: RequestId,
        flight: InFlight,
        error: &StanzaError,
        (outcome, duration, detail): (RequestOutcome, Duration, Option<&str>),
    ) {
        flight.conn.state().expired.store(true, Ordering::Relaxed);
        self.answer_error(now, flight.conn.stanza(), flight.conn.envelope(), error);
        self.events.push_back(Event::Cancel(request));
        flight.report(self.observer.as_deref(), outcome, duration, detail);
    }
}
