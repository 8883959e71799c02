//! The requests being handled: found by id, and expired in the order they fall due.
//!
//! Every request gets the same `stanza_timeout`, so with time going forward requests fall
//! due in the order they were routed: the deadlines are a queue, not a sorted set. A request
//! that finishes stays in the queue until it reaches the front, where it is skipped; the
//! queue is compacted when such entries outnumber the live ones, so its length stays within
//! twice the requests in flight (plus a little).

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::time::Instant;

use crate::conn::RequestId;

/// Requests in flight, by id and by deadline.
pub(crate) struct InFlightTable<T> {
    by_id: HashMap<RequestId, T, BuildHasherDefault<IdHasher>>,
    /// In routing order, which is deadline order (see the module documentation).
    by_deadline: VecDeque<(Instant, RequestId)>,
}

impl<T> InFlightTable<T> {
    pub(crate) fn new() -> Self {
        InFlightTable {
            by_id: HashMap::default(),
            by_deadline: VecDeque::new(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.by_id.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    pub(crate) fn get(&self, id: &RequestId) -> Option<&T> {
        self.by_id.get(id)
    }

    pub(crate) fn insert(&mut self, id: RequestId, deadline: Instant, value: T) {
        self.by_id.insert(id, value);
        match self.by_deadline.back() {
            Some(&(last, _)) if deadline < last => {
                // Only if time went backwards: keep the queue sorted all the same.
                let at = self.by_deadline.partition_point(|&(d, _)| d <= deadline);
                self.by_deadline.insert(at, (deadline, id));
            }
            _ => self.by_deadline.push_back((deadline, id)),
        }
    }

    /// Removes a finished request.
    pub(crate) fn remove(&mut self, id: &RequestId) -> Option<T> {
        let value = self.by_id.remove(id)?;
        self.skip_finished();
        if self.by_deadline.len() > 2 * self.by_id.len() + 64 {
            let live = &self.by_id;
            self.by_deadline.retain(|(_, id)| live.contains_key(id));
        }
        Some(value)
    }

    /// The earliest deadline of a request still in flight.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.by_deadline.front().map(|&(deadline, _)| deadline)
    }

    /// A request whose deadline is `now` or earlier, removed.
    pub(crate) fn pop_expired(&mut self, now: Instant) -> Option<(RequestId, T)> {
        let &(deadline, id) = self.by_deadline.front()?;
        if deadline > now {
            return None;
        }
        self.by_deadline.pop_front();
        let value = self.by_id.remove(&id);
        self.skip_finished();
        // The front is always live (skip_finished), so this is the request it named.
        value.map(|value| (id, value))
    }

    /// Any request, removed (to abandon them all, in deadline order).
    pub(crate) fn pop_any(&mut self) -> Option<(RequestId, T)> {
        while let Some((_, id)) = self.by_deadline.pop_front() {
            if let Some(value) = self.by_id.remove(&id) {
                return Some((id, value));
            }
        }
        None
    }

    /// Drops finished requests from the front, so the front deadline is a live one.
    fn skip_finished(&mut self) {
        while let Some((_, id)) = self.by_deadline.front() {
            if self.by_id.contains_key(id) {
                break;
            }
            self.by_deadline.pop_front();
        }
    }
}

/// Hashes our own sequential request ids: a multiply spreads them over the table. (They do
/// not come from the peer, so there is nothing to defend against with SipHash.)
#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(byte)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn expires_in_deadline_order_and_skips_finished() {
        let t0 = Instant::now();
        let mut table = InFlightTable::new();
        for i in 0..10u64 {
            table.insert(RequestId(i), t0 + Duration::from_secs(i), i);
        }
        for i in [0, 1, 2, 5, 7] {
            assert_eq!(table.remove(&RequestId(i)), Some(i));
        }
        assert_eq!(table.next_deadline(), Some(t0 + Duration::from_secs(3)));
        assert!(table.pop_expired(t0 + Duration::from_secs(2)).is_none());
        let expired: Vec<u64> =
            std::iter::from_fn(|| table.pop_expired(t0 + Duration::from_secs(8)))
                .map(|(_, v)| v)
                .collect();
        assert_eq!(expired, [3, 4, 6, 8]);
        assert_eq!(table.len(), 1);
        assert_eq!(table.next_deadline(), Some(t0 + Duration::from_secs(9)));
    }

    #[test]
    fn time_going_backwards_keeps_the_order() {
        let t0 = Instant::now() + Duration::from_secs(100);
        let mut table = InFlightTable::new();
        table.insert(RequestId(1), t0, 1);
        table.insert(RequestId(2), t0 - Duration::from_secs(50), 2);
        assert_eq!(table.pop_expired(t0).map(|(_, v)| v), Some(2));
        assert_eq!(table.pop_expired(t0).map(|(_, v)| v), Some(1));
    }

    #[test]
    fn the_queue_stays_within_twice_the_requests_in_flight() {
        let t0 = Instant::now();
        let mut table = InFlightTable::new();
        // One request stays in flight while a million finish out of order behind it.
        table.insert(RequestId(0), t0, 0);
        for i in 1..1_000_000u64 {
            table.insert(RequestId(i), t0 + Duration::from_nanos(i), i);
            if i >= 2 {
                table.remove(&RequestId(i - 1));
            }
            assert!(table.by_deadline.len() <= 2 * table.len() + 65);
        }
        assert_eq!(table.len(), 2);
    }
}
