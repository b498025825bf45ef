//! The compute challenge's products on the GPU (`challenge.wgsl`): the
//! matrices generated on the device from their keys, multiplied exactly
//! in i32 through `dot4I8Packed`, and C hashed into Merkle leaves and row
//! hashes there, a band of rows at a time, so only the row hashes (32
//! bytes a row) come back. The host folds them into the product's root
//! (`iog_trust::compute::commit_rows`); the openings recompute their rows
//! on the CPU. Every step is integer arithmetic: the row hashes are the
//! CPU's (`iog_trust::compute::product_row_hashes`) bit for bit.

use iog_trust::compute::{CHUNK_ENTRIES, ProductSpec};

use crate::{Gpu, GpuError};

/// Words of A and B (four entries each) one step of the product's tiles
/// takes; each packed line is padded to a multiple of it.
const TILE_K_WORDS: u32 = 8;
/// Rows and columns of C one workgroup computes.
const TILE: u32 = 64;
/// Workgroup size of the one-dimensional kernels.
const WORKGROUP: u32 = 64;
/// Bytes of C a band holds at most: rows are computed and hashed this
/// many at a time (at least one tile of rows).
const BAND_BYTES: u64 = 32 << 20;
/// Multiply-add ops of a band at most (2n² a row): about 3 s of Mesa's
/// llvmpipe on two cores and well under a millisecond of a large GPU, so
/// a challenge given up stops soon on any device.
const BAND_OPS: u64 = 1 << 34;

/// The kernel's uniform parameters, laid out as `Params` in `challenge.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n: u32,
    stride: u32,
    chunks_per_row: u32,
    row0: u32,
    rows: u32,
    rows_base: u32,
    key_a: [u32; 2],
    key_b: [u32; 2],
    pad1: [u32; 2],
}

pub(crate) struct ChallengeKernels {
    layout: wgpu::BindGroupLayout,
    generate: wgpu::ComputePipeline,
    multiply: wgpu::ComputePipeline,
    hash_leaves: wgpu::ComputePipeline,
    hash_rows: wgpu::ComputePipeline,
}

impl ChallengeKernels {
    pub(crate) fn new(device: &wgpu::Device) -> ChallengeKernels {
        // The module's `requires` directive must come first.
        let source = [include_str!("challenge.wgsl"), include_str!("u64.wgsl")]
            .concat()
            .replace("BLAKE3_COMPRESS", &crate::hash::blake3_compress());
        use wgpu::BufferBindingType::{Storage, Uniform};
        let writable = Storage { read_only: false };
        let bindings = [Uniform, writable, writable, writable, writable];
        let (layout, pipelines) = crate::compute_pipelines(
            device,
            "iog compute challenge",
            source,
            &bindings,
            &["generate", "multiply", "hash_leaves", "hash_rows"],
        );
        let [generate, multiply, hash_leaves, hash_rows] =
            <[wgpu::ComputePipeline; 4]>::try_from(pipelines).expect("one pipeline per entry point");
        ChallengeKernels { layout, generate, multiply, hash_leaves, hash_rows }
    }
}

fn split(key: u64) -> [u32; 2] {
    [key as u32, (key >> 32) as u32]
}

/// The hashes of every row of each product, in order; `Ok(None)` when the
/// device cannot hold a product of this size in one storage binding (the
/// CPU computes it instead). Products must share one n.
/// Between bands it waits for the device and asks `keep_going`; once that
/// says no, the work stops with an error.
pub(crate) fn row_hashes(
    gpu: &Gpu,
    products: &[ProductSpec],
    keep_going: &(dyn Fn() -> bool + Sync),
) -> Result<Option<Vec<Vec<[u8; 32]>>>, GpuError> {
    row_hashes_in_bands(gpu, products, BAND_BYTES, keep_going)
}

/// [`row_hashes`] with bands of about `band_bytes` of C.
fn row_hashes_in_bands(
    gpu: &Gpu,
    products: &[ProductSpec],
    band_bytes: u64,
    keep_going: &(dyn Fn() -> bool + Sync),
) -> Result<Option<Vec<Vec<[u8; 32]>>>, GpuError> {
    let Some(first) = products.first() else {
        return Ok(Some(Vec::new()));
    };
    let n = first.n;
    if products.iter().any(|product| product.n != n) || n == 0 {
        return Err(GpuError::Device(format!("{}: the products of one challenge share one n > 0", gpu.name)));
    }
    let device = &gpu.device;
    let limits = device.limits();
    let binding_max = limits.max_storage_buffer_binding_size.min(limits.max_buffer_size);
    let stride = n.div_ceil(4 * TILE_K_WORDS) * TILE_K_WORDS;
    let matrix_bytes = u64::from(n) * u64::from(stride) * 4;
    let chunks_per_row = n.div_ceil(CHUNK_ENTRIES);
    let row_bytes = u64::from(n) * 4;
    let rows_by_ops = BAND_OPS / (2 * u64::from(n) * u64::from(n));
    let band_rows = ((band_bytes.min(binding_max) / row_bytes).min(rows_by_ops) as u32 / TILE * TILE)
        .clamp(TILE, n.next_multiple_of(TILE));
    let c_bytes = u64::from(band_rows) * row_bytes;
    let leaves_bytes = u64::from(band_rows) * u64::from(chunks_per_row) * 32;
    let rows_bytes = u64::from(n) * 32;
    let groups_max = limits.max_compute_workgroups_per_dimension;
    if [matrix_bytes, c_bytes, leaves_bytes + rows_bytes].iter().any(|&bytes| bytes > binding_max)
        || n > groups_max
        || n.div_ceil(TILE) > groups_max
    {
        return Ok(None);
    }
    let storage = |label: &str, size: u64, extra: wgpu::BufferUsages| {
        crate::new_buffer(device, label, size, wgpu::BufferUsages::STORAGE | extra)
    };
    let a = storage("challenge a", matrix_bytes, wgpu::BufferUsages::empty());
    let b = storage("challenge b", matrix_bytes, wgpu::BufferUsages::empty());
    let c = storage("challenge c band", c_bytes, wgpu::BufferUsages::empty());
    // The band's leaves, then every row's hash.
    let hashes = storage("challenge hashes", leaves_bytes + rows_bytes, wgpu::BufferUsages::COPY_SRC);
    let readback = crate::new_buffer(
        device,
        "challenge rows readback",
        rows_bytes,
        wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
    );
    let params_buffer = crate::new_buffer(
        device,
        "challenge params",
        size_of::<Params>() as u64,
        wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
    );
    let bind_group = crate::bind_buffers(
        device,
        "iog compute challenge",
        &gpu.challenge.layout,
        &[&params_buffer, &a, &b, &c, &hashes],
    );
    let kernels = &gpu.challenge;
    let run = |params: &Params, steps: &[(&wgpu::ComputePipeline, [u32; 3])], copy_rows: bool| {
        gpu.queue.write_buffer(&params_buffer, 0, bytemuck::bytes_of(params));
        let mut encoder =
            device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("compute challenge") });
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("compute challenge"),
                timestamp_writes: None,
            });
            pass.set_bind_group(0, &bind_group, &[]);
            for (pipeline, [x, y, z]) in steps {
                pass.set_pipeline(pipeline);
                pass.dispatch_workgroups(*x, *y, *z);
            }
        }
        if copy_rows {
            encoder.copy_buffer_to_buffer(&hashes, leaves_bytes, &readback, 0, rows_bytes);
        }
        gpu.queue.submit([encoder.finish()]);
    };

    let mut out = Vec::with_capacity(products.len());
    for product in products {
        let mut params = Params {
            n,
            stride,
            chunks_per_row,
            rows_base: (leaves_bytes / 4) as u32,
            key_a: split(product.key_a),
            key_b: split(product.key_b),
            ..Params::default()
        };
        run(&params, &[(&kernels.generate, [stride.div_ceil(WORKGROUP), n, 2])], false);
        let mut row0 = 0;
        while row0 < n {
            params.row0 = row0;
            params.rows = band_rows.min(n - row0);
            let last = row0 + params.rows == n;
            run(
                &params,
                &[
                    (&kernels.multiply, [n.div_ceil(TILE), params.rows.div_ceil(TILE), 1]),
                    (&kernels.hash_leaves, [chunks_per_row.div_ceil(WORKGROUP), params.rows, 1]),
                    (&kernels.hash_rows, [params.rows.div_ceil(WORKGROUP), 1, 1]),
                ],
                last,
            );
            row0 += params.rows;
            if !last {
                gpu.wait()?;
                if !keep_going() {
                    return Err(GpuError::Device(format!("{}: the compute challenge was given up", gpu.name)));
                }
            }
        }
        let words = gpu.read(&readback)?;
        out.push(
            words
                .chunks_exact(8)
                .map(|hash| {
                    let mut bytes = [0u8; 32];
                    for (slot, word) in bytes.chunks_exact_mut(4).zip(hash) {
                        slot.copy_from_slice(&word.to_le_bytes());
                    }
                    bytes
                })
                .collect(),
        );
    }
    Ok(Some(out))
}

/// Checks the kernels against the CPU at open: rows of one short chunk,
/// of a whole chunk (a leaf over two BLAKE3 chunks) and a short one, and of
/// an odd number of chunks; one band and several (the last one short).
pub(crate) fn self_test(gpu: &Gpu) -> Result<(), GpuError> {
    let cases = [
        (16u32, 1u64, 2u64, BAND_BYTES),
        (300, 0x0123_4567_89ab_cdef, u64::MAX, 64 * 300 * 4),
        (520, 7, 1 << 63, BAND_BYTES),
    ];
    for (n, key_a, key_b, band_bytes) in cases {
        let product = ProductSpec { n, key_a, key_b };
        let got = row_hashes_in_bands(gpu, &[product], band_bytes, &|| true)?;
        let want = iog_trust::compute::product_row_hashes(&product);
        match got {
            Some(got) if got == [want] => {}
            Some(_) => {
                return Err(GpuError::Device(format!(
                    "{}: the compute challenge's row hashes at n = {n} differ from the CPU's",
                    gpu.name
                )));
            }
            None => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_challenge_given_up_stops_between_bands() {
        let discovery = crate::discover(crate::DiscoverOptions { software: true });
        let Some(adapter) = discovery.adapters.first() else {
            assert!(std::env::var_os("IOG_REQUIRE_GPU_ADAPTER").is_none(), "IOG_REQUIRE_GPU_ADAPTER is set");
            return;
        };
        let gpu = Gpu::open("gpu0", adapter).expect("the kernels compile");
        // Four bands of 64 rows: asked after each of the first two, the
        // kernel goes on after the first and stops after the second.
        let asked = std::sync::atomic::AtomicU32::new(0);
        let keep_going = || asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0;
        let product = ProductSpec { n: 256, key_a: 1, key_b: 2 };
        let err = row_hashes_in_bands(&gpu, &[product], 64 * 256 * 4, &keep_going).unwrap_err();
        assert!(err.to_string().contains("given up"), "{err}");
        assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), 2);
        let whole = row_hashes_in_bands(&gpu, &[product], 64 * 256 * 4, &|| true).unwrap().unwrap();
        assert_eq!(whole, [iog_trust::compute::product_row_hashes(&product)]);
    }
}
