//! A render tile as a GPU kernel takes it: the compiled scene, camera and
//! gamma table flattened into plain arrays of `f32` (small integers held
//! exactly), so the kernel can trace the CPU's paths with the CPU's
//! arithmetic. A GPU's rounding (fused multiply-adds, a last bit of a
//! square root) can still send a path another way, so a tile from the
//! kernel agrees with the CPU's within a PSNR bound, not bit for bit.

use crate::SpecError;
use crate::render::image::{Frame, Rect, gamma_thresholds};
use crate::render::tiles::RenderTask;

/// The tolerance of a tile rendered on a GPU: its PSNR against the CPU's
/// (and against another GPU's) is at least this. Even on Mesa's llvmpipe
/// a rounding sends an occasional path another way (one byte of a 64×64
/// tile a level off, 89 dB); a GPU that fuses a multiply-add or rounds a
/// square root otherwise does so more often, moving a pixel by a level
/// or two.
pub const PSNR_MIN_DB: f64 = 40.0;

/// How far a sampled pixel of a GPU tile may be from the CPU's in any
/// channel and still agree: a GPU's rounding moves a pixel by a level or
/// two.
pub const PIXEL_LEVELS_MAX: u8 = 2;
/// How many of a spot check's sampled pixels may be further off: a sample
/// whose path a rounding sent another way can move its pixel far (in a
/// dark pixel, tens of levels), but it is rare (one byte of 12 288 on
/// llvmpipe), while another seed's or fewer samples' tile is off in many
/// pixels of a noisy tile.
pub const PIXELS_OFF_MAX: usize = 1;

/// How many pixels of `got` (RGB8) are more than [`PIXEL_LEVELS_MAX`] from
/// `want` in some channel.
pub fn pixels_off(got: &[u8], want: &[u8]) -> usize {
    got.chunks_exact(3)
        .zip(want.chunks_exact(3))
        .filter(|(a, b)| a.iter().zip(b.iter()).any(|(x, y)| x.abs_diff(*y) > PIXEL_LEVELS_MAX))
        .count()
}

/// Floats per primitive: `kind, surface, sampled_light, radius`, then four
/// vectors of four (`xyz` and an unused `w`): a sphere's centre; a plane's
/// point and normal; a triangle's `a`, `edge1`, `edge2` and normal.
pub const PRIMITIVE_FLOATS: usize = 20;
/// Floats per surface: `kind, x, y, z, w, 0, 0, 0`: diffuse albedo (`xyz`);
/// metal albedo and fuzz (`w`); glass ior (`w`); emissive radiance (`xyz`).
pub const SURFACE_FLOATS: usize = 8;
/// Primitive kind: a sphere.
pub const SPHERE: f32 = 0.0;
/// Primitive kind: a plane.
pub const PLANE: f32 = 1.0;
/// Primitive kind: a triangle.
pub const TRIANGLE: f32 = 2.0;
/// Surface kind: Lambertian.
pub const DIFFUSE: f32 = 0.0;
/// Surface kind: fuzzy mirror.
pub const METAL: f32 = 1.0;
/// Surface kind: dielectric.
pub const GLASS: f32 = 2.0;
/// Surface kind: a light.
pub const EMISSIVE: f32 = 3.0;

/// One tile of a render task, flattened for a kernel.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderKernelTask {
    /// The scene's objects, [`PRIMITIVE_FLOATS`] each.
    pub primitives: Vec<[f32; PRIMITIVE_FLOATS]>,
    /// The materials, [`SURFACE_FLOATS`] each, indexed by the primitives.
    pub surfaces: Vec<[f32; SURFACE_FLOATS]>,
    /// Each light primitive's index and the running total of light area up
    /// to and including it.
    pub lights: Vec<(u32, f32)>,
    /// The lights' total area.
    pub light_area: f32,
    /// Radiance of rays that hit nothing.
    pub background: [f32; 3],
    /// The camera: origin, upper-left corner, horizontal and vertical span,
    /// the lens's u and v axes (each `xyz` and an unused `w`), then the lens
    /// radius and the image's width and height.
    pub camera: [[f32; 4]; 6],
    /// Half the aperture; 0 for a pinhole.
    pub lens_radius: f32,
    /// The whole image's width in pixels.
    pub image_width: f32,
    /// The whole image's height in pixels.
    pub image_height: f32,
    /// Samples averaged per pixel.
    pub samples_per_pixel: u32,
    /// Most scatterings a path follows.
    pub max_bounces: u32,
    /// The job's seed: each pixel's random numbers come from it and the
    /// pixel's coordinates.
    pub seed: u64,
    /// The tile: x, y, width, height.
    pub rect: [u32; 4],
    /// `gamma[b - 1]` is the smallest linear value that encodes to byte `b`.
    pub gamma: [f32; 255],
}

impl RenderKernelTask {
    pub(crate) fn new(task: &RenderTask) -> Result<RenderKernelTask, SpecError> {
        let (spec, tile) = (task.spec(), task.tile());
        let frame = Frame::new(
            spec.inline_scene()?,
            spec.width,
            spec.height,
            spec.samples_per_pixel,
            spec.max_bounces,
            spec.seed,
        )?;
        Ok(frame.kernel_task(tile))
    }

    /// Bytes of the tile's RGB8 output.
    pub fn output_len(&self) -> usize {
        self.rect[2] as usize * self.rect[3] as usize * 3
    }
}

impl Frame {
    pub(crate) fn kernel_task(&self, rect: Rect) -> RenderKernelTask {
        let (primitives, surfaces, lights, light_area, background) = self.world().flatten();
        let (camera, lens_radius, image_width, image_height) = self.camera().flatten();
        RenderKernelTask {
            primitives,
            surfaces,
            lights,
            light_area,
            background,
            camera,
            lens_radius,
            image_width,
            image_height,
            samples_per_pixel: self.samples_per_pixel(),
            max_bounces: self.max_bounces(),
            seed: self.seed(),
            rect: [rect.x, rect.y, rect.width, rect.height],
            gamma: *gamma_thresholds(),
        }
    }
}

/// PSNR in dB of `got` against `want` (RGB8 bytes of equal length): 10 ·
/// log10(255² / mean squared error); infinite when they are equal.
pub fn psnr(got: &[u8], want: &[u8]) -> f64 {
    assert_eq!(got.len(), want.len(), "PSNR compares images of one size");
    let squared: f64 = got.iter().zip(want).map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2)).sum();
    if squared == 0.0 {
        return f64::INFINITY;
    }
    let mse = squared / got.len() as f64;
    10.0 * (255.0f64 * 255.0 / mse).log10()
}
