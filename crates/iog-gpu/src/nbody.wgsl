// The `nbody` workload's leapfrog steps in f64, the CPU's operations in
// the CPU's order (iog-workloads/src/nbody.rs): a step is `kick_drift`
// (v += a·(dt/2), then x += v·dt), `forces` at the new positions, and
// `kick` (v += a·(dt/2)). One invocation per particle; each particle's
// acceleration is summed over the others in index order, never split, so
// the only differences from the CPU are the device's rounding of division
// and square root, and any multiply-add its compiler fuses.
//
// Vectors are flat: particle i's x, y and z are at 3i, 3i + 1 and 3i + 2.
// `params` holds dt, dt/2, ε² and 0 (a zero of type f64, so the kernel
// needs no f64 literal), then the masses (one buffer: a downlevel device
// binds at most four storage buffers).

const MASSES: u32 = 4u;

@group(0) @binding(0) var<storage, read> params: array<f64>;
@group(0) @binding(1) var<storage, read_write> pos: array<f64>;
@group(0) @binding(2) var<storage, read_write> vel: array<f64>;
@group(0) @binding(3) var<storage, read_write> acc: array<f64>;

fn particles() -> u32 {
    return arrayLength(&params) - MASSES;
}

@compute @workgroup_size(64)
fn forces(@builtin(global_invocation_id) id: vec3<u32>) {
    let n = particles();
    let i = id.x;
    if i >= n {
        return;
    }
    let eps2 = params[2];
    let xi = pos[3u * i];
    let yi = pos[3u * i + 1u];
    let zi = pos[3u * i + 2u];
    var ax = params[3];
    var ay = params[3];
    var az = params[3];
    for (var j = 0u; j < n; j++) {
        if j == i {
            continue;
        }
        let dx = pos[3u * j] - xi;
        let dy = pos[3u * j + 1u] - yi;
        let dz = pos[3u * j + 2u] - zi;
        let r2 = dx * dx + dy * dy + dz * dz + eps2;
        let s = params[MASSES + j] / (r2 * sqrt(r2));
        ax += s * dx;
        ay += s * dy;
        az += s * dz;
    }
    acc[3u * i] = ax;
    acc[3u * i + 1u] = ay;
    acc[3u * i + 2u] = az;
}

@compute @workgroup_size(64)
fn kick_drift(@builtin(global_invocation_id) id: vec3<u32>) {
    let i = id.x;
    if i >= particles() {
        return;
    }
    let dt = params[0];
    let half = params[1];
    for (var k = 3u * i; k < 3u * i + 3u; k++) {
        vel[k] += acc[k] * half;
        pos[k] += vel[k] * dt;
    }
}

@compute @workgroup_size(64)
fn kick(@builtin(global_invocation_id) id: vec3<u32>) {
    let i = id.x;
    if i >= particles() {
        return;
    }
    let half = params[1];
    for (var k = 3u * i; k < 3u * i + 3u; k++) {
        vel[k] += acc[k] * half;
    }
}
