//! The sim kernels against their CPU twin (`SimKernelTask::cpu_block`), on
//! whatever adapter this machine has: software Vulkan (Mesa's llvmpipe) in
//! CI, a real GPU elsewhere. `IOG_REQUIRE_GPU_ADAPTER=1` makes a machine
//! without one a failure rather than a skip.

mod common;

use common::gpu;
use iog_gpu::{Gpu, U64Ops};
use iog_workloads::sim::{OptionModel, SIM_BLOCKS, SlabModel, mix};
use iog_workloads::{Accelerator, SimKernelTask, SimModel};

fn task(model: SimModel, stream: u64, samples: u64) -> SimKernelTask {
    SimKernelTask { model, stream, samples, block_len: samples.div_ceil(SIM_BLOCKS) }
}

/// Runs `task` on the kernel and checks every block against the CPU's
/// within the model's tolerance; returns the worst `|Δsum| / √(n·Σx²)`.
fn assert_blocks_agree(gpu: &Gpu, task: &SimKernelTask) -> f64 {
    let blocks = gpu.sim_blocks(task).unwrap().expect("the kernel takes every model");
    assert_eq!(blocks.len() as u64, SIM_BLOCKS);
    let tolerance = task.model.tolerance();
    let mut worst = 0.0f64;
    for (block, got) in blocks.iter().enumerate() {
        let expected = task.cpu_block(block as u64);
        assert!(
            tolerance.blocks_agree(got, &expected),
            "{:?}, {} samples: block {block} is {got:?}, the CPU's {expected:?}",
            task.model,
            task.samples
        );
        let scale = (got.n as f64 * got.sum_sq.max(expected.sum_sq)).sqrt();
        if scale > 0.0 {
            worst = worst.max((got.sum - expected.sum).abs() / scale);
        }
    }
    worst
}

fn options() -> Vec<OptionModel> {
    let default = OptionModel::default();
    vec![
        default,
        // Deep out of the money: a few paths in a thousand pay.
        OptionModel { strike: 200.0, ..default },
        // Deep in the money, volatile, long.
        OptionModel { strike: 20.0, volatility: 0.8, maturity_years: 10.0, ..default },
        // Extremes of the spec's ranges.
        OptionModel { spot: 1e9, strike: 1.2e9, rate: -0.5, volatility: 3.0, maturity_years: 0.01 },
    ]
}

fn slabs() -> Vec<SlabModel> {
    vec![
        SlabModel::default(),
        // A pure absorber.
        SlabModel { thickness: 3.0, scatter_ratio: 0.0 },
        // Thick: few particles get through.
        SlabModel { thickness: 8.0, scatter_ratio: 0.5 },
        // Mostly scattering: long walks.
        SlabModel { thickness: 4.0, scatter_ratio: 0.95 },
        // No slab at all: everything gets through.
        SlabModel { thickness: 0.0, scatter_ratio: 0.5 },
    ]
}

#[test]
fn every_block_of_every_model_agrees_with_the_cpu() {
    let Some(gpu) = gpu() else { return };
    for (idx, option) in options().into_iter().enumerate() {
        let worst = assert_blocks_agree(&gpu, &task(SimModel::Option(option), 0xa11ce + idx as u64, 64_000));
        eprintln!("{option:?}: worst |Δsum|/√(n·Σx²) {worst:.2e}");
    }
    for (idx, slab) in slabs().into_iter().enumerate() {
        let worst = assert_blocks_agree(&gpu, &task(SimModel::Slab(slab), 0xb0b + idx as u64, 64_000));
        eprintln!("{slab:?}: worst |Δsum|/√(n·Σx²) {worst:.2e}");
    }
}

#[test]
fn short_and_empty_blocks_are_counted_right() {
    let Some(gpu) = gpu() else { return };
    for model in [SimModel::Option(OptionModel::default()), SimModel::Slab(SlabModel::default())] {
        // 100 samples: blocks of 2, blocks 50 to 63 empty; 1 sample: only
        // block 0; 6401: the last block short; a stream at the top of the
        // range, so sample indices carry into the high word.
        for (stream, samples) in [(1, 100), (2, 1), (3, 6_401), (u64::MAX - 5, 130)] {
            let task = task(model, stream, samples);
            assert_blocks_agree(&gpu, &task);
            let blocks = gpu.sim_blocks(&task).unwrap().unwrap();
            let counts: Vec<u64> = blocks.iter().map(|block| block.n).collect();
            let expected: Vec<u64> = (0..SIM_BLOCKS)
                .map(|block| {
                    let (start, end) = task.block_range(block);
                    end - start
                })
                .collect();
            assert_eq!(counts, expected);
            assert_eq!(counts.iter().sum::<u64>(), samples);
            if samples == 100 {
                assert!(blocks[50..].iter().all(|block| block.n == 0 && block.sum == 0.0 && block.sum_sq == 0.0));
            }
        }
    }
}

#[test]
fn a_task_of_many_batches_agrees_with_the_cpu() {
    let Some(gpu) = gpu() else { return };
    // Blocks of 15 625 samples in runs of 16: 62 528 runs, past the first
    // batch's 1 024 and the next ones'.
    let option = task(SimModel::Option(OptionModel::default()), 77, 1_000_000);
    eprintln!("option: worst |Δsum|/√(n·Σx²) {:.2e}", assert_blocks_agree(&gpu, &option));
    let slab = task(SimModel::Slab(SlabModel::default()), 78, 1_000_000);
    eprintln!("slab: worst |Δsum|/√(n·Σx²) {:.2e}", assert_blocks_agree(&gpu, &slab));
}

#[test]
fn the_64_bit_arithmetic_is_the_cpu_s_bit_for_bit() {
    let Some(gpu) = gpu() else { return };
    let edges = [
        0u64,
        1,
        2,
        0xffff,
        0x1_0000,
        0xffff_ffff,
        1 << 32,
        (1 << 32) + 1,
        0x0000_ffff_ffff_ffff,
        0xffff_ffff_0000_0000,
        0x7fff_ffff_ffff_ffff,
        0x8000_0000_0000_0000,
        0x9E37_79B9_7F4A_7C15,
        0x6176_8883_80b5_83eb,
        u64::MAX - 1,
        u64::MAX,
    ];
    let mut pairs: Vec<(u64, u64)> = edges.iter().flat_map(|&a| edges.iter().map(move |&b| (a, b))).collect();
    // And a spread of values from the CPU's own generator.
    pairs.extend((0..4_000u64).map(|i| (mix(i), mix(!i))));
    let got = gpu.sim_u64_ops(&pairs).unwrap();
    assert_eq!(got.len(), pairs.len());
    for (&(a, b), got) in pairs.iter().zip(got) {
        assert_eq!(got, U64Ops::cpu(a, b), "{a:#x}, {b:#x}");
    }
}

#[test]
fn a_sim_task_run_on_the_gpu_agrees_with_the_cpu_run() {
    let Some(gpu) = gpu() else { return };
    for model in ["option", "slab"] {
        let spec = iog_workloads::parse_job_file(
            &format!(
                r#"
                [job]
                name = "gpu sim"
                workload = "sim"
                [sim]
                model = "{model}"
                tasks = 2
                samples_per_task = 50000
                seed = 9
                "#
            ),
            std::path::Path::new("."),
        )
        .unwrap()
        .workload()
        .unwrap();
        let on_gpu = iog_workloads::plan_on(&spec, iog_workloads::DeviceChoice::Gpu).unwrap();
        for input in &on_gpu {
            let ran = iog_workloads::run_task_on(input, Some(&gpu)).unwrap();
            assert_eq!((ran.device.as_deref(), &ran.accel_error), (Some("gpu0"), &None), "{model}");
            let cpu = iog_workloads::run_task(input).unwrap();
            assert!(iog_workloads::outputs_agree(input, &ran.run.output, &cpu.output).unwrap(), "{model}");
            assert_eq!(ran.run.work_units, cpu.work_units);
            for seed in 0..4 {
                let spot = iog_workloads::spot_check(input, &ran.run.output, seed).unwrap();
                assert!(spot.passed, "{model}: {}", spot.detail);
            }
        }
    }
}
