//! The iqs the component sent for a controller or a sender (`Conn::call`, `Sender::call`),
//! waiting for their answers: matched by id and sender, failed when their time is up or
//! the component stops.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use minidom::Element;

use super::ids;
use crate::conn::SendError;
use crate::conn::call::{CallError, CallSlot};
use crate::conn::outbox::{Outbox, OutboxItem};
use crate::stanza::{Condition, StanzaError};
use crate::xml;

/// Hands a call to `instance`, the outbox of this instance's private domain
/// (`Component::route_calls_through`), from that domain: its core sends it and takes the
/// answer. The caller learns at once when that connection cannot take it.
pub(super) fn forward(instance: &Outbox, mut iq: Element, timeout: Duration, slot: Arc<CallSlot>) {
    if let Err(error) = instance.check_send() {
        slot.fulfil(Err(CallError::Send(error)));
        return;
    }
    xml::set_attr(&mut iq, "from", &*instance.domain);
    instance.push(OutboxItem::Call {
        iq,
        timeout,
        slot,
        pinned: false,
    });
}

struct PendingCall {
    to: Option<String>,
    slot: Arc<CallSlot>,
    deadline: Instant,
}

/// The calls waiting for an answer, by id and by deadline.
pub(super) struct PendingCalls {
    by_id: HashMap<String, PendingCall>,
    by_deadline: BTreeSet<(Instant, String)>,
}

impl PendingCalls {
    pub(super) fn new() -> Self {
        PendingCalls {
            by_id: HashMap::new(),
            by_deadline: BTreeSet::new(),
        }
    }

    /// Waits for the answer to `iq` until `deadline`, giving the iq an id if it has none. A
    /// call that waited under the same id fails (as not sent).
    pub(super) fn start(
        &mut self,
        iq: &mut Element,
        deadline: Instant,
        slot: Arc<CallSlot>,
        rng: &mut fastrand::Rng,
    ) {
        let id = match iq.attr("id") {
            Some(id) if !id.is_empty() => id.to_string(),
            _ => {
                let id = ids::random_uuid(rng);
                xml::set_attr(iq, "id", id.as_str());
                id
            }
        };
        let to = iq.attr("to").map(str::to_string);
        if let Some(old) = self
            .by_id
            .insert(id.clone(), PendingCall { to, slot, deadline })
        {
            self.by_deadline.remove(&(old.deadline, id.clone()));
            old.slot.fulfil(Err(CallError::Send(SendError::Closed)));
        }
        self.by_deadline.insert((deadline, id));
    }

    /// The earliest deadline of a call.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.by_deadline.first().map(|(t, _)| *t)
    }

    /// Fails the calls whose deadline is `now` or earlier.
    pub(super) fn expire(&mut self, now: Instant) {
        while let Some((deadline, id)) = self.by_deadline.first().cloned() {
            if deadline > now {
                break;
            }
            self.by_deadline.pop_first();
            if let Some(call) = self.by_id.remove(&id) {
                call.slot.fulfil(Err(CallError::Timeout));
            }
        }
    }

    /// Whether `stanza` (an iq result or error) answers a call: it has the call's id, and
    /// comes from whom the iq went to (a bare domain may answer for itself; no `to` means
    /// the server).
    pub(super) fn answers(&self, stanza: &Element) -> bool {
        if self.by_id.is_empty() {
            return false;
        }
        let Some(call) = stanza.attr("id").and_then(|id| self.by_id.get(id)) else {
            return false;
        };
        match (&call.to, stanza.attr("from")) {
            (None, _) => true,
            (Some(to), Some(from)) => to.eq_ignore_ascii_case(from),
            (Some(_), None) => false,
        }
    }

    /// Hands `stanza` to the call it [answers](Self::answers).
    pub(super) fn complete(&mut self, stanza: Element) {
        let Some(id) = stanza.attr("id") else {
            return;
        };
        let Some(call) = self.by_id.remove(id) else {
            return;
        };
        self.by_deadline.remove(&(call.deadline, id.to_string()));
        let result = if stanza.attr("type") == Some("error") {
            let error = stanza
                .get_child("error", stanza.ns().as_str())
                .and_then(StanzaError::from_element)
                .unwrap_or_else(|| StanzaError::new(Condition::UndefinedCondition));
            Err(CallError::Error(Box::new(error), Box::new(stanza)))
        } else {
            Ok(stanza)
        };
        call.slot.fulfil(result);
    }

    /// Fails every call: the component stopped.
    pub(super) fn fail_all(&mut self) {
        for (_, call) in self.by_id.drain() {
            call.slot.fulfil(Err(CallError::Closed));
        }
        self.by_deadline.clear();
    }
}
