//! Watching the owner and the config file while the worker runs.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use iog_host::owner::{OwnerPolicy, OwnerState, OwnerWatch};
use iog_sched::Offer;
use iog_types::Device;
use tokio::sync::watch;

use crate::config::{CONFIG_POLL_MS, WorkerConfig, WorkerFile};

/// Checks the owner policy every `poll_ms` on a thread of its own (a
/// check may run a command for seconds) and publishes `Some(reason)` while
/// the owner uses the machine. The thread ends when the worker is gone.
pub(crate) fn spawn_owner_thread(
    mut policy: watch::Receiver<OwnerPolicy>,
    poll_ms: u64,
    state: watch::Sender<Option<String>>,
) {
    let spawned = std::thread::Builder::new().name("iog-owner-watch".to_owned()).spawn(move || {
        let mut owner = OwnerWatch::new(policy.borrow_and_update().clone());
        loop {
            if state.is_closed() {
                return;
            }
            if policy.has_changed().unwrap_or(false) {
                owner = OwnerWatch::new(policy.borrow_and_update().clone());
            }
            let busy = if owner.is_active() {
                match owner.check() {
                    OwnerState::Idle => None,
                    OwnerState::Busy(reason) => Some(reason),
                }
            } else {
                None
            };
            for note in owner.notes() {
                tracing::warn!(note, "owner policy");
            }
            state.send_if_modified(|current| {
                let changed = *current != busy;
                *current = busy;
                changed
            });
            std::thread::sleep(Duration::from_millis(poll_ms.max(10)));
        }
    });
    if let Err(err) = spawned {
        tracing::error!(error = %err, "could not start the owner watch; the owner policy is not enforced");
    }
}

/// Re-reads the worker's config file when it changes and publishes the new
/// offer and owner policy. A file that does not parse is reported and the
/// running settings are kept.
pub(crate) async fn watch_config_file(
    path: PathBuf,
    mut config: WorkerConfig,
    devices: Vec<Device>,
    offer: watch::Sender<Offer>,
    policy: watch::Sender<OwnerPolicy>,
    mut shutdown: watch::Receiver<bool>,
) {
    let modified = |path: &PathBuf| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let mut seen: Option<SystemTime> = modified(&path);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(CONFIG_POLL_MS)) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        let now = modified(&path);
        if now == seen {
            continue;
        }
        seen = now;
        let read_path = path.clone();
        let file = match tokio::task::spawn_blocking(move || WorkerFile::read(&read_path)).await {
            Ok(file) => file,
            Err(err) => Err(err.to_string()),
        };
        match file {
            Ok(file) => {
                config.apply(&file);
                let new_offer = config.offer(&devices);
                if let Err(err) = new_offer.validate() {
                    tracing::warn!(error = %err, "the changed config makes an unusable offer; keeping the running one");
                    continue;
                }
                tracing::info!(path = %path.display(), "config file changed");
                offer.send_if_modified(|current| {
                    let changed = *current != new_offer;
                    *current = new_offer;
                    changed
                });
                policy.send_if_modified(|current| {
                    let changed = *current != config.owner;
                    *current = config.owner.clone();
                    changed
                });
            }
            Err(err) => tracing::warn!(error = %err, "the config file does not parse; keeping the running settings"),
        }
    }
}
