//! Cheating workers: the wrong output each class returns, and which
//! workers of a fleet cheat.
//!
//! Outputs are digests. The right output is a pure function of a task's
//! input, so every honest worker (slow and zombie ones included) returns
//! the same digest for the same input, and any replica of a task can be
//! told right or wrong by the simulator without asking the core.

use iog_types::BlobId;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// How a cheating worker makes up its results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CheatClass {
    /// Computes nothing and returns a fresh random digest every time.
    RandomBytes,
    /// Returns the right answer for another seed: a wrong digest fixed per
    /// input, so two workers of this class agree with each other.
    OtherSeed,
    /// Computes its first task after it starts honestly and returns that
    /// output for every later input: another input's right answer.
    Replay,
    /// Returns the wrong digest per input that all colluders agreed on, so
    /// that they can outvote honest workers.
    Colluder,
    /// Honest most of the time; now and then returns a random digest. It
    /// builds a streak of valid results between its lies, which is what
    /// adaptive verification trusts.
    Intermittent,
}

impl CheatClass {
    /// Every class, in the order reports list them.
    pub const ALL: [CheatClass; 5] = [
        CheatClass::RandomBytes,
        CheatClass::OtherSeed,
        CheatClass::Replay,
        CheatClass::Colluder,
        CheatClass::Intermittent,
    ];

    /// A short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            CheatClass::RandomBytes => "random-bytes",
            CheatClass::OtherSeed => "other-seed",
            CheatClass::Replay => "replay",
            CheatClass::Colluder => "colluder",
            CheatClass::Intermittent => "intermittent",
        }
    }
}

/// Which workers cheat, and how.
#[derive(Debug, Clone, PartialEq)]
pub struct Cheats {
    /// The share of the fleet that cheats, in parts per thousand, rounded
    /// to whole workers: a fixed count rather than a draw per worker, so
    /// that "10 % cheaters" means the same in every run of a size.
    pub cheater_per_mille: u32,
    /// The classes each cheater's is drawn from, evenly; empty for none.
    pub classes: Vec<CheatClass>,
    /// How often an intermittent cheater lies, in parts per thousand of
    /// its results.
    pub intermittent_per_mille: u32,
}

impl Default for Cheats {
    fn default() -> Cheats {
        Cheats { cheater_per_mille: 100, classes: CheatClass::ALL.to_vec(), intermittent_per_mille: 50 }
    }
}

impl Cheats {
    /// An honest fleet.
    pub fn none() -> Cheats {
        Cheats { cheater_per_mille: 0, ..Cheats::default() }
    }

    /// How many of `n_workers` cheat.
    pub fn n_cheaters(&self, n_workers: u32) -> u32 {
        if self.classes.is_empty() {
            return 0;
        }
        let n = (u64::from(n_workers) * u64::from(self.cheater_per_mille) + 500) / 1000;
        u32::try_from(n).unwrap_or(u32::MAX).min(n_workers)
    }

    /// Each worker's class, `None` for honest ones: `n_cheaters` slots
    /// drawn without replacement, each with a class drawn evenly.
    pub(crate) fn draw(&self, n_workers: u32, rng: &mut ChaCha8Rng) -> Vec<Option<CheatClass>> {
        let mut classes = vec![None; n_workers as usize];
        let n_cheaters = self.n_cheaters(n_workers) as usize;
        for slot in rand::seq::index::sample(rng, n_workers as usize, n_cheaters) {
            classes[slot] = Some(self.classes[rng.random_range(0..self.classes.len())]);
        }
        classes
    }
}

/// The right output for an input: what every honest worker computes.
pub(crate) fn right_output(input: BlobId) -> BlobId {
    salted(input, b"right")
}

/// The right output as a device computing in other precision (a GPU's
/// `f32` sums) returns it: other bytes, the same result within the
/// workload's tolerance, as the coordinator's comparison tells.
pub(crate) fn right_elsewhere(input: BlobId) -> BlobId {
    salted(input, b"right, in other precision")
}

/// Whether `output` is the right result for `input`, in either form.
pub(crate) fn is_right(input: BlobId, output: BlobId) -> bool {
    output == right_output(input) || output == right_elsewhere(input)
}

/// The output `output` agrees with: the right output for either form of
/// it, itself otherwise.
pub(crate) fn agreement_class(input: BlobId, output: BlobId) -> BlobId {
    if is_right(input, output) { right_output(input) } else { output }
}

/// The input the task at `position` of a chained job's next link gets from
/// the accepted outputs of the link before (every one of them, as a
/// round of training across workers does): what the simulated coordinator
/// makes, and what the store model expects.
pub(crate) fn chain_next(previous_outputs: &[BlobId], position: u32) -> BlobId {
    let mut bytes: Vec<u8> = previous_outputs.iter().flat_map(|output| output.0).collect();
    bytes.extend_from_slice(&position.to_le_bytes());
    bytes.extend_from_slice(b"next link");
    BlobId::of(&bytes)
}

/// A digest of an input and a salt: a deterministic answer for the input.
fn salted(input: BlobId, salt: &[u8]) -> BlobId {
    BlobId::of(&[&input.0[..], salt].concat())
}

/// A cheater as it runs: its class and what it remembers.
#[derive(Debug, Clone)]
pub(crate) struct Cheat {
    pub(crate) class: CheatClass,
    /// The output a replay cheat returns for everything; process memory,
    /// so a crash loses it.
    replayed: Option<BlobId>,
}

impl Cheat {
    pub(crate) fn new(class: CheatClass) -> Cheat {
        Cheat { class, replayed: None }
    }

    /// What the cheat returns for `input`. Random draws come from `rng`, a
    /// stream of the cheats' own, so that cheats leave every other draw of
    /// a seed as it was.
    pub(crate) fn output(&mut self, input: BlobId, intermittent_per_mille: u32, rng: &mut ChaCha8Rng) -> BlobId {
        match self.class {
            CheatClass::RandomBytes => random_digest(rng),
            CheatClass::OtherSeed => salted(input, b"other seed"),
            CheatClass::Colluder => salted(input, b"collusion"),
            CheatClass::Replay => *self.replayed.get_or_insert_with(|| right_output(input)),
            CheatClass::Intermittent => {
                let lies = intermittent_per_mille > 0 && rng.random_range(0..1000) < intermittent_per_mille;
                if lies { random_digest(rng) } else { right_output(input) }
            }
        }
    }

    /// The process restarted: what it remembered is gone.
    pub(crate) fn forget(&mut self) {
        self.replayed = None;
    }
}

fn random_digest(rng: &mut ChaCha8Rng) -> BlobId {
    let mut bytes = [0u8; 32];
    rng.fill(&mut bytes);
    BlobId::of(&bytes)
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    fn input(n: u8) -> BlobId {
        BlobId::of(&[n])
    }

    #[test]
    fn each_class_lies_the_way_a_real_cheat_would() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut run = |class, n| Cheat::new(class).output(input(n), 0, &mut rng);
        // Random digests never agree; the deterministic lies agree within
        // their class and differ between classes and from the right answer.
        assert_ne!(run(CheatClass::RandomBytes, 1), run(CheatClass::RandomBytes, 1));
        assert_eq!(run(CheatClass::OtherSeed, 1), run(CheatClass::OtherSeed, 1));
        assert_eq!(run(CheatClass::Colluder, 1), run(CheatClass::Colluder, 1));
        assert_ne!(run(CheatClass::OtherSeed, 1), run(CheatClass::Colluder, 1));
        assert_ne!(run(CheatClass::Colluder, 1), right_output(input(1)));
        // An intermittent cheat that never lies is honest.
        assert_eq!(run(CheatClass::Intermittent, 1), right_output(input(1)));
        // A replay cheat answers its first task right and replays it after.
        let mut replay = Cheat::new(CheatClass::Replay);
        assert_eq!(replay.output(input(1), 0, &mut rng), right_output(input(1)));
        assert_eq!(replay.output(input(2), 0, &mut rng), right_output(input(1)));
        replay.forget();
        assert_eq!(replay.output(input(3), 0, &mut rng), right_output(input(3)));
    }

    #[test]
    fn an_intermittent_cheat_lies_at_its_rate() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let mut cheat = Cheat::new(CheatClass::Intermittent);
        let lies = (0..10_000).filter(|_| cheat.output(input(1), 50, &mut rng) != right_output(input(1))).count();
        assert!((400..600).contains(&lies), "{lies}");
    }

    #[test]
    fn the_cheater_share_is_a_rounded_count() {
        let cheats = Cheats::default();
        assert_eq!((cheats.n_cheaters(8), cheats.n_cheaters(20), cheats.n_cheaters(2)), (1, 2, 0));
        let half = Cheats { cheater_per_mille: 50, ..Cheats::default() };
        assert_eq!((half.n_cheaters(8), half.n_cheaters(20)), (0, 1));
        assert_eq!(Cheats { classes: Vec::new(), ..Cheats::default() }.n_cheaters(100), 0);
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let drawn = cheats.draw(20, &mut rng);
        assert_eq!(drawn.iter().flatten().count(), 2);
    }
}
