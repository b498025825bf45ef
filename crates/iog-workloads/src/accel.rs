//! Kernels that run a built-in workload's tasks on a device other than the
//! CPU: a GPU, through the `iog-gpu` crate's wgpu compute shaders.
//!
//! An [`Accelerator`] gives the part of a task that is worth moving (the
//! nonce search of a hash task, the samples of a sim task, an nbody
//! window's steps, a render tile's paths); everything around it (checking the input,
//! checking the kernel's answer as far as can be done without searching
//! again, writing the output) stays here, shared with the CPU path, so both
//! give the same output bytes and replicas on different devices agree by
//! digest (a hash search), or within the workload's stated tolerance where
//! the kernel computes in other precision (a sim task's `f32` sums, see
//! [`crate::sim::Tolerance`]). A kernel that fails or whose answer does not check out leaves
//! the task to the CPU, and [`Ran::accel_error`] says why.

use crate::TaskRun;
use crate::hash::HashAlgorithm;
use crate::sim::{SimBlock, SimKernelTask};
use iog_trust::compute::ProductSpec;

/// Where a job asks its tasks to run, from its `resources.device`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceChoice {
    /// On the CPU (`cpu`, the default).
    #[default]
    Cpu,
    /// On a GPU where the worker has a kernel for the workload (`gpu`); on
    /// its CPU otherwise.
    Gpu,
}

/// A nonce search for a kernel: `data || nonce` (nonce as 8 little-endian
/// bytes) hashed for every nonce of `nonce_start..nonce_start + nonce_count`.
#[derive(Debug, Clone, Copy)]
pub struct HashSearch<'a> {
    /// The hash function.
    pub algorithm: HashAlgorithm,
    /// The message prefix.
    pub data: &'a [u8],
    /// The first nonce.
    pub nonce_start: u64,
    /// How many nonces, at least 1; the range does not pass `u64::MAX`.
    pub nonce_count: u64,
    /// Leading zero bits a hash needs, 1 to 64.
    pub difficulty_bits: u32,
}

/// What a kernel found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashFinds {
    /// The first qualifying nonces in increasing order, at most
    /// [`crate::hash::FOUND_MAX`].
    pub nonces: Vec<u64>,
    /// How many nonces qualified in all.
    pub count: u64,
}

/// A kernel that failed: the device was lost, ran out of memory, or gave
/// an answer that does not check out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{device}: {message}")]
pub struct AccelError {
    /// The device, as the worker names it (`gpu0`).
    pub device: String,
    /// What went wrong.
    pub message: String,
}

/// A device's kernels for the built-in workloads.
pub trait Accelerator: Send + Sync {
    /// The device's name as the worker offers it (`gpu0`).
    fn device(&self) -> &str;

    /// Runs a nonce search. `Ok(None)` when this device has no kernel for
    /// these parameters (the CPU runs the search instead).
    fn hash_search(&self, search: &HashSearch<'_>) -> Result<Option<HashFinds>, AccelError>;

    /// Runs a sim task's samples: its [`crate::sim::SIM_BLOCKS`] blocks'
    /// sums, in order. `Ok(None)` (the default) when this device has no
    /// kernel for the model (the CPU runs the task instead).
    fn sim_blocks(&self, task: &SimKernelTask) -> Result<Option<Vec<SimBlock>>, AccelError> {
        let _ = task;
        Ok(None)
    }

    /// Renders a tile: its RGB8 bytes, within a PSNR bound of the CPU's
    /// (see [`crate::render::kernel`]). `Ok(None)` (the default) when this
    /// device has no kernel for it.
    fn render_tile(&self, task: &crate::render::kernel::RenderKernelTask) -> Result<Option<Vec<u8>>, AccelError> {
        let _ = task;
        Ok(None)
    }

    /// Runs an nbody window's steps: the state after each of the task's
    /// `stops`, in order (see [`crate::nbody::NbodyKernelTask`] for the
    /// steps it must take). `Ok(None)` (the default) when this device has
    /// no kernel for it (no 64-bit floats, say).
    fn nbody_states(
        &self,
        task: &crate::nbody::NbodyKernelTask,
    ) -> Result<Option<Vec<crate::nbody::NbodyState>>, AccelError> {
        let _ = task;
        Ok(None)
    }

    /// Computes products of a hardware compute challenge (all of one n):
    /// the hashes of every row of each, bit for bit those of
    /// [`iog_trust::compute::product_row_hashes`]. `Ok(None)` (the default)
    /// when this device has no kernel for them. The work stops with an
    /// error between steps once `keep_going` says no (the coordinator has
    /// moved on), so a device far slower than its claim is not held for
    /// the whole of a challenge it already failed.
    fn challenge_rows(
        &self,
        products: &[ProductSpec],
        keep_going: &(dyn Fn() -> bool + Sync),
    ) -> Result<Option<Vec<Vec<iog_trust::Hash>>>, AccelError> {
        let _ = (products, keep_going);
        Ok(None)
    }
}

/// A task's run, and where it ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ran {
    /// The output and work done, the same bytes on any device.
    pub run: TaskRun,
    /// The accelerator's device when one of its kernels ran the task;
    /// `None` when the CPU did.
    pub device: Option<String>,
    /// Why the accelerator's kernel failed, when it did: the CPU then ran
    /// the task, and the caller should stop using that device.
    pub accel_error: Option<AccelError>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::{HashSpec, search_range};
    use crate::{Decoded, WorkloadSpec, decode_task, plan_on, run_task, run_task_on};

    /// Answers every search with what `answer` makes of the CPU's answer:
    /// stands in for a GPU whose kernel is broken in one way or another.
    struct Kernel<F: Fn(HashFinds) -> Result<Option<HashFinds>, String> + Send + Sync> {
        answer: F,
    }

    impl<F: Fn(HashFinds) -> Result<Option<HashFinds>, String> + Send + Sync> Accelerator for Kernel<F> {
        fn device(&self) -> &str {
            "gpu7"
        }

        fn hash_search(&self, search: &HashSearch<'_>) -> Result<Option<HashFinds>, AccelError> {
            let right = search_range(
                search.algorithm,
                search.data,
                search.nonce_start,
                search.nonce_count,
                search.difficulty_bits,
            );
            (self.answer)(right).map_err(|message| AccelError { device: "gpu7".to_owned(), message })
        }
    }

    fn gpu_task() -> Vec<u8> {
        let spec = WorkloadSpec::Hash(HashSpec {
            algorithm: HashAlgorithm::Blake3,
            data: "accel".to_owned(),
            nonce_start: 0,
            nonce_count: 50_000,
            nonces_per_task: 50_000,
            difficulty_bits: 8,
        });
        let input = plan_on(&spec, DeviceChoice::Gpu).unwrap().remove(0);
        assert!(matches!(decode_task(&input).unwrap(), Decoded::BuiltIn { gpu: true }));
        input
    }

    #[test]
    fn a_right_kernel_runs_the_task_and_gives_the_cpu_s_bytes() {
        let input = gpu_task();
        let ran = run_task_on(&input, Some(&Kernel { answer: |right| Ok(Some(right)) })).unwrap();
        assert_eq!((ran.device.as_deref(), ran.accel_error), (Some("gpu7"), None));
        assert_eq!(ran.run, run_task(&input).unwrap());
    }

    #[test]
    fn a_kernel_that_fails_or_answers_wrongly_leaves_the_task_to_the_cpu_and_says_why() {
        let input = gpu_task();
        let cpu = run_task(&input).unwrap();
        type Answer = fn(HashFinds) -> Result<Option<HashFinds>, String>;
        let cases: [(Answer, &str); 5] = [
            (|_| Err("device lost".to_owned()), "device lost"),
            (
                |mut right| {
                    right.nonces[0] += 1;
                    Ok(Some(right))
                },
                "does not meet the difficulty",
            ),
            (
                |mut right| {
                    right.nonces.swap(0, 1);
                    Ok(Some(right))
                },
                "out of order",
            ),
            (
                |mut right| {
                    right.nonces.pop();
                    Ok(Some(right))
                },
                "nonces for a count of",
            ),
            (
                |mut right| {
                    right.count = 60_000;
                    Ok(Some(right))
                },
                "finds among",
            ),
        ];
        for (answer, words) in cases {
            let ran = run_task_on(&input, Some(&Kernel { answer })).unwrap();
            assert_eq!(ran.run, cpu, "the CPU's output all the same");
            assert_eq!(ran.device, None);
            let err = ran.accel_error.expect("the failure is reported");
            assert!(err.to_string().starts_with("gpu7: ") && err.to_string().contains(words), "{err}");
        }
    }

    #[test]
    fn a_kernel_without_a_kernel_for_the_search_leaves_it_to_the_cpu_quietly() {
        let input = gpu_task();
        let ran = run_task_on(&input, Some(&Kernel { answer: |_| Ok(None) })).unwrap();
        assert_eq!((ran.device, ran.accel_error), (None, None));
    }

    /// A GPU whose render kernel answers what `tile` makes of the CPU's
    /// bytes (or fails).
    struct RenderKernel<F: Fn(Vec<u8>) -> Result<Vec<u8>, String> + Send + Sync> {
        tile: F,
    }

    impl<F: Fn(Vec<u8>) -> Result<Vec<u8>, String> + Send + Sync> Accelerator for RenderKernel<F> {
        fn device(&self) -> &str {
            "gpu3"
        }

        fn hash_search(&self, _: &HashSearch<'_>) -> Result<Option<HashFinds>, AccelError> {
            Ok(None)
        }

        fn render_tile(&self, task: &crate::render::kernel::RenderKernelTask) -> Result<Option<Vec<u8>>, AccelError> {
            assert_eq!(task.rect, [0, 0, 8, 8]);
            let cpu = crate::render::render_image(&demo_render()).unwrap();
            (self.tile)(cpu).map(Some).map_err(|message| AccelError { device: "gpu3".to_owned(), message })
        }
    }

    fn demo_render() -> crate::render::RenderSpec {
        let mut spec = crate::demo_job().render.unwrap();
        (spec.width, spec.height, spec.tile_size, spec.samples_per_pixel) = (8, 8, 8, 4);
        spec
    }

    /// Moves every byte by `by` levels, as a GPU's other rounding might
    /// move a few (`by` 1) or another render would move all (`by` 40).
    fn moved(mut rgb: Vec<u8>, by: u8) -> Vec<u8> {
        for byte in &mut rgb {
            *byte = if *byte >= 128 { *byte - by } else { *byte + by };
        }
        rgb
    }

    #[test]
    fn a_render_task_that_asks_for_a_gpu_runs_on_its_kernel_and_is_checked_within_the_psnr_bound() {
        let spec = crate::WorkloadSpec::Render(demo_render());
        let input = plan_on(&spec, DeviceChoice::Gpu).unwrap().remove(0);
        assert!(matches!(decode_task(&input).unwrap(), Decoded::BuiltIn { gpu: true }));
        assert!(crate::compares_within_tolerance(&input));
        let cpu = run_task(&input).unwrap();

        // A tile a level off everywhere is taken, and said to come from the GPU.
        let ran = run_task_on(&input, Some(&RenderKernel { tile: |rgb| Ok(moved(rgb, 1)) })).unwrap();
        assert_eq!((ran.device.as_deref(), ran.accel_error), (Some("gpu3"), None));
        assert_eq!(ran.run.output, moved(cpu.output.clone(), 1));
        assert_eq!(ran.run.work_units, cpu.work_units);
        assert!(crate::outputs_agree(&input, &ran.run.output, &cpu.output).unwrap());
        let spot = crate::spot_check(&input, &ran.run.output, 9).unwrap();
        assert!(spot.passed && spot.detail.contains("within 2 levels"), "{}", spot.detail);
        // One pixel far off (a path sent another way) still agrees; two do not.
        let mut one_off = cpu.output.clone();
        one_off[0] = one_off[0].wrapping_add(60);
        let spots = (0..20).map(|seed| crate::spot_check(&input, &one_off, seed).unwrap()).collect::<Vec<_>>();
        assert!(spots.iter().all(|spot| spot.passed), "{:?}", spots.iter().find(|s| !s.passed));
        let far: Vec<u8> = moved(cpu.output.clone(), 3);
        assert!(!crate::spot_check(&input, &far, 9).unwrap().passed, "3 levels everywhere is too far");

        // One 40 levels off is not: the CPU renders the tile and says why.
        let ran = run_task_on(&input, Some(&RenderKernel { tile: |rgb| Ok(moved(rgb, 40)) })).unwrap();
        assert_eq!((ran.device, &ran.run), (None, &cpu));
        let err = ran.accel_error.expect("the kernel's failure is reported").to_string();
        assert!(
            err.starts_with("gpu3: its render kernel's tile does not check out") && err.contains("levels"),
            "{err}"
        );
        assert!(!crate::outputs_agree(&input, &moved(cpu.output.clone(), 40), &cpu.output).unwrap());
        assert!(!crate::spot_check(&input, &moved(cpu.output.clone(), 40), 9).unwrap().passed);

        let ran = run_task_on(&input, Some(&RenderKernel { tile: |_| Err("device lost".to_owned()) })).unwrap();
        assert_eq!((ran.device, ran.run), (None, cpu.clone()));
        assert_eq!(ran.accel_error.unwrap().to_string(), "gpu3: device lost");

        // A task that did not ask for a GPU stays on the CPU, byte for byte.
        let on_cpu = plan_on(&spec, DeviceChoice::Cpu).unwrap().remove(0);
        let ran = run_task_on(&on_cpu, Some(&RenderKernel { tile: |rgb| Ok(moved(rgb, 1)) })).unwrap();
        assert_eq!((ran.device, ran.run), (None, cpu.clone()));
        assert!(!crate::compares_within_tolerance(&on_cpu));
        assert!(!crate::outputs_agree(&on_cpu, &moved(cpu.output.clone(), 1), &cpu.output).unwrap());
        assert!(!crate::spot_check(&on_cpu, &moved(cpu.output.clone(), 1), 9).unwrap().passed);
    }
}
