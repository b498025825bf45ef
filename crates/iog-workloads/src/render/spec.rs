//! The `[render]` section of a job file.

use serde::{Deserialize, Deserializer, Serialize};

use crate::SpecError;
use crate::check;
use crate::render::image::Rect;
use crate::render::scene::Scene;
use crate::render::scene_check::validate_scene;
use crate::task::MAX_TASKS;

/// Largest accepted image width and height, in pixels.
pub const IMAGE_SIDE_MAX: u32 = 8192;
/// Smallest accepted tile side, in pixels.
pub const TILE_SIZE_MIN: u32 = 8;
/// Largest accepted tile side, in pixels.
pub const TILE_SIZE_MAX: u32 = 1024;
/// Largest accepted samples per pixel.
pub const SAMPLES_PER_PIXEL_MAX: u32 = 100_000;
/// Largest accepted number of bounces per path.
pub const MAX_BOUNCES_MAX: u32 = 64;
/// Most bytes all of a job's tile inputs may take together. Every tile
/// carries the scene, so a big scene cut into tiny tiles multiplies.
pub const PLAN_BYTES_MAX: u64 = 1 << 30;

/// Parameters of the `render` workload: a path-traced image split into tiles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenderSpec {
    /// The scene, as a file path (in a job file) or inline.
    pub scene: SceneRef,
    /// Image width in pixels, 1 to 8192.
    pub width: u32,
    /// Image height in pixels, 1 to 8192.
    pub height: u32,
    /// Side of the square tiles each task renders, 8 to 1024; tiles at the
    /// right and bottom edges are clipped to the image.
    pub tile_size: u32,
    /// Paths traced per pixel, 1 to 100000.
    pub samples_per_pixel: u32,
    /// Scatterings per path, 1 to 64; 8 by default.
    #[serde(default = "default_max_bounces")]
    pub max_bounces: u32,
    /// Seed of every pixel's random numbers; 0 by default.
    #[serde(default)]
    pub seed: u64,
}

fn default_max_bounces() -> u32 {
    8
}

/// Where the scene is: a path relative to the job file, or the scene itself.
///
/// [`parse_job_file`](crate::parse_job_file) reads path scenes and replaces
/// them with inline ones; everything after parsing sees inline scenes only.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum SceneRef {
    /// A scene file path, relative to the job file's folder.
    Path(String),
    /// The scene itself.
    Inline(Scene),
}

// Written by hand rather than derived as untagged: serde's untagged enums
// report any mistake inside the scene as "did not match any variant", losing
// both the message and the path.
impl<'de> Deserialize<'de> for SceneRef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SceneRefVisitor;

        impl<'de> serde::de::Visitor<'de> for SceneRefVisitor {
            type Value = SceneRef;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a scene file path (a string) or an inline scene (a table)")
            }

            fn visit_str<E: serde::de::Error>(self, path: &str) -> Result<SceneRef, E> {
                Ok(SceneRef::Path(path.to_owned()))
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<SceneRef, A::Error> {
                let scene = Scene::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(SceneRef::Inline(scene))
            }
        }

        deserializer.deserialize_any(SceneRefVisitor)
    }
}

impl RenderSpec {
    /// Checks every field's range, and the scene (which must be inline).
    pub fn validate(&self) -> Result<(), SpecError> {
        let scene = self.inline_scene()?;
        check::between("render.width", self.width, 1, IMAGE_SIDE_MAX)?;
        check::between("render.height", self.height, 1, IMAGE_SIDE_MAX)?;
        check::between("render.tile_size", self.tile_size, TILE_SIZE_MIN, TILE_SIZE_MAX)?;
        check::between("render.samples_per_pixel", self.samples_per_pixel, 1, SAMPLES_PER_PIXEL_MAX)?;
        check::between("render.max_bounces", self.max_bounces, 1, MAX_BOUNCES_MAX)?;
        validate_scene(scene, "render.scene")?;
        let n_tiles = u64::from(self.width.div_ceil(self.tile_size)) * u64::from(self.height.div_ceil(self.tile_size));
        if n_tiles > MAX_TASKS {
            return Err(SpecError::invalid(
                "render.tile_size",
                format!(
                    "is too small for a {}x{} image: it makes {n_tiles} tiles, at most \
                     {MAX_TASKS}; raise render.tile_size",
                    self.width, self.height
                ),
            ));
        }
        let scene_bytes = serde_json::to_vec(scene).map_or(0, |json| json.len() as u64);
        if n_tiles * scene_bytes > PLAN_BYTES_MAX {
            return Err(SpecError::invalid(
                "render.tile_size",
                format!(
                    "is too small for this scene: {n_tiles} tiles each carrying the \
                     {scene_bytes}-byte scene exceed {PLAN_BYTES_MAX} bytes of task inputs; \
                     raise render.tile_size"
                ),
            ));
        }
        Ok(())
    }

    /// The inline scene; a scene still given as a path is an error here.
    pub fn inline_scene(&self) -> Result<&Scene, SpecError> {
        match &self.scene {
            SceneRef::Inline(scene) => Ok(scene),
            SceneRef::Path(path) => Err(SpecError::invalid(
                "render.scene",
                format!(
                    "must be inline (a table), got the path {path:?}; \
                     the iog CLI inlines scene files, or parse the job with parse_job_file"
                ),
            )),
        }
    }

    /// The tiles in task order: row-major, left to right, top to bottom.
    pub(crate) fn tiles(&self) -> Vec<Rect> {
        let size = self.tile_size.max(1);
        let mut tiles = Vec::new();
        for y in (0..self.height).step_by(size as usize) {
            for x in (0..self.width).step_by(size as usize) {
                tiles.push(Rect { x, y, width: size.min(self.width - x), height: size.min(self.height - y) });
            }
        }
        tiles
    }
}
