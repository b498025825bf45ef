//! Test-only ways to tamper with task results, so the tests can prove that
//! result verification catches them. Compiled only with the `cheats`
//! feature, which no release build turns on.

use std::sync::{Arc, Mutex};

use iog_workloads::TaskRun;

use crate::Cheat;

/// Appended by every colluder to the right output, so colluders agree on
/// one wrong answer per task.
const COLLUSION_MARK: &[u8] = b"\n(the answer the colluders agreed on)";

/// What a cheating worker does to one task's input before the run and to
/// its output after.
#[derive(Clone)]
pub(crate) struct Tamper {
    cheat: Cheat,
    /// The output of the task it ran last, for replays.
    last_output: Arc<Mutex<Option<Vec<u8>>>>,
}

impl Tamper {
    /// A tamperer for result cheats; `None` for cheats that leave results alone.
    pub(crate) fn for_cheat(cheat: Option<Cheat>) -> Option<Tamper> {
        match cheat? {
            cheat @ (Cheat::RandomResult
            | Cheat::OtherSeed
            | Cheat::Replay
            | Cheat::Collude
            | Cheat::OtherPrecision) => Some(Tamper { cheat, last_output: Arc::new(Mutex::new(None)) }),
            _ => None,
        }
    }

    /// The input the cheat runs instead: for `OtherSeed`, the same task
    /// with another seed (a render's `seed`, a hash search's `nonce_start`),
    /// so its output is a valid result of a different task.
    pub(crate) fn input(&self, bytes: Vec<u8>) -> Vec<u8> {
        if self.cheat != Cheat::OtherSeed {
            return bytes;
        }
        // A binary input (a train round's) is bumped in its JSON form,
        // which runs as well.
        let Ok(mut value) = iog_workloads::json_view(&bytes) else { return bytes };
        if bump_seed(&mut value) { serde_json::to_vec(&value).expect("a JSON value serializes") } else { bytes }
    }

    /// The output the cheat reports instead of `run`'s.
    pub(crate) fn output(&self, mut run: TaskRun) -> TaskRun {
        let mut last = self.last_output.lock().expect("replay lock");
        let honest = run.output.clone();
        match self.cheat {
            Cheat::RandomResult => {
                let n = run.output.len().max(16);
                run.output = (0..n).map(|_| rand::random::<u8>()).collect();
            }
            Cheat::Replay => {
                if let Some(previous) = last.as_ref() {
                    run.output = previous.clone();
                }
            }
            Cheat::Collude => run.output.extend_from_slice(COLLUSION_MARK),
            Cheat::OtherPrecision => run.output = other_precision(run.output),
            _ => {}
        }
        *last = Some(honest);
        run
    }
}

/// A `sim` output's block sums, each moved by a relative 10⁻⁷ as `f32`
/// arithmetic would move them; any other output as it is.
fn other_precision(output: Vec<u8>) -> Vec<u8> {
    let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(&output) else { return output };
    let Some(blocks) = value.get_mut("blocks").and_then(|blocks| blocks.as_array_mut()) else { return output };
    for block in blocks {
        if let Some(sum) = block.get("sum").and_then(serde_json::Value::as_f64) {
            block["sum"] = serde_json::Value::from(sum * (1.0 + 1e-7));
        }
    }
    serde_json::to_vec(&value).expect("a JSON value serializes")
}

/// Changes the first `seed` or `nonce_start` number found in `value`; in
/// a train task, the seed its inner steps draw batches with.
fn bump_seed(value: &mut serde_json::Value) -> bool {
    if value.get("workload").and_then(serde_json::Value::as_str) == Some("train")
        && let Some(inner) = value.get_mut("inner")
    {
        return bump_seed(inner);
    }
    match value {
        serde_json::Value::Object(map) => {
            for key in ["seed", "nonce_start"] {
                if let Some(serde_json::Value::Number(n)) = map.get(key)
                    && let Some(n) = n.as_u64()
                {
                    map.insert(key.to_owned(), serde_json::Value::from(n.wrapping_add(7_919)));
                    return true;
                }
            }
            map.values_mut().any(bump_seed)
        }
        serde_json::Value::Array(items) => items.iter_mut().any(bump_seed),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_other_seed_cheat_changes_the_seed_a_train_round_draws_batches_with() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/train");
        let text = std::fs::read_to_string(dir.join("spirals.toml")).unwrap();
        let workload = iog_workloads::parse_job_file(&text, &dir).unwrap().workload().unwrap();
        let input = iog_workloads::plan(&workload).unwrap().remove(0);
        let tamper = Tamper::for_cheat(Some(Cheat::OtherSeed)).unwrap();
        let bumped = tamper.input(input.clone());
        let (honest, bumped) = (iog_workloads::json_view(&input).unwrap(), iog_workloads::json_view(&bumped).unwrap());
        assert_ne!(honest["inner"]["seed"], bumped["inner"]["seed"]);
        assert_eq!(honest["seed"], bumped["seed"], "the job's seed, which a round does not read, stays");
    }
}
