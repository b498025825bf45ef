//! Task keys of sealed tasks: a task whose input is sealed waits here until
//! the job's submitter hands its key over, wrapped to this worker's seal key
//! and relayed by the coordinator.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use iog_host::Identity;
use iog_seal::{SealPublic, SealSecret, TaskKey, WrappedKey};
use iog_types::{LeaseToken, TaskId, WorkerId};
use tokio::sync::{mpsc, oneshot};

/// How long a sealed task waits for its key before it is reported failed:
/// the submitter's client hands keys out only while it runs (`iog job
/// watch`), and a task waiting longer would hold a slot for nothing.
pub(crate) const KEY_WAIT_MAX: Duration = Duration::from_secs(10 * 60);
/// A task still waiting for its key asks again this often: the coordinator
/// keeps requests only in memory, and drops them when it is full.
pub(crate) const KEY_ASK_AGAIN: Duration = Duration::from_secs(30);

struct Slot {
    token: LeaseToken,
    key: oneshot::Sender<TaskKey>,
}

/// The tasks waiting for their keys, and the seal key that opens them.
pub(crate) struct TaskKeys {
    worker_id: WorkerId,
    seal: SealSecret,
    waiting: Mutex<HashMap<TaskId, Slot>>,
    /// Tells the session to ask the coordinator for a task's key.
    wanted: mpsc::UnboundedSender<(TaskId, LeaseToken)>,
}

impl TaskKeys {
    /// The desk of a worker; the receiver yields the tasks whose keys the
    /// session should ask for.
    pub(crate) fn new(
        worker_id: WorkerId,
        identity: &Identity,
    ) -> (Arc<TaskKeys>, mpsc::UnboundedReceiver<(TaskId, LeaseToken)>) {
        let (wanted, wanted_rx) = mpsc::unbounded_channel();
        let keys = TaskKeys { worker_id, seal: identity.seal_secret(), waiting: Mutex::new(HashMap::new()), wanted };
        (Arc::new(keys), wanted_rx)
    }

    /// The worker's seal key, which the hello publishes.
    pub(crate) fn public(&self) -> SealPublic {
        self.seal.public()
    }

    /// Waits for the key of `task_id`, held under `token`, for at most
    /// [`KEY_WAIT_MAX`]. Dropping the future (a revoked task) withdraws it.
    pub(crate) async fn wait(self: &Arc<TaskKeys>, task_id: TaskId, token: LeaseToken) -> Result<TaskKey, String> {
        let (key, mut arrived) = oneshot::channel();
        self.waiting.lock().expect("task keys lock").insert(task_id, Slot { token, key });
        let _withdraw = Withdraw { keys: self.clone(), task_id, token };
        tracing::debug!(task_id = %task_id, "sealed task waits for its key");
        let deadline = tokio::time::Instant::now() + KEY_WAIT_MAX;
        loop {
            let _ = self.wanted.send((task_id, token));
            let ask_again = (tokio::time::Instant::now() + KEY_ASK_AGAIN).min(deadline);
            match tokio::time::timeout_at(ask_again, &mut arrived).await {
                Ok(Ok(key)) => return Ok(key),
                Ok(Err(_)) => return Err(format!("the key of sealed task {task_id} was withdrawn")),
                Err(_) if ask_again < deadline => continue,
                Err(_) => {
                    return Err(format!(
                        "the submitter did not hand out the key of sealed task {task_id} within {} s; its client \
                         must run `iog job watch` for the job's tasks to get their keys",
                        KEY_WAIT_MAX.as_secs()
                    ));
                }
            }
        }
    }

    /// The tasks still waiting, to ask again for in a new session.
    pub(crate) fn waiting(&self) -> Vec<(TaskId, LeaseToken)> {
        let waiting = self.waiting.lock().expect("task keys lock");
        waiting.iter().map(|(task_id, slot)| (*task_id, slot.token)).collect()
    }

    /// A wrapped key arrived from the coordinator: opens it and hands it to
    /// the waiting task. A key that does not open for this worker, task and
    /// lease is dropped with a warning (the task keeps waiting).
    pub(crate) fn deliver(&self, task_id: TaskId, token: LeaseToken, wrapped_hex: &str) {
        let context = iog_seal::task_context(task_id.job_id.0, task_id.task_idx, &self.worker_id.0);
        let opened = WrappedKey::from_hex(wrapped_hex)
            .and_then(|wrapped| iog_seal::unwrap(&self.seal, &context, &wrapped))
            .map_err(|err| err.to_string());
        let key = match opened {
            Ok(key) => key,
            Err(why) => {
                tracing::warn!(task_id = %task_id, why, "a task key that does not open for this worker; asking again");
                // The coordinator dropped the request when it relayed this
                // key; a task still waiting under this lease asks anew.
                let waiting = self.waiting.lock().expect("task keys lock");
                if waiting.get(&task_id).is_some_and(|slot| slot.token == token) {
                    let _ = self.wanted.send((task_id, token));
                }
                return;
            }
        };
        let mut waiting = self.waiting.lock().expect("task keys lock");
        match waiting.remove(&task_id) {
            Some(slot) if slot.token == token => {
                let _ = slot.key.send(key);
            }
            Some(slot) => {
                waiting.insert(task_id, slot);
                tracing::debug!(task_id = %task_id, "a task key for an old lease; ignored");
            }
            None => tracing::debug!(task_id = %task_id, "a task key nobody waits for; ignored"),
        }
    }
}

/// Removes a task's slot when its wait ends in any way.
struct Withdraw {
    keys: Arc<TaskKeys>,
    task_id: TaskId,
    token: LeaseToken,
}

impl Drop for Withdraw {
    fn drop(&mut self) {
        let mut waiting = self.keys.waiting.lock().expect("task keys lock");
        if waiting.get(&self.task_id).is_some_and(|slot| slot.token == self.token) {
            waiting.remove(&self.task_id);
        }
    }
}
