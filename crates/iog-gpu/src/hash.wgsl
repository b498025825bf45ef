// Nonce search kernels for the `hash` workload: SHA-256d and BLAKE3 of
// `data || nonce` (nonce as 8 little-endian bytes). Each invocation tests
// `per_thread` nonces; a nonce whose hash has at least `difficulty` leading
// zero bits (the hash read as a big-endian number) is counted in `found[0]`
// and, while there is room, its offset in the batch is stored after it.
// The order of stored offsets is arbitrary; the host sorts them.
//
// The host prepares `prepared`: the message's last blocks with the nonce's
// bytes left zero, so a kernel only ORs in the nonce.

struct Params {
    // The batch's first nonce, as two halves.
    nonce_lo: u32,
    nonce_hi: u32,
    // Nonces in the batch.
    count: u32,
    // Invocations in the whole dispatch.
    stride: u32,
    // Nonces each invocation tests.
    per_thread: u32,
    // Leading zero bits a hash needs, 1 to 64.
    difficulty: u32,
    // Blocks the template holds.
    n_blocks: u32,
    // Byte offset of the nonce in the template's blocks.
    nonce_pos: u32,
    // BLAKE3: bytes in the last block.
    last_block_len: u32,
    // Room for offsets in `found`, after the count.
    capacity: u32,
    pad0: u32,
    pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
// SHA-256: words 0..8 the state after the data's full blocks, then the
// blocks as big-endian words. BLAKE3: the blocks as little-endian words.
@group(0) @binding(1) var<storage, read> prepared: array<u32>;
@group(0) @binding(2) var<storage, read_write> found: array<atomic<u32>>;

fn rotr(x: u32, n: u32) -> u32 {
    return (x >> n) | (x << (32u - n));
}

// fn sha256_compress(state: ptr<function, array<u32, 8>>, block: ptr<function, array<u32, 16>>)
// compresses one block into the state, its 64 rounds written out by the
// host (hash.rs) so that no array is indexed at run time.
SHA256_COMPRESS

// Whether the hash whose first 8 bytes, read big-endian, are `hi` then
// `lo` has at least `params.difficulty` leading zero bits.
fn meets(hi: u32, lo: u32) -> bool {
    var zeros = countLeadingZeros(hi);
    if (hi == 0u) {
        zeros = 32u + countLeadingZeros(lo);
    }
    return zeros >= params.difficulty;
}

// The nonce `offset` places after the batch's first, as two halves.
fn nonce_at(offset: u32) -> vec2<u32> {
    let lo = params.nonce_lo + offset;
    let carry = select(0u, 1u, lo < offset);
    return vec2<u32>(lo, params.nonce_hi + carry);
}

fn record(offset: u32) {
    let slot = atomicAdd(&found[0], 1u);
    if (slot < params.capacity) {
        atomicStore(&found[slot + 1u], offset);
    }
}

// Byte `k` (0 to 7) of the little-endian nonce.
fn nonce_byte(nonce: vec2<u32>, k: u32) -> u32 {
    if (k < 4u) {
        return (nonce.x >> (8u * k)) & 0xffu;
    }
    return (nonce.y >> (8u * (k - 4u))) & 0xffu;
}

fn sha256d(nonce: vec2<u32>) -> bool {
    var blocks: array<u32, 32>;
    for (var i = 0u; i < 16u * params.n_blocks; i++) {
        blocks[i] = prepared[8u + i];
    }
    for (var k = 0u; k < 8u; k++) {
        let pos = params.nonce_pos + k;
        blocks[pos / 4u] |= nonce_byte(nonce, k) << (24u - 8u * (pos % 4u));
    }
    var state: array<u32, 8>;
    for (var i = 0u; i < 8u; i++) {
        state[i] = prepared[i];
    }
    for (var b = 0u; b < params.n_blocks; b++) {
        var block: array<u32, 16>;
        for (var i = 0u; i < 16u; i++) {
            block[i] = blocks[16u * b + i];
        }
        sha256_compress(&state, &block);
    }
    // The second hash: the 32-byte digest, padded, in one block.
    var second: array<u32, 16>;
    for (var i = 0u; i < 8u; i++) {
        second[i] = state[i];
    }
    second[8] = 0x80000000u;
    second[15] = 256u;
    var out = array<u32, 8>(
        0x6a09e667u, 0xbb67ae85u, 0x3c6ef372u, 0xa54ff53au, 0x510e527fu, 0x9b05688cu, 0x1f83d9abu, 0x5be0cd19u,
    );
    sha256_compress(&out, &second);
    return meets(out[0], out[1]);
}

@compute @workgroup_size(256)
fn search_sha256d(@builtin(global_invocation_id) id: vec3<u32>) {
    for (var j = 0u; j < params.per_thread; j++) {
        let offset = j * params.stride + id.x;
        if (offset >= params.count) {
            return;
        }
        if (sha256d(nonce_at(offset))) {
            record(offset);
        }
    }
}

// BLAKE3, for messages of one chunk (at most 1024 bytes).

var<private> IV: array<u32, 8> = array<u32, 8>(
    0x6a09e667u, 0xbb67ae85u, 0x3c6ef372u, 0xa54ff53au, 0x510e527fu, 0x9b05688cu, 0x1f83d9abu, 0x5be0cd19u,
);
const CHUNK_START: u32 = 1u;
const CHUNK_END: u32 = 2u;
const ROOT: u32 = 8u;

// fn blake3_compress(cv: ptr<function, array<u32, 8>>, block: ptr<function, array<u32, 16>>,
//                    counter: u32, block_len: u32, flags: u32)
// compresses one block (of chunk `counter`) into the chaining value, its 7
// rounds written out by the host (hash.rs) with the message permutation
// applied there.
BLAKE3_COMPRESS

fn bswap(x: u32) -> u32 {
    return ((x & 0xffu) << 24u) | ((x & 0xff00u) << 8u) | ((x >> 8u) & 0xff00u) | (x >> 24u);
}

fn blake3(nonce: vec2<u32>) -> bool {
    var cv = IV;
    for (var b = 0u; b < params.n_blocks; b++) {
        var block: array<u32, 16>;
        for (var i = 0u; i < 16u; i++) {
            block[i] = prepared[16u * b + i];
        }
        for (var k = 0u; k < 8u; k++) {
            let pos = params.nonce_pos + k;
            if (pos / 64u == b) {
                block[(pos % 64u) / 4u] |= nonce_byte(nonce, k) << (8u * (pos % 4u));
            }
        }
        var flags = 0u;
        var block_len = 64u;
        if (b == 0u) {
            flags |= CHUNK_START;
        }
        if (b + 1u == params.n_blocks) {
            flags |= CHUNK_END | ROOT;
            block_len = params.last_block_len;
        }
        blake3_compress(&cv, &block, 0u, block_len, flags);
    }
    return meets(bswap(cv[0]), bswap(cv[1]));
}

@compute @workgroup_size(256)
fn search_blake3(@builtin(global_invocation_id) id: vec3<u32>) {
    for (var j = 0u; j < params.per_thread; j++) {
        let offset = j * params.stride + id.x;
        if (offset >= params.count) {
            return;
        }
        if (blake3(nonce_at(offset))) {
            record(offset);
        }
    }
}
