// Monte Carlo kernels for the `sim` workload: each invocation draws a run
// of consecutive samples of one block and writes their sum and sum of
// squares, in f32 (as bits), and how many of its samples are in the money
// (options), to `partials`; the host adds the partials of each block in
// f64.
//
// An option's value is a difference of two numbers, the first known in
// f32 only to some 1e-7 of itself (more for a volatile long option). Where
// that could matter (a block whose few paths in the money are barely so),
// the host runs the block again with `list` set: the kernel then lists
// the paths in or near the money instead of summing them (the others are
// worth 0), and the host computes those in f64.
//
// No invocation loops more than 32768 times in one dispatch: the option
// kernel's runs are at most 256 samples, the slab kernel's steps are
// budgeted (see `sim_slab`).
//
// Random numbers are the CPU's (iog-workloads/src/sim.rs): sample `i` has
// the key `mix(stream ^ i)`, its `n`th number (from n = 1) is
// `mix(key ^ mix(n))`, with `mix` a whole splitmix64 step (add the
// increment, then the output function of u64.wgsl, whose vec2<u32> stands
// for a u64). `mix(n)` comes from a table the host fills once (`mixed`).

struct Params {
    // The task's random stream.
    stream: vec2<u32>,
    // Slab: a collision scatters when its draw `(x >> 11) + 1` is at most
    // this, `floor(scatter_ratio · 2^53)` (the CPU's `u > scatter_ratio`,
    // compared exactly on integers).
    scatter: vec2<u32>,
    // The batch's first run, counted over the whole task.
    first_run: u32,
    // Runs in the batch, one per invocation.
    count: u32,
    // Runs each block is cut into.
    runs_per_block: u32,
    // Samples per run (the last run of a block may be shorter).
    run_len: u32,
    // Option, with `spot` factored out (the host multiplies it back in):
    // the value is max(exp(log_drift + vol_root_t · z) - strike, 0), with
    // log_drift = -vol²·T/2, vol_root_t = vol·√T and
    // strike = strike·exp(-rate·T) / spot.
    log_drift: f32,
    vol_root_t: f32,
    strike: f32,
    // Slab: its thickness in mean free paths.
    thickness: f32,
    // Option: a path is in or near the money when its growth (see
    // `option_growth`) is above this, the strike less a margin.
    money: f32,
    // 1: list the paths in or near the money instead of summing them.
    list: u32,
    pad0: u32,
    pad1: u32,
    // Each block: first sample (low, high word), sample count, unused.
    blocks: array<vec4<u32>, 64>,
}

@group(0) @binding(0) var<uniform> params: Params;
// mix(n) for n = 0 ..= 3 · SLAB_COLLISIONS_MAX; `u64_ops` reads its
// operands here.
@group(0) @binding(1) var<storage, read> mixed: array<vec2<u32>>;
// Per run, three words: the f32 bits of its sum and of its sum of
// squares, and its paths in or near the money (options) or the particles
// this dispatch followed to their end (slabs).
@group(0) @binding(2) var<storage, read_write> partials: array<u32>;
// With `list`: a count, then the listed samples (offsets in their block).
@group(0) @binding(3) var<storage, read_write> listed: array<atomic<u32>>;
// Slab: per run of the batch, the particles done in earlier dispatches.
@group(0) @binding(4) var<storage, read_write> progress: array<u32>;

const SLAB_COLLISIONS_MAX: u32 = SLAB_COLLISIONS_MAX_VALUE;
// Most loop iterations of one slab invocation in one dispatch.
const STEP_BUDGET: u32 = STEP_BUDGET_VALUE;
const TAU: f32 = 6.28318530717958647692;

// One splitmix64 step: the increment, then the output function.
fn mix(input: vec2<u32>) -> vec2<u32> {
    return mix64(add64(input, GAMMA));
}

// The `n`th number of the sample keyed `key`, as `(x >> 11) + 1`: an
// integer in 1 ..= 2^53, whose uniform in (0, 1] is that times 2^-53.
fn draw(key: vec2<u32>, n: u32) -> vec2<u32> {
    return to_draw(mix(key ^ mixed[n]));
}

// (x >> 11) + 1.
fn to_draw(x: vec2<u32>) -> vec2<u32> {
    return add64(vec2<u32>((x.x >> 11u) | (x.y << 21u), x.y >> 11u), vec2<u32>(1u, 0u));
}

// A draw's uniform, m · 2^-53, to within an ulp of f32 however small:
// a fixed-point 24-bit uniform would stop at 2^-24, cutting off the
// longest flights through a thick slab.
fn unit(m: vec2<u32>) -> f32 {
    return f32(m.y) * 0x1p-21f + f32(m.x) * 0x1p-53f;
}

// -ln(u) of a draw's uniform u = m · 2^-53, to a few ulps even as u nears
// 1, where a logarithm's error is large beside its result: there
// v = 1 - u is exact from the integer, and -ln(1 - v) a short series.
fn neg_log(m: vec2<u32>) -> f32 {
    // 2^53 - m, below 2^49 when u > 15/16.
    let rest = sub64(vec2<u32>(0u, 0x200000u), m);
    if (rest.y < 0x20000u) {
        let v = f32(rest.y) * 0x1p-21f + f32(rest.x) * 0x1p-53f;
        return v * (1.0 + v * (0.5 + v * (1.0 / 3.0 + v * (0.25 + v * (0.2 + v * (1.0 / 6.0
            + v * (1.0 / 7.0 + v * 0.125)))))));
    }
    return -log(unit(m));
}

// cos(2π·u): reduced in turns (exactly) to [0, 1/8], then a polynomial.
fn cos_turns(u: f32) -> f32 {
    var a = abs(u - round(u));
    var sign = 1.0;
    if (a > 0.25) {
        a = 0.5 - a;
        sign = -1.0;
    }
    if (a > 0.125) {
        // cos(2π·a) = sin(2π·(1/4 - a)), with 2π·(1/4 - a) in [0, π/4].
        let x = TAU * (0.25 - a);
        let z = x * x;
        return sign * ((((-1.9515295891e-4 * z + 8.3321608736e-3) * z - 1.6666654611e-1) * z) * x + x);
    }
    let x = TAU * a;
    let z = x * x;
    return sign * ((((2.443315711809948e-5 * z - 1.388731625493765e-3) * z + 4.166664568298827e-2) * z) * z
        - 0.5 * z + 1.0);
}

// The stock's growth to expiry on the path keyed `key`, over its risk-free
// growth: a European call's discounted payoff over `spot` is this less
// `params.strike`, when positive.
fn option_growth(key: vec2<u32>) -> f32 {
    let z = sqrt(2.0 * neg_log(draw(key, 1u))) * cos_turns(unit(draw(key, 2u)));
    return exp(params.log_drift + params.vol_root_t * z);
}

// Invocation `j` of the batch: its run's first sample and length.
struct Run {
    first: vec2<u32>,
    // The run's first sample's offset in its block.
    offset: u32,
    len: u32,
}

fn run_of(j: u32) -> Run {
    let run = params.first_run + j;
    let block = params.blocks[run / params.runs_per_block];
    let offset = (run % params.runs_per_block) * params.run_len;
    let len = min(params.run_len, block.z - min(offset, block.z));
    return Run(add64(block.xy, vec2<u32>(offset, 0u)), offset, len);
}

@compute @workgroup_size(256)
fn sim_option(@builtin(global_invocation_id) id: vec3<u32>) {
    let j = id.x;
    if (j >= params.count) {
        return;
    }
    let run = run_of(j);
    var i = run.first;
    var sum = 0.0;
    var sum_sq = 0.0;
    var in_money = 0u;
    for (var k = 0u; k < run.len; k++) {
        let growth = option_growth(mix(params.stream ^ i));
        i = add64(i, vec2<u32>(1u, 0u));
        if (growth > params.money) {
            in_money++;
            if (params.list != 0u) {
                let slot = atomicAdd(&listed[0], 1u) + 1u;
                if (slot < arrayLength(&listed)) {
                    atomicStore(&listed[slot], run.offset + k);
                }
                continue;
            }
        }
        let value = max(growth - params.strike, 0.0);
        sum += value;
        sum_sq += value * value;
    }
    partials[3u * j] = bitcast<u32>(sum);
    partials[3u * j + 1u] = bitcast<u32>(sum_sq);
    partials[3u * j + 2u] = in_money;
}

// Slab particles, followed as the CPU follows them: a particle gets
// through (1) when it passes the far side; it is absorbed or reflected (0)
// when it comes back out, a collision absorbs it, or after
// SLAB_COLLISIONS_MAX collisions. One loop steps a collision at a time,
// moving on to the run's next particle when one is done, at most
// STEP_BUDGET steps a dispatch: some drivers stop a shader after 65535
// loop iterations in all (Mesa's llvmpipe does), and a run of long walks
// could take far more. `progress` keeps the particles done, and the host
// dispatches the batch again until every run is done.
@compute @workgroup_size(256)
fn sim_slab(@builtin(global_invocation_id) id: vec3<u32>) {
    let j = id.x;
    if (j >= params.count) {
        return;
    }
    let run = run_of(j);
    let first = progress[j];
    var done = first;
    var i = add64(run.first, vec2<u32>(first, 0u));
    var sum = 0.0;
    var key = vec2<u32>(0u, 0u);
    var x = 0.0;
    var mu = 1.0;
    var n = 1u;
    var collisions = 0u;
    var fresh = true;
    for (var step = 0u; step < STEP_BUDGET && done < run.len; step++) {
        if (fresh) {
            key = mix(params.stream ^ i);
            x = 0.0;
            mu = 1.0;
            n = 1u;
            collisions = 0u;
            fresh = false;
        }
        // -1 while the particle goes on.
        var value = -1.0;
        x += mu * neg_log(draw(key, n));
        if (x >= params.thickness) {
            value = 1.0;
        } else if (x < 0.0) {
            value = 0.0;
        } else {
            let scatter = draw(key, n + 1u);
            if (scatter.y > params.scatter.y || (scatter.y == params.scatter.y && scatter.x > params.scatter.x)) {
                value = 0.0;
            } else {
                mu = 2.0 * unit(draw(key, n + 2u)) - 1.0;
                n += 3u;
                collisions++;
                if (collisions == SLAB_COLLISIONS_MAX) {
                    value = 0.0;
                }
            }
        }
        if (value >= 0.0) {
            sum += value;
            done++;
            i = add64(i, vec2<u32>(1u, 0u));
            fresh = true;
        }
    }
    progress[j] = done;
    // Values are 0 or 1: the sum of squares is the sum.
    partials[3u * j] = bitcast<u32>(sum);
    partials[3u * j + 1u] = bitcast<u32>(sum);
    partials[3u * j + 2u] = done - first;
}

// The 64-bit arithmetic above, for checking against the CPU: for each
// pair (a, b) in `mixed`, mix(a), a·b, a + b and the draw (a >> 11) + 1.
@compute @workgroup_size(64)
fn u64_ops(@builtin(global_invocation_id) id: vec3<u32>) {
    let j = id.x;
    if (j >= params.count) {
        return;
    }
    let a = mixed[2u * j];
    let b = mixed[2u * j + 1u];
    let results = array<vec2<u32>, 4>(mix(a), mul64(a, b), add64(a, b), to_draw(a));
    for (var k = 0u; k < 4u; k++) {
        partials[8u * j + 2u * k] = results[k].x;
        partials[8u * j + 2u * k + 1u] = results[k].y;
    }
}
