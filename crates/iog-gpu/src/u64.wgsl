// 64-bit integer arithmetic on 32-bit words, which is all WGSL has: a
// u64 is a vec2<u32> (low word, high word). Shared by the kernels that
// reproduce the CPU's 64-bit random numbers bit for bit.

fn add64(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    let lo = a.x + b.x;
    return vec2<u32>(lo, a.y + b.y + select(0u, 1u, lo < a.x));
}

// The high word of the 64-bit product a·b, from 16-bit halves.
fn mul_hi(a: u32, b: u32) -> u32 {
    let a0 = a & 0xffffu;
    let a1 = a >> 16u;
    let b0 = b & 0xffffu;
    let b1 = b >> 16u;
    let p00 = a0 * b0;
    let p01 = a0 * b1;
    let p10 = a1 * b0;
    let p11 = a1 * b1;
    let mid = (p00 >> 16u) + (p01 & 0xffffu) + (p10 & 0xffffu);
    return p11 + (p01 >> 16u) + (p10 >> 16u) + (mid >> 16u);
}

fn sub64(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    return vec2<u32>(a.x - b.x, a.y - b.y - select(0u, 1u, a.x < b.x));
}

// a·b modulo 2^64: the cross terms only reach the high word, wrapping.
fn mul64(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    return vec2<u32>(a.x * b.x, mul_hi(a.x, b.x) + a.x * b.y + a.y * b.x);
}

// z ^ (z >> s) for 0 < s < 32.
fn xor_shr(z: vec2<u32>, s: u32) -> vec2<u32> {
    return vec2<u32>(z.x ^ ((z.x >> s) | (z.y << (32u - s))), z.y ^ (z.y >> s));
}

// splitmix64's increment, 2^64 divided by the golden ratio.
const GAMMA: vec2<u32> = vec2<u32>(0x7F4A7C15u, 0x9E3779B9u);

// splitmix64's output function.
fn mix64(input: vec2<u32>) -> vec2<u32> {
    var z = mul64(xor_shr(input, 30u), vec2<u32>(0x1CE4E5B9u, 0xBF58476Du));
    z = mul64(xor_shr(z, 27u), vec2<u32>(0x133111EBu, 0x94D049BBu));
    return xor_shr(z, 31u);
}
