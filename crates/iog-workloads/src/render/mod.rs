//! The `render` workload: a CPU path tracer over a scene, split into tiles.
//!
//! Each pixel's random numbers are seeded from (seed, x, y), so the tiles of a
//! job assembled together are pixel-identical to [`render_image`] of the same
//! spec. The tracer uses only IEEE-exact arithmetic (no `sin`, `pow`, ...),
//! so the same input gives the same bytes on any machine.

mod camera;
mod image;
pub mod kernel;
mod png_encode;
mod rng;
mod scene;
mod scene_check;
mod spec;
pub(crate) mod tiles;
mod trace;
mod vec3;
mod world;

pub use image::render_image;
pub use png_encode::encode_png;
pub use scene::{Camera, Material, Object, Scene};
pub use scene_check::{BACKGROUND_MAX, EMISSIVE_STRENGTH_MAX, GLASS_IOR_MAX, SCENE_MATERIALS_MAX, SCENE_OBJECTS_MAX};
pub use spec::{
    IMAGE_SIDE_MAX, MAX_BOUNCES_MAX, PLAN_BYTES_MAX, RenderSpec, SAMPLES_PER_PIXEL_MAX, SceneRef, TILE_SIZE_MAX,
    TILE_SIZE_MIN,
};

pub(crate) use scene_check::validate_scene;
