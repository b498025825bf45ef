//! Uniform draws from a blake3 output stream, for positions the two sides
//! must derive alike from a revealed seed.

/// An endless stream of bytes from blake3 in derive-key mode over the parts.
pub(crate) struct Draw(blake3::OutputReader);

impl Draw {
    pub(crate) fn new(context: &str, parts: &[&[u8]]) -> Draw {
        let mut hasher = blake3::Hasher::new_derive_key(context);
        for part in parts {
            hasher.update(part);
        }
        Draw(hasher.finalize_xof())
    }

    /// A number in `0..bound` (`bound > 0`). Multiply-and-shift of a 64-bit
    /// word: the bias is below `bound / 2^64`, under 2^-24 for every bound
    /// this crate uses (at most 2^40), which a sampling argument can ignore.
    pub(crate) fn below(&mut self, bound: u64) -> u64 {
        let mut word = [0u8; 8];
        self.0.fill(&mut word);
        below(u64::from_le_bytes(word), bound)
    }
}

/// Maps a uniform 64-bit word to `0..bound` by multiply-and-shift.
pub(crate) fn below(word: u64, bound: u64) -> u64 {
    ((u128::from(word) * u128::from(bound)) >> 64) as u64
}
