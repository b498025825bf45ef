//! Spot checks: a task's output checked by recomputing a sample of it.
//!
//! Every built-in workload supports one (see [`crate::spot_check`]): a
//! render tile by [`SPOT_PIXELS`] of its pixels, a hash search by a
//! sub-range of 1 / [`SPOT_HASH_SHARE`] of its nonces plus a rehash of
//! every nonce it lists, an empty task by its empty output.

/// Pixels of a render tile recomputed by a spot check. A tile whose pixels
/// are wrong in a share f passes with probability (1 − f)⁸: a tile of
/// random bytes essentially never, a tile with a tenth of its pixels wrong
/// 43 % of the time (it is still a tile of the right scene).
pub const SPOT_PIXELS: u32 = 8;

/// A hash task's nonces are searched again in one random sub-range of this
/// share (1/16) of the task.
pub const SPOT_HASH_SHARE: u64 = 16;

/// What a spot check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spot {
    /// Every sample matched.
    pub passed: bool,
    /// What was compared, or the first sample that did not match.
    pub detail: String,
    /// Work the check cost, in the workload's units (samples × rays per
    /// pixel, hashes).
    pub work_units: u64,
}

impl Spot {
    pub(crate) fn failed(detail: String) -> Spot {
        Spot { passed: false, detail, work_units: 0 }
    }
}

/// A small deterministic generator for drawing samples from a seed
/// (splitmix64).
pub(crate) struct Draw(u64);

impl Draw {
    pub(crate) fn new(seed: u64) -> Draw {
        Draw(seed)
    }

    /// A number below `n` (which must be at least 1).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % n.max(1)
    }
}
