//! Clients blocked until *their* request takes effect on the node they talk to.
//!
//! A blocked client registers its *request id* before its request is proposed, so no
//! result can slip between the reply that says "wait" and the registration. The state
//! machine's apply hook calls [`Waiters::wake`] for every result that answers a request
//! (a lock grant, a queued read served), on every node — so a client blocked on a
//! follower is woken by the follower's own apply, and a wait survives a change of
//! leader.
//!
//! Matching on the request id, not on names (`(resource, owner)`, `(topic, consumer)`),
//! is what keeps a node that is behind the leader (restarted and replaying its log, or
//! slow) from answering a client with an *older* result: applications reuse names, so
//! the next result for that name a lagging node applies may predate the request. A
//! result carries the id of the request it answers, and only that request's client is
//! woken by it.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::oneshot;

/// Identifies one client request across the cluster: chosen at random (never 0) by the
/// node the client talks to, carried in the log entry and in the result that answers
/// it. `0` means "no id".
pub type RequestId = u64;

/// The registry of blocked clients, by request id; `T` is what wakes them (a fencing
/// token, messages, ...).
#[derive(Debug)]
pub struct Waiters<T> {
    map: Mutex<HashMap<RequestId, oneshot::Sender<T>>>,
}

impl<T> Default for Waiters<T> {
    fn default() -> Self {
        Waiters {
            map: Mutex::new(HashMap::new()),
        }
    }
}

/// A registration; removes itself when dropped.
#[derive(Debug)]
pub struct Registration<T> {
    waiters: Arc<Waiters<T>>,
    rid: RequestId,
    /// Receives what answered this request.
    pub woken: oneshot::Receiver<T>,
}

impl<T> Drop for Registration<T> {
    fn drop(&mut self) {
        self.waiters.map.lock().remove(&self.rid);
    }
}

impl<T> Waiters<T> {
    /// Registers interest in the result of request `rid` (ids are unique: chosen at
    /// random by this node for each client request).
    pub fn register(self: &Arc<Self>, rid: RequestId) -> Registration<T> {
        let (tx, rx) = oneshot::channel();
        self.map.lock().insert(rid, tx);
        Registration {
            waiters: self.clone(),
            rid,
            woken: rx,
        }
    }

    /// Wakes the clients of the requests in `results` (id 0 wakes nobody).
    pub fn wake(&self, results: impl IntoIterator<Item = (RequestId, T)>) {
        self.wake_each(results);
    }

    /// [`wake`](Self::wake), handing back the results nobody waited for (their client
    /// went away, or the request came from before this process started).
    pub fn wake_each(
        &self,
        results: impl IntoIterator<Item = (RequestId, T)>,
    ) -> Vec<(RequestId, T)> {
        let mut unclaimed = Vec::new();
        let mut results = results.into_iter().peekable();
        if results.peek().is_none() {
            return unclaimed;
        }
        let mut map = self.map.lock();
        for (rid, value) in results.filter(|(rid, _)| *rid != 0) {
            match map.remove(&rid) {
                Some(tx) => {
                    if let Err(value) = tx.send(value) {
                        unclaimed.push((rid, value));
                    }
                }
                None => unclaimed.push((rid, value)),
            }
        }
        unclaimed
    }

    /// Number of blocked clients.
    pub fn len(&self) -> usize {
        self.map.lock().len()
    }

    /// Whether no client is blocked.
    pub fn is_empty(&self) -> bool {
        self.map.lock().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_result_of_the_request_wakes_it_and_drop_unregisters() {
        let w = Arc::new(Waiters::<u64>::default());
        let mut r = w.register(7);
        let other = w.register(8);
        assert_eq!(w.len(), 2);
        drop(other);
        assert_eq!(w.len(), 1);
        // A result for another request (or for none) wakes nobody.
        w.wake([(6, 5), (0, 6)]);
        assert!(r.woken.try_recv().is_err());
        w.wake([(7, 9)]);
        assert_eq!(r.woken.try_recv().ok(), Some(9));
        assert!(w.is_empty());
        // Results nobody waits for come back.
        let r2 = w.register(10);
        assert_eq!(w.wake_each([(10, 1), (11, 2)]), vec![(11, 2)]);
        drop(r2);
        let r3 = w.register(12);
        drop(r3);
        assert_eq!(w.wake_each([(12, 3)]), vec![(12, 3)]);
    }
}
