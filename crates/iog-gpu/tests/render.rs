//! The render kernel against its CPU twin (`iog_workloads::run_task`):
//! every tile of a scene with every kind of object and material, within
//! the PSNR bound, on whatever adapter this machine has (software Vulkan in
//! CI). `IOG_REQUIRE_GPU_ADAPTER=1` makes a machine without one a failure
//! rather than a skip.

mod common;

use std::path::Path;

use common::gpu;
use iog_workloads::Accelerator;
use iog_workloads::render::kernel::{PSNR_MIN_DB, psnr};

/// Renders every tile of the job on the CPU and on the GPU; returns the
/// worst tile's PSNR and how many tiles were byte for byte the CPU's.
fn compare(job: &str) -> (f64, usize, usize) {
    let gpu = gpu().expect("checked by the caller");
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let spec = iog_workloads::parse_job_file(job, &examples).unwrap();
    let inputs = iog_workloads::plan(&spec.workload().unwrap()).unwrap();
    let (mut worst, mut exact) = (f64::INFINITY, 0);
    for input in &inputs {
        let cpu = iog_workloads::run_task(input).unwrap().output;
        let task = iog_workloads::render_kernel_task(input).unwrap().expect("a render task");
        assert_eq!(gpu.render_error(), None, "the render kernel passed its self-test");
        let got = gpu.render_tile(&task).unwrap().expect("the kernel takes the tile");
        assert_eq!(got.len(), cpu.len());
        let db = psnr(&got, &cpu);
        eprintln!("tile {:?}: {db:.1} dB", task.rect);
        worst = worst.min(db);
        exact += usize::from(got == cpu);
    }
    (worst, exact, inputs.len())
}

#[test]
fn the_cornell_box_agrees_with_the_cpu_within_the_psnr_bound() {
    if gpu().is_none() {
        return;
    }
    // Planes, a triangle light, glass, metal and diffuse balls; tiles of
    // 16 with a ragged last column and row; enough samples per dispatch
    // split that the running sums cross dispatches.
    let job = "[job]\nname = \"cornell\"\nworkload = \"render\"\n\n[render]\nscene = \"scenes/cornell.toml\"\n\
               width = 40\nheight = 30\ntile_size = 16\nsamples_per_pixel = 24\nmax_bounces = 6\nseed = 5\n";
    let (worst, exact, tiles) = compare(job);
    eprintln!("worst tile {worst:.1} dB; {exact} of {tiles} tiles exact");
    assert!(worst >= PSNR_MIN_DB, "a tile at {worst:.1} dB");
}

#[test]
fn a_lens_sphere_lights_and_a_background_agree_too() {
    if gpu().is_none() {
        return;
    }
    let job = r#"[job]
name = "lens"
workload = "render"

[render]
width = 24
height = 24
tile_size = 12
samples_per_pixel = 16
max_bounces = 8
seed = 77

[render.scene]
background = [0.2, 0.3, 0.5]

[render.scene.camera]
look_from = [0.0, 0.5, 4.0]
look_at = [0.0, 0.5, 0.0]
up = [0.0, 1.0, 0.0]
vfov_deg = 50.0
aperture = 0.2
focus_dist = 4.0

[render.scene.materials.ground]
type = "diffuse"
albedo = [0.5, 0.5, 0.5]

[render.scene.materials.steel]
type = "metal"
albedo = [0.8, 0.8, 0.8]
fuzz = 0.3

[render.scene.materials.water]
type = "glass"
ior = 1.33

[render.scene.materials.sun]
type = "emissive"
color = [1.0, 0.9, 0.7]
strength = 6.0

[[render.scene.objects]]
type = "plane"
point = [0.0, 0.0, 0.0]
normal = [0.0, 1.0, 0.0]
material = "ground"

[[render.scene.objects]]
type = "sphere"
center = [-0.8, 0.5, 0.0]
radius = 0.5
material = "steel"

[[render.scene.objects]]
type = "sphere"
center = [0.8, 0.5, 0.0]
radius = 0.5
material = "water"

[[render.scene.objects]]
type = "sphere"
center = [0.0, 3.0, 1.0]
radius = 0.6
material = "sun"
"#;
    let (worst, exact, tiles) = compare(job);
    eprintln!("worst tile {worst:.1} dB; {exact} of {tiles} tiles exact");
    assert!(worst >= PSNR_MIN_DB, "a tile at {worst:.1} dB");
}
