//! An executor on one thread for async controllers on plain threads, so that an async
//! controller waiting on a timer or an iq answer holds no worker, and is dropped
//! (cancelled) when its request times out.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::task::{Context, Poll, Wake, Waker};

use crate::runtime::Task;

type Job = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

enum Message {
    Spawn(u64, Job, Arc<AtomicBool>),
    Wake(u64),
    Cancel(u64),
    Stop,
}

struct TaskWaker {
    id: u64,
    messages: mpsc::Sender<Message>,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        let _ = self.messages.send(Message::Wake(self.id));
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let _ = self.messages.send(Message::Wake(self.id));
    }
}

/// Runs futures on a thread of its own until dropped.
pub struct Executor {
    messages: mpsc::Sender<Message>,
    next: std::sync::atomic::AtomicU64,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Executor {
    /// Starts the executor's thread.
    pub fn start() -> std::io::Result<Executor> {
        let (messages, inbox) = mpsc::channel();
        let own = messages.clone();
        let thread = std::thread::Builder::new()
            .name("exampple-async".into())
            .spawn(move || run(inbox, own))?;
        Ok(Executor {
            messages,
            next: std::sync::atomic::AtomicU64::new(0),
            thread: Some(thread),
        })
    }

    /// Polls `future` to its end on the executor's thread; dropping the task cancels it.
    pub fn spawn(&self, future: impl Future<Output = ()> + Send + 'static) -> ThreadTask {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let done = Arc::new(AtomicBool::new(false));
        let _ = self
            .messages
            .send(Message::Spawn(id, Box::pin(future), done.clone()));
        ThreadTask {
            id,
            done,
            messages: self.messages.clone(),
        }
    }
}

impl Drop for Executor {
    fn drop(&mut self) {
        // Unfinished tasks are dropped with the thread (wakers that outlive it send into a
        // closed channel, harmlessly).
        let _ = self.messages.send(Message::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor").finish_non_exhaustive()
    }
}

/// A future spawned on an [`Executor`]; dropping it cancels the future.
#[derive(Debug)]
pub struct ThreadTask {
    id: u64,
    done: Arc<AtomicBool>,
    messages: mpsc::Sender<Message>,
}

impl Task for ThreadTask {
    fn is_finished(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }
}

impl Drop for ThreadTask {
    fn drop(&mut self) {
        if !self.is_finished() {
            let _ = self.messages.send(Message::Cancel(self.id));
        }
    }
}

fn run(inbox: mpsc::Receiver<Message>, messages: mpsc::Sender<Message>) {
    let mut tasks: HashMap<u64, (Job, Waker, Arc<AtomicBool>)> = HashMap::new();
    while let Ok(message) = inbox.recv() {
        let id = match message {
            Message::Spawn(id, job, done) => {
                let waker = Waker::from(Arc::new(TaskWaker {
                    id,
                    messages: messages.clone(),
                }));
                tasks.insert(id, (job, waker, done));
                id
            }
            Message::Wake(id) => id,
            Message::Cancel(id) => {
                tasks.remove(&id);
                continue;
            }
            Message::Stop => return,
        };
        let Some((job, waker, done)) = tasks.get_mut(&id) else {
            continue;
        };
        let mut cx = Context::from_waker(waker);
        if let Poll::Ready(()) = job.as_mut().poll(&mut cx) {
            done.store(true, Ordering::Release);
            tasks.remove(&id);
        }
    }
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Message")
    }
}
