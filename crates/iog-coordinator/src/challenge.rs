//! The coordinator's side of a hardware challenge with one worker: which
//! challenge its offer calls for, the exchange on its stream, deadlines and
//! checks (the work itself is `iog-trust`'s). A round is a compute
//! challenge (commit, reveal, open), then a memory challenge over the
//! memory the offer lends (fill, reveal, walk and commit, reveal, open;
//! skipped when the offer lends none), then a hash puzzle, then on each
//! GPU the offer lends a compute challenge and a hash puzzle, sized to the
//! GPU's model and run by the worker's GPU kernels; the session reports
//! the outcome to the core as `ChallengeChecked`.

use std::time::Duration;

use iog_proto::stream::{Challenge, ChallengeAnswer, Commitment, CoordinatorMessage, WorkerMessage};
use iog_sched::Offer;
use std::collections::VecDeque;

use iog_trust::{Claim, ComputeChallenge, ComputeCommitment, HashChallenge, MemoryCommitment, MemoryPlan, Seed};
use iog_types::{Device, DeviceKind};
use tokio::time::Instant;

/// The int8 rate a CPU is held to, per logical core: 2 · 10⁸ operations a
/// second, a floor any core of the last decade clears several times over
/// even while the machine is busy (this machine's cores do 5–6 · 10⁹).
/// A CPU's challenge proves it computes for real and answers honestly, not
/// how fast it is; GPUs, whose claims are worth lying about, get challenges
/// sized to their model (`iog_trust::gpu_claim`).
pub const CPU_INT8_OPS_PER_S_PER_CORE: f64 = 2e8;
/// The hash rate a CPU is held to, per logical core (this machine's do
/// about 9 · 10⁶ blake3 compressions a second each).
pub const CPU_HASHES_PER_S_PER_CORE: f64 = 1e6;
/// What each challenge of a round should take the claimed device.
pub const TARGET_MS: u64 = iog_trust::claim::CHALLENGE_TARGET_MS;
/// Added to every deadline on top of twice the worker's round trip unless
/// configured otherwise: the transfer of the answer and the scheduling of
/// two busy hosts.
pub const NETWORK_ALLOWANCE_MS: u64 = 200;
/// Time to open the revealed entries: the worker recomputes one row per
/// sample, a small fraction of the products (and reads a few leaves of a
/// memory walk). A compute challenge's openings get more time with their
/// size, see [`open_allowance_ms`].
pub const OPEN_ALLOWANCE_MS: u64 = 250;
/// The rate at which the openings' rows are allowed to be recomputed: the
/// worker does it on its CPU, even for a GPU's challenge (one core of this
/// project's CI machine does some 5 · 10⁹). A slow opening proves nothing
/// either way: the root it must match was fixed before the entries were
/// drawn.
pub const OPEN_OPS_PER_S: f64 = 1e9;

/// Time to open a compute challenge's entries: per sample one row of C
/// (2n² ops) and, at worst, B of its product generated again (n² entries).
pub fn open_allowance_ms(challenge: &ComputeChallenge) -> u64 {
    let n = f64::from(challenge.n);
    let ops = f64::from(challenge.n_samples) * 3.0 * n * n;
    OPEN_ALLOWANCE_MS + (1000.0 * ops / OPEN_OPS_PER_S).ceil() as u64
}
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

/// Challenge ids one round uses before its GPUs': compute, memory, hash.
pub(crate) const ROUND_IDS: u64 = 3;

impl RoundClaim {
    /// Challenge ids a round of this claim uses: two more per GPU (its
    /// compute challenge and its puzzle).
    pub(crate) fn challenge_ids(&self) -> u64 {
        ROUND_IDS + 2 * self.gpus.len() as u64
    }
}

/// A GPU the offer lends and what its model is held to.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct GpuClaim {
    /// Its name on the worker (`gpu0`).
    pub(crate) device: String,
    pub(crate) model: String,
    pub(crate) claim: Claim,
}

/// What a round challenges: the CPU, then each GPU the offer lends.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RoundClaim {
    pub(crate) cpu: Claim,
    pub(crate) gpus: Vec<GpuClaim>,
    /// Why the round cannot pass, found before it starts: the offer lends
    /// GPUs with kernels that the worker's device list does not hold.
    pub(crate) unmatched: Option<String>,
}

/// What a worker claims, when it offers anything. The CPU's rates come
/// from the discovered cores and its memory is what the offer's CPU groups
/// lend, which is what placement counts on. Each GPU group of the offer
/// lends `count` GPUs of its model: the first that many of the worker's
/// GPUs of that model with kernels (by name) are challenged at the
/// model's rate; an offer lending more of them than the list holds
/// fails its round, since it would otherwise pass as verified for GPUs no
/// one checked. (The core challenges no offer lending GPUs without
/// kernels.)
pub(crate) fn claim_of(devices: &[Device], offer: &Offer) -> Option<RoundClaim> {
    if offer.groups.is_empty() {
        return None;
    }
    // The counts come from the worker: a sum that overflows is a lie, and
    // must not stop the session.
    let cores: u32 = devices
        .iter()
        .filter(|device| device.kind == DeviceKind::Cpu)
        .fold(0u32, |sum, device| sum.saturating_add(device.compute_units.max(1)));
    let cores = f64::from(cores.max(1));
    let cpu = Claim {
        int8_ops_per_s: CPU_INT8_OPS_PER_S_PER_CORE * cores,
        memory_bytes: offer.cpu_memory_bytes(),
        hashes_per_s: CPU_HASHES_PER_S_PER_CORE * cores,
    };
    let mut gpus: Vec<&Device> =
        devices.iter().filter(|device| device.kind == DeviceKind::Gpu && device.kernels).collect();
    gpus.sort_by(|a, b| a.name.cmp(&b.name));
    let mut lent: Vec<GpuClaim> = Vec::new();
    let mut unmatched = None;
    for group in offer.groups.iter().filter(|group| group.kind == DeviceKind::Gpu && group.kernels) {
        let free: Vec<&&Device> = gpus
            .iter()
            .filter(|device| device.model == group.model && lent.iter().all(|taken| taken.device != device.name))
            .collect();
        if free.len() < group.count as usize {
            unmatched.get_or_insert_with(|| {
                format!(
                    "the offer lends {} {} GPU(s) with kernels and the worker lists {} more of that model;                      fix the worker's devices or its [offer]",
                    group.count,
                    group.model,
                    free.len()
                )
            });
        }
        for device in free.into_iter().take(group.count as usize) {
            lent.push(GpuClaim {
                device: device.name.clone(),
                model: device.model.clone(),
                claim: iog_trust::gpu_claim(&device.model),
            });
        }
    }
    Some(RoundClaim { cpu, gpus: lent, unmatched })
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
    /// The GPUs still to challenge, after the CPU's challenges.
    gpus_left: VecDeque<GpuClaim>,
    /// The GPU whose challenges are under way, if any, since when.
    gpu: Option<GpuClaim>,
    gpu_started: Instant,
    /// The GPUs that passed: name, model and their time.
    gpus_passed: Vec<String>,
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
        claim: RoundClaim,
        rtt_ms: u32,
        challenge_id: u64,
        limits: RoundLimits,
    ) -> Result<(Round, CoordinatorMessage), String> {
        if let Some(unmatched) = claim.unmatched {
            return Err(unmatched);
        }
        let network_ms = 2 * u64::from(rtt_ms.min(CHALLENGE_RTT_MS_MAX)) + limits.allowance_ms;
        let walk_steps = limits.walk_steps;
        let plan = claim.cpu.plan_compute(seed(), TARGET_MS, network_ms).map_err(|err| err.to_string())?;
        let now = Instant::now();
        let message =
            CoordinatorMessage::Challenge { challenge_id, challenge: Challenge::Compute(plan.challenge.clone()) };
        let round = Round {
            claim: claim.cpu,
            gpus_left: claim.gpus.into(),
            gpu: None,
            gpu_started: now,
            gpus_passed: Vec::new(),
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
            detail: format!("{}missed the deadline for {waiting_for} ({waited_ms} ms into the round)", self.on_gpu()),
        }
    }

    /// `gpu0 (model): ` while a GPU's challenge is under way, else nothing.
    fn on_gpu(&self) -> String {
        match &self.gpu {
            Some(gpu) => format!("{} ({}): ", gpu.device, gpu.model),
            None => String::new(),
        }
    }

    /// Sends the next GPU's compute challenge, or ends the round passed
    /// when no GPU is left.
    fn next_gpu(&mut self) -> Progress {
        if let Some(done) = self.gpu.take() {
            self.gpus_passed.push(format!(
                "{} ({}) {} ms",
                done.device,
                done.model,
                self.gpu_started.elapsed().as_millis()
            ));
        }
        let Some(gpu) = self.gpus_left.pop_front() else {
            let mut parts = Vec::new();
            if let Some(walk_ms) = self.walk_ms {
                parts.push(format!("memory walk {walk_ms} ms"));
            }
            if !self.gpus_passed.is_empty() {
                parts.push(format!("GPUs {}", self.gpus_passed.join(", ")));
            }
            let mut detail = format!("passed in {} ms", self.started.elapsed().as_millis());
            if !parts.is_empty() {
                detail = format!("{detail} ({})", parts.join("; "));
            }
            return Progress::Done { passed: true, detail };
        };
        let plan = match gpu.claim.plan_compute(seed(), TARGET_MS, self.network_ms) {
            Ok(plan) => plan,
            Err(err) => {
                let detail = format!("{} ({}): no compute challenge fits the claim: {err}", gpu.device, gpu.model);
                return Progress::Done { passed: false, detail };
            }
        };
        self.challenge_id += 1;
        self.gpu_started = Instant::now();
        self.deadline = self.gpu_started + Duration::from_millis(plan.deadline_ms);
        self.step = Step::Commit { challenge: plan.challenge.clone() };
        let challenge = Challenge::DeviceCompute { device: gpu.device.clone(), challenge: plan.challenge };
        self.gpu = Some(gpu);
        Progress::Send(CoordinatorMessage::Challenge { challenge_id: self.challenge_id, challenge })
    }

    /// Sends the hash puzzle: the CPU's last challenge, or the GPU's under
    /// way second, solved by its hash kernel.
    fn start_hash(&mut self) -> Progress {
        let claim = self.gpu.as_ref().map_or(self.claim, |gpu| gpu.claim);
        let plan = match claim.plan_hash(seed(), TARGET_MS, self.network_ms) {
            Ok(plan) => plan,
            Err(err) => {
                let detail = format!("{}no hash puzzle fits the claim: {err}", self.on_gpu());
                return Progress::Done { passed: false, detail };
            }
        };
        self.step = Step::Solve { challenge: plan.challenge.clone() };
        self.deadline = Instant::now() + Duration::from_millis(plan.deadline_ms);
        let challenge = match &self.gpu {
            Some(gpu) => Challenge::DeviceHash { device: gpu.device.clone(), challenge: plan.challenge },
            None => Challenge::Hash(plan.challenge),
        };
        Progress::Send(CoordinatorMessage::Challenge { challenge_id: self.challenge_id, challenge })
    }

    /// Takes a challenge message from the worker.
    pub(crate) fn on_message(&mut self, message: WorkerMessage) -> Progress {
        let failed = |detail: String| Progress::Done { passed: false, detail };
        match (message, &self.step) {
            (WorkerMessage::ChallengeRefused { challenge_id, error }, _) if challenge_id == self.challenge_id => {
                failed(format!("{}the worker refused the challenge: {error}", self.on_gpu()))
            }
            (
                WorkerMessage::ChallengeCommitted { challenge_id, commitment: Commitment::Compute(commitment) },
                Step::Commit { challenge },
            ) if challenge_id == self.challenge_id => {
                let sample_seed = seed();
                self.deadline = Instant::now() + Duration::from_millis(self.network_ms + open_allowance_ms(challenge));
                self.step = Step::Open { challenge: challenge.clone(), commitment, sample_seed };
                Progress::Send(CoordinatorMessage::ChallengeReveal { challenge_id, sample_seed })
            }
            (
                WorkerMessage::ChallengeAnswered { challenge_id, answer: ChallengeAnswer::Compute(answer) },
                Step::Open { challenge, commitment, sample_seed },
            ) if challenge_id == self.challenge_id => {
                if let Err(err) = iog_trust::compute::check(challenge, commitment, sample_seed, &answer) {
                    return failed(format!("{}wrong compute answer: {err}", self.on_gpu()));
                }
                self.challenge_id += 1;
                if self.gpu.is_some() {
                    return self.start_hash();
                }
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
                Ok(()) => self.next_gpu(),
                Err(err) => failed(format!("{}wrong hash puzzle answer: {err}", self.on_gpu())),
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
            kernels: false,
        }
    }

    /// An offer of one CPU slot lending `memory_bytes`.
    fn lending(memory_bytes: u64) -> Offer {
        let mut offer = Offer::cpu(1);
        offer.groups[0].memory_bytes = memory_bytes;
        offer
    }

    fn gpu(name: &str, model: &str) -> Device {
        Device {
            kind: DeviceKind::Gpu,
            name: name.into(),
            model: model.into(),
            compute_units: 132,
            kernels: true,
            ..cpu(1)
        }
    }

    /// How an honest or lying worker answers each step, or `None` to
    /// answer honestly.
    #[derive(Clone, Copy, PartialEq)]
    enum Lie {
        ComputeRoot,
        MemoryChunk,
        GpuRoot,
    }

    /// Plays a whole round against the worker side of `iog-trust` (a GPU's
    /// products computed on the CPU: the same bytes).
    fn play(claim: RoundClaim, lie: Option<Lie>) -> (Progress, Vec<String>) {
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
                    seen.push("compute".to_owned());
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
                    challenge: Challenge::DeviceCompute { device, challenge },
                } => {
                    seen.push(format!("{device} n={}", challenge.n));
                    let work = iog_trust::compute::commit(&challenge).unwrap();
                    let mut commitment = work.commitment();
                    if lie == Some(Lie::GpuRoot) {
                        commitment.root[0] ^= 1;
                    }
                    compute_work = Some(work);
                    WorkerMessage::ChallengeCommitted { challenge_id, commitment: Commitment::Compute(commitment) }
                }
                CoordinatorMessage::Challenge {
                    challenge_id,
                    challenge: Challenge::Memory { challenge, n_checked: n },
                } => {
                    seen.push("memory".to_owned());
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
                CoordinatorMessage::Challenge {
                    challenge_id,
                    challenge: Challenge::DeviceHash { device, challenge: puzzle },
                } => {
                    seen.push(format!("{device} hash"));
                    let solved = iog_trust::puzzle::solve(&puzzle, u64::MAX).unwrap();
                    WorkerMessage::ChallengeAnswered { challenge_id, answer: ChallengeAnswer::Hash(solved) }
                }
                CoordinatorMessage::Challenge { challenge_id, challenge: Challenge::Hash(puzzle) } => {
                    seen.push("hash".to_owned());
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

    fn outcome(progress: &Progress) -> (bool, String) {
        match progress {
            Progress::Done { passed, detail } => (*passed, detail.clone()),
            _ => panic!("the round goes on"),
        }
    }

    #[test]
    fn an_honest_round_passes_every_challenge_and_lies_fail() {
        let claim = claim_of(&[cpu(2)], &lending(4 << 20)).unwrap();
        assert_eq!(claim.cpu.memory_bytes, 4 << 20);
        let (done, seen) = play(claim.clone(), None);
        assert!(matches!(done, Progress::Done { passed: true, ref detail } if detail.contains("memory walk")));
        assert_eq!(seen, ["compute", "memory", "hash"]);

        let (done, seen) = play(claim.clone(), Some(Lie::ComputeRoot));
        assert!(matches!(done, Progress::Done { passed: false, ref detail } if detail.contains("wrong compute")));
        assert_eq!(seen, ["compute"]);
        let (done, seen) = play(claim, Some(Lie::MemoryChunk));
        let (passed, detail) = outcome(&done);
        assert!(!passed && detail.contains("wrong memory answer"), "{detail}");
        assert_eq!(seen, ["compute", "memory"]);

        // An offer that lends no memory has none to prove.
        let (done, seen) = play(claim_of(&[cpu(2)], &lending(0)).unwrap(), None);
        assert!(matches!(done, Progress::Done { passed: true, .. }));
        assert_eq!(seen, ["compute", "hash"]);
    }

    #[test]
    fn each_lent_gpu_is_challenged_at_its_model_s_rate_after_the_cpu() {
        let h100 = "NVIDIA H100 80GB HBM3";
        let soft = "llvmpipe (LLVM 15.0.6, 256 bits)";
        let devices = [cpu(4), gpu("gpu1", h100), gpu("gpu0", h100), gpu("gpu2", soft)];
        let mut offer = lending(0);
        offer.groups.push(iog_sched::DeviceGroup { kernels: true, ..iog_sched::DeviceGroup::gpu(h100, 80 << 30, 1) });
        offer.groups.push(iog_sched::DeviceGroup { kernels: true, ..iog_sched::DeviceGroup::gpu(soft, 1 << 30, 1) });
        let claim = claim_of(&devices, &offer).unwrap();
        assert_eq!(claim.cpu.int8_ops_per_s, 8e8, "the CPU is held to its floor");
        // One H100 is lent: the first by name.
        let lent: Vec<(&str, f64)> =
            claim.gpus.iter().map(|gpu| (gpu.device.as_str(), gpu.claim.int8_ops_per_s)).collect();
        assert_eq!(
            lent,
            [
                ("gpu0", iog_trust::claim::GPU_INT8_OPS_PER_S_FLOOR),
                ("gpu2", iog_trust::claim::SOFTWARE_GPU_INT8_OPS_PER_S)
            ]
        );
        assert_eq!(claim.challenge_ids(), 7);

        // Small GPU claims keep the products small enough to play here.
        let mut small = claim.clone();
        for gpu in &mut small.gpus {
            gpu.claim.int8_ops_per_s = 4e8;
            gpu.claim.hashes_per_s = 4e5;
        }
        let (done, seen) = play(small.clone(), None);
        let (passed, detail) = outcome(&done);
        assert!(passed && detail.contains(&format!("GPUs gpu0 ({h100}) ")) && detail.contains(", gpu2 ("), "{detail}");
        assert_eq!(seen, ["compute", "hash", "gpu0 n=256", "gpu0 hash", "gpu2 n=256", "gpu2 hash"]);
        let (done, seen) = play(small, Some(Lie::GpuRoot));
        let (passed, detail) = outcome(&done);
        assert!(!passed && detail.starts_with(&format!("gpu0 ({h100}): wrong compute answer")), "{detail}");
        assert_eq!(seen, ["compute", "hash", "gpu0 n=256"]);

        // The real H100 rate asks for far more than a CPU computes in time.
        let limits = RoundLimits { allowance_ms: NETWORK_ALLOWANCE_MS, walk_steps: 1 << 12 };
        let (mut round, _) = Round::start(claim, 1, 10, limits).unwrap();
        round.gpus_left.truncate(1);
        let Progress::Send(CoordinatorMessage::Challenge {
            challenge: Challenge::DeviceCompute { device, challenge },
            ..
        }) = round.next_gpu()
        else {
            panic!("a GPU challenge goes out");
        };
        assert_eq!(device, "gpu0");
        assert!(challenge.ops() >= 2e10, "{challenge:?}");
        let (passed, detail) = outcome(&round.expired());
        assert!(!passed && detail.starts_with(&format!("gpu0 ({h100}): missed the deadline")), "{detail}");
    }

    #[test]
    fn an_offer_of_gpus_with_kernels_the_devices_do_not_hold_fails_its_round() {
        let h100 = "NVIDIA H100 80GB HBM3";
        let with_kernels = |model: &str, count| iog_sched::DeviceGroup {
            kernels: true,
            ..iog_sched::DeviceGroup::gpu(model, 80 << 30, count)
        };
        let limits = RoundLimits { allowance_ms: NETWORK_ALLOWANCE_MS, walk_steps: 1 << 12 };
        // Eight H100s offered, none listed: no round passes it off as verified.
        let mut offer = lending(0);
        offer.groups.push(with_kernels(h100, 8));
        let claim = claim_of(&[cpu(4)], &offer).unwrap();
        let err = Round::start(claim, 1, 10, limits).err().expect("the round cannot start");
        assert!(err.contains("lends 8 NVIDIA H100 80GB HBM3 GPU(s) with kernels") && err.contains("lists 0"), "{err}");
        // Two groups of one model (another driver, say) take two GPUs, not one twice.
        let mut offer = lending(0);
        offer.groups.push(with_kernels(h100, 1));
        offer.groups.push(iog_sched::DeviceGroup { driver: Some("other".into()), ..with_kernels(h100, 1) });
        let claim = claim_of(&[cpu(4), gpu("gpu0", h100), gpu("gpu1", h100)], &offer).unwrap();
        let lent: Vec<&str> = claim.gpus.iter().map(|gpu| gpu.device.as_str()).collect();
        assert_eq!((lent, claim.unmatched), (vec!["gpu0", "gpu1"], None));
        // A GPU listed without kernels does not count for a group with them.
        let mut plain = gpu("gpu1", h100);
        plain.kernels = false;
        let claim = claim_of(&[cpu(4), gpu("gpu0", h100), plain], &offer).unwrap();
        assert!(claim.unmatched.is_some());
    }

    #[test]
    fn opening_time_grows_with_the_rows_to_recompute() {
        let small = ComputeChallenge { seed: [0; 32], n: 256, n_products: 3, n_samples: 32 };
        assert_eq!(open_allowance_ms(&small), OPEN_ALLOWANCE_MS + 7);
        let large = ComputeChallenge { n: 8192, ..small };
        assert_eq!(open_allowance_ms(&large), OPEN_ALLOWANCE_MS + 6443);
    }

    #[test]
    fn an_offer_of_nothing_makes_no_claim() {
        assert!(claim_of(&[cpu(4)], &Offer { groups: Vec::new(), ..Offer::cpu(1) }).is_none());
    }
}
