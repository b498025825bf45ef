//! A counter-based generator: every random number is a hash of
//! (seed, stream, counter), so a value never depends on how many were drawn
//! before it, on which thread, or in what order.

/// Streams keep the uses of one seed apart.
pub(crate) const STREAM_INIT: u64 = 1;
/// Mini-batch draws during training.
#[cfg(feature = "burn")]
pub(crate) const STREAM_BATCH: u64 = 2;
/// Generated data sets.
pub(crate) const STREAM_DATA: u64 = 3;

/// SplitMix64's finaliser: a bijection on `u64` that mixes every input bit
/// into every output bit.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The random 64 bits for `counter` in `stream` under `seed`.
pub(crate) fn bits(seed: u64, stream: u64, counter: u64) -> u64 {
    mix(mix(mix(seed) ^ stream) ^ counter)
}

/// A uniform `f32` in `[0, 1)` with 24 random bits.
pub(crate) fn unit_f32(bits: u64) -> f32 {
    (bits >> 40) as f32 * (1.0 / (1u64 << 24) as f32)
}

/// A uniform `f64` in `[0, 1)` with 53 random bits.
pub(crate) fn unit_f64(bits: u64) -> f64 {
    (bits >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// A uniform integer in `0..n` (Lemire's multiply-shift; the bias is below
/// `n / 2⁶⁴`). `n` must be at least 1.
pub(crate) fn below(bits: u64, n: usize) -> usize {
    ((u128::from(bits) * n as u128) >> 64) as usize
}
