//! The coordinator's side of a hardware challenge with one worker: which
//! challenge its offer calls for, the exchange on its stream, deadlines and
//! checks (the work itself is `iog-trust`'s). A round is a compute
//! challenge (commit, reveal, open) followed by a hash puzzle; the session
//! reports the outcome to the core as `ChallengeChecked`.

use std::time::Duration;

use iog_proto::stream::{Challenge, ChallengeAnswer, CoordinatorMessage, WorkerMessage};
use iog_trust::{Claim, ComputeChallenge, ComputeCommitment, HashChallenge, Seed};
use iog_types::{Device, DeviceKind};
use tokio::time::Instant;

/// The int8 rate a CPU is held to, per logical core: 2 · 10⁸ operations a
/// second, a floor any core of the last decade clears several times over
/// even while the machine is busy (this machine's cores do 5–6 · 10⁹).
/// A CPU's challenge proves it computes for real and answers honestly, not
/// how fast it is; GPUs, whose claims are worth lying about, get challenges
/// sized to their model once the workers have GPU kernels for them.
pub const CPU_INT8_OPS_PER_S_PER_CORE: f64 = 2e8;
/// The hash rate a CPU is held to, per logical core (this machine's do
/// about 9 · 10⁶ blake3 compressions a second each).
pub const CPU_HASHES_PER_S_PER_CORE: f64 = 1e6;
/// What each challenge of a round should take the claimed device.
pub const TARGET_MS: u64 = 250;
/// Added to every deadline on top of twice the worker's round trip: the
/// transfer of the answer and the scheduling of two busy hosts.
pub const NETWORK_ALLOWANCE_MS: u64 = 200;
/// Time to open the revealed entries: the worker recomputes one row per
/// sample, a small fraction of the products.
pub const OPEN_ALLOWANCE_MS: u64 = 250;

/// What a worker's devices claim, when the coordinator can challenge the
/// claim: an offer of CPUs only, for now. `None` for an offer with GPUs.
pub(crate) fn claim_of(devices: &[Device]) -> Option<Claim> {
    if devices.iter().any(|device| device.kind != DeviceKind::Cpu) {
        return None;
    }
    let cores: u32 = devices.iter().map(|device| device.compute_units.max(1)).sum();
    let cores = f64::from(cores.max(1));
    Some(Claim {
        int8_ops_per_s: CPU_INT8_OPS_PER_S_PER_CORE * cores,
        memory_bytes: devices.iter().map(|device| device.memory_bytes).sum(),
        hashes_per_s: CPU_HASHES_PER_S_PER_CORE * cores,
    })
}

enum Step {
    /// Waiting for the compute challenge's commitment.
    Commit { challenge: ComputeChallenge },
    /// Waiting for the openings of the revealed entries.
    Open { challenge: ComputeChallenge, commitment: ComputeCommitment, sample_seed: Seed },
    /// Waiting for the puzzle's solutions.
    Solve { challenge: HashChallenge },
}

/// One round under way.
pub(crate) struct Round {
    claim: Claim,
    network_ms: u64,
    challenge_id: u64,
    step: Step,
    deadline: Instant,
    started: Instant,
}

/// What a message did to a round.
pub(crate) enum Progress {
    /// Send this to the worker; the round goes on.
    Send(CoordinatorMessage),
    /// The round is over.
    Done { passed: bool, detail: String },
    /// Not about this round (a late message of an earlier one).
    Ignored,
}

fn seed() -> Seed {
    rand::random()
}

impl Round {
    /// Starts a round: the compute challenge goes out now. `rtt_ms` is the
    /// worker's last measured round trip.
    pub(crate) fn start(claim: Claim, rtt_ms: u32, challenge_id: u64) -> Result<(Round, CoordinatorMessage), String> {
        let network_ms = 2 * u64::from(rtt_ms) + NETWORK_ALLOWANCE_MS;
        let plan = claim.plan_compute(seed(), TARGET_MS, network_ms).map_err(|err| err.to_string())?;
        let now = Instant::now();
        let message =
            CoordinatorMessage::Challenge { challenge_id, challenge: Challenge::Compute(plan.challenge.clone()) };
        let round = Round {
            claim,
            network_ms,
            challenge_id,
            step: Step::Commit { challenge: plan.challenge },
            deadline: now + Duration::from_millis(plan.deadline_ms),
            started: now,
        };
        Ok((round, message))
    }

    pub(crate) fn deadline(&self) -> Instant {
        self.deadline
    }

    /// The round ran out of time.
    pub(crate) fn expired(&self) -> Progress {
        let waiting_for = match self.step {
            Step::Commit { .. } => "the compute challenge's commitment",
            Step::Open { .. } => "the compute challenge's openings",
            Step::Solve { .. } => "the hash puzzle's solutions",
        };
        let waited_ms = self.started.elapsed().as_millis();
        Progress::Done {
            passed: false,
            detail: format!("missed the deadline for {waiting_for} ({waited_ms} ms into the round)"),
        }
    }

    /// Takes a challenge message from the worker.
    pub(crate) fn on_message(&mut self, message: WorkerMessage) -> Progress {
        let failed = |detail: String| Progress::Done { passed: false, detail };
        match (message, &self.step) {
            (WorkerMessage::ChallengeRefused { challenge_id, error }, _) if challenge_id == self.challenge_id => {
                failed(format!("the worker refused the challenge: {error}"))
            }
            (WorkerMessage::ChallengeCommitted { challenge_id, commitment }, Step::Commit { challenge })
                if challenge_id == self.challenge_id =>
            {
                let sample_seed = seed();
                self.step = Step::Open { challenge: challenge.clone(), commitment, sample_seed };
                self.deadline = Instant::now() + Duration::from_millis(self.network_ms + OPEN_ALLOWANCE_MS);
                Progress::Send(CoordinatorMessage::ChallengeReveal { challenge_id, sample_seed })
            }
            (
                WorkerMessage::ChallengeAnswered { challenge_id, answer: ChallengeAnswer::Compute(answer) },
                Step::Open { challenge, commitment, sample_seed },
            ) if challenge_id == self.challenge_id => {
                if let Err(err) = iog_trust::compute::check(challenge, commitment, sample_seed, &answer) {
                    return failed(format!("wrong compute answer: {err}"));
                }
                let plan = match self.claim.plan_hash(seed(), TARGET_MS, self.network_ms) {
                    Ok(plan) => plan,
                    Err(err) => return failed(format!("no hash puzzle fits the claim: {err}")),
                };
                self.challenge_id += 1;
                self.step = Step::Solve { challenge: plan.challenge.clone() };
                self.deadline = Instant::now() + Duration::from_millis(plan.deadline_ms);
                Progress::Send(CoordinatorMessage::Challenge {
                    challenge_id: self.challenge_id,
                    challenge: Challenge::Hash(plan.challenge),
                })
            }
            (
                WorkerMessage::ChallengeAnswered { challenge_id, answer: ChallengeAnswer::Hash(answer) },
                Step::Solve { challenge },
            ) if challenge_id == self.challenge_id => match iog_trust::puzzle::check(challenge, &answer) {
                Ok(()) => Progress::Done {
                    passed: true,
                    detail: format!("passed in {} ms", self.started.elapsed().as_millis()),
                },
                Err(err) => failed(format!("wrong hash puzzle answer: {err}")),
            },
            (WorkerMessage::ChallengeAnswered { challenge_id, .. }, _)
            | (WorkerMessage::ChallengeCommitted { challenge_id, .. }, _)
                if challenge_id == self.challenge_id =>
            {
                failed("an answer out of turn".to_owned())
            }
            _ => Progress::Ignored,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cpu(cores: u32) -> Device {
        Device {
            kind: DeviceKind::Cpu,
            name: "cpu0".into(),
            vendor: "x".into(),
            model: "x".into(),
            memory_bytes: 1 << 30,
            compute_units: cores,
            source: "cpu".into(),
            driver: None,
            compute_capability: None,
            uuid: None,
        }
    }

    #[test]
    fn an_honest_round_passes_and_a_wrong_root_fails() {
        let claim = claim_of(&[cpu(2)]).unwrap();
        for honest in [true, false] {
            let (mut round, message) = Round::start(claim, 1, 10).unwrap();
            let CoordinatorMessage::Challenge { challenge: Challenge::Compute(challenge), .. } = message else {
                panic!("{message:?}")
            };
            let work = iog_trust::compute::commit(&challenge).unwrap();
            let mut commitment = work.commitment();
            if !honest {
                commitment.root[0] ^= 1;
            }
            let Progress::Send(CoordinatorMessage::ChallengeReveal { sample_seed, .. }) =
                round.on_message(WorkerMessage::ChallengeCommitted { challenge_id: 10, commitment })
            else {
                panic!("no reveal")
            };
            let answer = ChallengeAnswer::Compute(work.answer(&sample_seed));
            let progress = round.on_message(WorkerMessage::ChallengeAnswered { challenge_id: 10, answer });
            if !honest {
                assert!(
                    matches!(progress, Progress::Done { passed: false, ref detail } if detail.contains("wrong compute"))
                );
                continue;
            }
            let Progress::Send(CoordinatorMessage::Challenge { challenge_id, challenge: Challenge::Hash(puzzle) }) =
                progress
            else {
                panic!("no puzzle")
            };
            let solved = iog_trust::puzzle::solve(&puzzle, u64::MAX).unwrap();
            let done = round
                .on_message(WorkerMessage::ChallengeAnswered { challenge_id, answer: ChallengeAnswer::Hash(solved) });
            assert!(matches!(done, Progress::Done { passed: true, .. }));
        }
    }

    #[test]
    fn gpu_offers_are_not_challenged_yet() {
        let mut gpu = cpu(1);
        gpu.kind = DeviceKind::Gpu;
        assert!(claim_of(&[cpu(4), gpu]).is_none());
        assert_eq!(claim_of(&[cpu(4)]).unwrap().int8_ops_per_s, 8e8);
    }
}
