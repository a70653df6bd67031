//! How a query reaches every worker's loop and comes back, within a bounded time.
//!
//! # Ground rules
//!
//! * Each worker has a bounded queue of questions ([`QUEUE`]); its loop answers one
//!   between two batches of records (a branch of its `select!` before the records one),
//!   reading its own partitions only, on its own thread. So a busy worker delays its own
//!   answer by at most one batch, never `/metrics` or the other workers.
//! * [`Querier::ask`] puts the question to every worker at once and waits at most
//!   [`ANSWER_TIMEOUT`] for all of them. A worker whose queue is full, or that does not
//!   answer in time (blocked in a client call, say), makes the whole answer
//!   [`Unanswered`]: the API says 503 rather than a page with holes in it, which a
//!   cursor would then skip for good.
//! * A worker that has stopped holds no partition: it adds nothing.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::{find, select, Entry, Query};
use crate::core::rules::RuleId;
use crate::worker::Worker;

/// Questions waiting per worker; more are refused (503) rather than queued.
pub const QUEUE: usize = 8;
/// How long the API waits for every worker's answer.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(2);

/// What is asked.
#[derive(Clone, Debug)]
pub enum Question {
    /// A page: at most `limit + 1` entries from each worker.
    Page(Arc<Query>),
    /// The open instances of one (rule, key).
    One { rule: RuleId, key: Arc<str> },
}

impl Question {
    /// The worker's answer (see [`select`] and [`find`]).
    pub fn answer(&self, worker: &Worker, topics: &[String]) -> Vec<Entry> {
        match self {
            Question::Page(q) => select(worker, topics, q),
            Question::One { rule, key } => find(worker, topics, *rule, key),
        }
    }
}

/// A question and where its answer goes.
pub struct Request {
    pub question: Question,
    pub reply: oneshot::Sender<Vec<Entry>>,
}

/// A worker's end: its loop receives here.
pub type Questions = mpsc::Receiver<Request>;

/// Why there is no answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Unanswered {
    #[error("worker {0} is busy with other queries; try again")]
    Busy(usize),
    #[error("worker {worker} did not answer within {} s; try again", .timeout.as_secs())]
    Late { worker: usize, timeout: Duration },
}

/// The asking end, one queue per worker.
#[derive(Clone, Debug)]
pub struct Querier {
    workers: Vec<mpsc::Sender<Request>>,
    timeout: Duration,
}

impl Querier {
    /// A querier for `workers` workers, and each worker's end.
    pub fn new(workers: usize) -> (Querier, Vec<Questions>) {
        let (senders, receivers) = (0..workers).map(|_| mpsc::channel(QUEUE)).unzip();
        let querier = Querier {
            workers: senders,
            timeout: ANSWER_TIMEOUT,
        };
        (querier, receivers)
    }

    /// Every worker's answer, or why not.
    pub async fn ask(&self, question: Question) -> Result<Vec<Vec<Entry>>, Unanswered> {
        let mut pending = Vec::with_capacity(self.workers.len());
        for (w, tx) in self.workers.iter().enumerate() {
            let (reply, answer) = oneshot::channel();
            let request = Request {
                question: question.clone(),
                reply,
            };
            match tx.try_send(request) {
                Ok(()) => pending.push((w, answer)),
                Err(mpsc::error::TrySendError::Full(_)) => return Err(Unanswered::Busy(w)),
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            }
        }
        let deadline = tokio::time::Instant::now() + self.timeout;
        let mut answers = Vec::with_capacity(pending.len());
        for (worker, answer) in pending {
            match tokio::time::timeout_at(deadline, answer).await {
                Ok(Ok(entries)) => answers.push(entries),
                // The worker stopped with the question unanswered: it holds nothing.
                Ok(Err(_)) => {}
                Err(_) => {
                    return Err(Unanswered::Late {
                        worker,
                        timeout: self.timeout,
                    })
                }
            }
        }
        Ok(answers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_worker_that_does_not_answer_in_time_makes_the_answer_late() {
        let (querier, mut ends) = Querier::new(2);
        let mut silent = ends.pop().unwrap();
        let mut first = ends.pop().unwrap();
        let answering = tokio::spawn(async move {
            while let Some(r) = first.recv().await {
                let _ = r.reply.send(Vec::new());
            }
        });
        let question = Question::Page(Arc::new(Query::default()));
        let asked = tokio::spawn({
            let (q, question) = (querier.clone(), question.clone());
            async move { q.ask(question).await }
        });
        let held = silent.recv().await.expect("asked");
        let late = asked.await.unwrap().unwrap_err();
        assert_eq!(
            late.to_string(),
            "worker 1 did not answer within 2 s; try again"
        );
        drop(held);
        drop(silent);
        let answers = querier.ask(question).await.unwrap();
        assert_eq!(answers.len(), 1, "a stopped worker adds nothing");
        answering.abort();
    }

    #[tokio::test]
    async fn a_full_queue_is_busy() {
        let (querier, _ends) = Querier::new(1);
        let question = Question::Page(Arc::new(Query::default()));
        for _ in 0..QUEUE {
            let (reply, _) = oneshot::channel();
            querier.workers[0]
                .try_send(Request {
                    question: question.clone(),
                    reply,
                })
                .unwrap();
        }
        assert_eq!(
            querier.ask(question).await.unwrap_err(),
            Unanswered::Busy(0)
        );
    }
}
