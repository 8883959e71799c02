//! The pool of threads that runs sync controllers.
//!
//! Most controllers answer in microseconds, and waking a sleeping thread costs more than
//! that: a worker is woken only when none is awake to take the next dispatch. An awake worker polls the queue briefly before it sleeps, so
//! under steady load nobody sleeps and nobody is woken.
//!
//! A controller that blocks holds its worker, so the pool must not leave the rest of the
//! queue behind it: the core watches the pool ([`WorkerPool::watch`]) and, when work waits
//! and no dispatch has been taken for [`STALL`], wakes another worker, and so on, up to the
//! pool's size. Blocked controllers thus hold up the others by at most about [`STALL`].

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use exampple_core::component::Dispatch;

/// How long work may wait while the awake workers take nothing, before another worker is
/// woken.
pub(crate) const STALL: Duration = Duration::from_millis(1);

/// How long an awake worker polls the queue before it sleeps.
const SPIN: Duration = Duration::from_micros(50);

/// A fixed number of worker threads taking dispatches from one queue.
pub struct WorkerPool {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
    /// The progress seen at the last [`WorkerPool::watch`], and since when.
    watched: Option<(u64, Instant)>,
}

struct Shared {
    state: Mutex<State>,
    ready: Condvar,
    /// The queue's length, read without the lock by polling workers.
    queued: AtomicUsize,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Dispatch>,
    /// Workers asleep on `ready`.
    asleep: usize,
    /// Dispatches taken so far.
    taken: u64,
    closed: bool,
}

impl WorkerPool {
    /// Starts `workers` threads (at least one; fewer if the system refuses threads).
    pub fn start(workers: usize) -> std::io::Result<WorkerPool> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            ready: Condvar::new(),
            queued: AtomicUsize::new(0),
        });
        let mut threads = Vec::new();
        for i in 0..workers.max(1) {
            let worker = shared.clone();
            match std::thread::Builder::new()
                .name(format!("exampple-worker-{i}"))
                .spawn(move || worker.work())
            {
                Ok(thread) => threads.push(thread),
                Err(e) if threads.is_empty() => return Err(e),
                Err(e) => {
                    log::warn!(target: "exampple", "started {} workers of {workers}: {e}", threads.len());
                    break;
                }
            }
        }
        Ok(WorkerPool {
            shared,
            threads,
            watched: None,
        })
    }

    /// Queues a sync controller, waking a worker if none is awake.
    pub fn give(&self, dispatch: Dispatch) {
        let wake = {
            let mut state = self.shared.lock();
            state.queue.push_back(dispatch);
            self.shared
                .queued
                .store(state.queue.len(), Ordering::Release);
            state.asleep == self.threads.len()
        };
        if wake {
            self.shared.ready.notify_one();
        }
    }

    /// How many dispatches wait for a worker.
    pub fn backlog(&self) -> usize {
        self.shared.queued.load(Ordering::Acquire)
    }

    /// Wakes another worker if work has waited a millisecond (`STALL`) without the pool taking any;
    /// returns when to look again (`None`: nothing waits).
    pub fn watch(&mut self, now: Instant) -> Option<Instant> {
        if self.shared.queued.load(Ordering::Acquire) == 0 {
            // Nothing waits (the usual case): no lock.
            self.watched = None;
            return None;
        }
        let (waiting, taken, asleep) = {
            let state = self.shared.lock();
            (!state.queue.is_empty(), state.taken, state.asleep)
        };
        if !waiting {
            self.watched = None;
            return None;
        }
        match self.watched {
            Some((seen, since)) if seen == taken => {
                if now < since + STALL {
                    return Some(since + STALL);
                }
                if asleep > 0 {
                    log::debug!(target: "exampple", "the awake workers are blocked: waking another");
                    self.shared.ready.notify_one();
                }
            }
            _ => {}
        }
        self.watched = Some((taken, now));
        Some(now + STALL)
    }
}

impl Drop for WorkerPool {
    /// Runs what is queued, then stops the workers and waits for them.
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.ready.notify_all();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

impl std::fmt::Debug for WorkerPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerPool")
            .field("threads", &self.threads.len())
            .field("backlog", &self.backlog())
            .finish()
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn work(&self) {
        while let Some(dispatch) = self.take() {
            // A sync controller ends here; an async one given to the pool is waited for.
            if let Some(rest) = dispatch.run() {
                crate::block::block_on(rest);
            }
        }
    }

    /// The next dispatch; `None` once closed and empty (queued work is still run).
    fn take(&self) -> Option<Dispatch> {
        let mut state = self.lock();
        loop {
            if let Some(dispatch) = state.queue.pop_front() {
                state.taken += 1;
                self.queued.store(state.queue.len(), Ordering::Release);
                return Some(dispatch);
            }
            if state.closed {
                return None;
            }
            drop(state);
            if self.poll_briefly() {
                state = self.lock();
                continue;
            }
            state = self.lock();
            if !state.queue.is_empty() || state.closed {
                continue;
            }
            state.asleep += 1;
            state = self.ready.wait(state).unwrap_or_else(|p| p.into_inner());
            state.asleep -= 1;
        }
    }

    /// Whether work came within [`SPIN`]; yields meanwhile, so the core and the reader
    /// keep the CPU when they share it.
    fn poll_briefly(&self) -> bool {
        let until = Instant::now() + SPIN;
        while Instant::now() < until {
            if self.queued.load(Ordering::Acquire) > 0 {
                return true;
            }
            std::thread::yield_now();
        }
        false
    }
}
