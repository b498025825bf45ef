//! The coordinator's side of a hardware challenge with one worker: which
//! challenge its offer calls for, the exchange on its stream, deadlines and
//! checks (the work itself is `iog-trust`'s). A round is a compute
//! challenge (commit, reveal, open), then a memory challenge over the
//! memory the offer lends (fill, reveal, walk and commit, reveal, open;
//! skipped when the offer lends none), then a hash puzzle; the session
//! reports the outcome to the core as `ChallengeChecked`.

use std::time::Duration;

use iog_proto::stream::{Challenge, ChallengeAnswer, Commitment, CoordinatorMessage, WorkerMessage};
use iog_sched::Offer;
use iog_trust::{Claim, ComputeChallenge, ComputeCommitment, HashChallenge, MemoryCommitment, MemoryPlan, Seed};
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
/// Added to every deadline on top of twice the worker's round trip unless
/// configured otherwise: the transfer of the answer and the scheduling of
/// two busy hosts.
pub const NETWORK_ALLOWANCE_MS: u64 = 200;
/// Time to open the revealed entries: the worker recomputes one row per
/// sample, a small fraction of the products (and reads a few leaves of a
/// memory walk).
pub const OPEN_ALLOWANCE_MS: u64 = 250;
/// What a coordinator's rounds allow and ask (`CoordinatorConfig`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RoundLimits {
    /// Added to every deadline on top of twice the worker's round trip.
    pub(crate) allowance_ms: u64,
    /// Steps of the memory walk.
    pub(crate) walk_steps: u32,
}

/// Largest round trip a deadline allows for. The round trip is what the
/// worker reports, so a cheater could claim a long one to widen its own
/// deadlines; this bounds what that buys (a memory walk's k* stays below
/// about 205). A worker truly farther away than this fails its rounds.
pub const CHALLENGE_RTT_MS_MAX: u32 = 1_000;

/// Challenge ids one round uses: compute, memory, hash.
pub(crate) const ROUND_IDS: u64 = 3;

/// What a worker claims, when the coordinator can challenge the claim: an
/// offer of CPUs only, for now (`None` for an offer with GPUs). Rates come
/// from the discovered cores; the memory is what the offer's CPU groups
/// lend, which is what placement counts on.
pub(crate) fn claim_of(devices: &[Device], offer: &Offer) -> Option<Claim> {
    if devices.iter().any(|device| device.kind != DeviceKind::Cpu) {
        return None;
    }
    // The counts come from the worker: a sum that overflows is a lie, and
    // must not stop the session.
    let cores: u32 = devices.iter().fold(0u32, |sum, device| sum.saturating_add(device.compute_units.max(1)));
    let cores = f64::from(cores.max(1));
    Some(Claim {
        int8_ops_per_s: CPU_INT8_OPS_PER_S_PER_CORE * cores,
        memory_bytes: offer.cpu_memory_bytes(),
        hashes_per_s: CPU_HASHES_PER_S_PER_CORE * cores,
    })
}

enum Step {
    /// Waiting for the compute challenge's commitment.
    Commit { challenge: ComputeChallenge },
    /// Waiting for the openings of the revealed entries.
    Open { challenge: ComputeChallenge, commitment: ComputeCommitment, sample_seed: Seed },
    /// Waiting for the memory fill to be ready.
    Fill { plan: MemoryPlan },
    /// Waiting for the walk's commitment; the clock that matters runs.
    Walk { plan: MemoryPlan, probe_seed: Seed, revealed: Instant },
    /// Waiting for the walk's openings.
    OpenWalk { plan: MemoryPlan, probe_seed: Seed, commitment: MemoryCommitment, check_seed: Seed },
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
    /// How long the memory walk took, from the reveal to its commitment.
    walk_ms: Option<u64>,
    walk_steps: u32,
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
    /// `limits` are the coordinator's settings for its rounds.
    pub(crate) fn start(
        claim: Claim,
        rtt_ms: u32,
        challenge_id: u64,
        limits: RoundLimits,
    ) -> Result<(Round, CoordinatorMessage), String> {
        let network_ms = 2 * u64::from(rtt_ms.min(CHALLENGE_RTT_MS_MAX)) + limits.allowance_ms;
        let walk_steps = limits.walk_steps;
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
            walk_ms: None,
            walk_steps,
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
            Step::Fill { .. } => "the memory fill",
            Step::Walk { .. } => "the memory walk's commitment",
            Step::OpenWalk { .. } => "the memory walk's openings",
            Step::Solve { .. } => "the hash puzzle's solutions",
        };
        let waited_ms = self.started.elapsed().as_millis();
        Progress::Done {
            passed: false,
            detail: format!("missed the deadline for {waiting_for} ({waited_ms} ms into the round)"),
        }
    }

    /// Sends the round's last challenge, the hash puzzle.
    fn start_hash(&mut self) -> Progress {
        let plan = match self.claim.plan_hash(seed(), TARGET_MS, self.network_ms) {
            Ok(plan) => plan,
            Err(err) => {
                return Progress::Done { passed: false, detail: format!("no hash puzzle fits the claim: {err}") };
            }
        };
        self.step = Step::Solve { challenge: plan.challenge.clone() };
        self.deadline = Instant::now() + Duration::from_millis(plan.deadline_ms);
        Progress::Send(CoordinatorMessage::Challenge {
            challenge_id: self.challenge_id,
            challenge: Challenge::Hash(plan.challenge),
        })
    }

    /// Takes a challenge message from the worker.
    pub(crate) fn on_message(&mut self, message: WorkerMessage) -> Progress {
        let failed = |detail: String| Progress::Done { passed: false, detail };
        match (message, &self.step) {
            (WorkerMessage::ChallengeRefused { challenge_id, error }, _) if challenge_id == self.challenge_id => {
                failed(format!("the worker refused the challenge: {error}"))
            }
            (
                WorkerMessage::ChallengeCommitted { challenge_id, commitment: Commitment::Compute(commitment) },
                Step::Commit { challenge },
            ) if challenge_id == self.challenge_id => {
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
                self.challenge_id += 1;
                if self.claim.memory_bytes == 0 {
                    return self.start_hash();
                }
                let plan = match self.claim.plan_memory(seed(), self.network_ms, self.walk_steps) {
                    Ok(plan) => plan,
                    Err(err) => return failed(format!("no memory challenge fits the claim: {err}")),
                };
                self.deadline = Instant::now() + Duration::from_millis(plan.fill_deadline_ms);
                let message = CoordinatorMessage::Challenge {
                    challenge_id: self.challenge_id,
                    challenge: Challenge::Memory { challenge: plan.challenge.clone(), n_checked: plan.n_checked },
                };
                self.step = Step::Fill { plan };
                Progress::Send(message)
            }
            (WorkerMessage::ChallengeReady { challenge_id }, Step::Fill { plan })
                if challenge_id == self.challenge_id =>
            {
                let probe_seed = seed();
                let revealed = Instant::now();
                self.deadline = revealed + Duration::from_millis(plan.probe_deadline_ms);
                self.step = Step::Walk { plan: plan.clone(), probe_seed, revealed };
                Progress::Send(CoordinatorMessage::ChallengeReveal { challenge_id, sample_seed: probe_seed })
            }
            (
                WorkerMessage::ChallengeCommitted { challenge_id, commitment: Commitment::Memory(commitment) },
                Step::Walk { plan, probe_seed, revealed },
            ) if challenge_id == self.challenge_id => {
                self.walk_ms = Some(revealed.elapsed().as_millis() as u64);
                let check_seed = seed();
                self.deadline = Instant::now() + Duration::from_millis(self.network_ms + OPEN_ALLOWANCE_MS);
                self.step = Step::OpenWalk { plan: plan.clone(), probe_seed: *probe_seed, commitment, check_seed };
                Progress::Send(CoordinatorMessage::ChallengeReveal { challenge_id, sample_seed: check_seed })
            }
            (
                WorkerMessage::ChallengeAnswered { challenge_id, answer: ChallengeAnswer::Memory(answer) },
                Step::OpenWalk { plan, probe_seed, commitment, check_seed },
            ) if challenge_id == self.challenge_id => {
                let checked = iog_trust::memory::check(
                    &plan.challenge,
                    probe_seed,
                    commitment,
                    check_seed,
                    plan.n_checked,
                    &answer,
                );
                if let Err(err) = checked {
                    return failed(format!("wrong memory answer: {err}"));
                }
                self.challenge_id += 1;
                self.start_hash()
            }
            (
                WorkerMessage::ChallengeAnswered { challenge_id, answer: ChallengeAnswer::Hash(answer) },
                Step::Solve { challenge },
            ) if challenge_id == self.challenge_id => match iog_trust::puzzle::check(challenge, &answer) {
                Ok(()) => Progress::Done {
                    passed: true,
                    detail: match self.walk_ms {
                        Some(walk_ms) => {
                            format!("passed in {} ms (memory walk {walk_ms} ms)", self.started.elapsed().as_millis())
                        }
                        None => format!("passed in {} ms", self.started.elapsed().as_millis()),
                    },
                },
                Err(err) => failed(format!("wrong hash puzzle answer: {err}")),
            },
            (WorkerMessage::ChallengeAnswered { challenge_id, .. }, _)
            | (WorkerMessage::ChallengeCommitted { challenge_id, .. }, _)
            | (WorkerMessage::ChallengeReady { challenge_id }, _)
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

    /// An offer of one CPU slot lending `memory_bytes`.
    fn lending(memory_bytes: u64) -> Offer {
        let mut offer = Offer::cpu(1);
        offer.groups[0].memory_bytes = memory_bytes;
        offer
    }

    /// How an honest or lying worker answers each step, or `None` to
    /// answer honestly.
    #[derive(Clone, Copy, PartialEq)]
    enum Lie {
        ComputeRoot,
        MemoryChunk,
    }

    /// Plays a whole round against the worker side of `iog-trust`.
    fn play(claim: Claim, lie: Option<Lie>) -> (Progress, Vec<&'static str>) {
        let limits = RoundLimits { allowance_ms: NETWORK_ALLOWANCE_MS, walk_steps: 1 << 12 };
        let (mut round, mut message) = Round::start(claim, 1, 10, limits).unwrap();
        let mut seen = Vec::new();
        let mut compute_work = None;
        let mut memory_fill = None;
        let mut memory_walk = None;
        let mut n_checked = 0;
        loop {
            let reply = match message {
                CoordinatorMessage::Challenge { challenge_id, challenge: Challenge::Compute(challenge) } => {
                    seen.push("compute");
                    let work = iog_trust::compute::commit(&challenge).unwrap();
                    let mut commitment = work.commitment();
                    if lie == Some(Lie::ComputeRoot) {
                        commitment.root[0] ^= 1;
                    }
                    compute_work = Some(work);
                    WorkerMessage::ChallengeCommitted { challenge_id, commitment: Commitment::Compute(commitment) }
                }
                CoordinatorMessage::Challenge {
                    challenge_id,
                    challenge: Challenge::Memory { challenge, n_checked: n },
                } => {
                    seen.push("memory");
                    n_checked = n;
                    let mut lied = challenge.clone();
                    if lie == Some(Lie::MemoryChunk) {
                        lied.seed[0] ^= 1;
                    }
                    memory_fill = Some(iog_trust::memory::fill(&lied).unwrap());
                    WorkerMessage::ChallengeReady { challenge_id }
                }
                CoordinatorMessage::ChallengeReveal { challenge_id, sample_seed } => {
                    if let Some(work) = compute_work.take() {
                        let answer = ChallengeAnswer::Compute(work.answer(&sample_seed));
                        WorkerMessage::ChallengeAnswered { challenge_id, answer }
                    } else if let Some(fill) = memory_fill.take() {
                        let walk = fill.walk(&sample_seed);
                        let commitment = Commitment::Memory(walk.commitment());
                        memory_walk = Some(walk);
                        WorkerMessage::ChallengeCommitted { challenge_id, commitment }
                    } else {
                        let walk = memory_walk.take().expect("a reveal after a walk");
                        let answer = ChallengeAnswer::Memory(walk.open(&sample_seed, n_checked));
                        WorkerMessage::ChallengeAnswered { challenge_id, answer }
                    }
                }
                CoordinatorMessage::Challenge { challenge_id, challenge: Challenge::Hash(puzzle) } => {
                    seen.push("hash");
                    let solved = iog_trust::puzzle::solve(&puzzle, u64::MAX).unwrap();
                    WorkerMessage::ChallengeAnswered { challenge_id, answer: ChallengeAnswer::Hash(solved) }
                }
                other => panic!("unexpected {other:?}"),
            };
            match round.on_message(reply) {
                Progress::Send(next) => message = next,
                done => return (done, seen),
            }
        }
    }

    #[test]
    fn an_honest_round_passes_every_challenge_and_lies_fail() {
        let claim = claim_of(&[cpu(2)], &lending(4 << 20)).unwrap();
        assert_eq!(claim.memory_bytes, 4 << 20);
        let (done, seen) = play(claim, None);
        assert!(matches!(done, Progress::Done { passed: true, ref detail } if detail.contains("memory walk")));
        assert_eq!(seen, ["compute", "memory", "hash"]);

        let (done, seen) = play(claim, Some(Lie::ComputeRoot));
        assert!(matches!(done, Progress::Done { passed: false, ref detail } if detail.contains("wrong compute")));
        assert_eq!(seen, ["compute"]);
        let (done, seen) = play(claim, Some(Lie::MemoryChunk));
        assert!(
            matches!(done, Progress::Done { passed: false, ref detail } if detail.contains("wrong memory answer")),
            "{:?}",
            match done {
                Progress::Done { detail, .. } => detail,
                _ => String::new(),
            }
        );
        assert_eq!(seen, ["compute", "memory"]);

        // An offer that lends no memory has none to prove.
        let (done, seen) = play(claim_of(&[cpu(2)], &lending(0)).unwrap(), None);
        assert!(matches!(done, Progress::Done { passed: true, .. }));
        assert_eq!(seen, ["compute", "hash"]);
    }

    #[test]
    fn gpu_offers_are_not_challenged_yet() {
        let mut gpu = cpu(1);
        gpu.kind = DeviceKind::Gpu;
        assert!(claim_of(&[cpu(4), gpu], &lending(1 << 30)).is_none());
        assert_eq!(claim_of(&[cpu(4)], &lending(1 << 30)).unwrap().int8_ops_per_s, 8e8);
    }
}
