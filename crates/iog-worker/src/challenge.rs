//! The worker's side of hardware challenges: compute, commit, open and
//! solve on blocking threads, and hand each message back to the session.

use std::sync::{Arc, Mutex};

use iog_proto::stream::{Challenge, ChallengeAnswer, WorkerMessage};
use iog_trust::compute::ComputeWork;
use tokio::sync::mpsc;

/// Most hashes a puzzle may cost before the worker gives up: far beyond
/// any puzzle a coordinator sizes for a real device (2⁴⁰ ≈ 10¹² hashes).
pub const PUZZLE_HASHES_MAX: u64 = 1 << 40;

/// Ways a worker can cheat at challenges, for the tests that prove they are
/// caught. Compiled only with the `cheats` feature, which no release build
/// turns on.
#[cfg(feature = "cheats")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cheat {
    /// Commits to a root it did not compute (any wrong result).
    WrongRoot,
    /// Answers everything right but this much later, as a device slower
    /// than the one it claims would.
    Slow { delay_ms: u64 },
    /// Takes tasks and silently never runs them (nor lists them as held).
    DropTasks,
    /// Takes tasks, lists them as held in every heartbeat, and never
    /// finishes them.
    HoldTasks,
    /// Reports random bytes as every task's result.
    RandomResult,
    /// Runs each task with another seed: a valid result of a different task.
    OtherSeed,
    /// Reports the result of the task it ran before (the first one honestly).
    Replay,
    /// Reports the right result with a mark every colluder adds alike, so
    /// colluders agree on one wrong answer.
    Collude,
}

/// Challenges under way for one worker.
#[derive(Clone)]
pub(crate) struct Challenger {
    /// The compute work waiting for its reveal.
    pending: Arc<Mutex<Option<(u64, ComputeWork)>>>,
    #[cfg(feature = "cheats")]
    cheat: Option<Cheat>,
}

impl Challenger {
    pub(crate) fn new(#[cfg(feature = "cheats")] cheat: Option<Cheat>) -> Challenger {
        Challenger {
            pending: Arc::default(),
            #[cfg(feature = "cheats")]
            cheat,
        }
    }

    /// Starts a challenge; its answer (or refusal) comes through `replies`.
    pub(crate) fn start(&self, challenge_id: u64, challenge: Challenge, replies: mpsc::UnboundedSender<WorkerMessage>) {
        let this = self.clone();
        tokio::spawn(async move {
            let reply = match challenge {
                Challenge::Compute(challenge) => {
                    let work = tokio::task::spawn_blocking(move || iog_trust::compute::commit(&challenge)).await;
                    match work {
                        Ok(Ok(work)) => {
                            #[allow(unused_mut)]
                            let mut commitment = work.commitment();
                            #[cfg(feature = "cheats")]
                            if this.cheat == Some(Cheat::WrongRoot) {
                                commitment.root[0] ^= 1;
                            }
                            *this.pending.lock().expect("challenge lock") = Some((challenge_id, work));
                            WorkerMessage::ChallengeCommitted { challenge_id, commitment }
                        }
                        Ok(Err(err)) => WorkerMessage::ChallengeRefused { challenge_id, error: err.to_string() },
                        Err(err) => WorkerMessage::ChallengeRefused { challenge_id, error: format!("compute: {err}") },
                    }
                }
                Challenge::Hash(challenge) => {
                    let solved =
                        tokio::task::spawn_blocking(move || iog_trust::puzzle::solve(&challenge, PUZZLE_HASHES_MAX))
                            .await;
                    match solved {
                        Ok(Ok(answer)) => {
                            WorkerMessage::ChallengeAnswered { challenge_id, answer: ChallengeAnswer::Hash(answer) }
                        }
                        Ok(Err(err)) => WorkerMessage::ChallengeRefused { challenge_id, error: err.to_string() },
                        Err(err) => WorkerMessage::ChallengeRefused { challenge_id, error: format!("solve: {err}") },
                    }
                }
            };
            this.delay().await;
            let _ = replies.send(reply);
        });
    }

    /// Opens the entries the coordinator's seed picks.
    pub(crate) fn reveal(
        &self,
        challenge_id: u64,
        sample_seed: iog_trust::Seed,
        replies: mpsc::UnboundedSender<WorkerMessage>,
    ) {
        let pending = self.pending.lock().expect("challenge lock").take();
        let Some((pending_id, work)) = pending else { return };
        if pending_id != challenge_id {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            let opened = tokio::task::spawn_blocking(move || work.answer(&sample_seed)).await;
            let reply = match opened {
                Ok(answer) => {
                    WorkerMessage::ChallengeAnswered { challenge_id, answer: ChallengeAnswer::Compute(answer) }
                }
                Err(err) => WorkerMessage::ChallengeRefused { challenge_id, error: format!("open: {err}") },
            };
            this.delay().await;
            let _ = replies.send(reply);
        });
    }

    async fn delay(&self) {
        #[cfg(feature = "cheats")]
        if let Some(Cheat::Slow { delay_ms }) = self.cheat {
            tokio::time::sleep(std::time::Duration::from_millis(delay_ms)).await;
        }
    }
}
