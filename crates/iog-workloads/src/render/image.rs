//! Rendering a rectangle of the image into RGB8 bytes, in parallel.

use std::sync::OnceLock;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::SpecError;
use crate::render::camera::CompiledCamera;
use crate::render::rng::Rng;
use crate::render::scene::Scene;
use crate::render::spec::RenderSpec;
use crate::render::trace::radiance;
use crate::render::vec3::Vec3;
use crate::render::world::World;

/// A rectangle of pixels; `x`, `y` is its top-left corner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Rect {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

/// Everything needed to render any pixel of one image.
pub(crate) struct Frame {
    world: World,
    camera: CompiledCamera,
    samples_per_pixel: u32,
    max_bounces: u32,
    seed: u64,
}

impl Frame {
    /// Compiles a validated scene for a `width` x `height` image.
    pub fn new(
        scene: &Scene,
        width: u32,
        height: u32,
        samples_per_pixel: u32,
        max_bounces: u32,
        seed: u64,
    ) -> Result<Self, SpecError> {
        let world = World::new(scene).map_err(|material| {
            SpecError::invalid("render.scene.objects", format!("refer to unknown material {material:?}"))
        })?;
        Ok(Frame {
            world,
            camera: CompiledCamera::new(&scene.camera, width, height),
            samples_per_pixel,
            max_bounces,
            seed,
        })
    }

    /// The RGB8 bytes of `rect`, row-major. Rows render in parallel; each
    /// pixel depends only on its own coordinates, so the split does not
    /// change the result.
    pub fn render_rect(&self, rect: Rect) -> Vec<u8> {
        let row_bytes = rect.width as usize * 3;
        let mut rgb = vec![0u8; row_bytes * rect.height as usize];
        rgb.par_chunks_mut(row_bytes.max(1)).enumerate().for_each(|(row, bytes)| {
            let y = rect.y + row as u32;
            for (column, pixel) in bytes.chunks_exact_mut(3).enumerate() {
                let colour = self.pixel(rect.x + column as u32, y);
                pixel.copy_from_slice(&to_rgb8(colour));
            }
        });
        rgb
    }

    pub(crate) fn world(&self) -> &World {
        &self.world
    }

    pub(crate) fn camera(&self) -> &CompiledCamera {
        &self.camera
    }

    pub(crate) fn samples_per_pixel(&self) -> u32 {
        self.samples_per_pixel
    }

    pub(crate) fn max_bounces(&self) -> u32 {
        self.max_bounces
    }

    pub(crate) fn seed(&self) -> u64 {
        self.seed
    }

    /// The RGB8 bytes of one pixel, exactly as [`Frame::render_rect`] gives them.
    pub fn pixel_rgb8(&self, x: u32, y: u32) -> [u8; 3] {
        to_rgb8(self.pixel(x, y))
    }

    /// The mean radiance over the pixel's samples.
    fn pixel(&self, x: u32, y: u32) -> Vec3 {
        let mut rng = Rng::for_pixel(self.seed, x, y);
        let mut sum = Vec3::ZERO;
        for _ in 0..self.samples_per_pixel {
            let ray = self.camera.ray(x, y, &mut rng);
            sum += radiance(&self.world, ray, self.max_bounces, &mut rng);
        }
        sum / self.samples_per_pixel as f32
    }
}

/// Renders the whole image in this process: RGB8 rows, `width * height * 3`
/// bytes. Assembling the tiles of a render job gives exactly these bytes.
pub fn render_image(spec: &RenderSpec) -> Result<Vec<u8>, SpecError> {
    spec.validate()?;
    let frame =
        Frame::new(spec.inline_scene()?, spec.width, spec.height, spec.samples_per_pixel, spec.max_bounces, spec.seed)?;
    Ok(frame.render_rect(Rect { x: 0, y: 0, width: spec.width, height: spec.height }))
}

/// Clamps linear radiance to `0..=1` and encodes it with gamma 2.2.
fn to_rgb8(colour: Vec3) -> [u8; 3] {
    let thresholds = gamma_thresholds();
    let encode = |linear: f32| thresholds.partition_point(|&threshold| threshold <= linear) as u8;
    [encode(colour.x), encode(colour.y), encode(colour.z)]
}

/// `thresholds[b - 1]` is the smallest linear value that encodes to byte `b`:
/// `((b - 0.5) / 255) ^ 2.2`. Comparing against a table avoids `powf`, whose
/// last bit differs between C libraries; the table is built from plain
/// arithmetic, which does not.
pub(crate) fn gamma_thresholds() -> &'static [f32; 255] {
    static TABLE: OnceLock<[f32; 255]> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut table = [0.0f32; 255];
        for (idx, threshold) in table.iter_mut().enumerate() {
            let encoded = (idx as f64 + 0.5) / 255.0;
            // x^2.2 = x^2 * x^(1/5).
            *threshold = (encoded * encoded * fifth_root(encoded)) as f32;
        }
        table
    })
}

/// The fifth root of `x` in `(0, 1]` by Newton's method from 1, which
/// approaches the root from above; 100 steps converge for every input here.
fn fifth_root(x: f64) -> f64 {
    let mut y = 1.0f64;
    for _ in 0..100 {
        let y4 = y * y * y * y;
        y -= (y4 * y - x) / (5.0 * y4);
    }
    y
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gamma_table_matches_powf() {
        for (idx, &threshold) in gamma_thresholds().iter().enumerate() {
            let expected = ((idx as f64 + 0.5) / 255.0).powf(2.2) as f32;
            assert!((threshold - expected).abs() <= expected * 1e-6, "{idx}");
        }
        assert_eq!(to_rgb8(Vec3::new(0.0, 1.0, 0.5)), [0, 255, 186]);
        assert_eq!(to_rgb8(Vec3::new(-1.0, 7.0, f32::NAN)), [0, 255, 0]);
    }
}
