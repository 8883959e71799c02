//! A small executor on one thread for async controllers on the blocking runtime, so that an
//! async controller waiting on a timer or an iq answer holds no worker, and is dropped
//! (cancelled) when its request times out.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::mpsc;
use std::task::{Context, Poll, Wake, Waker};

use exampple_core::RequestId;

type Task = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

enum Message {
    Spawn(RequestId, Task),
    Wake(u64),
    Cancel(RequestId),
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

/// Runs futures on its own thread until dropped.
pub(crate) struct Executor {
    messages: mpsc::Sender<Message>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Executor {
    pub(crate) fn start() -> std::io::Result<Executor> {
        let (messages, inbox) = mpsc::channel();
        let own = messages.clone();
        let thread = std::thread::Builder::new()
            .name("exampple-async".into())
            .spawn(move || run(inbox, own))?;
        Ok(Executor {
            messages,
            thread: Some(thread),
        })
    }

    pub(crate) fn spawn(&self, request: RequestId, task: Task) {
        let _ = self.messages.send(Message::Spawn(request, task));
    }

    pub(crate) fn cancel(&self, request: RequestId) {
        let _ = self.messages.send(Message::Cancel(request));
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

fn run(inbox: mpsc::Receiver<Message>, messages: mpsc::Sender<Message>) {
    let mut tasks: HashMap<u64, (RequestId, Task, Waker)> = HashMap::new();
    let mut by_request: HashMap<RequestId, u64> = HashMap::new();
    let mut next = 0u64;
    while let Ok(message) = inbox.recv() {
        let id = match message {
            Message::Spawn(request, task) => {
                next += 1;
                let waker = Waker::from(Arc::new(TaskWaker {
                    id: next,
                    messages: messages.clone(),
                }));
                tasks.insert(next, (request, task, waker));
                by_request.insert(request, next);
                next
            }
            Message::Wake(id) => id,
            Message::Cancel(request) => {
                if let Some(id) = by_request.remove(&request) {
                    tasks.remove(&id);
                }
                continue;
            }
            Message::Stop => return,
        };
        let Some((request, task, waker)) = tasks.get_mut(&id) else {
            continue;
        };
        let mut cx = Context::from_waker(waker);
        if let Poll::Ready(()) = task.as_mut().poll(&mut cx) {
            let request = *request;
            tasks.remove(&id);
            by_request.remove(&request);
        }
    }
}
