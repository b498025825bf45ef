//! Tiles rendered as separate tasks assemble into exactly the whole image.

use iog_workloads::render::{RenderSpec, render_image};
use iog_workloads::{RunError, WorkloadSpec, assemble, demo_job, plan, run_task};
use proptest::prelude::*;

/// The demo scene at a small size, so tests stay fast.
fn small_render(width: u32, height: u32, tile_size: u32, samples_per_pixel: u32) -> RenderSpec {
    let WorkloadSpec::Render(mut spec) = demo_job().workload().expect("demo workload") else {
        panic!("the demo job renders");
    };
    spec.width = width;
    spec.height = height;
    spec.tile_size = tile_size;
    spec.samples_per_pixel = samples_per_pixel;
    spec
}

/// Plans, runs every task and assembles; returns the decoded RGB8 image.
fn render_as_tasks(spec: &RenderSpec) -> Vec<u8> {
    let workload = WorkloadSpec::Render(spec.clone());
    let inputs = plan(&workload).expect("plans");
    let outputs: Vec<Vec<u8>> = inputs.iter().map(|input| run_task(input).expect("runs").output).collect();
    let artifacts = assemble(&workload, &outputs, &vec![1; outputs.len()]).expect("assembles");
    assert_eq!(artifacts.len(), 1);
    assert_eq!(artifacts[0].name, "image.png");
    assert_eq!(artifacts[0].media_type, "image/png");
    decode_png(&artifacts[0].bytes, spec.width, spec.height)
}

fn decode_png(bytes: &[u8], width: u32, height: u32) -> Vec<u8> {
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().expect("a PNG header");
    let mut rgb = vec![0; reader.output_buffer_size().expect("a sane size")];
    let info = reader.next_frame(&mut rgb).expect("a PNG frame");
    assert_eq!((info.width, info.height), (width, height));
    assert_eq!(info.color_type, png::ColorType::Rgb);
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    rgb.truncate(info.buffer_size());
    rgb
}

#[test]
fn assembled_tiles_equal_the_whole_image() {
    // 70x45 in 16-pixel tiles leaves clipped tiles on the right and bottom.
    let spec = small_render(70, 45, 16, 4);
    let whole = render_image(&spec).expect("renders");
    assert_eq!(whole.len(), 70 * 45 * 3);
    assert!(whole.iter().any(|&byte| byte > 0), "the image is not black");
    assert_eq!(render_as_tasks(&spec), whole);
}

#[test]
fn tasks_are_deterministic_and_count_work() {
    let spec = small_render(40, 30, 16, 2);
    let inputs = plan(&WorkloadSpec::Render(spec)).expect("plans");
    assert_eq!(inputs.len(), 3 * 2);
    let first = run_task(&inputs[5]).expect("runs");
    let second = run_task(&inputs[5]).expect("runs");
    assert_eq!(first, second);
    // The last tile is clipped to 8x14 pixels.
    assert_eq!(first.output.len(), 8 * 14 * 3);
    assert_eq!(first.work_units, 8 * 14 * 2);
}

#[test]
fn thread_count_does_not_change_the_image() {
    let spec = small_render(33, 17, 8, 2);
    let one_thread = rayon::ThreadPoolBuilder::new().num_threads(1).build().expect("a thread pool");
    let serial = one_thread.install(|| render_image(&spec).expect("renders"));
    assert_eq!(render_image(&spec).expect("renders"), serial);
}

#[test]
fn seeds_change_the_image() {
    let mut spec = small_render(24, 16, 8, 2);
    let a = render_image(&spec).expect("renders");
    spec.seed += 1;
    assert_ne!(render_image(&spec).expect("renders"), a);
}

#[test]
fn bad_task_inputs_are_errors() {
    for input in [&b""[..], b"garbage", b"{}", b"{\"workload\":\"fold\"}", &[0xff; 9]] {
        assert!(matches!(run_task(input), Err(RunError::Decode(_))), "{:?}", String::from_utf8_lossy(input));
    }
    let spec = small_render(40, 30, 16, 1);
    let input = plan(&WorkloadSpec::Render(spec)).expect("plans").remove(0);
    let text = String::from_utf8(input).expect("JSON");
    let outside = text.replace("\"x\":0", "\"x\":39");
    assert_ne!(outside, text);
    let err = run_task(outside.as_bytes()).expect_err("tile outside the image");
    assert!(err.to_string().starts_with("invalid task input: tile must lie inside"), "{err}");
}

#[test]
fn assemble_names_the_bad_task() {
    let spec = WorkloadSpec::Render(small_render(40, 30, 16, 1));
    let n_tasks = plan(&spec).expect("plans").len();
    let mut outputs = vec![vec![0u8; 16 * 16 * 3]; n_tasks];
    let durations = vec![0; n_tasks];
    let err = assemble(&spec, &outputs, &durations).expect_err("edge tiles are smaller");
    assert_eq!(err.to_string(), "task 2 output is 768 bytes, expected 384");
    assert_eq!(err.task_idx(), Some(2));
    outputs.pop();
    let err = assemble(&spec, &outputs, &durations).expect_err("one output short");
    assert_eq!(err.to_string(), "expected 6 task outputs (one per task), got 5");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    /// The key law of the render workload, over image and tile sizes.
    #[test]
    fn any_tiling_equals_the_whole_image(
        width in 1u32..40,
        height in 1u32..40,
        tile_size in 8u32..24,
        seed in any::<u64>(),
    ) {
        let mut spec = small_render(width, height, tile_size, 1);
        spec.seed = seed;
        spec.max_bounces = 3;
        prop_assert_eq!(render_as_tasks(&spec), render_image(&spec).expect("renders"));
    }
}
