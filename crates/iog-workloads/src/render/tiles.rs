//! A render job as tasks: one tile per task, and the image put back together.

use serde::{Deserialize, Serialize};

use crate::accel::{AccelError, Accelerator, DeviceChoice, Ran};
use crate::render::image::{Frame, Rect};
use crate::render::kernel::{PIXEL_LEVELS_MAX, PIXELS_OFF_MAX, PSNR_MIN_DB, RenderKernelTask, pixels_off, psnr};
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
    /// The job asked for a GPU: the worker renders the tile with its GPU
    /// kernel where it has one, and the tile is checked within
    /// [`PSNR_MIN_DB`] instead of byte for byte.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    gpu: bool,
}

impl RenderTask {
    pub(crate) fn spec(&self) -> &RenderSpec {
        &self.render
    }

    pub(crate) fn tile(&self) -> Rect {
        self.tile
    }
}

/// One task per tile, in [`RenderSpec::tiles`] order.
pub(crate) fn plan(spec: &RenderSpec, device: DeviceChoice) -> Result<Vec<RenderTask>, SpecError> {
    spec.validate()?;
    let gpu = device == DeviceChoice::Gpu;
    Ok(spec.tiles().into_iter().map(|tile| RenderTask { render: spec.clone(), tile, gpu }).collect())
}

impl RenderTask {
    pub(crate) fn wants_gpu(&self) -> bool {
        self.gpu
    }
}

/// Renders the task's tile with `accel`'s kernel when the task asked for
/// a GPU and the device has one, else on the CPU. The kernel's tile is
/// taken once a few of its pixels, recomputed on the CPU, agree within
/// [`PSNR_MIN_DB`]; otherwise the CPU renders it and the kernel's error is
/// reported.
pub(crate) fn run_on(task: &RenderTask, accel: Option<&dyn Accelerator>) -> Result<Ran, SpecError> {
    let mut accel_error = None;
    if let Some(accel) = accel.filter(|_| task.gpu) {
        let kernel = RenderKernelTask::new(task)?;
        let checked = accel.render_tile(&kernel).and_then(|tile| match tile {
            Some(output) => {
                let seed = task.render.seed ^ (u64::from(task.tile.x) << 32) ^ u64::from(task.tile.y);
                let spot = spot_check(task, &output, seed, crate::spot::SPOT_PIXELS).map_err(|err| AccelError {
                    device: accel.device().to_owned(),
                    message: format!("checking its render kernel's tile: {err}"),
                })?;
                if spot.passed {
                    Ok(Some(output))
                } else {
                    Err(AccelError {
                        device: accel.device().to_owned(),
                        message: format!("its render kernel's tile does not check out: {}", spot.detail),
                    })
                }
            }
            None => Ok(None),
        });
        match checked {
            Ok(Some(output)) => {
                let work_units =
                    u64::from(task.tile.width) * u64::from(task.tile.height) * u64::from(task.render.samples_per_pixel);
                let run = TaskRun { output, work_units };
                return Ok(Ran { run, device: Some(accel.device().to_owned()), accel_error: None });
            }
            Ok(None) => {}
            Err(err) => accel_error = Some(err),
        }
    }
    Ok(Ran { run: run(task)?, device: None, accel_error })
}

/// Whether two outputs of one task are the same tile: byte for byte, or
/// for a task that asked for a GPU within [`PSNR_MIN_DB`].
pub(crate) fn outputs_agree(task: &RenderTask, a: &[u8], b: &[u8]) -> bool {
    if !task.gpu {
        return a == b;
    }
    a.len() == b.len() && psnr(a, b) >= PSNR_MIN_DB
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
    let (mut got, mut right) = (Vec::new(), Vec::new());
    for _ in 0..n_samples {
        let idx = draw.below(n_pixels);
        let (column, row) = ((idx % u64::from(tile.width)) as u32, (idx / u64::from(tile.width)) as u32);
        let at = (row as usize * tile.width as usize + column as usize) * 3;
        let pixel = frame.pixel_rgb8(tile.x + column, tile.y + row);
        if !task.gpu && output[at..at + 3] != pixel {
            return Ok(Spot::failed(format!(
                "pixel ({}, {}) is {:?}, recomputed {pixel:?}",
                tile.x + column,
                tile.y + row,
                &output[at..at + 3]
            )));
        }
        got.extend_from_slice(&output[at..at + 3]);
        right.extend_from_slice(&pixel);
    }
    let work_units = u64::from(n_samples) * u64::from(spec.samples_per_pixel);
    if task.gpu {
        // A GPU's rounding may move a pixel by a level, and now and then
        // send one sample's path another way, which can move that pixel
        // far: the sampled pixels agree when all but one are within a few
        // levels in every channel.
        let off = pixels_off(&got, &right);
        if off > PIXELS_OFF_MAX {
            return Ok(Spot::failed(format!(
                "{off} of {n_samples} sampled pixels are more than {PIXEL_LEVELS_MAX} levels from the recomputed \
                 ones (at most {PIXELS_OFF_MAX} may be)"
            )));
        }
        let detail =
            format!("{n_samples} of {n_pixels} pixels agree within {PIXEL_LEVELS_MAX} levels ({off} further off)");
        return Ok(Spot { passed: true, detail, work_units });
    }
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
