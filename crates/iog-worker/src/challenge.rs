//! The worker's side of hardware challenges: compute, commit, fill, walk,
//! open and solve on blocking threads, and hand each message back to the
//! session.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use iog_proto::stream::{Challenge, ChallengeAnswer, Commitment, WorkerMessage};
use iog_trust::compute::ComputeWork;
use iog_trust::memory::{MemoryFill, MemoryWalk};
use iog_trust::{ComputeChallenge, HashAnswer, HashChallenge};
use iog_workloads::hash::HashAlgorithm;
use iog_workloads::{Accelerator, HashSearch};
use tokio::sync::mpsc;

/// Most hashes a puzzle may cost before the worker gives up: far beyond
/// any puzzle a coordinator sizes for a real device (2⁴⁰ ≈ 10¹² hashes).
pub const PUZZLE_HASHES_MAX: u64 = 1 << 40;
/// How long work waiting for the coordinator's next seed is kept. A
/// memory fill holds most of what the worker lends; if the coordinator
/// gave up on the round (its deadline passed, the connection dropped), no
/// seed comes and the memory must go back to the owner.
pub const PENDING_HOLD_MS: u64 = 60_000;

/// The model [`Cheat::ClaimFasterGpu`] reports.
#[cfg(feature = "cheats")]
pub const CLAIMED_GPU: &str = "NVIDIA H100 80GB HBM3";

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
    /// Claims the memory its offer lends but keeps only every
    /// `keep_every`-th chunk of a memory challenge's fill, rebuilding the
    /// rest when the walk reads them: right answers from 1/`keep_every` of
    /// the memory, only slower.
    ShortMemory { keep_every: u32 },
    /// Reports each of its GPUs as an H100 (`NVIDIA H100 80GB HBM3`),
    /// whatever it is: a slower device claiming a faster one.
    ClaimFasterGpu,
    /// Not a cheat: reports the right result in other bits, as a device
    /// computing in other precision does (each `sim` block's sums moved by
    /// a relative 10⁻⁷, within the workload's tolerance). Other workloads'
    /// results are left alone.
    OtherPrecision,
}

/// Computes a compute challenge's products and commits to them: on `gpu`
/// with its kernel when given, else on the CPU.
fn commit_on(
    gpu: Option<&dyn Accelerator>,
    challenge: &ComputeChallenge,
    keep_going: &(dyn Fn() -> bool + Sync),
) -> Result<ComputeWork, String> {
    let Some(gpu) = gpu else {
        return iog_trust::compute::commit(challenge).map_err(|err| err.to_string());
    };
    challenge.validate().map_err(|err| err.to_string())?;
    let products: Vec<_> = (0..challenge.n_products).map(|idx| challenge.product(idx)).collect();
    let device = gpu.device().to_owned();
    let started = std::time::Instant::now();
    let rows = gpu
        .challenge_rows(&products, keep_going)
        .map_err(|err| err.to_string())?
        .ok_or_else(|| format!("{device} has no kernel for products of n = {}", challenge.n))?;
    tracing::info!(
        device,
        n = challenge.n,
        products = challenge.n_products,
        ms = started.elapsed().as_millis() as u64,
        "GPU compute challenge computed"
    );
    if rows.len() != products.len() || rows.iter().any(|rows| rows.len() != challenge.n as usize) {
        return Err(format!("{device}'s kernel returned rows of the wrong shape"));
    }
    iog_trust::compute::commit_rows(challenge, rows).map_err(|err| err.to_string())
}

/// Solves a hash puzzle: on `gpu` with its BLAKE3 search kernel when
/// given (the puzzle's `blake3(seed ‖ nonce_le64)` is the hash workload's
/// message), else on the CPU. The first solutions in nonce order, as the
/// CPU finds them. On the GPU it searches a quarter of the expected work
/// at a time and stops once `keep_going` says no.
fn solve_on(
    gpu: Option<&dyn Accelerator>,
    challenge: &HashChallenge,
    keep_going: &dyn Fn() -> bool,
) -> Result<HashAnswer, String> {
    let cpu = || iog_trust::puzzle::solve(challenge, PUZZLE_HASHES_MAX).map_err(|err| err.to_string());
    let Some(gpu) = gpu else { return cpu() };
    challenge.validate().map_err(|err| err.to_string())?;
    if challenge.difficulty_bits == 0 {
        // Every nonce solves it: nothing to search.
        return cpu();
    }
    let device = gpu.device().to_owned();
    let want = challenge.n_solutions as usize;
    let batch = ((challenge.expected_hashes() / 4.0).ceil() as u64).clamp(1 << 16, 1 << 32);
    let mut nonces = Vec::with_capacity(want);
    let mut start = 0u64;
    while nonces.len() < want {
        if start >= PUZZLE_HASHES_MAX {
            return Err(format!("{device}: no {want} solutions in {PUZZLE_HASHES_MAX} hashes"));
        }
        if !keep_going() {
            return Err(format!("{device}: the hash puzzle was given up"));
        }
        let search = HashSearch {
            algorithm: HashAlgorithm::Blake3,
            data: &challenge.seed,
            nonce_start: start,
            nonce_count: batch,
            difficulty_bits: challenge.difficulty_bits,
        };
        let finds = gpu
            .hash_search(&search)
            .map_err(|err| err.to_string())?
            .ok_or_else(|| format!("{device} has no kernel for the hash puzzle"))?;
        nonces.extend(finds.nonces.into_iter().take(want - nonces.len()));
        start += batch;
    }
    Ok(HashAnswer { nonces })
}

/// Work waiting for the coordinator's next seed.
enum Pending {
    /// Products computed and committed; the seed says what to open.
    Compute(ComputeWork),
    /// Memory filled; the seed starts the walk.
    Filled { fill: Filled, n_checked: u32 },
    /// Walk committed; the seed says which steps to open.
    Walked { walk: MemoryWalk, n_checked: u32 },
}

/// Frees held work on a blocking thread: a fill may be many GiB, and giving
/// it back to the system must not stall the session's heartbeats.
fn drop_off_thread(work: Option<(u64, u64, Pending)>) {
    if let Some(work) = work {
        tokio::task::spawn_blocking(move || drop(work));
    }
}

/// A memory fill, honest or (in tests) kept in part.
enum Filled {
    Full(MemoryFill),
    #[cfg(feature = "cheats")]
    Sparse(iog_trust::memory::SparseFill),
}

impl Filled {
    fn walk(&self, probe_seed: &iog_trust::Seed) -> MemoryWalk {
        match self {
            Filled::Full(fill) => fill.walk(probe_seed),
            #[cfg(feature = "cheats")]
            Filled::Sparse(fill) => fill.walk(probe_seed),
        }
    }
}

/// Challenges under way for one worker.
#[derive(Clone)]
pub(crate) struct Challenger {
    /// The work waiting for its reveal: challenge id, a number telling this
    /// wait from later ones, and the work.
    pending: Arc<Mutex<Option<(u64, u64, Pending)>>>,
    waits: Arc<AtomicU64>,
    /// Bumped by every new challenge and every new session: work started
    /// under an older generation is neither held nor answered, so a slow
    /// fill of a round the coordinator gave up on cannot replace the work
    /// of the next one (challenge ids restart with each session).
    generation: Arc<AtomicU64>,
    /// The GPUs with kernels, for their compute challenges.
    gpus: Arc<Vec<Arc<dyn Accelerator>>>,
    #[cfg(feature = "cheats")]
    cheat: Option<Cheat>,
}

impl Challenger {
    pub(crate) fn new(gpus: Vec<Arc<dyn Accelerator>>, #[cfg(feature = "cheats")] cheat: Option<Cheat>) -> Challenger {
        Challenger {
            pending: Arc::default(),
            waits: Arc::default(),
            generation: Arc::default(),
            gpus: Arc::new(gpus),
            #[cfg(feature = "cheats")]
            cheat,
        }
    }

    /// Forgets every challenge under way: a new session starts.
    pub(crate) fn reset(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        let dropped = self.pending.lock().expect("challenge lock").take();
        drop_off_thread(dropped);
    }

    fn current(&self, generation: u64) -> bool {
        self.generation.load(Ordering::SeqCst) == generation
    }

    /// Keeps `work` until the reveal of `challenge_id` takes it, or for
    /// [`PENDING_HOLD_MS`] at most, unless a newer challenge or session
    /// began since `generation`. Returns whether it was kept.
    fn hold(&self, generation: u64, challenge_id: u64, work: Pending) -> bool {
        let wait = self.waits.fetch_add(1, Ordering::Relaxed);
        {
            let mut pending = self.pending.lock().expect("challenge lock");
            if !self.current(generation) {
                drop(pending);
                drop_off_thread(Some((challenge_id, wait, work)));
                return false;
            }
            *pending = Some((challenge_id, wait, work));
        }
        let pending = Arc::clone(&self.pending);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(PENDING_HOLD_MS)).await;
            let dropped = {
                let mut pending = pending.lock().expect("challenge lock");
                match pending.as_ref().is_some_and(|(_, held, _)| *held == wait) {
                    true => pending.take(),
                    false => None,
                }
            };
            if dropped.is_some() {
                tracing::warn!(challenge_id, "no reveal came for a challenge; its work is dropped");
                drop_off_thread(dropped);
            }
        });
        true
    }

    /// Starts a challenge; its answer (or refusal) comes through `replies`.
    /// `lent_bytes` is the memory the worker's offer lends: a memory
    /// challenge asking for more is refused rather than filled.
    pub(crate) fn start(
        &self,
        challenge_id: u64,
        challenge: Challenge,
        lent_bytes: u64,
        replies: mpsc::UnboundedSender<WorkerMessage>,
    ) {
        // A new challenge means the coordinator is done with any earlier one.
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        let dropped = self.pending.lock().expect("challenge lock").take();
        drop_off_thread(dropped);
        let this = self.clone();
        // The GPU a device challenge names; one this worker has no kernels
        // on is refused at once.
        let gpu: Option<Arc<dyn Accelerator>> = match &challenge {
            Challenge::DeviceCompute { device, .. } | Challenge::DeviceHash { device, .. } => {
                match self.gpus.iter().find(|gpu| gpu.device() == device) {
                    Some(gpu) => Some(gpu.clone()),
                    None => {
                        let error = format!("{device} is not a GPU this worker runs kernels on");
                        let _ = replies.send(WorkerMessage::ChallengeRefused { challenge_id, error });
                        return;
                    }
                }
            }
            _ => None,
        };
        // GPU work stops between its steps once a newer challenge or
        // session began.
        let current = self.clone();
        let keep_going = move || current.current(generation);
        tokio::spawn(async move {
            let reply = match challenge {
                Challenge::Compute(challenge) | Challenge::DeviceCompute { challenge, .. } => {
                    let work =
                        tokio::task::spawn_blocking(move || commit_on(gpu.as_deref(), &challenge, &keep_going)).await;
                    match work {
                        Ok(Ok(work)) => {
                            #[allow(unused_mut)]
                            let mut commitment = work.commitment();
                            #[cfg(feature = "cheats")]
                            if this.cheat == Some(Cheat::WrongRoot) {
                                commitment.root[0] ^= 1;
                            }
                            if !this.hold(generation, challenge_id, Pending::Compute(work)) {
                                return;
                            }
                            WorkerMessage::ChallengeCommitted {
                                challenge_id,
                                commitment: Commitment::Compute(commitment),
                            }
                        }
                        Ok(Err(error)) => WorkerMessage::ChallengeRefused { challenge_id, error },
                        Err(err) => WorkerMessage::ChallengeRefused { challenge_id, error: format!("compute: {err}") },
                    }
                }
                Challenge::Memory { challenge, n_checked } => {
                    if !(1..=iog_trust::memory::CHECKED_MAX).contains(&n_checked) {
                        let error =
                            format!("n_checked must be 1 to {}, got {n_checked}", iog_trust::memory::CHECKED_MAX);
                        let _ = replies.send(WorkerMessage::ChallengeRefused { challenge_id, error });
                        return;
                    }
                    if challenge.memory_bytes > lent_bytes {
                        let error = format!(
                            "the challenge asks to fill {} bytes; this worker lends {lent_bytes}",
                            challenge.memory_bytes
                        );
                        let _ = replies.send(WorkerMessage::ChallengeRefused { challenge_id, error });
                        return;
                    }
                    // The fill and the walk's record must fit in what the
                    // host has free, or the owner's programs would swap.
                    let needed = challenge.filled_bytes() + u64::from(challenge.n_probes) * 32;
                    if let Some(available) = iog_host::memory_available_bytes()
                        && needed > available
                    {
                        let error = format!(
                            "the memory challenge needs {needed} bytes and the host has {available} free; \
                             the owner's programs use memory the offer lends, so lower [offer] memory_gib"
                        );
                        tracing::warn!(needed, available, "memory challenge refused: not enough free memory");
                        let _ = replies.send(WorkerMessage::ChallengeRefused { challenge_id, error });
                        return;
                    }
                    let filled = this.fill(challenge).await;
                    match filled {
                        Ok(fill) => {
                            if !this.hold(generation, challenge_id, Pending::Filled { fill, n_checked }) {
                                return;
                            }
                            WorkerMessage::ChallengeReady { challenge_id }
                        }
                        Err(error) => WorkerMessage::ChallengeRefused { challenge_id, error },
                    }
                }
                Challenge::Hash(challenge) | Challenge::DeviceHash { challenge, .. } => {
                    let solved =
                        tokio::task::spawn_blocking(move || solve_on(gpu.as_deref(), &challenge, &keep_going)).await;
                    match solved {
                        Ok(Ok(answer)) => {
                            WorkerMessage::ChallengeAnswered { challenge_id, answer: ChallengeAnswer::Hash(answer) }
                        }
                        Ok(Err(error)) => WorkerMessage::ChallengeRefused { challenge_id, error },
                        Err(err) => WorkerMessage::ChallengeRefused { challenge_id, error: format!("solve: {err}") },
                    }
                }
            };
            this.delay().await;
            if this.current(generation) {
                let _ = replies.send(reply);
            }
        });
    }

    /// Fills the memory a challenge asks for, on a blocking thread.
    async fn fill(&self, challenge: iog_trust::MemoryChallenge) -> Result<Filled, String> {
        #[cfg(feature = "cheats")]
        if let Some(Cheat::ShortMemory { keep_every }) = self.cheat {
            let sparse =
                tokio::task::spawn_blocking(move || iog_trust::memory::SparseFill::new(&challenge, keep_every)).await;
            return match sparse {
                Ok(Ok(sparse)) => Ok(Filled::Sparse(sparse)),
                Ok(Err(err)) => Err(err.to_string()),
                Err(err) => Err(format!("fill: {err}")),
            };
        }
        let started = std::time::Instant::now();
        let bytes = challenge.filled_bytes();
        match tokio::task::spawn_blocking(move || iog_trust::memory::fill(&challenge)).await {
            Ok(Ok(fill)) => {
                tracing::info!(bytes, fill_ms = started.elapsed().as_millis() as u64, "memory challenge filled");
                Ok(Filled::Full(fill))
            }
            Ok(Err(err)) => Err(err.to_string()),
            Err(err) => Err(format!("fill: {err}")),
        }
    }

    /// Takes the coordinator's next seed for the challenge under way:
    /// opens the compute entries it picks, walks the memory from it, or
    /// opens the walk's steps it picks.
    pub(crate) fn reveal(
        &self,
        challenge_id: u64,
        sample_seed: iog_trust::Seed,
        replies: mpsc::UnboundedSender<WorkerMessage>,
    ) {
        let generation = self.generation.load(Ordering::SeqCst);
        let work = {
            let mut pending = self.pending.lock().expect("challenge lock");
            // A reveal for another challenge (a late one) leaves the work be.
            if pending.as_ref().is_none_or(|(pending_id, _, _)| *pending_id != challenge_id) {
                return;
            }
            let (_, _, work) = pending.take().expect("checked above");
            work
        };
        let this = self.clone();
        tokio::spawn(async move {
            let reply = match work {
                Pending::Compute(work) => match tokio::task::spawn_blocking(move || work.answer(&sample_seed)).await {
                    Ok(answer) => {
                        WorkerMessage::ChallengeAnswered { challenge_id, answer: ChallengeAnswer::Compute(answer) }
                    }
                    Err(err) => WorkerMessage::ChallengeRefused { challenge_id, error: format!("open: {err}") },
                },
                Pending::Filled { fill, n_checked } => {
                    // The fill is dropped as soon as the walk is done.
                    match tokio::task::spawn_blocking(move || fill.walk(&sample_seed)).await {
                        Ok(walk) => {
                            let commitment = Commitment::Memory(walk.commitment());
                            if !this.hold(generation, challenge_id, Pending::Walked { walk, n_checked }) {
                                return;
                            }
                            WorkerMessage::ChallengeCommitted { challenge_id, commitment }
                        }
                        Err(err) => WorkerMessage::ChallengeRefused { challenge_id, error: format!("walk: {err}") },
                    }
                }
                Pending::Walked { walk, n_checked } => {
                    match tokio::task::spawn_blocking(move || walk.open(&sample_seed, n_checked)).await {
                        Ok(answer) => {
                            WorkerMessage::ChallengeAnswered { challenge_id, answer: ChallengeAnswer::Memory(answer) }
                        }
                        Err(err) => WorkerMessage::ChallengeRefused { challenge_id, error: format!("open: {err}") },
                    }
                }
            };
            this.delay().await;
            if this.current(generation) {
                let _ = replies.send(reply);
            }
        });
    }

    async fn delay(&self) {
        #[cfg(feature = "cheats")]
        if let Some(Cheat::Slow { delay_ms }) = self.cheat {
            tokio::time::sleep(std::time::Duration::from_millis(delay_ms)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iog_workloads::{AccelError, HashFinds};

    /// A device whose search is the hash workload's CPU search: what the
    /// GPU kernel gives, bit for bit (crates/iog-gpu/tests/kernels.rs).
    struct CpuSearch;

    impl Accelerator for CpuSearch {
        fn device(&self) -> &str {
            "gpu0"
        }

        fn hash_search(&self, search: &HashSearch<'_>) -> Result<Option<HashFinds>, AccelError> {
            let finds = iog_workloads::hash::search_range(
                search.algorithm,
                search.data,
                search.nonce_start,
                search.nonce_count,
                search.difficulty_bits,
            );
            Ok(Some(finds))
        }
    }

    #[test]
    fn a_puzzle_solved_by_the_search_kernel_is_the_cpu_s_answer_and_stops_when_given_up() {
        for (difficulty_bits, n_solutions) in [(0, 3), (6, 9), (12, 16)] {
            let challenge = HashChallenge { seed: [3; 32], difficulty_bits, n_solutions };
            let answer = solve_on(Some(&CpuSearch), &challenge, &|| true).unwrap();
            assert_eq!(answer, iog_trust::puzzle::solve(&challenge, PUZZLE_HASHES_MAX).unwrap());
            iog_trust::puzzle::check(&challenge, &answer).unwrap();
        }
        let challenge = HashChallenge { seed: [3; 32], difficulty_bits: 12, n_solutions: 16 };
        let err = solve_on(Some(&CpuSearch), &challenge, &|| false).unwrap_err();
        assert_eq!(err, "gpu0: the hash puzzle was given up");
    }
}
