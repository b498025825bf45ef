// The compute challenge (iog-trust/src/compute.rs) on the GPU: generate A
// and B of one product from their keys, multiply them exactly in i32 a
// band of rows at a time, hash each chunk of 256 entries of C into a
// Merkle leaf, and fold each row's leaves into the row's hash. The host
// folds the row hashes into the product's root.
//
// Matrices are packed four i8 entries to a u32, A by rows and B by
// columns, each line padded with zero entries to `stride` words (a
// multiple of TILE_K) so every entry of C is a dot product of two runs of
// whole words, which `dot4I8Packed` takes four entries at a time.

requires packed_4x8_integer_dot_product;

struct Params {
    n: u32,
    // Words per packed line.
    stride: u32,
    // Merkle leaves per row of C: ceil(n / 256).
    chunks_per_row: u32,
    // The band's first row, and its rows.
    row0: u32,
    rows: u32,
    // Where every row's hash starts in `hashes` (words).
    rows_base: u32,
    key_a: vec2<u32>,
    key_b: vec2<u32>,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> a: array<u32>;
@group(0) @binding(2) var<storage, read_write> b: array<u32>;
// The band of C, row by row (n entries each), as i32 bits.
@group(0) @binding(3) var<storage, read_write> c: array<u32>;
// From word 0 the band's leaf hashes, folded in place into its row
// hashes; from `rows_base` every row's hash. Eight words a hash.
@group(0) @binding(4) var<storage, read_write> leaves: array<u32>;

const CHUNK_ENTRIES: u32 = 256u;
const LEAF_PREFIX: u32 = 0u;
const NODE_PREFIX: u32 = 1u;
// A workgroup of 16×16 computes a 64×64 tile of C, 4×4 entries each,
// TILE_K words (32 entries) of the dot products at a time.
const TILE: u32 = 64u;
const TILE_K: u32 = 8u;

// Entry `idx` of a matrix: byte idx % 8 of mix64(key + (idx / 8 + 1)·γ).
fn word64(key: vec2<u32>, word_idx: u32) -> vec2<u32> {
    return mix64(add64(key, mul64(vec2<u32>(word_idx + 1u, 0u), GAMMA)));
}

// One packed word of line `line` of A (z = 0) or B (z = 1): entries
// 4w .. 4w + 3 of the line, zero past n.
@compute @workgroup_size(64)
fn generate(@builtin(global_invocation_id) id: vec3<u32>) {
    let w = id.x;
    let line = id.y;
    if (w >= params.stride || line >= params.n) {
        return;
    }
    var key = params.key_a;
    if (id.z == 1u) {
        key = params.key_b;
    }
    var packed = 0u;
    // Entry indices fit in u32: n² ≤ 2^28.
    for (var e = 0u; e < 4u; e++) {
        let k = 4u * w + e;
        if (k < params.n) {
            let idx = line * params.n + k;
            let word = word64(key, idx / 8u);
            let shift = 8u * (idx % 8u);
            var byte = 0u;
            if (shift < 32u) {
                byte = (word.x >> shift) & 0xffu;
            } else {
                byte = (word.y >> (shift - 32u)) & 0xffu;
            }
            packed |= byte << (8u * e);
        }
    }
    if (id.z == 1u) {
        b[line * params.stride + w] = packed;
    } else {
        a[line * params.stride + w] = packed;
    }
}

var<workgroup> tile_a: array<array<u32, TILE_K>, TILE>;
var<workgroup> tile_b: array<array<u32, TILE_K>, TILE>;

// C[i][j] for rows row0 .. row0 + rows of the band.
@compute @workgroup_size(16, 16)
fn multiply(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(local_invocation_id) local: vec3<u32>,
    @builtin(local_invocation_index) flat: u32,
) {
    let band_i0 = group.y * TILE;
    let j0 = group.x * TILE;
    var acc: array<array<i32, 4>, 4>;
    for (var kw = 0u; kw < params.stride; kw += TILE_K) {
        // 256 invocations load 64 lines × 8 words of each side, two each.
        for (var l = 0u; l < 2u; l++) {
            let slot = flat + 256u * l;
            let line = slot / TILE_K;
            let word = slot % TILE_K;
            let band_row = band_i0 + line;
            var va = 0u;
            if (band_row < params.rows) {
                va = a[(params.row0 + band_row) * params.stride + kw + word];
            }
            tile_a[line][word] = va;
            let col = j0 + line;
            var vb = 0u;
            if (col < params.n) {
                vb = b[col * params.stride + kw + word];
            }
            tile_b[line][word] = vb;
        }
        workgroupBarrier();
        for (var word = 0u; word < TILE_K; word++) {
            var ra: array<u32, 4>;
            var rb: array<u32, 4>;
            for (var r = 0u; r < 4u; r++) {
                ra[r] = tile_a[local.y * 4u + r][word];
                rb[r] = tile_b[local.x * 4u + r][word];
            }
            for (var r = 0u; r < 4u; r++) {
                for (var q = 0u; q < 4u; q++) {
                    acc[r][q] += dot4I8Packed(ra[r], rb[q]);
                }
            }
        }
        workgroupBarrier();
    }
    for (var r = 0u; r < 4u; r++) {
        let band_row = band_i0 + local.y * 4u + r;
        for (var q = 0u; q < 4u; q++) {
            let col = j0 + local.x * 4u + q;
            if (band_row < params.rows && col < params.n) {
                c[band_row * params.n + col] = bitcast<u32>(acc[r][q]);
            }
        }
    }
}

const CHUNK_START: u32 = 1u;
const CHUNK_END: u32 = 2u;
const PARENT: u32 = 4u;
const ROOT: u32 = 8u;

var<private> IV: array<u32, 8> = array<u32, 8>(
    0x6a09e667u, 0xbb67ae85u, 0x3c6ef372u, 0xa54ff53au, 0x510e527fu, 0x9b05688cu, 0x1f83d9abu, 0x5be0cd19u
);

fn rotr(x: u32, n: u32) -> u32 {
    return (x >> n) | (x << (32u - n));
}

// fn blake3_compress(cv: ptr<function, array<u32, 8>>, block: ptr<function, array<u32, 16>>,
//                    counter: u32, block_len: u32, flags: u32)
BLAKE3_COMPRESS

// Entry `e` of the chunk starting at word `base` of C, `len` entries long;
// zero past its end.
fn chunk_entry(base: u32, len: u32, e: u32) -> u32 {
    if (e < len) {
        return c[base + e];
    }
    return 0u;
}

// Word `w` of a leaf's message, the prefix byte then the entries' little-
// endian bytes: its first byte is the prefix (w = 0) or the last byte of
// entry w - 1, the other three the first three of entry w.
fn leaf_word(base: u32, len: u32, w: u32) -> u32 {
    var first = LEAF_PREFIX;
    if (w > 0u) {
        first = chunk_entry(base, len, w - 1u) >> 24u;
    }
    return first | (chunk_entry(base, len, w) << 8u);
}

// The leaf hash of chunk `id.x` of band row `id.y`: BLAKE3 of 1 + 4·len
// bytes, one chunk when len < 256, else a full chunk and one byte in a
// second under a parent node.
@compute @workgroup_size(64)
fn hash_leaves(@builtin(global_invocation_id) id: vec3<u32>) {
    let chunk = id.x;
    let band_row = id.y;
    if (chunk >= params.chunks_per_row || band_row >= params.rows) {
        return;
    }
    let base = band_row * params.n + chunk * CHUNK_ENTRIES;
    let len = min(CHUNK_ENTRIES, params.n - chunk * CHUNK_ENTRIES);
    let message_len = 1u + 4u * len;
    let first_chunk_len = min(message_len, 1024u);
    let n_blocks = (first_chunk_len + 63u) / 64u;
    var cv = IV;
    var block: array<u32, 16>;
    for (var bi = 0u; bi < n_blocks; bi++) {
        for (var i = 0u; i < 16u; i++) {
            block[i] = leaf_word(base, len, 16u * bi + i);
        }
        var flags = 0u;
        if (bi == 0u) {
            flags |= CHUNK_START;
        }
        var block_len = 64u;
        if (bi + 1u == n_blocks) {
            flags |= CHUNK_END;
            block_len = first_chunk_len - 64u * bi;
            if (message_len <= 1024u) {
                flags |= ROOT;
            }
        }
        blake3_compress(&cv, &block, 0u, block_len, flags);
    }
    if (message_len > 1024u) {
        // The second chunk: the last entry's last byte.
        var cv1 = IV;
        for (var i = 0u; i < 16u; i++) {
            block[i] = 0u;
        }
        block[0] = leaf_word(base, len, 256u);
        blake3_compress(&cv1, &block, 1u, 1u, CHUNK_START | CHUNK_END);
        for (var i = 0u; i < 8u; i++) {
            block[i] = cv[i];
            block[8u + i] = cv1[i];
        }
        cv = IV;
        blake3_compress(&cv, &block, 0u, 64u, PARENT | ROOT);
    }
    let out = (band_row * params.chunks_per_row + chunk) * 8u;
    for (var i = 0u; i < 8u; i++) {
        leaves[out + i] = cv[i];
    }
}

// BLAKE3 of the node prefix and two hashes (65 bytes) at words `left` and
// `right` of `leaves`, written over `out`.
fn node_hash(left: u32, right: u32, out: u32) {
    var m: array<u32, 16>;
    for (var i = 0u; i < 8u; i++) {
        m[i] = leaves[left + i];
        m[8u + i] = leaves[right + i];
    }
    var block: array<u32, 16>;
    block[0] = NODE_PREFIX | (m[0] << 8u);
    for (var i = 1u; i < 16u; i++) {
        block[i] = (m[i - 1u] >> 24u) | (m[i] << 8u);
    }
    var cv = IV;
    blake3_compress(&cv, &block, 0u, 64u, CHUNK_START);
    var last: array<u32, 16>;
    last[0] = m[15] >> 24u;
    blake3_compress(&cv, &last, 0u, 1u, CHUNK_END | ROOT);
    for (var i = 0u; i < 8u; i++) {
        leaves[out + i] = cv[i];
    }
}

// Folds band row `id.x`'s leaves into its hash, level by level in place
// (node j of a level overwrites leaf j, after nodes below j read theirs;
// an odd last node goes up as it is), and stores it among the rows.
@compute @workgroup_size(64)
fn hash_rows(@builtin(global_invocation_id) id: vec3<u32>) {
    let band_row = id.x;
    if (band_row >= params.rows) {
        return;
    }
    let base = band_row * params.chunks_per_row * 8u;
    var count = params.chunks_per_row;
    while (count > 1u) {
        let pairs = count / 2u;
        for (var j = 0u; j < pairs; j++) {
            node_hash(base + 16u * j, base + 16u * j + 8u, base + 8u * j);
        }
        if (count % 2u == 1u) {
            for (var i = 0u; i < 8u; i++) {
                leaves[base + 8u * pairs + i] = leaves[base + 8u * (count - 1u) + i];
            }
        }
        count = pairs + count % 2u;
    }
    let out = (params.row0 + band_row) * 8u;
    for (var i = 0u; i < 8u; i++) {
        leaves[params.rows_base + out + i] = leaves[base + i];
    }
}
