//! The demo job shipped with the crate, usable without the examples folder.

use crate::{JobSpec, parse_job_file_with};

/// The example render job (`examples/render-cornell.toml`).
pub const DEMO_JOB_TOML: &str = include_str!("../../../examples/render-cornell.toml");

/// The scene the demo job names (`examples/scenes/cornell.toml`).
pub const DEMO_SCENE_TOML: &str = include_str!("../../../examples/scenes/cornell.toml");

/// The path by which the demo job refers to its scene.
const DEMO_SCENE_PATH: &str = "scenes/cornell.toml";

/// The demo render job with its scene inlined; reads no files.
pub fn demo_job() -> JobSpec {
    parse_job_file_with(DEMO_JOB_TOML, &mut |path: &str| {
        if path == DEMO_SCENE_PATH {
            Ok(DEMO_SCENE_TOML.to_owned())
        } else {
            Err(format!("the demo job only has {DEMO_SCENE_PATH}"))
        }
    })
    .expect("the demo job and scene are tested to parse")
}
