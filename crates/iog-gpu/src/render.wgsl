// The render workload's path tracer (iog-workloads/src/render) as a
// kernel: one invocation per pixel of the tile, following the CPU's paths
// with the CPU's f32 arithmetic in the CPU's order and the CPU's random
// numbers (splitmix64 per pixel, on the emulated u64s of u64.wgsl). A
// GPU may still round differently (a fused multiply-add, the last bit of
// a square root or a division), which can send a path another way: the
// tile agrees with the CPU's within a PSNR bound, not bit for bit.
//
// A dispatch runs samples `sample0 .. sample1` of every pixel and keeps
// each pixel's running sum and generator state in `state`, so a long
// tile is cut into dispatches without changing the order of the sums;
// the one that reaches the last sample writes the pixel's bytes.

struct Params {
    // The tile: x, y, width, height.
    rect: vec4<u32>,
    samples_per_pixel: u32,
    max_bounces: u32,
    n_primitives: u32,
    n_lights: u32,
    seed: vec2<u32>,
    sample0: u32,
    sample1: u32,
    // Where the surfaces and the lights start in `tables`.
    surfaces_at: u32,
    lights_at: u32,
    pad0: u32,
    pad1: u32,
    // xyz, and the lights' total area.
    background: vec4<f32>,
    // The camera, each xyz; the fourth floats: lens radius, image width,
    // image height.
    origin: vec4<f32>,
    upper_left: vec4<f32>,
    horizontal: vec4<f32>,
    vertical: vec4<f32>,
    cam_u: vec4<f32>,
    cam_v: vec4<f32>,
}

@group(0) @binding(0) var<uniform> params: Params;
// 20 floats a primitive (iog_workloads::render::kernel).
@group(0) @binding(1) var<storage, read> primitives: array<f32>;
// The 255 gamma thresholds, then 8 floats a surface, then 2 a light (its
// primitive's index and the running total of light area).
@group(0) @binding(2) var<storage, read> tables: array<f32>;
// Per pixel: the running sum (3 floats as bits) and the generator (2 words).
@group(0) @binding(3) var<storage, read_write> state: array<u32>;
// Per pixel: r | g << 8 | b << 16.
@group(0) @binding(4) var<storage, read_write> pixels: array<u32>;

const RAY_EPSILON: f32 = 1e-3;
const ROULETTE_AFTER_BOUNCES: u32 = 3u;
const INDIRECT_RADIANCE_MAX: f32 = 1.5;
const FRAC_1_PI: f32 = 0.31830988618379067;
const NONE: f32 = -1.0;

var<private> rng: vec2<u32>;

fn next_u64() -> vec2<u32> {
    rng = add64(rng, GAMMA);
    return mix64(rng);
}

// A uniform float in [0, 1) with 24 random bits.
fn next_f32() -> f32 {
    return f32(next_u64().y >> 8u) * (1.0 / 16777216.0);
}

fn dot3(a: vec3<f32>, b: vec3<f32>) -> f32 {
    return a.x * b.x + a.y * b.y + a.z * b.z;
}

fn cross3(a: vec3<f32>, b: vec3<f32>) -> vec3<f32> {
    return vec3<f32>(a.y * b.z - a.z * b.y, a.z * b.x - a.x * b.z, a.x * b.y - a.y * b.x);
}

fn normalized(v: vec3<f32>) -> vec3<f32> {
    return v / sqrt(dot3(v, v));
}

fn reflect3(v: vec3<f32>, n: vec3<f32>) -> vec3<f32> {
    return v - n * (2.0 * dot3(v, n));
}

fn finite(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u;
}

// Rust's f32::min, which takes the other operand when one is NaN.
fn min_f32(a: f32, b: f32) -> f32 {
    if (a != a) {
        return b;
    }
    return min(a, b);
}

fn max_f32(a: f32, b: f32) -> f32 {
    if (a != a) {
        return b;
    }
    return max(a, b);
}

fn in_unit_disk() -> vec2<f32> {
    var d: vec2<f32>;
    loop {
        let x = 2.0 * next_f32() - 1.0;
        let y = 2.0 * next_f32() - 1.0;
        d = vec2<f32>(x, y);
        if (x * x + y * y < 1.0) {
            break;
        }
    }
    return d;
}

fn in_unit_ball() -> vec3<f32> {
    var p: vec3<f32>;
    loop {
        let x = 2.0 * next_f32() - 1.0;
        let y = 2.0 * next_f32() - 1.0;
        let z = 2.0 * next_f32() - 1.0;
        p = vec3<f32>(x, y, z);
        let length_squared = dot3(p, p);
        if (length_squared < 1.0 && length_squared > 1e-12) {
            break;
        }
    }
    return p;
}

fn unit_vector() -> vec3<f32> {
    return normalized(in_unit_ball());
}

fn cosine_direction(normal: vec3<f32>) -> vec3<f32> {
    let direction = normal + unit_vector();
    let length_squared = dot3(direction, direction);
    if (length_squared < 1e-12) {
        return normal;
    }
    return direction / sqrt(length_squared);
}

fn prim_f(idx: u32, k: u32) -> f32 {
    return primitives[idx * 20u + k];
}

fn prim_v(idx: u32, slot: u32) -> vec3<f32> {
    let at = idx * 20u + 4u + 4u * slot;
    return vec3<f32>(primitives[at], primitives[at + 1u], primitives[at + 2u]);
}

// The distance along the ray to primitive `idx` within (t_min, t_max), or NONE.
fn hit_distance(idx: u32, origin: vec3<f32>, direction: vec3<f32>, t_min: f32, t_max: f32) -> f32 {
    let kind = u32(prim_f(idx, 0u));
    var t = NONE;
    if (kind == 0u) {
        let center = prim_v(idx, 0u);
        let radius = prim_f(idx, 3u);
        let oc = origin - center;
        let half_b = dot3(oc, direction);
        let c = dot3(oc, oc) - radius * radius;
        let discriminant = half_b * half_b - c;
        if (discriminant < 0.0) {
            return NONE;
        }
        let root = sqrt(discriminant);
        let near = -half_b - root;
        if (near > t_min && near < t_max) {
            return near;
        }
        t = -half_b + root;
    } else if (kind == 1u) {
        let point = prim_v(idx, 0u);
        let normal = prim_v(idx, 1u);
        let denominator = dot3(normal, direction);
        if (abs(denominator) < 1e-9) {
            return NONE;
        }
        t = dot3(point - origin, normal) / denominator;
    } else {
        let a = prim_v(idx, 0u);
        let edge1 = prim_v(idx, 1u);
        let edge2 = prim_v(idx, 2u);
        let p = cross3(direction, edge2);
        let determinant = dot3(edge1, p);
        if (abs(determinant) < 1e-12) {
            return NONE;
        }
        let inverse = 1.0 / determinant;
        let s = origin - a;
        let u = dot3(s, p) * inverse;
        if (!(u >= 0.0 && u <= 1.0)) {
            return NONE;
        }
        let q = cross3(s, edge1);
        let v = dot3(direction, q) * inverse;
        if (v < 0.0 || u + v > 1.0) {
            return NONE;
        }
        t = dot3(edge2, q) * inverse;
    }
    if (t > t_min && t < t_max) {
        return t;
    }
    return NONE;
}

struct Hit {
    found: bool,
    point: vec3<f32>,
    normal: vec3<f32>,
    surface: u32,
    sampled_light: bool,
}

fn intersect(origin: vec3<f32>, direction: vec3<f32>, t_min: f32, t_max: f32) -> Hit {
    var closest = t_max;
    var found = 0xffffffffu;
    for (var idx = 0u; idx < params.n_primitives; idx++) {
        let t = hit_distance(idx, origin, direction, t_min, closest);
        if (t != NONE) {
            closest = t;
            found = idx;
        }
    }
    var hit: Hit;
    hit.found = found != 0xffffffffu;
    if (!hit.found) {
        return hit;
    }
    hit.point = origin + direction * closest;
    let kind = u32(prim_f(found, 0u));
    if (kind == 0u) {
        hit.normal = (hit.point - prim_v(found, 0u)) / prim_f(found, 3u);
    } else if (kind == 1u) {
        hit.normal = prim_v(found, 1u);
    } else {
        hit.normal = prim_v(found, 3u);
    }
    hit.surface = u32(prim_f(found, 1u));
    hit.sampled_light = prim_f(found, 2u) != 0.0;
    return hit;
}

fn occluded(origin: vec3<f32>, direction: vec3<f32>, t_min: f32, t_max: f32) -> bool {
    for (var idx = 0u; idx < params.n_primitives; idx++) {
        if (hit_distance(idx, origin, direction, t_min, t_max) != NONE) {
            return true;
        }
    }
    return false;
}

fn surface_kind(surface: u32) -> u32 {
    return u32(tables[params.surfaces_at + 8u * surface]);
}

fn surface_color(surface: u32) -> vec3<f32> {
    let at = params.surfaces_at + 8u * surface;
    return vec3<f32>(tables[at + 1u], tables[at + 2u], tables[at + 3u]);
}

fn surface_w(surface: u32) -> f32 {
    return tables[params.surfaces_at + 8u * surface + 4u];
}

// Light arriving at a diffuse point straight from a light drawn at
// random, times 1/pi.
fn direct_light(point: vec3<f32>, normal: vec3<f32>) -> vec3<f32> {
    if (params.n_lights == 0u) {
        return vec3<f32>(0.0);
    }
    let total = tables[params.lights_at + 2u * (params.n_lights - 1u) + 1u];
    let target_area = next_f32() * total;
    // partition_point(cumulative <= target), at most the last light.
    var lo = 0u;
    var hi = params.n_lights;
    while (lo < hi) {
        let mid = (lo + hi) / 2u;
        if (tables[params.lights_at + 2u * mid + 1u] <= target_area) {
            lo = mid + 1u;
        } else {
            hi = mid;
        }
    }
    let chosen = min(lo, params.n_lights - 1u);
    let primitive = u32(tables[params.lights_at + 2u * chosen]);
    let surface = u32(prim_f(primitive, 1u));
    if (surface_kind(surface) != 3u) {
        return vec3<f32>(0.0);
    }
    let light_radiance = surface_color(surface);
    let kind = u32(prim_f(primitive, 0u));
    var light_point: vec3<f32>;
    var light_normal: vec3<f32>;
    if (kind == 0u) {
        light_normal = unit_vector();
        light_point = prim_v(primitive, 0u) + light_normal * prim_f(primitive, 3u);
    } else if (kind == 2u) {
        let root = sqrt(next_f32());
        let v = next_f32();
        light_point = prim_v(primitive, 0u) + prim_v(primitive, 1u) * (root * (1.0 - v)) + prim_v(primitive, 2u) * (root * v);
        light_normal = prim_v(primitive, 3u);
    } else {
        return vec3<f32>(0.0);
    }
    let to_light = light_point - point;
    let distance_squared = dot3(to_light, to_light);
    let distance = sqrt(distance_squared);
    if (distance <= 2.0 * RAY_EPSILON) {
        return vec3<f32>(0.0);
    }
    let direction = to_light / distance;
    let cos_surface = dot3(normal, direction);
    let cos_light = -dot3(light_normal, direction);
    if (cos_surface <= 0.0 || cos_light <= 0.0) {
        return vec3<f32>(0.0);
    }
    if (occluded(point, direction, RAY_EPSILON, distance - RAY_EPSILON)) {
        return vec3<f32>(0.0);
    }
    let geometry = cos_surface * cos_light / distance_squared;
    return light_radiance * (geometry * params.background.w * FRAC_1_PI);
}

fn schlick(cosine: f32, ratio: f32) -> f32 {
    var r0 = (1.0 - ratio) / (1.0 + ratio);
    r0 = r0 * r0;
    let m = 1.0 - cosine;
    return r0 + (1.0 - r0) * (m * m * m * m * m);
}

fn refract_or_reflect(direction: vec3<f32>, normal: vec3<f32>, front_face: bool, ior: f32) -> vec3<f32> {
    var ratio = ior;
    if (front_face) {
        ratio = 1.0 / ior;
    }
    let cos_theta = min_f32(dot3(-direction, normal), 1.0);
    let sin_theta_squared = max_f32(1.0 - cos_theta * cos_theta, 0.0);
    let cannot_refract = ratio * ratio * sin_theta_squared > 1.0;
    if (cannot_refract || schlick(cos_theta, ratio) > next_f32()) {
        return reflect3(direction, normal);
    }
    let perpendicular = (direction + normal * cos_theta) * ratio;
    let parallel = normal * -sqrt(abs(1.0 - dot3(perpendicular, perpendicular)));
    return normalized(perpendicular + parallel);
}

fn capped(contribution: vec3<f32>, bounce: u32) -> vec3<f32> {
    if (bounce == 0u) {
        return contribution;
    }
    return vec3<f32>(
        min_f32(contribution.x, INDIRECT_RADIANCE_MAX),
        min_f32(contribution.y, INDIRECT_RADIANCE_MAX),
        min_f32(contribution.z, INDIRECT_RADIANCE_MAX),
    );
}

fn radiance(origin0: vec3<f32>, direction0: vec3<f32>) -> vec3<f32> {
    var origin = origin0;
    var direction = direction0;
    var total = vec3<f32>(0.0);
    var throughput = vec3<f32>(1.0);
    var count_sampled_emission = true;
    for (var bounce = 0u; bounce <= params.max_bounces; bounce++) {
        let hit = intersect(origin, direction, RAY_EPSILON, 3.4028235e38);
        if (!hit.found) {
            total += capped(throughput * params.background.xyz, bounce);
            break;
        }
        let front_face = dot3(direction, hit.normal) < 0.0;
        var normal = -hit.normal;
        if (front_face) {
            normal = hit.normal;
        }
        let kind = surface_kind(hit.surface);
        if (kind == 3u) {
            if (front_face && (count_sampled_emission || !hit.sampled_light)) {
                total += capped(throughput * surface_color(hit.surface), bounce);
            }
            break;
        }
        if (bounce == params.max_bounces) {
            break;
        }
        var next: vec3<f32>;
        if (kind == 0u) {
            let albedo = surface_color(hit.surface);
            let direct = direct_light(hit.point, normal);
            total += capped(throughput * albedo * direct, bounce + 1u);
            throughput = throughput * albedo;
            count_sampled_emission = false;
            next = cosine_direction(normal);
        } else if (kind == 1u) {
            let reflected = reflect3(direction, normal) + in_unit_ball() * surface_w(hit.surface);
            if (dot3(reflected, normal) <= 0.0) {
                break;
            }
            throughput = throughput * surface_color(hit.surface);
            count_sampled_emission = true;
            next = normalized(reflected);
        } else {
            count_sampled_emission = true;
            next = refract_or_reflect(direction, normal, front_face, surface_w(hit.surface));
        }
        origin = hit.point;
        direction = next;
        if (bounce >= ROULETTE_AFTER_BOUNCES) {
            let survive = clamp(max_f32(max_f32(throughput.x, throughput.y), throughput.z), 0.05, 0.95);
            if (next_f32() >= survive) {
                break;
            }
            throughput = throughput / survive;
        }
    }
    if (finite(total.x) && finite(total.y) && finite(total.z)) {
        return total;
    }
    return vec3<f32>(0.0);
}

// The byte of linear value `x`: how many gamma thresholds are at most x.
fn encode(x: f32) -> u32 {
    var lo = 0u;
    var hi = 255u;
    while (lo < hi) {
        let mid = (lo + hi) / 2u;
        if (tables[mid] <= x) {
            lo = mid + 1u;
        } else {
            hi = mid;
        }
    }
    return lo;
}

@compute @workgroup_size(64)
fn render(@builtin(global_invocation_id) id: vec3<u32>) {
    let idx = id.x;
    let n_pixels = params.rect.z * params.rect.w;
    if (idx >= n_pixels) {
        return;
    }
    let x = params.rect.x + idx % params.rect.z;
    let y = params.rect.y + idx / params.rect.z;
    var sum = vec3<f32>(0.0);
    if (params.sample0 == 0u) {
        // Rng::for_pixel: mix(mix(seed) + (y << 32 | x)).
        rng = mix64(add64(mix64(params.seed), vec2<u32>(x, y)));
    } else {
        sum = vec3<f32>(bitcast<f32>(state[5u * idx]), bitcast<f32>(state[5u * idx + 1u]), bitcast<f32>(state[5u * idx + 2u]));
        rng = vec2<u32>(state[5u * idx + 3u], state[5u * idx + 4u]);
    }
    let width = params.upper_left.w;
    let height = params.horizontal.w;
    let lens_radius = params.origin.w;
    for (var i = params.sample0; i < params.sample1; i++) {
        let s = (f32(x) + next_f32()) / width;
        let t = (f32(y) + next_f32()) / height;
        let target_point = params.upper_left.xyz + params.horizontal.xyz * s + params.vertical.xyz * t;
        var origin = params.origin.xyz;
        if (lens_radius > 0.0) {
            let d = in_unit_disk();
            origin = params.origin.xyz + params.cam_u.xyz * (d.x * lens_radius) + params.cam_v.xyz * (d.y * lens_radius);
        }
        sum += radiance(origin, normalized(target_point - origin));
    }
    if (params.sample1 < params.samples_per_pixel) {
        state[5u * idx] = bitcast<u32>(sum.x);
        state[5u * idx + 1u] = bitcast<u32>(sum.y);
        state[5u * idx + 2u] = bitcast<u32>(sum.z);
        state[5u * idx + 3u] = rng.x;
        state[5u * idx + 4u] = rng.y;
        return;
    }
    let colour = sum / f32(params.samples_per_pixel);
    pixels[idx] = encode(colour.x) | (encode(colour.y) << 8u) | (encode(colour.z) << 16u);
}
