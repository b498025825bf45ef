//! The arithmetic of DiLoCo-style training across workers, without a
//! model: compressing a worker's pseudo-gradient for the wire, and the
//! outer step that turns a round's pseudo-gradients into the next global
//! weights. Pure functions on flat `f32` vectors, so the coordinator can
//! run the outer step without a tensor library.
//!
//! A round: K workers start from the same global weights θ, each takes H
//! inner steps (AdamW) on its own shard and ends at θ_k. Each sends its
//! pseudo-gradient Δ_k = θ − θ_k, compressed to 8 bits a value with one
//! `f32` scale per block of [`BLOCK_LEN`] values ([`Int8Blocks`]: about a
//! quarter of the bytes of `f32`). The outer step averages the K
//! pseudo-gradients in worker order, g = (Σ_k Δ_k) / K, and applies SGD
//! with Nesterov momentum (DiLoCo's outer optimizer): m ← μ·m + g, then
//! θ ← θ − η·(g + μ·m). Workers that did not finish the round are left
//! out of the mean; a round with none leaves θ and m as they were.
//!
//! Everything is plain `f32` arithmetic in a fixed order, so the same
//! inputs give the same bits on any machine.

/// Values that share one scale in [`Int8Blocks`].
pub const BLOCK_LEN: usize = 256;

/// Most values one compressed vector may hold (2³²: a model of 4 G
/// parameters), so a hostile length cannot make a decoder allocate more.
pub const VALUES_MAX: u64 = 1 << 32;

/// Largest scale a block may have: 128 times it is still a finite `f32`,
/// so no value of a decoded vector is infinite.
pub const SCALE_MAX: f32 = f32::MAX / 128.0;

/// The first bytes of an encoded [`Int8Blocks`], with its format version.
const MAGIC: &[u8; 8] = b"IOGQ8v1\0";

/// A vector quantized to 8-bit integers with one `f32` scale per block of
/// [`BLOCK_LEN`] values: value i is `values[i] · scales[i / BLOCK_LEN]`.
/// Each block's scale is its largest magnitude over 127, so every value is
/// within half a scale step of the original (a relative error of at most
/// 1/254 of the block's largest value).
#[derive(Debug, Clone, PartialEq)]
pub struct Int8Blocks {
    /// One scale per block, the last block possibly shorter.
    pub scales: Vec<f32>,
    /// One quantized value per original value.
    pub values: Vec<i8>,
}

/// Bytes that are not an encoded [`Int8Blocks`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    /// Too short for its header, or not starting with the format's magic.
    #[error("not an int8-compressed vector (expected the IOGQ8v1 header): {0}")]
    NotInt8Blocks(String),
    /// The header's length is beyond [`VALUES_MAX`] or disagrees with the
    /// bytes that follow.
    #[error("an int8-compressed vector of {values} values should be {expected} bytes, got {got}")]
    Length {
        /// Values the header says it holds.
        values: u64,
        /// Bytes that many values take.
        expected: u64,
        /// Bytes given.
        got: u64,
    },
    /// A scale that is not a number from 0 to [`SCALE_MAX`].
    #[error("block {block} has the scale {scale}, not a number from 0 to {SCALE_MAX:e}")]
    Scale {
        /// The block's index.
        block: usize,
        /// Its scale.
        scale: f32,
    },
    /// A value of −128, which compression never makes (values are from
    /// −127 to 127).
    #[error("value {index} is -128; compressed values are from -127 to 127")]
    Value {
        /// The value's index.
        index: usize,
    },
}

impl Int8Blocks {
    /// Quantizes `values`. Values that are not finite are taken as 0 (a
    /// worker whose training diverged sends nothing harmful; the loss it
    /// reports says what happened).
    pub fn compress(values: &[f32]) -> Int8Blocks {
        let mut scales = Vec::with_capacity(values.len().div_ceil(BLOCK_LEN));
        let mut quantized = Vec::with_capacity(values.len());
        for block in values.chunks(BLOCK_LEN) {
            let finite = |x: &f32| if x.is_finite() { *x } else { 0.0 };
            let largest = block.iter().map(|x| finite(x).abs()).fold(0.0f32, f32::max);
            let scale = largest / 127.0;
            scales.push(scale);
            for x in block {
                let q = if scale > 0.0 { (finite(x) / scale).round().clamp(-127.0, 127.0) } else { 0.0 };
                quantized.push(q as i8);
            }
        }
        Int8Blocks { scales, values: quantized }
    }

    /// The vector it stands for.
    pub fn decompress(&self) -> Vec<f32> {
        self.values
            .chunks(BLOCK_LEN)
            .zip(&self.scales)
            .flat_map(|(block, scale)| block.iter().map(move |q| f32::from(*q) * scale))
            .collect()
    }

    /// The wire form: the magic, the value count (u64 little-endian), the
    /// scales (f32 little-endian), the values (one byte each).
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(Self::encoded_len(self.values.len() as u64) as usize);
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&(self.values.len() as u64).to_le_bytes());
        for scale in &self.scales {
            bytes.extend_from_slice(&scale.to_le_bytes());
        }
        bytes.extend(self.values.iter().map(|q| *q as u8));
        bytes
    }

    /// Bytes the wire form of `values` values takes.
    pub fn encoded_len(values: u64) -> u64 {
        MAGIC.len() as u64 + 8 + 4 * values.div_ceil(BLOCK_LEN as u64) + values
    }

    /// Reads the wire form back.
    pub fn decode(bytes: &[u8]) -> Result<Int8Blocks, DecodeError> {
        let header = MAGIC.len() + 8;
        if bytes.len() < header || &bytes[..MAGIC.len()] != MAGIC {
            let shown: String = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
            return Err(DecodeError::NotInt8Blocks(format!("{} bytes starting {shown}", bytes.len())));
        }
        let values = u64::from_le_bytes(bytes[MAGIC.len()..header].try_into().expect("8 bytes"));
        let expected = Self::encoded_len(values.min(VALUES_MAX));
        if values > VALUES_MAX || bytes.len() as u64 != expected {
            return Err(DecodeError::Length { values, expected, got: bytes.len() as u64 });
        }
        let n_blocks = (values as usize).div_ceil(BLOCK_LEN);
        let (scale_bytes, value_bytes) = bytes[header..].split_at(4 * n_blocks);
        let scales: Vec<f32> =
            scale_bytes.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes"))).collect();
        if let Some(block) = scales.iter().position(|s| !(*s >= 0.0 && *s <= SCALE_MAX)) {
            return Err(DecodeError::Scale { block, scale: scales[block] });
        }
        if let Some(index) = value_bytes.iter().position(|b| *b == 0x80) {
            return Err(DecodeError::Value { index });
        }
        Ok(Int8Blocks { scales, values: value_bytes.iter().map(|b| *b as i8).collect() })
    }
}

/// The outer optimizer's settings: SGD with Nesterov momentum, DiLoCo's
/// defaults.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OuterConfig {
    /// The outer learning rate η (default 0.7).
    #[serde(default = "default_outer_lr")]
    pub lr: f32,
    /// The momentum μ (default 0.9; 0 is plain averaging with η = 1).
    #[serde(default = "default_outer_momentum")]
    pub momentum: f32,
}

fn default_outer_lr() -> f32 {
    0.7
}

fn default_outer_momentum() -> f32 {
    0.9
}

impl Default for OuterConfig {
    fn default() -> OuterConfig {
        OuterConfig { lr: default_outer_lr(), momentum: default_outer_momentum() }
    }
}

/// A pseudo-gradient the outer step does not take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OuterError {
    /// It does not fit the weights.
    #[error("worker {worker}'s pseudo-gradient has {got} values; the model has {expected}")]
    Length {
        /// Its place among the round's pseudo-gradients.
        worker: usize,
        /// Its length.
        got: usize,
        /// The weights' length.
        expected: usize,
    },
    /// It holds a value that is not a finite number, which would make the
    /// global weights infinite.
    #[error("worker {worker}'s pseudo-gradient holds a value that is not finite at {index}")]
    NotFinite {
        /// Its place among the round's pseudo-gradients.
        worker: usize,
        /// The value's index.
        index: usize,
    },
}

/// A worker's pseudo-gradient: where the round started minus where the
/// worker ended, `global − local`.
pub fn pseudo_gradient(global: &[f32], local: &[f32]) -> Vec<f32> {
    global.iter().zip(local).map(|(g, l)| g - l).collect()
}

/// The outer step: averages `deltas` (in their order) and moves `global`
/// and `momentum` by Nesterov SGD. With no deltas, nothing changes (a
/// round every worker left). `momentum` starts as zeros. A delta of the
/// wrong length or with a value that is not finite is refused, and nothing
/// changes.
pub fn outer_step(
    global: &mut [f32],
    momentum: &mut [f32],
    deltas: &[Vec<f32>],
    config: &OuterConfig,
) -> Result<(), OuterError> {
    assert_eq!(global.len(), momentum.len(), "the momentum is the weights' shape");
    for (worker, delta) in deltas.iter().enumerate() {
        if delta.len() != global.len() {
            return Err(OuterError::Length { worker, got: delta.len(), expected: global.len() });
        }
        if let Some(index) = delta.iter().position(|x| !x.is_finite()) {
            return Err(OuterError::NotFinite { worker, index });
        }
    }
    if deltas.is_empty() {
        return Ok(());
    }
    let k = deltas.len() as f32;
    for i in 0..global.len() {
        let mut sum = 0.0f32;
        for delta in deltas {
            sum += delta[i];
        }
        let g = sum / k;
        momentum[i] = config.momentum * momentum[i] + g;
        global[i] -= config.lr * (g + config.momentum * momentum[i]);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(n: usize, seed: u64) -> Vec<f32> {
        (0..n as u64).map(|i| (crate::sim::mix(seed ^ i) >> 40) as f32 / (1u64 << 24) as f32 - 0.5).collect()
    }

    #[test]
    fn compression_keeps_every_value_within_half_a_step_of_its_block_in_a_quarter_of_the_bytes() {
        let mut original = values(1000, 1);
        original[300] = 40.0; // one large value coarsens only its own block
        let compressed = Int8Blocks::compress(&original);
        assert_eq!((compressed.scales.len(), compressed.values.len()), (4, 1000));
        let back = compressed.decompress();
        for (i, (x, y)) in original.iter().zip(&back).enumerate() {
            let step = compressed.scales[i / BLOCK_LEN];
            assert!((x - y).abs() <= step / 2.0 + f32::EPSILON, "value {i}: {x} became {y}");
        }
        assert!((back[300] - 40.0).abs() < 1e-5);
        let block0 = compressed.scales[0];
        assert!(block0 < 0.5 / 126.0, "block 0 is not coarsened by block 1's outlier: {block0}");
        let bytes = compressed.encode();
        assert_eq!(bytes.len() as u64, Int8Blocks::encoded_len(1000));
        assert_eq!(bytes.len(), 8 + 8 + 16 + 1000);
        assert_eq!(Int8Blocks::decode(&bytes).unwrap(), compressed);
        // 4 000 bytes as f32: 3.9× fewer.
        assert!(4.0 * 1000.0 / bytes.len() as f64 > 3.8);
    }

    #[test]
    fn zeros_and_non_finite_values_compress_to_zero() {
        let compressed = Int8Blocks::compress(&[0.0, f32::NAN, f32::INFINITY, -0.0]);
        assert_eq!(compressed.decompress(), [0.0; 4]);
        assert_eq!(Int8Blocks::compress(&[]).encode().len(), 16);
    }

    #[test]
    fn bytes_that_are_not_a_compressed_vector_are_refused_by_name() {
        let good = Int8Blocks::compress(&values(300, 2)).encode();
        let err = Int8Blocks::decode(b"hello").unwrap_err();
        assert!(err.to_string().contains("IOGQ8v1"), "{err}");
        let err = Int8Blocks::decode(&good[..good.len() - 1]).unwrap_err();
        assert!(matches!(err, DecodeError::Length { values: 300, got, .. } if got == good.len() as u64 - 1), "{err}");
        let mut huge = good.clone();
        huge[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(Int8Blocks::decode(&huge).unwrap_err(), DecodeError::Length { .. }));
        let mut bad_scale = good.clone();
        bad_scale[16..20].copy_from_slice(&f32::NAN.to_le_bytes());
        assert!(Int8Blocks::decode(&bad_scale).unwrap_err().to_string().starts_with("block 0 has the scale NaN"));
        // A scale that would make 127 of it infinite, and a value
        // compression never makes, are refused too.
        bad_scale[16..20].copy_from_slice(&f32::MAX.to_le_bytes());
        assert!(matches!(Int8Blocks::decode(&bad_scale).unwrap_err(), DecodeError::Scale { block: 0, .. }));
        let mut minus_128 = good;
        let at = minus_128.len() - 5;
        minus_128[at] = 0x80;
        assert_eq!(Int8Blocks::decode(&minus_128).unwrap_err(), DecodeError::Value { index: 295 });
        // Whatever decodes stays finite.
        let mut largest = Int8Blocks::compress(&[1.0; 3]);
        largest.scales[0] = SCALE_MAX;
        let back = Int8Blocks::decode(&largest.encode()).unwrap().decompress();
        assert!(back.iter().all(|x| x.is_finite()), "{back:?}");
    }

    #[test]
    fn one_worker_without_momentum_at_rate_one_lands_on_its_own_weights() {
        let global = values(10, 3);
        let local = values(10, 4);
        let mut next = global.clone();
        let mut momentum = vec![0.0; 10];
        let plain = OuterConfig { lr: 1.0, momentum: 0.0 };
        outer_step(&mut next, &mut momentum, &[pseudo_gradient(&global, &local)], &plain).unwrap();
        for (n, l) in next.iter().zip(&local) {
            assert!((n - l).abs() < 1e-6);
        }
    }

    #[test]
    fn the_outer_step_averages_in_order_and_carries_nesterov_momentum() {
        let mut global = vec![1.0f32, 2.0];
        let mut momentum = vec![0.0f32; 2];
        let config = OuterConfig { lr: 0.5, momentum: 0.9 };
        let deltas = vec![vec![0.2, -0.4], vec![0.4, 0.0]];
        outer_step(&mut global, &mut momentum, &deltas, &config).unwrap();
        // g = (0.3, −0.2); m = g; θ −= 0.5 · (g + 0.9 g) = 0.95 g.
        assert_eq!(momentum, [0.3, -0.2]);
        assert!((global[0] - (1.0 - 0.95 * 0.3)).abs() < 1e-6 && (global[1] - (2.0 + 0.95 * 0.2)).abs() < 1e-6);
        // A round no worker finished changes nothing.
        let before = (global.clone(), momentum.clone());
        outer_step(&mut global, &mut momentum, &[], &config).unwrap();
        assert_eq!((global.clone(), momentum.clone()), before);
        // Momentum carries: the same pseudo-gradient again moves further.
        let first = 1.0 - 0.95 * 0.3;
        outer_step(&mut global, &mut momentum, &deltas, &config).unwrap();
        assert!((momentum[0] - (0.9 * 0.3 + 0.3)).abs() < 1e-6);
        assert!((global[0] - (first - 0.5 * (0.3 + 0.9 * 0.57))).abs() < 1e-6);
        let before = (global.clone(), momentum.clone());
        let err = outer_step(&mut global, &mut momentum, &[vec![0.0; 2], vec![0.0; 3]], &config).unwrap_err();
        assert_eq!(err.to_string(), "worker 1's pseudo-gradient has 3 values; the model has 2");
        let err = outer_step(&mut global, &mut momentum, &[vec![0.0, f32::INFINITY]], &config).unwrap_err();
        assert_eq!(err, OuterError::NotFinite { worker: 0, index: 1 });
        assert_eq!((global, momentum), before, "a refused round changes nothing");
    }
}
