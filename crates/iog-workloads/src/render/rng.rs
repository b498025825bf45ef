//! The per-pixel random number generator and the sampling built on it.
//!
//! Each pixel's generator is seeded from (job seed, x, y) only, never from the
//! tile or the thread, so a pixel comes out the same whether the image is
//! rendered whole or in tiles, on one core or many.

use crate::render::vec3::Vec3;

/// splitmix64: tiny, fast, and good enough for Monte Carlo sampling.
pub(crate) struct Rng {
    state: u64,
}

const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Rng {
    /// The generator of pixel (x, y) of an image rendered with `seed`.
    pub fn for_pixel(seed: u64, x: u32, y: u32) -> Self {
        let position = (u64::from(y) << 32) | u64::from(x);
        Rng { state: mix(mix(seed).wrapping_add(position)) }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN_GAMMA);
        mix(self.state)
    }

    /// A uniform float in `[0, 1)` with 24 random bits.
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 * (1.0 / (1u32 << 24) as f32)
    }

    /// A uniform point in the unit disk, by rejection (no trigonometry, whose
    /// results differ between C libraries).
    pub fn in_unit_disk(&mut self) -> (f32, f32) {
        loop {
            let x = 2.0 * self.next_f32() - 1.0;
            let y = 2.0 * self.next_f32() - 1.0;
            if x * x + y * y < 1.0 {
                return (x, y);
            }
        }
    }

    /// A uniform point in the unit ball, by rejection.
    pub fn in_unit_ball(&mut self) -> Vec3 {
        loop {
            let p = Vec3::new(2.0 * self.next_f32() - 1.0, 2.0 * self.next_f32() - 1.0, 2.0 * self.next_f32() - 1.0);
            let length_squared = p.length_squared();
            if length_squared < 1.0 && length_squared > 1e-12 {
                return p;
            }
        }
    }

    /// A uniform direction on the unit sphere.
    pub fn unit_vector(&mut self) -> Vec3 {
        self.in_unit_ball().normalized()
    }

    /// A direction around `normal` (unit) with density proportional to the
    /// cosine to the normal: `normal` plus a uniform unit vector.
    pub fn cosine_direction(&mut self, normal: Vec3) -> Vec3 {
        let direction = normal + self.unit_vector();
        let length_squared = direction.length_squared();
        if length_squared < 1e-12 { normal } else { direction / length_squared.sqrt() }
    }
}
