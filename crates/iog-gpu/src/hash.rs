//! The hash workload's nonce search as a wgpu compute kernel.
//!
//! The host prepares the message's last blocks once per task (for SHA-256d
//! also the state after the data's full blocks, so a long prefix costs
//! nothing per nonce); the kernel ORs in each nonce, hashes, and records
//! the offsets of qualifying nonces. Batches grow until one takes
//! [`BATCH_TARGET`], so a slow software adapter and an H100 both spend
//! little time between dispatches.

use std::time::{Duration, Instant};

use iog_workloads::hash::{FOUND_MAX, HashAlgorithm};
use iog_workloads::{HashFinds, HashSearch};
use sha2::digest::generic_array::GenericArray;
use wgpu::util::DeviceExt;

use crate::{Gpu, GpuError};

/// Invocations per workgroup, as the shader declares.
const WORKGROUP: u32 = 256;
/// Most workgroups in one dispatch (wgpu's default limit is 65535).
const GROUPS_MAX: u32 = 32_768;
/// Most nonces one invocation tests in one dispatch.
const PER_THREAD_MAX: u32 = 256;
/// How long a batch should take once sizes have grown: long enough that
/// dispatch and read-back are a small share, short enough to stop soon.
const BATCH_TARGET: Duration = Duration::from_millis(100);
/// Offsets the found buffer holds after its count.
const CAPACITY: u32 = FOUND_MAX as u32;
/// Longest BLAKE3 message the kernel hashes: one chunk.
const BLAKE3_CHUNK: usize = 1024;

/// The kernel's uniform parameters, laid out as `Params` in `hash.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    nonce_lo: u32,
    nonce_hi: u32,
    count: u32,
    stride: u32,
    per_thread: u32,
    difficulty: u32,
    n_blocks: u32,
    nonce_pos: u32,
    last_block_len: u32,
    capacity: u32,
    pad: [u32; 2],
}

/// A search's fixed inputs for the kernel.
struct Prepared {
    template: Vec<u32>,
    n_blocks: u32,
    nonce_pos: u32,
    last_block_len: u32,
}

/// SHA-256d: the state after the data's full 64-byte blocks, then the
/// rest of the message (data tail, nonce, padding, length) as big-endian
/// words of one or two blocks.
fn prepare_sha256d(data: &[u8]) -> Prepared {
    let full = data.len() / 64 * 64;
    let mut state = [0x6a09e667u32, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
    let blocks: Vec<GenericArray<u8, _>> = data[..full].chunks_exact(64).map(GenericArray::clone_from_slice).collect();
    sha2::compress256(&mut state, &blocks);
    let tail = &data[full..];
    let mut rest = tail.to_vec();
    let nonce_pos = rest.len() as u32;
    rest.extend_from_slice(&[0; 8]);
    rest.push(0x80);
    while rest.len() % 64 != 56 {
        rest.push(0);
    }
    let bits = (data.len() as u64 + 8) * 8;
    rest.extend_from_slice(&bits.to_be_bytes());
    let mut template = state.to_vec();
    template.extend(rest.chunks_exact(4).map(|word| u32::from_be_bytes(word.try_into().expect("4 bytes"))));
    Prepared { template, n_blocks: (rest.len() / 64) as u32, nonce_pos, last_block_len: 64 }
}

/// BLAKE3 of one chunk: the whole message, zero-padded to whole blocks, as
/// little-endian words; `None` when the message is longer than a chunk.
fn prepare_blake3(data: &[u8]) -> Option<Prepared> {
    let length = data.len() + 8;
    if length > BLAKE3_CHUNK {
        return None;
    }
    let n_blocks = length.div_ceil(64);
    let mut message = data.to_vec();
    message.resize(n_blocks * 64, 0);
    let template = message.chunks_exact(4).map(|word| u32::from_le_bytes(word.try_into().expect("4 bytes"))).collect();
    Some(Prepared {
        template,
        n_blocks: n_blocks as u32,
        nonce_pos: data.len() as u32,
        last_block_len: (length - (n_blocks - 1) * 64) as u32,
    })
}

/// SHA-256's round constants.
const K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98,
    0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
    0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8,
    0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
    0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
    0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
    0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2,
];

/// `hash.wgsl` with its SHA-256 compression written out: 64 rounds over a
/// rolling window of 16 message words held in named variables. Drivers
/// keep named variables in registers; an array indexed in a loop may live
/// in slow local memory unless the driver unrolls the loop itself.
fn shader_source() -> String {
    let mut body = String::from(
        "fn sha256_compress(state: ptr<function, array<u32, 8>>, block: ptr<function, array<u32, 16>>) {\n",
    );
    for i in 0..16 {
        body.push_str(&format!("    var w{i} = (*block)[{i}];\n"));
    }
    for (i, name) in ["a", "b", "c", "d", "e", "f", "g", "h"].iter().enumerate() {
        body.push_str(&format!("    var {name} = (*state)[{i}];\n"));
    }
    for (i, k) in K.iter().enumerate() {
        let w = i % 16;
        if i >= 16 {
            let (w15, w2, w7) = ((i + 1) % 16, (i + 14) % 16, (i + 9) % 16);
            body.push_str(&format!(
                "    w{w} += (rotr(w{w15}, 7u) ^ rotr(w{w15}, 18u) ^ (w{w15} >> 3u)) + w{w7} \
                 + (rotr(w{w2}, 17u) ^ rotr(w{w2}, 19u) ^ (w{w2} >> 10u));\n"
            ));
        }
        body.push_str(&format!(
            "    {{\n        let t1 = h + (rotr(e, 6u) ^ rotr(e, 11u) ^ rotr(e, 25u)) + ((e & f) ^ (~e & g)) + {k:#010x}u + w{w};\n\
             \x20       let t2 = (rotr(a, 2u) ^ rotr(a, 13u) ^ rotr(a, 22u)) + ((a & b) ^ (a & c) ^ (b & c));\n\
             \x20       h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;\n    }}\n"
        ));
    }
    for (i, name) in ["a", "b", "c", "d", "e", "f", "g", "h"].iter().enumerate() {
        body.push_str(&format!("    (*state)[{i}] += {name};\n"));
    }
    body.push_str("}\n");
    include_str!("hash.wgsl").replace("SHA256_COMPRESS", &body).replace("BLAKE3_COMPRESS", &blake3_compress())
}

/// BLAKE3's message word permutation, applied between rounds.
const PERMUTATION: [usize; 16] = [2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8];

/// BLAKE3's compression with its 7 rounds written out over named
/// variables; each round's message words are picked here, so the kernel
/// permutes nothing.
pub(crate) fn blake3_compress() -> String {
    let mut body = String::from(
        "fn blake3_compress(cv: ptr<function, array<u32, 8>>, block: ptr<function, array<u32, 16>>, \
         counter: u32, block_len: u32, flags: u32) {\n",
    );
    for i in 0..16 {
        body.push_str(&format!("    let m{i} = (*block)[{i}];\n"));
    }
    for i in 0..8 {
        body.push_str(&format!("    var v{i} = (*cv)[{i}];\n"));
    }
    for (i, iv) in [0x6a09e667u32, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a].iter().enumerate() {
        body.push_str(&format!("    var v{} = {iv:#010x}u;\n", i + 8));
    }
    body.push_str("    var v12 = counter;\n    var v13 = 0u;\n    var v14 = block_len;\n    var v15 = flags;\n");
    let mut schedule: [usize; 16] = std::array::from_fn(|i| i);
    let lanes = [
        (0, 4, 8, 12),
        (1, 5, 9, 13),
        (2, 6, 10, 14),
        (3, 7, 11, 15),
        (0, 5, 10, 15),
        (1, 6, 11, 12),
        (2, 7, 8, 13),
        (3, 4, 9, 14),
    ];
    for _ in 0..7 {
        for (j, (a, b, c, d)) in lanes.iter().enumerate() {
            let (x, y) = (schedule[2 * j], schedule[2 * j + 1]);
            body.push_str(&format!(
                "    v{a} = v{a} + v{b} + m{x}; v{d} = rotr(v{d} ^ v{a}, 16u); v{c} = v{c} + v{d}; v{b} = rotr(v{b} ^ v{c}, 12u);\n\
                 \x20   v{a} = v{a} + v{b} + m{y}; v{d} = rotr(v{d} ^ v{a}, 8u); v{c} = v{c} + v{d}; v{b} = rotr(v{b} ^ v{c}, 7u);\n"
            ));
        }
        schedule = std::array::from_fn(|i| schedule[PERMUTATION[i]]);
    }
    for i in 0..8 {
        body.push_str(&format!("    (*cv)[{i}] = v{i} ^ v{};\n", i + 8));
    }
    body.push_str("}\n");
    body
}

/// The compiled search pipelines of one device.
pub(crate) struct HashKernels {
    layout: wgpu::BindGroupLayout,
    sha256d: wgpu::ComputePipeline,
    blake3: wgpu::ComputePipeline,
}

impl HashKernels {
    pub(crate) fn new(device: &wgpu::Device) -> HashKernels {
        use wgpu::BufferBindingType::{Storage, Uniform};
        let bindings = [Uniform, Storage { read_only: true }, Storage { read_only: false }];
        let (layout, pipelines) = crate::compute_pipelines(
            device,
            "iog hash search",
            shader_source(),
            &bindings,
            &["search_sha256d", "search_blake3"],
        );
        let [sha256d, blake3] = <[wgpu::ComputePipeline; 2]>::try_from(pipelines).expect("two entry points");
        HashKernels { sha256d, blake3, layout }
    }
}

/// How a search sizes its batches: it starts at `groups` workgroups of
/// `per_thread` nonces per invocation, and grows them while a batch is
/// quick unless `fixed`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sizing {
    pub(crate) groups: u32,
    pub(crate) per_thread: u32,
    pub(crate) fixed: bool,
}

impl Sizing {
    /// Small first batches that grow: a slow adapter's first batch takes
    /// milliseconds, a fast one's grows to the target in a few batches.
    pub(crate) const GROWING: Sizing = Sizing { groups: 64, per_thread: 1, fixed: false };
}

/// Runs a search on `gpu`; `Ok(None)` for a BLAKE3 message longer than one
/// chunk, which the kernel does not hash.
pub(crate) fn search(gpu: &Gpu, search: &HashSearch<'_>) -> Result<Option<HashFinds>, GpuError> {
    search_sized(gpu, search, Sizing::GROWING)
}

/// [`search`] with its batches sized by `sizing`.
pub(crate) fn search_sized(gpu: &Gpu, search: &HashSearch<'_>, sizing: Sizing) -> Result<Option<HashFinds>, GpuError> {
    let (prepared, pipeline) = match search.algorithm {
        HashAlgorithm::Sha256d => (prepare_sha256d(search.data), &gpu.hash.sha256d),
        HashAlgorithm::Blake3 => match prepare_blake3(search.data) {
            Some(prepared) => (prepared, &gpu.hash.blake3),
            None => return Ok(None),
        },
    };
    let device = &gpu.device;
    let template = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("template"),
        contents: bytemuck::cast_slice(&prepared.template),
        usage: wgpu::BufferUsages::STORAGE,
    });
    let params_buffer = crate::new_buffer(
        device,
        "params",
        size_of::<Params>() as u64,
        wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
    );
    let found_bytes = u64::from(CAPACITY + 1) * 4;
    let found_buffer = crate::new_buffer(
        device,
        "found",
        found_bytes,
        wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
    );
    let readback = crate::new_buffer(
        device,
        "found readback",
        found_bytes,
        wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
    );
    let bind_group =
        crate::bind_buffers(device, "iog hash search", &gpu.hash.layout, &[&params_buffer, &template, &found_buffer]);

    let mut finds = HashFinds { nonces: Vec::new(), count: 0 };
    let (mut groups, mut per_thread) = (sizing.groups.clamp(1, GROUPS_MAX), sizing.per_thread.clamp(1, PER_THREAD_MAX));
    let mut done = 0u64;
    while done < search.nonce_count {
        let batch_max = u64::from(groups * WORKGROUP) * u64::from(per_thread);
        let batch = batch_max.min(search.nonce_count - done) as u32;
        let first = search.nonce_start + done;
        let groups_now = groups.min(u64::from(batch).div_ceil(u64::from(WORKGROUP)) as u32).max(1);
        let params = Params {
            nonce_lo: first as u32,
            nonce_hi: (first >> 32) as u32,
            count: batch,
            stride: groups_now * WORKGROUP,
            per_thread: u64::from(batch).div_ceil(u64::from(groups_now * WORKGROUP)) as u32,
            difficulty: search.difficulty_bits,
            n_blocks: prepared.n_blocks,
            nonce_pos: prepared.nonce_pos,
            last_block_len: prepared.last_block_len,
            capacity: CAPACITY,
            pad: [0; 2],
        };
        let started = Instant::now();
        gpu.queue.write_buffer(&params_buffer, 0, bytemuck::bytes_of(&params));
        let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("hash batch") });
        encoder.clear_buffer(&found_buffer, 0, None);
        {
            let mut pass = encoder
                .begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("hash batch"), timestamp_writes: None });
            pass.set_pipeline(pipeline);
            pass.set_bind_group(0, &bind_group, &[]);
            pass.dispatch_workgroups(groups_now, 1, 1);
        }
        encoder.copy_buffer_to_buffer(&found_buffer, 0, &readback, 0, found_bytes);
        gpu.queue.submit([encoder.finish()]);
        let words = gpu.read(&readback)?;
        let count = u64::from(words[0]);
        finds.count += count;
        let room = FOUND_MAX as usize - finds.nonces.len();
        if room > 0 && count > 0 {
            if count > u64::from(CAPACITY) {
                // More finds than the buffer kept: which are first is
                // unknown, so the CPU searches this batch again, and its
                // count must be the kernel's.
                let again = iog_workloads::hash::search_range(
                    search.algorithm,
                    search.data,
                    first,
                    u64::from(batch),
                    search.difficulty_bits,
                );
                if again.count != count {
                    return Err(GpuError::Device(format!(
                        "{}: the kernel counted {count} finds in nonces {first}.., the CPU {}",
                        gpu.name, again.count
                    )));
                }
                finds.nonces.extend(again.nonces.into_iter().take(room));
            } else {
                let mut nonces: Vec<u64> =
                    words[1..=count as usize].iter().map(|&offset| first + u64::from(offset)).collect();
                nonces.sort_unstable();
                finds.nonces.extend(nonces.into_iter().take(room));
            }
        }
        done += u64::from(batch);
        // Grow the batch while one takes well under the target.
        if !sizing.fixed && started.elapsed() * 4 < BATCH_TARGET && u64::from(batch) == batch_max {
            if groups < GROUPS_MAX {
                groups = (groups * 4).min(GROUPS_MAX);
            } else if per_thread < PER_THREAD_MAX {
                per_thread *= 2;
            }
        }
    }
    Ok(Some(finds))
}

/// Runs the kernels on a few short searches whose answers the CPU gives,
/// at block edges, across the 32-bit carry and with several nonces per
/// invocation; a device whose kernels disagree is not used.
pub(crate) fn self_test(gpu: &Gpu) -> Result<(), GpuError> {
    let data = [0x5a_u8; 100];
    let sizings = [Sizing::GROWING, Sizing { groups: 1, per_thread: 3, fixed: true }];
    for algorithm in [HashAlgorithm::Sha256d, HashAlgorithm::Blake3] {
        for (length, sizing) in [(0, sizings[0]), (55, sizings[1]), (100, sizings[0])] {
            let search = HashSearch {
                algorithm,
                data: &data[..length],
                nonce_start: (1 << 32) - 1000,
                nonce_count: 2000,
                difficulty_bits: 5,
            };
            let expected = iog_workloads::hash::search_range(algorithm, search.data, search.nonce_start, 2000, 5);
            let got = search_sized(gpu, &search, sizing)?;
            if got.as_ref() != Some(&expected) {
                return Err(GpuError::Device(format!(
                    "{}: {algorithm:?} over {length} bytes found {:?}, the CPU {:?}",
                    gpu.name,
                    got.map(|finds| finds.count),
                    expected.count
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sha256d_template_pads_the_message_as_sha256_does() {
        for length in [0usize, 1, 47, 48, 55, 56, 63, 64, 100, 119, 120, 4096] {
            let data: Vec<u8> = (0..length).map(|i| i as u8).collect();
            let prepared = prepare_sha256d(&data);
            let tail = length % 64;
            assert_eq!(prepared.nonce_pos as usize, tail);
            let expected_blocks = if tail + 8 + 9 <= 64 { 1 } else { 2 };
            assert_eq!(prepared.n_blocks, expected_blocks, "length {length}");
            assert_eq!(prepared.template.len(), 8 + 16 * expected_blocks as usize);
        }
    }

    #[test]
    fn blake3_messages_past_one_chunk_are_left_to_the_cpu() {
        assert!(prepare_blake3(&[0; 1016]).is_some());
        assert!(prepare_blake3(&[0; 1017]).is_none());
        let prepared = prepare_blake3(&[7; 56]).unwrap();
        assert_eq!((prepared.n_blocks, prepared.last_block_len), (1, 64));
        let prepared = prepare_blake3(&[7; 57]).unwrap();
        assert_eq!((prepared.n_blocks, prepared.last_block_len), (2, 1));
    }
}
