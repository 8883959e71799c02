//! The component's timers, in one table: each is an instant, or nothing.
//!
//! Which of them count depends on the connection's state (`State::timers`): a timer of
//! another state is never looked at, so leaving a state needs no clean-up, and a state sets
//! its timers as it is entered. The deadlines of requests and of calls, one per request or
//! call, keep tables of their own; `Component::poll_timeout` takes the earliest of the three.

use std::time::Instant;

/// One of the component's timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Timer {
    /// Connect (the auto-connect delay or the reconnect backoff is over).
    Reconnect,
    /// The stream header and the handshake had until then.
    Opening,
    /// Ping the server: nothing came from it for a keepalive interval.
    Ping,
    /// The server had until then to answer the ping.
    KeepaliveAnswer,
    /// Write a whitespace keepalive: nothing went to the server for a keepalive interval.
    Keepalive,
    /// Stop waiting for running controllers, and close.
    Drain,
    /// Stop waiting for the server to close its stream.
    Close,
}

impl Timer {
    /// How many there are: `Close` is the last.
    const COUNT: usize = Timer::Close as usize + 1;
}

/// When each timer fires, if it is set.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct TimerTable {
    at: [Option<Instant>; Timer::COUNT],
}

impl TimerTable {
    pub(super) fn set(&mut self, timer: Timer, at: Instant) {
        self.at[timer as usize] = Some(at);
    }

    pub(super) fn stop(&mut self, timer: Timer) {
        self.at[timer as usize] = None;
    }

    /// Whether `timer` is set to fire at `now` or earlier.
    pub(super) fn is_expired(&self, timer: Timer, now: Instant) -> bool {
        self.at[timer as usize].is_some_and(|at| at <= now)
    }

    /// The earliest of `timers` (those that count).
    pub(super) fn next_timeout(&self, timers: &[Timer]) -> Option<Instant> {
        timers.iter().filter_map(|&t| self.at[t as usize]).min()
    }
}
