//! A hash job as tasks: one nonce range per task, and the merged result.

use serde::{Deserialize, Serialize};

use crate::accel::{AccelError, Accelerator, DeviceChoice, HashFinds, HashSearch, Ran};
use crate::hash::search::{Found, hash_nonce, leading_zero_bits, search};
use crate::hash::spec::{
    DATA_BYTES_MAX, DIFFICULTY_BITS_MAX, FOUND_MAX, HashAlgorithm, HashSpec, NONCES_PER_TASK_MAX, check_expected_found,
};
use crate::spot::Spot;
use crate::{Artifact, AssembleError, SpecError, TaskRun, check};

/// The input of one hash task: one nonce range.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HashTask {
    algorithm: HashAlgorithm,
    data: String,
    nonce_start: u64,
    nonce_count: u64,
    difficulty_bits: u32,
    /// The job asked for a GPU: a worker with a kernel for the search runs
    /// it there. The output is the same either way.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    gpu: bool,
}

/// A nonce that met the difficulty, with its hash in hex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FoundNonce {
    /// The nonce, hashed as 8 little-endian bytes after the data.
    pub nonce: u64,
    /// The 32-byte hash, lowercase hex.
    pub hash: String,
}

/// The output of one hash task (deterministic JSON).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct HashTaskOutput {
    /// Nonces tried.
    hashes: u64,
    /// Nonces that qualified, including any beyond the kept list.
    found_count: u64,
    /// The first qualifying nonces, in nonce order.
    found: Vec<FoundNonce>,
}

/// `result.json` of a hash job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HashResult {
    /// The hash function used.
    pub algorithm: HashAlgorithm,
    /// The message prefix.
    pub data: String,
    /// Leading zero bits required.
    pub difficulty_bits: u32,
    /// The first nonce tried.
    pub nonce_start: u64,
    /// How many nonces were tried.
    pub total_hashes: u64,
    /// How many nonces qualified; more than `found.len()` when tasks hit
    /// their limit on kept nonces.
    pub found_count: u64,
    /// Qualifying nonces sorted by nonce.
    pub found: Vec<FoundNonce>,
    /// The sum of the tasks' run times on their workers.
    pub total_task_seconds: f64,
    /// `total_hashes / total_task_seconds`; absent when no time was recorded.
    pub hashes_per_second: Option<f64>,
}

/// Most found nonces all tasks of a job may list together. Validation keeps
/// the expected number at or below [`FOUND_MAX`]; four times that is beyond
/// chance, so more means a lying worker, and stops the checks below from
/// running unbounded.
const FOUND_PLAUSIBLE_MAX: usize = 4 * FOUND_MAX as usize;

/// Checks the nonces a task lists: in its range, in increasing order, and
/// really meeting the difficulty. Rehashing them is cheap next to the search,
/// and catches a worker that invents finds.
fn verify_found(task: &HashTask, found: &[FoundNonce]) -> Result<(), String> {
    if found.len() as u64 > FOUND_MAX {
        return Err(format!("lists {} nonces, a task keeps at most {FOUND_MAX}", found.len()));
    }
    let task_end = task.nonce_start + (task.nonce_count - 1);
    let mut previous = None;
    for entry in found {
        if entry.nonce < task.nonce_start || entry.nonce > task_end {
            return Err(format!("lists nonce {} outside its range {}..={task_end}", entry.nonce, task.nonce_start));
        }
        if previous.is_some_and(|previous| entry.nonce <= previous) {
            return Err(format!("lists nonce {} out of order", entry.nonce));
        }
        previous = Some(entry.nonce);
        let hash = hash_nonce(task.algorithm, task.data.as_bytes(), entry.nonce);
        if entry.hash != hex::encode(hash) {
            return Err(format!("gives a wrong hash for nonce {}", entry.nonce));
        }
        if leading_zero_bits(&hash) < task.difficulty_bits {
            return Err(format!(
                "lists nonce {} whose hash has fewer than {} leading zero bits",
                entry.nonce, task.difficulty_bits
            ));
        }
    }
    Ok(())
}

/// One task per `nonces_per_task` nonces, in nonce order.
pub(crate) fn plan(spec: &HashSpec, device: DeviceChoice) -> Result<Vec<HashTask>, SpecError> {
    spec.validate()?;
    let mut tasks = Vec::new();
    let mut done = 0;
    while done < spec.nonce_count {
        let nonce_count = spec.nonces_per_task.min(spec.nonce_count - done);
        tasks.push(HashTask {
            algorithm: spec.algorithm,
            data: spec.data.clone(),
            nonce_start: spec.nonce_start + done,
            nonce_count,
            difficulty_bits: spec.difficulty_bits,
            gpu: device == DeviceChoice::Gpu,
        });
        done += nonce_count;
    }
    Ok(tasks)
}

impl HashTask {
    /// Whether the job asked for a GPU.
    pub(crate) fn wants_gpu(&self) -> bool {
        self.gpu
    }
}

/// Searches the task's range with `accel`'s kernel where it has one for
/// these parameters, else on the CPU; the output lists the first
/// qualifying nonces. The nonces a kernel lists are hashed
/// again here: a kernel that lists a nonce that does not qualify is an
/// error, never an output.
pub(crate) fn run_on(task: &HashTask, accel: Option<&dyn Accelerator>) -> Result<Ran, SpecError> {
    if task.data.len() > DATA_BYTES_MAX {
        return Err(SpecError::invalid("data", format!("must be at most {DATA_BYTES_MAX} bytes")));
    }
    check::between("nonce_count", task.nonce_count, 1, NONCES_PER_TASK_MAX)?;
    check::between("difficulty_bits", task.difficulty_bits, 1, DIFFICULTY_BITS_MAX)?;
    if task.nonce_start.checked_add(task.nonce_count - 1).is_none() {
        return Err(SpecError::invalid("nonce_count", "runs past the largest nonce"));
    }
    check_expected_found(task.nonce_count, task.difficulty_bits, "difficulty_bits")?;
    let data = task.data.as_bytes();
    let query = HashSearch {
        algorithm: task.algorithm,
        data,
        nonce_start: task.nonce_start,
        nonce_count: task.nonce_count,
        difficulty_bits: task.difficulty_bits,
    };
    let mut device = None;
    let mut accel_error = None;
    let mut found = None;
    if let Some(accel) = accel {
        let checked = accel.hash_search(&query).and_then(|finds| match finds {
            Some(finds) => check_finds(task, finds).map(Some).map_err(|message| AccelError {
                device: accel.device().to_owned(),
                message: format!("its kernel's answer does not check out: {message}"),
            }),
            None => Ok(None),
        });
        match checked {
            Ok(Some(kernel_found)) => {
                found = Some(kernel_found);
                device = Some(accel.device().to_owned());
            }
            Ok(None) => {}
            Err(err) => accel_error = Some(err),
        }
    }
    let found =
        found.unwrap_or_else(|| search(task.algorithm, data, task.nonce_start, task.nonce_count, task.difficulty_bits));
    let output = HashTaskOutput {
        hashes: task.nonce_count,
        found_count: found.count,
        found: found.nonces.into_iter().map(|(nonce, hash)| FoundNonce { nonce, hash: hex::encode(hash) }).collect(),
    };
    let run = TaskRun {
        output: serde_json::to_vec(&output).expect("plain structs serialize to JSON"),
        work_units: task.nonce_count,
    };
    Ok(Ran { run, device, accel_error })
}

/// Checks a kernel's finds as far as the CPU can without searching again:
/// the nonces in the task's range, strictly increasing, as many as the
/// count allows, each really qualifying (hashed again here). What this
/// cannot see, a nonce the kernel missed, the kernels' self-test at start
/// and their tests against the CPU twin answer for.
fn check_finds(task: &HashTask, finds: HashFinds) -> Result<Found, String> {
    if finds.count > task.nonce_count {
        return Err(format!("it counts {} finds among {} nonces", finds.count, task.nonce_count));
    }
    if finds.nonces.len() as u64 != finds.count.min(FOUND_MAX) {
        return Err(format!("it lists {} nonces for a count of {}", finds.nonces.len(), finds.count));
    }
    let end = task.nonce_start + (task.nonce_count - 1);
    let mut nonces = Vec::with_capacity(finds.nonces.len());
    let mut previous: Option<u64> = None;
    for nonce in finds.nonces {
        if nonce < task.nonce_start || nonce > end || previous.is_some_and(|previous| nonce <= previous) {
            return Err(format!("nonce {nonce} is out of order or outside {}..={end}", task.nonce_start));
        }
        previous = Some(nonce);
        let hash = hash_nonce(task.algorithm, task.data.as_bytes(), nonce);
        if leading_zero_bits(&hash) < task.difficulty_bits {
            return Err(format!("nonce {nonce}'s hash does not meet the difficulty"));
        }
        nonces.push((nonce, hash));
    }
    Ok(Found { nonces, count: finds.count })
}

/// Most nonces a spot check searches again, whatever the task's size: the
/// check runs on the coordinator, which must not spend seconds on one
/// result (2²² blake3 hashes take about a quarter of a second on one core).
pub const SPOT_NONCES_MAX: u64 = 1 << 22;

/// The counts of an output agree with each other: no more listed than
/// counted, no more counted than hashed, and fewer listed than counted only
/// when the list is full (a task keeps its first [`FOUND_MAX`] finds).
fn check_counts(output: &HashTaskOutput) -> Result<(), String> {
    let listed = output.found.len() as u64;
    if listed > output.found_count || output.found_count > output.hashes {
        return Err(format!(
            "lists {listed} nonces, counts {} found among {} hashes",
            output.found_count, output.hashes
        ));
    }
    if listed < output.found_count && listed != FOUND_MAX {
        return Err(format!(
            "lists {listed} nonces but counts {}; a task lists every find up to {FOUND_MAX}",
            output.found_count
        ));
    }
    Ok(())
}

/// Checks a task's output without redoing the task: its counts, every nonce
/// it lists (in range, in order, really qualifying), and a recomputed
/// sub-range of 1 / `share` of its nonces drawn from `seed`, whose
/// qualifying nonces must be exactly those the output lists there.
pub(crate) fn spot_check(task: &HashTask, output: &[u8], seed: u64, share: u64) -> Spot {
    let output: HashTaskOutput = match serde_json::from_slice(output) {
        Ok(output) => output,
        Err(err) => return Spot::failed(format!("is not a hash task output: {err}")),
    };
    if output.hashes != task.nonce_count {
        return Spot::failed(format!("reports {} hashes, the task had {} nonces", output.hashes, task.nonce_count));
    }
    if let Err(reason) = check_counts(&output) {
        return Spot::failed(reason);
    }
    if let Err(reason) = verify_found(task, &output.found) {
        return Spot::failed(reason);
    }
    let length = (task.nonce_count / share.max(1)).clamp(1, task.nonce_count.min(SPOT_NONCES_MAX));
    let start = task.nonce_start + crate::spot::Draw::new(seed).below(task.nonce_count - length + 1);
    let end = start + (length - 1);
    let recomputed = search(task.algorithm, task.data.as_bytes(), start, length, task.difficulty_bits);
    // A task keeps only its first FOUND_MAX finds; past the last one kept,
    // the output says nothing to compare.
    let complete = output.found.len() as u64 == output.found_count;
    let last_kept = output.found.last().map_or(task.nonce_start, |entry| entry.nonce);
    let listed: Vec<u64> =
        output.found.iter().map(|entry| entry.nonce).filter(|nonce| (start..=end).contains(nonce)).collect();
    let expected: Vec<u64> =
        recomputed.nonces.iter().map(|(nonce, _)| *nonce).filter(|nonce| complete || *nonce <= last_kept).collect();
    if listed != expected {
        return Spot::failed(format!("lists nonces {listed:?} in {start}..={end}, where a search finds {expected:?}"));
    }
    Spot { passed: true, detail: format!("{length} of {} nonces searched again", task.nonce_count), work_units: length }
}

/// Merges the tasks' finds into `result.json`.
pub(crate) fn assemble(
    spec: &HashSpec,
    outputs: &[Vec<u8>],
    task_durations_ms: &[u64],
) -> Result<Vec<Artifact>, AssembleError> {
    let tasks = plan(spec, DeviceChoice::Cpu)?;
    let mut total_hashes = 0u64;
    let mut found_count = 0u64;
    let mut found = Vec::new();
    for (task_idx, (task, output)) in tasks.iter().zip(outputs).enumerate() {
        let bad = |reason: String| AssembleError::BadOutput { task_idx, reason };
        let output: HashTaskOutput =
            serde_json::from_slice(output).map_err(|err| bad(format!("not a hash task output: {err}")))?;
        if output.hashes != task.nonce_count {
            return Err(bad(format!("reports {} hashes, the task had {} nonces", output.hashes, task.nonce_count)));
        }
        check_counts(&output).map_err(bad)?;
        verify_found(task, &output.found).map_err(bad)?;
        if found.len() + output.found.len() > FOUND_PLAUSIBLE_MAX {
            return Err(bad(format!(
                "brings the job's found nonces past {FOUND_PLAUSIBLE_MAX}, far more than \
                 the difficulty allows"
            )));
        }
        total_hashes += output.hashes;
        found_count += output.found_count;
        found.extend(output.found);
    }
    found.sort_by_key(|entry| entry.nonce);
    // Durations come from workers; saturate rather than overflow on nonsense.
    let total_task_ms = task_durations_ms.iter().fold(0u64, |sum, &ms| sum.saturating_add(ms));
    let total_task_seconds = total_task_ms as f64 / 1000.0;
    let result = HashResult {
        algorithm: spec.algorithm,
        data: spec.data.clone(),
        difficulty_bits: spec.difficulty_bits,
        nonce_start: spec.nonce_start,
        total_hashes,
        found_count,
        found,
        total_task_seconds,
        hashes_per_second: (total_task_seconds > 0.0).then(|| total_hashes as f64 / total_task_seconds),
    };
    Ok(vec![Artifact {
        name: "result.json".to_owned(),
        media_type: "application/json".to_owned(),
        bytes: serde_json::to_vec_pretty(&result).expect("plain structs serialize to JSON"),
    }])
}
