//! A render job as tasks: one tile per task, and the image put back together.

use serde::{Deserialize, Serialize};

use crate::render::image::{Frame, Rect};
use crate::render::png_encode::encode_png;
use crate::render::spec::RenderSpec;
use crate::spot::Spot;
use crate::{Artifact, AssembleError, SpecError, TaskRun};

/// The input of one render task: the whole (inline) render spec and the tile.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RenderTask {
    render: RenderSpec,
    tile: Rect,
}

/// One task per tile, in [`RenderSpec::tiles`] order.
pub(crate) fn plan(spec: &RenderSpec) -> Result<Vec<RenderTask>, SpecError> {
    spec.validate()?;
    Ok(spec.tiles().into_iter().map(|tile| RenderTask { render: spec.clone(), tile }).collect())
}

/// Renders the task's tile: RGB8 rows of the tile only.
pub(crate) fn run(task: &RenderTask) -> Result<TaskRun, SpecError> {
    let spec = &task.render;
    spec.validate()?;
    let tile = task.tile;
    let fits = |start: u32, length: u32, limit: u32| {
        length >= 1 && length <= spec.tile_size && start.checked_add(length).is_some_and(|end| end <= limit)
    };
    if !fits(tile.x, tile.width, spec.width) || !fits(tile.y, tile.height, spec.height) {
        return Err(SpecError::invalid(
            "tile",
            format!(
                "must lie inside the {}x{} image and be at most {} pixels on a side, got {tile:?}",
                spec.width, spec.height, spec.tile_size
            ),
        ));
    }
    let frame =
        Frame::new(spec.inline_scene()?, spec.width, spec.height, spec.samples_per_pixel, spec.max_bounces, spec.seed)?;
    let pixels = u64::from(tile.width) * u64::from(tile.height);
    Ok(TaskRun { output: frame.render_rect(tile), work_units: pixels * u64::from(spec.samples_per_pixel) })
}

/// Recomputes `n_samples` pixels of the task's tile, drawn from `seed`, and
/// compares them with the output's bytes. A pixel depends only on its own
/// coordinates, so a sample costs 1 / (tile pixels) of the tile.
pub(crate) fn spot_check(task: &RenderTask, output: &[u8], seed: u64, n_samples: u32) -> Result<Spot, SpecError> {
    let spec = &task.render;
    spec.validate()?;
    let tile = task.tile;
    let expected_bytes = tile.width as usize * tile.height as usize * 3;
    if output.len() != expected_bytes {
        return Ok(Spot::failed(format!("is {} bytes, the tile's pixels are {expected_bytes}", output.len())));
    }
    let frame =
        Frame::new(spec.inline_scene()?, spec.width, spec.height, spec.samples_per_pixel, spec.max_bounces, spec.seed)?;
    let mut draw = crate::spot::Draw::new(seed);
    let n_pixels = u64::from(tile.width) * u64::from(tile.height);
    for _ in 0..n_samples {
        let idx = draw.below(n_pixels);
        let (column, row) = ((idx % u64::from(tile.width)) as u32, (idx / u64::from(tile.width)) as u32);
        let at = (row as usize * tile.width as usize + column as usize) * 3;
        let right = frame.pixel_rgb8(tile.x + column, tile.y + row);
        if output[at..at + 3] != right {
            return Ok(Spot::failed(format!(
                "pixel ({}, {}) is {:?}, recomputed {right:?}",
                tile.x + column,
                tile.y + row,
                &output[at..at + 3]
            )));
        }
    }
    let work_units = u64::from(n_samples) * u64::from(spec.samples_per_pixel);
    Ok(Spot { passed: true, detail: format!("{n_samples} of {n_pixels} pixels match"), work_units })
}

/// Places every tile and encodes the image as `image.png`.
pub(crate) fn assemble(spec: &RenderSpec, outputs: &[Vec<u8>]) -> Result<Vec<Artifact>, AssembleError> {
    let tiles = spec.tiles();
    let row_bytes = spec.width as usize * 3;
    let mut image = vec![0u8; row_bytes * spec.height as usize];
    for (task_idx, (tile, output)) in tiles.iter().zip(outputs).enumerate() {
        let tile_row_bytes = tile.width as usize * 3;
        let expected_bytes = tile_row_bytes * tile.height as usize;
        if output.len() != expected_bytes {
            return Err(AssembleError::OutputLength { task_idx, expected_bytes, got_bytes: output.len() });
        }
        for (row, bytes) in output.chunks_exact(tile_row_bytes).enumerate() {
            let start = (tile.y as usize + row) * row_bytes + tile.x as usize * 3;
            image[start..start + tile_row_bytes].copy_from_slice(bytes);
        }
    }
    Ok(vec![Artifact {
        name: "image.png".to_owned(),
        media_type: "image/png".to_owned(),
        bytes: encode_png(spec.width, spec.height, &image),
    }])
}
