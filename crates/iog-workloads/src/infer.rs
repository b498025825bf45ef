//! The `infer` workload: a trained model run over a data set in shards,
//! one shard per task, the outputs put back together in order.
//!
//! The job names the weights (a safetensors file such as a `train` job's
//! `weights.safetensors`) and the data: a CSV or `.npy` file of feature
//! rows, a generated set, or a text file of prompts for a `char_lm`. `iog
//! job submit` reads the files, checks them against the model (filling
//! `infer.model`, and `infer.vocab` for a `char_lm`, from the weights'
//! metadata when the job file leaves them out), uploads each as a blob
//! and sends the spec naming them by content address, as for `wasm` jobs.
//! Task inputs name those blobs, so a 100 MB data set split into 100
//! tasks is stored once; a worker fetches (and caches) the weights and
//! the data, reads the whole set and runs its shard: examples
//! `shard(len, tasks, k)` for task k (see [`iog_ml::shard`]).
//!
//! An `mlp` gives each row's raw outputs (regression values or class
//! logits); with `output = "class"` the assembled `predictions.csv` holds
//! each row's most likely class and its softmax probability instead. A
//! `char_lm` continues each prompt (one a line) greedily by `generate`
//! characters: at each step the character with the highest score follows
//! (the lowest token on a tie), the prompt's last `context` characters
//! being what the model sees.
//!
//! Labelled data (a CSV or generated set with a target) is also scored:
//! `result.json` gives the accuracy (classes) or the mean squared error
//! (values) of the predictions.
//!
//! One machine repeats a task bit for bit; another CPU's matrix kernels
//! may round differently, so replicas of a task agree when their outputs
//! lie within [`INFER_RELATIVE_ERROR`] of each other in L2 norm (and
//! their completions are equal: a near tie between two characters can
//! tip either way on another CPU, and then more replicas decide). Spot
//! checks are refused: the coordinator runs no model.
//!
//! Artifacts: `predictions.csv` (feature rows) or `completions.jsonl`
//! (prompts), and `result.json`.

use std::collections::BTreeMap;
use std::sync::Arc;

use iog_ml::{Dataset, ModelSpec, Target};
use iog_types::BlobId;
use serde::{Deserialize, Serialize};

use crate::code::FileRef;
use crate::task::MAX_TASKS;
use crate::train::{b64, bytes_to_floats, floats_to_bytes, l2_distance, l2_norm};
use crate::{Artifact, AssembleError, SpecError, TaskRun, check};

/// How far apart two replicas' outputs may be and still be one result:
/// the L2 norm of their difference within this share of the larger's.
/// One forward pass, so far tighter than training's.
pub const INFER_RELATIVE_ERROR: f64 = 1e-4;
/// Most tasks (shards) of one job.
pub const INFER_TASKS_MAX: u32 = 100_000;
/// Most characters a `char_lm` adds to each prompt.
pub const INFER_GENERATE_MAX: usize = 4_096;
/// Default characters added to each prompt.
pub const INFER_GENERATE_DEFAULT: usize = 64;
/// Most output values (rows × outputs) one task may return: 1 MiB of
/// `f32`, so that an output, in base64 with its rows' labels or targets,
/// stays under the 4 MiB the coordinator reads to compare replicas within
/// the tolerance (larger ones could only be compared by digest). More rows
/// take more tasks.
pub const INFER_TASK_VALUES_MAX: usize = 1 << 18;
/// Most output values (rows × outputs) of a whole job, or characters of
/// all its completions: the coordinator assembles them in memory, into a
/// CSV of about 200 MB at most.
pub const INFER_JOB_VALUES_MAX: usize = 1 << 24;
/// Most examples of a generated data set.
pub const INFER_EXAMPLES_MAX: usize = 1_000_000;
/// Most prompts a prompts file may hold.
pub const INFER_PROMPTS_MAX: usize = 1_000_000;

/// The `[infer]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InferSpec {
    /// The model the weights are for. `iog job submit` reads it from the
    /// weights' metadata (a `train` job writes it there) when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelSpec>,
    /// The weights: a safetensors file with one `f32` tensor per entry of
    /// the model's [`iog_ml::param_layout`], named and shaped as there.
    pub weights: FileRef,
    /// What to run the model on.
    pub data: InferData,
    /// Tasks: the data is cut into this many shards, one per task.
    pub tasks: u32,
    /// Examples (rows, or prompts) in the data. `iog job submit` counts
    /// them; a worker whose copy of the data holds another number refuses
    /// the task, and each output must hold exactly its shard's rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub examples: Option<usize>,
    /// `"values"` (default): `predictions.csv` holds each row's raw
    /// outputs; `"class"`: its most likely class and that class's softmax
    /// probability. `mlp` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// A `char_lm`'s characters in token order (token 0 first), from the
    /// weights' metadata when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vocab: Option<String>,
    /// Characters a `char_lm` adds to each prompt (default 64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generate: Option<usize>,
}

/// `infer.data`: the examples to run the model on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum InferData {
    /// Comma-separated numbers, one example a line (see
    /// [`iog_ml::parse_csv`]): all inputs, or inputs then a target.
    Csv {
        /// The file, relative to the job file.
        file: FileRef,
        /// Left out: every column is an input. `"class"`: the last column
        /// is a class index; `"values"`: the last `target_columns` columns
        /// are regression targets. Targets are not inputs; they score the
        /// predictions.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target: Option<String>,
        /// Regression target columns (default 1).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target_columns: Option<usize>,
    },
    /// A NumPy array of shape `[examples, inputs]`.
    Npy {
        /// The file, relative to the job file.
        x: FileRef,
    },
    /// Generated spirals (see [`iog_ml::spirals`]), labelled.
    Spirals {
        /// Points in all.
        examples: usize,
        /// Arms, one class each.
        classes: usize,
        /// Seeds the points.
        #[serde(default)]
        seed: u64,
    },
    /// Generated waves (see [`iog_ml::waves`]), with targets.
    Waves {
        /// Examples in all.
        examples: usize,
        /// Seeds the examples.
        #[serde(default)]
        seed: u64,
    },
    /// UTF-8 text, one prompt a line (blank lines skipped), for a `char_lm`.
    Prompts {
        /// The file, relative to the job file.
        file: FileRef,
    },
}

impl InferData {
    fn files(&self) -> Vec<(&'static str, &FileRef)> {
        match self {
            InferData::Csv { file, .. } | InferData::Prompts { file } => vec![("infer.data.file", file)],
            InferData::Npy { x } => vec![("infer.data.x", x)],
            InferData::Spirals { .. } | InferData::Waves { .. } => Vec::new(),
        }
    }

    fn files_mut(&mut self) -> Vec<(&'static str, &mut FileRef)> {
        match self {
            InferData::Csv { file, .. } | InferData::Prompts { file } => vec![("infer.data.file", file)],
            InferData::Npy { x } => vec![("infer.data.x", x)],
            InferData::Spirals { .. } | InferData::Waves { .. } => Vec::new(),
        }
    }

    /// The CSV target, `None` for all inputs.
    fn target(&self) -> Result<Option<Target>, SpecError> {
        let InferData::Csv { target, target_columns, .. } = self else { return Ok(None) };
        match (target.as_deref(), target_columns) {
            (None, None) => Ok(None),
            (None, Some(_)) | (Some("class"), Some(_)) => {
                Err(SpecError::invalid("infer.data.target_columns", "applies to target = \"values\" only; remove it"))
            }
            (Some("class"), None) => Ok(Some(Target::Class)),
            (Some("values"), columns) => {
                let columns = columns.unwrap_or(1);
                check::between("infer.data.target_columns", columns, 1, iog_ml::WIDTH_MAX)?;
                Ok(Some(Target::Values(columns)))
            }
            (Some(other), _) => Err(SpecError::invalid(
                "infer.data.target",
                format!(
                    "must be \"class\" (the last column is a class index) or \"values\" (the last target_columns \
                     columns are regression targets), or be left out when every column is an input; got {other:?}"
                ),
            )),
        }
    }

    fn is_text(&self) -> bool {
        matches!(self, InferData::Prompts { .. })
    }
}

/// What `predictions.csv` holds for each row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OutputMode {
    Values,
    Class,
}

impl InferSpec {
    /// Tasks in the job.
    pub fn n_tasks(&self) -> u64 {
        u64::from(self.tasks)
    }

    /// Every file the spec names, with its field.
    pub fn file_refs(&self) -> impl Iterator<Item = (String, &FileRef)> {
        std::iter::once(("infer.weights".to_owned(), &self.weights))
            .chain(self.data.files().into_iter().map(|(field, file)| (field.to_owned(), file)))
    }

    /// Mutable access to every file the spec names, with its field.
    pub(crate) fn file_refs_mut(&mut self) -> impl Iterator<Item = (String, &mut FileRef)> {
        std::iter::once(("infer.weights".to_owned(), &mut self.weights))
            .chain(self.data.files_mut().into_iter().map(|(field, file)| (field.to_owned(), file)))
    }

    /// The blobs the job's tasks read: the weights and the data file.
    pub fn assets(&self) -> Result<Vec<BlobId>, SpecError> {
        crate::code::assets(self.file_refs())
    }

    fn model(&self) -> Result<&ModelSpec, SpecError> {
        self.model.as_ref().ok_or_else(|| {
            SpecError::invalid(
                "infer.model",
                "is missing: name the model the weights are for, or give weights whose metadata names it (as a \
                 train job's weights.safetensors does) and submit with `iog job submit`",
            )
        })
    }

    /// The examples in the data: a generated set's own count, else
    /// `infer.examples`, which must then agree with it.
    fn examples_count(&self) -> Result<Option<usize>, SpecError> {
        let generated = match &self.data {
            InferData::Spirals { examples, .. } | InferData::Waves { examples, .. } => Some(*examples),
            _ => None,
        };
        match (generated, self.examples) {
            (Some(n), Some(given)) if n != given => Err(SpecError::invalid(
                "infer.examples",
                format!("is {given}, but infer.data generates {n}; remove it or make it {n}"),
            )),
            (Some(n), _) => Ok(Some(n)),
            (None, given) => Ok(given),
        }
    }

    fn output_mode(&self) -> Result<OutputMode, SpecError> {
        match self.output.as_deref() {
            None | Some("values") => Ok(OutputMode::Values),
            Some("class") if self.data.is_text() => Err(SpecError::invalid(
                "infer.output",
                "applies to mlp models only; a char_lm's output is its completions; remove it",
            )),
            Some("class") => Ok(OutputMode::Class),
            Some(other) => Err(SpecError::invalid(
                "infer.output",
                format!(
                    "must be \"values\" (each row's raw outputs) or \"class\" (its most likely class and that \
                     class's probability), got {other:?}"
                ),
            )),
        }
    }

    /// The vocabulary, checked against the model.
    fn vocab_chars(&self) -> Result<Vec<char>, SpecError> {
        let Some(ModelSpec::CharLm { vocab, .. }) = &self.model else { return Ok(Vec::new()) };
        let Some(text) = &self.vocab else {
            return Err(SpecError::invalid(
                "infer.vocab",
                "is missing: a char_lm needs its characters in token order; give them, or give weights whose \
                 metadata holds them (as a train job's weights.safetensors does)",
            ));
        };
        let chars: Vec<char> = text.chars().collect();
        if chars.len() != *vocab {
            return Err(SpecError::invalid(
                "infer.vocab",
                format!("holds {} characters, but the model's vocab is {vocab}", chars.len()),
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        if let Some(repeat) = chars.iter().find(|c| !seen.insert(**c)) {
            return Err(SpecError::invalid(
                "infer.vocab",
                format!("holds {repeat:?} twice; each token is one character"),
            ));
        }
        Ok(chars)
    }

    /// Checks every field. Paths (not yet uploaded) pass, and so does a
    /// missing model while the weights are still a path (`iog job submit`
    /// reads it from their metadata): the coordinator refuses them when it
    /// plans the job.
    pub fn validate(&self) -> Result<(), SpecError> {
        check::between("infer.tasks", u64::from(self.tasks), 1, u64::from(INFER_TASKS_MAX).min(MAX_TASKS))?;
        self.output_mode()?;
        self.data.target()?;
        if self.model.is_none() && matches!(self.weights, FileRef::Path(_)) {
            // `iog job submit` reads the model from the weights' metadata.
            return Ok(());
        }
        let Some(examples) = self.examples_count()? else {
            return Err(SpecError::invalid(
                "infer.examples",
                "is missing: give the number of examples (rows, or prompts) in the data; `iog job submit` counts \
                 them",
            ));
        };
        check::between("infer.examples", examples, 1, usize::MAX / 2)?;
        let model = self.model()?;
        model
            .validate()
            .map_err(|err| SpecError::invalid("infer.model", format!("is not a model this network runs: {err}")))?;
        let per_example = match model {
            ModelSpec::Mlp { outputs, .. } => *outputs,
            ModelSpec::CharLm { .. } => self.generate.unwrap_or(INFER_GENERATE_DEFAULT),
        };
        if examples.saturating_mul(per_example) > INFER_JOB_VALUES_MAX {
            return Err(SpecError::invalid(
                "infer.examples",
                format!(
                    "is {examples}, whose outputs ({} values or characters) are more than the {INFER_JOB_VALUES_MAX} \
                     one job may assemble; split the data over several jobs",
                    examples.saturating_mul(per_example)
                ),
            ));
        }
        match (model, &self.data) {
            (ModelSpec::CharLm { .. }, InferData::Prompts { .. }) => {
                self.vocab_chars()?;
                check::between(
                    "infer.generate",
                    self.generate.unwrap_or(INFER_GENERATE_DEFAULT),
                    1,
                    INFER_GENERATE_MAX,
                )?;
            }
            (ModelSpec::CharLm { .. }, _) => {
                return Err(SpecError::invalid(
                    "infer.data.kind",
                    "must be \"prompts\" for a char_lm model, which continues text",
                ));
            }
            (ModelSpec::Mlp { .. }, InferData::Prompts { .. }) => {
                return Err(SpecError::invalid(
                    "infer.data.kind",
                    "is \"prompts\", which is text: a model of kind \"char_lm\" continues it, not an \"mlp\"",
                ));
            }
            (ModelSpec::Mlp { inputs, outputs, .. }, data) => {
                for (field, value) in
                    [("infer.vocab", self.vocab.is_some()), ("infer.generate", self.generate.is_some())]
                {
                    if value {
                        return Err(SpecError::invalid(field, "applies to char_lm models only; remove it"));
                    }
                }
                match data {
                    InferData::Spirals { examples, classes, .. } => {
                        check::between("infer.data.examples", *examples, 1, INFER_EXAMPLES_MAX)?;
                        check::between("infer.data.classes", *classes, 2, 256)?;
                        fits(*inputs, *outputs, 2, Some(*classes))?;
                    }
                    InferData::Waves { examples, .. } => {
                        check::between("infer.data.examples", *examples, 2, INFER_EXAMPLES_MAX)?;
                        let sample =
                            iog_ml::waves(2, 0).map_err(|err| SpecError::invalid("infer.data", err.to_string()))?;
                        fits(*inputs, *outputs, sample.inputs().unwrap_or(0), sample.outputs())?;
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }
}

/// Checks an `mlp`'s widths against the data's.
fn fits(inputs: usize, outputs: usize, data_inputs: usize, data_outputs: Option<usize>) -> Result<(), SpecError> {
    if inputs != data_inputs {
        return Err(SpecError::invalid(
            "infer.model.inputs",
            format!("is {inputs}, but the data's rows have {data_inputs} inputs"),
        ));
    }
    if let Some(want) = data_outputs
        && outputs != want
    {
        return Err(SpecError::invalid(
            "infer.model.outputs",
            format!("is {outputs}, but the data's targets need {want} outputs"),
        ));
    }
    Ok(())
}

/// The input of one infer task: the model, its weights and data by blob,
/// and which shard to run. Public so the worker can fetch its blobs and
/// run it; built only by [`crate::plan`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InferTask {
    model: ModelSpec,
    weights: BlobId,
    data: InferData,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    vocab: Vec<char>,
    generate: usize,
    /// Examples in the whole data set.
    examples: usize,
    task_idx: u32,
    n_tasks: u32,
}

impl InferTask {
    /// The examples of the whole set that this task's shard holds.
    fn shard(&self) -> Result<std::ops::Range<usize>, String> {
        iog_ml::shard(self.examples, self.n_tasks as usize, self.task_idx as usize).map_err(|err| err.to_string())
    }

    /// Whether its data's rows carry labels, and how many target columns:
    /// what every output must carry beside its values.
    fn labelling(&self) -> Result<(bool, usize), String> {
        Ok(match &self.data {
            InferData::Spirals { .. } => (true, 0),
            InferData::Waves { .. } => (false, iog_ml::waves(2, 0).ok().and_then(|set| set.outputs()).unwrap_or(1)),
            InferData::Csv { .. } => match self.data.target().map_err(|err| err.to_string())? {
                None => (false, 0),
                Some(Target::Class) => (true, 0),
                Some(Target::Values(n)) => (false, n),
            },
            InferData::Npy { .. } | InferData::Prompts { .. } => (false, 0),
        })
    }

    /// The blobs it reads, each once: the weights, then the data file.
    pub fn blobs(&self) -> Vec<BlobId> {
        let mut blobs = vec![self.weights];
        for (_, file) in self.data.files() {
            if let FileRef::Blob { blob, .. } = file
                && !blobs.contains(blob)
            {
                blobs.push(*blob);
            }
        }
        blobs
    }
}

/// One task's output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct InferOutput {
    task_idx: u32,
    /// The shard's first example in the whole set.
    first: usize,
    /// Examples in the shard.
    rows: usize,
    /// Values per row (an `mlp`'s outputs); 0 for prompts.
    columns: usize,
    /// `rows × columns` little-endian `f32`s.
    #[serde(with = "b64")]
    values: Vec<u8>,
    /// For a classification set: each row's class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    labels: Option<Vec<u32>>,
    /// For a regression set: targets per row (0 for none) and the rows'
    /// targets, `rows × target_columns` little-endian `f32`s.
    #[serde(default, skip_serializing_if = "is_zero")]
    target_columns: usize,
    #[serde(default, skip_serializing_if = "Vec::is_empty", with = "b64")]
    targets: Vec<u8>,
    /// For prompts: each prompt and what the model added.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    completions: Vec<(String, String)>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

pub(crate) fn plan(spec: &InferSpec) -> Result<Vec<InferTask>, SpecError> {
    spec.validate()?;
    let model = spec.model()?.clone();
    let (_, weights) = spec.weights.resolved("infer.weights")?;
    for (field, file) in spec.data.files() {
        file.resolved(field)?;
    }
    let vocab = spec.vocab_chars()?;
    let generate = if spec.data.is_text() { spec.generate.unwrap_or(INFER_GENERATE_DEFAULT) } else { 0 };
    let examples = spec.examples_count()?.unwrap_or(0);
    Ok((0..spec.tasks)
        .map(|task_idx| InferTask {
            model: model.clone(),
            weights,
            data: spec.data.clone(),
            vocab: vocab.clone(),
            generate,
            examples,
            task_idx,
            n_tasks: spec.tasks,
        })
        .collect())
}

/// Reads a safetensors file's weights for `model`: every tensor of its
/// layout, by name, `f32` and of the layout's shape, flat in layout order.
/// Tensors the layout does not name are an error too (a file for another
/// model).
pub fn read_weights(bytes: &[u8], model: &ModelSpec) -> Result<Vec<f32>, String> {
    let file =
        safetensors::SafeTensors::deserialize(bytes).map_err(|err| format!("is not a safetensors file: {err}"))?;
    let layout = iog_ml::param_layout(model).map_err(|err| err.to_string())?;
    let mut weights = Vec::with_capacity(layout.last().map_or(0, |t| t.offset + t.len()));
    for tensor in &layout {
        let view = file.tensor(&tensor.name).map_err(|_| {
            format!(
                "has no tensor {:?}, which the model ({}) has; is it for another model?",
                tensor.name,
                describe(model)
            )
        })?;
        if view.dtype() != safetensors::Dtype::F32 {
            return Err(format!("holds {:?} as {:?}; iog models take F32", tensor.name, view.dtype()));
        }
        if view.shape() != tensor.shape.as_slice() {
            return Err(format!(
                "holds {:?} of shape {:?}, but the model ({}) has it {:?}",
                tensor.name,
                view.shape(),
                describe(model),
                tensor.shape
            ));
        }
        let values = bytes_to_floats(&tensor.name, view.data(), tensor.len()).map_err(|err| err.to_string())?;
        weights.extend(values);
    }
    if file.len() != layout.len() {
        let extra = file.names().into_iter().find(|name| layout.iter().all(|t| t.name != *name)).unwrap_or("?");
        return Err(format!("holds the tensor {extra:?}, which the model ({}) does not have", describe(model)));
    }
    Ok(weights)
}

/// Writes `model`'s flat `weights` as a safetensors file, one tensor per
/// entry of its [`iog_ml::param_layout`], with `metadata` and the model's
/// spec under the key `model` (which [`weights_metadata`] reads back).
pub fn weights_safetensors(
    model: &ModelSpec,
    weights: &[f32],
    mut metadata: BTreeMap<String, String>,
) -> Result<Vec<u8>, String> {
    let layout = iog_ml::param_layout(model).map_err(|err| err.to_string())?;
    let expected = layout.last().map_or(0, |t| t.offset + t.len());
    if weights.len() != expected {
        return Err(format!("{} weights for a model of {expected}", weights.len()));
    }
    let tensors: Vec<(String, Vec<usize>, &[f32])> =
        layout.iter().map(|t| (t.name.clone(), t.shape.clone(), &weights[t.offset..t.offset + t.len()])).collect();
    metadata.insert("model".to_owned(), describe(model));
    crate::report::safetensors(&tensors, &metadata).map_err(|err| err.to_string())
}

fn describe(model: &ModelSpec) -> String {
    serde_json::to_string(model).expect("specs are plain data")
}

/// What a safetensors file's metadata says of the model it holds: its
/// spec and, for a `char_lm`, its characters (as a `train` job writes
/// them: keys `model` and `vocab`).
pub fn weights_metadata(bytes: &[u8]) -> Result<(Option<ModelSpec>, Option<String>), String> {
    let (_, metadata) =
        safetensors::SafeTensors::read_metadata(bytes).map_err(|err| format!("is not a safetensors file: {err}"))?;
    let Some(map) = metadata.metadata() else { return Ok((None, None)) };
    let model = match map.get("model") {
        Some(json) => Some(
            serde_json::from_str(json)
                .map_err(|err| format!("names a model in its metadata that is not one: {err}"))?,
        ),
        None => None,
    };
    Ok((model, map.get("vocab").cloned()))
}

/// Fills `infer.model` and `infer.vocab` from the weights' metadata where
/// the job file leaves them out, then checks that the weights and the data
/// suit the model, so that mistakes are found before anything is sent.
/// `read` gives a file's bytes by its field.
pub(crate) fn prepare(spec: &mut InferSpec, read: &dyn Fn(&str) -> Option<Arc<Vec<u8>>>) -> Result<(), SpecError> {
    let Some(weights) = read("infer.weights") else { return Ok(()) };
    let (model, vocab) = weights_metadata(&weights).map_err(|reason| SpecError::invalid("infer.weights", reason))?;
    if spec.model.is_none() {
        spec.model = model;
    }
    if spec.vocab.is_none() && matches!(spec.model, Some(ModelSpec::CharLm { .. })) {
        spec.vocab = vocab;
    }
    // A file's examples are counted below; validation wants a count meanwhile.
    let given = spec.examples;
    if given.is_none() && !spec.data.files().is_empty() {
        spec.examples = Some(1);
    }
    spec.validate()?;
    let model = spec.model()?;
    read_weights(&weights, model).map_err(|reason| SpecError::invalid("infer.weights", reason))?;
    let files: BTreeMap<&str, Arc<Vec<u8>>> =
        spec.data.files().into_iter().filter_map(|(field, _)| Some((field, read(field)?))).collect();
    let data = load_data(&spec.data, model, &spec.vocab_chars()?, &|field| files.get(field).cloned())?;
    if let (Loaded::Features { columns, .. }, ModelSpec::Mlp { inputs, outputs, .. }) = (&data, model) {
        fits(*inputs, *outputs, *columns, None)?;
    }
    if let (Loaded::Features { targets: Some((n, _)), .. }, ModelSpec::Mlp { outputs, .. }) = (&data, model)
        && n != outputs
    {
        return Err(SpecError::invalid(
            "infer.data.target_columns",
            format!("is {n}, but the model has {outputs} outputs to score against them"),
        ));
    }
    if let ModelSpec::Mlp { outputs, .. } = model {
        let widest = data.len().div_ceil(spec.tasks as usize).saturating_mul(*outputs);
        if widest > INFER_TASK_VALUES_MAX {
            return Err(SpecError::invalid(
                "infer.tasks",
                format!(
                    "is too few: a task of {} rows gives {widest} output values, more than the \
                     {INFER_TASK_VALUES_MAX} one task may return; use at least {} tasks",
                    data.len().div_ceil(spec.tasks as usize),
                    (data.len() * outputs).div_ceil(INFER_TASK_VALUES_MAX)
                ),
            ));
        }
    }
    match given {
        Some(given) if given != data.len() => Err(SpecError::invalid(
            "infer.examples",
            format!("is {given}, but the data holds {}; remove it, and `iog job submit` counts them", data.len()),
        )),
        _ => {
            spec.examples = Some(data.len());
            Ok(())
        }
    }
}

/// A data set read whole, before sharding.
enum Loaded {
    Features { columns: usize, x: Vec<f32>, labels: Option<Vec<u32>>, targets: Option<(usize, Vec<f32>)> },
    Prompts(Vec<String>),
}

impl Loaded {
    fn len(&self) -> usize {
        match self {
            Loaded::Features { columns, x, .. } => x.len() / columns,
            Loaded::Prompts(prompts) => prompts.len(),
        }
    }
}

fn load_data(
    data: &InferData,
    model: &ModelSpec,
    vocab: &[char],
    read: &dyn Fn(&str) -> Option<Arc<Vec<u8>>>,
) -> Result<Loaded, SpecError> {
    let file = |field: &str| read(field).ok_or_else(|| SpecError::invalid(field, "was not fetched"));
    let text = |field: &str| {
        let bytes = file(field)?;
        String::from_utf8(bytes.to_vec()).map_err(|err| SpecError::invalid(field, format!("is not UTF-8 text: {err}")))
    };
    let from_set = |set: Dataset| features(&set);
    let ml =
        |field: &'static str| move |err: iog_ml::MlError| SpecError::invalid(field, format!("cannot be read: {err}"));
    Ok(match data {
        InferData::Spirals { examples, classes, seed } => {
            from_set(iog_ml::spirals(*examples, *classes, *seed).map_err(ml("infer.data"))?)
        }
        InferData::Waves { examples, seed } => from_set(iog_ml::waves(*examples, *seed).map_err(ml("infer.data"))?),
        InferData::Csv { .. } => {
            let text = text("infer.data.file")?;
            match data.target()? {
                None => {
                    let (columns, x) = iog_ml::parse_csv_inputs(&text).map_err(ml("infer.data.file"))?;
                    Loaded::Features { columns, x, labels: None, targets: None }
                }
                Some(target) => features(&iog_ml::parse_csv(&text, target).map_err(ml("infer.data.file"))?),
            }
        }
        InferData::Npy { .. } => {
            let array = iog_ml::parse_npy(&file("infer.data.x")?).map_err(ml("infer.data.x"))?;
            let [rows, columns] = array.shape[..] else {
                return Err(SpecError::invalid(
                    "infer.data.x",
                    format!("has shape {:?}; it must be [examples, inputs]", array.shape),
                ));
            };
            if columns == 0 || rows == 0 {
                return Err(SpecError::invalid(
                    "infer.data.x",
                    format!("has shape {:?}, which holds no rows", array.shape),
                ));
            }
            if let Some(i) = array.values.iter().position(|v| !v.is_finite()) {
                return Err(SpecError::invalid(
                    "infer.data.x",
                    format!(
                        "holds {} at row {}, column {}: not a finite number",
                        array.values[i],
                        i / columns,
                        i % columns
                    ),
                ));
            }
            Loaded::Features { columns, x: array.values, labels: None, targets: None }
        }
        InferData::Prompts { .. } => {
            let text = text("infer.data.file")?;
            let ModelSpec::CharLm { .. } = model else {
                return Err(SpecError::invalid("infer.data.kind", "is \"prompts\", which only a char_lm continues"));
            };
            let mut prompts = Vec::new();
            for (index, line) in text.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                if let Some(c) = line.chars().find(|c| !vocab.contains(c)) {
                    return Err(SpecError::invalid(
                        "infer.data.file",
                        format!(
                            "line {}: {c:?} is not one of the model's characters ({:?})",
                            index + 1,
                            String::from_iter(vocab)
                        ),
                    ));
                }
                prompts.push(line.to_owned());
            }
            if prompts.is_empty() {
                return Err(SpecError::invalid("infer.data.file", "holds no prompts: write one a line"));
            }
            if prompts.len() > INFER_PROMPTS_MAX {
                return Err(SpecError::invalid(
                    "infer.data.file",
                    format!("holds {} prompts; at most {INFER_PROMPTS_MAX}", prompts.len()),
                ));
            }
            Loaded::Prompts(prompts)
        }
    })
}

/// A feature set's inputs, and its labels or targets.
fn features(set: &Dataset) -> Loaded {
    Loaded::Features {
        columns: set.inputs().expect("feature sets have inputs"),
        x: set.features().expect("feature sets have rows").to_vec(),
        labels: set.labels().map(<[u32]>::to_vec),
        targets: set.targets().map(|y| (set.outputs().expect("regression sets have targets"), y.to_vec())),
    }
}

/// Runs one task, given its blobs' bytes: reads the weights and the whole
/// data set, then runs the model over the task's shard.
pub fn run(task: &InferTask, blobs: &BTreeMap<BlobId, Arc<Vec<u8>>>) -> Result<TaskRun, SpecError> {
    let fetched = |blob: &BlobId, field: &str| {
        blobs
            .get(blob)
            .cloned()
            .ok_or_else(|| SpecError::invalid(field, format!("names blob {blob}, which was not given")))
    };
    let weights_bytes = fetched(&task.weights, "infer.weights")?;
    let weights =
        read_weights(&weights_bytes, &task.model).map_err(|reason| SpecError::invalid("infer.weights", reason))?;
    let files: BTreeMap<&str, Arc<Vec<u8>>> = task
        .data
        .files()
        .into_iter()
        .map(|(field, file)| {
            let (_, blob) = file.resolved(field)?;
            Ok((field, fetched(&blob, field)?))
        })
        .collect::<Result<_, SpecError>>()?;
    let data = load_data(&task.data, &task.model, &task.vocab, &|field| files.get(field).cloned())?;
    if data.len() != task.examples {
        return Err(SpecError::invalid(
            "infer.examples",
            format!("is {}, but the data holds {} examples", task.examples, data.len()),
        ));
    }
    let range = task.shard().map_err(|reason| SpecError::invalid("task_idx", reason))?;
    let ml = |err: iog_ml::MlError| SpecError::invalid("infer", err.to_string());
    let (output, work_units) = match data {
        Loaded::Features { columns, x, labels, targets } => {
            let ModelSpec::Mlp { inputs, outputs, .. } = &task.model else {
                return Err(SpecError::invalid("infer.model.kind", "must be \"mlp\" for rows of numbers"));
            };
            fits(*inputs, *outputs, columns, None)?;
            let rows = range.len();
            if rows * outputs > INFER_TASK_VALUES_MAX {
                return Err(SpecError::invalid(
                    "infer.tasks",
                    format!(
                        "is too few: this task's {rows} rows give {} values, more than {INFER_TASK_VALUES_MAX}; \
                         use more tasks",
                        rows * outputs
                    ),
                ));
            }
            let values = if rows == 0 {
                Vec::new()
            } else {
                let slice = &x[range.start * columns..range.end * columns];
                iog_ml::infer(&task.model, &weights, iog_ml::Inputs::Features(slice)).map_err(ml)?
            };
            if let Some(i) = values.iter().position(|v| !v.is_finite()) {
                return Err(SpecError::invalid(
                    "infer",
                    format!(
                        "row {} gives output {} = {}, not a finite number: the weights overflow on it",
                        range.start + i / outputs,
                        i % outputs,
                        values[i]
                    ),
                ));
            }
            let output = InferOutput {
                task_idx: task.task_idx,
                first: range.start,
                rows,
                columns: *outputs,
                values: floats_to_bytes(&values),
                labels: labels.map(|l| l[range.clone()].to_vec()),
                target_columns: targets.as_ref().map_or(0, |(w, _)| *w),
                targets: targets.map_or_else(Vec::new, |(w, y)| floats_to_bytes(&y[range.start * w..range.end * w])),
                completions: Vec::new(),
            };
            (output, rows as u64)
        }
        Loaded::Prompts(prompts) => {
            let prompts = &prompts[range.clone()];
            let added = complete(task, &weights, prompts).map_err(ml)?;
            let output = InferOutput {
                task_idx: task.task_idx,
                first: range.start,
                rows: prompts.len(),
                columns: 0,
                values: Vec::new(),
                labels: None,
                target_columns: 0,
                targets: Vec::new(),
                completions: prompts.iter().cloned().zip(added).collect(),
            };
            (output, (prompts.len() * task.generate) as u64)
        }
    };
    Ok(TaskRun { output: serde_json::to_vec(&output).expect("outputs are plain data"), work_units })
}

/// Continues each prompt greedily by `task.generate` characters, the
/// prompts whose windows are as long taken in one batch per step.
fn complete(task: &InferTask, weights: &[f32], prompts: &[String]) -> Result<Vec<String>, iog_ml::MlError> {
    let ModelSpec::CharLm { context, vocab, .. } = &task.model else { unreachable!("prompts go with char_lm") };
    let token =
        |c: char| task.vocab.iter().position(|v| *v == c).expect("prompts are checked against the vocab") as u32;
    let mut tokens: Vec<Vec<u32>> = prompts.iter().map(|p| p.chars().map(token).collect()).collect();
    let starts: Vec<usize> = tokens.iter().map(Vec::len).collect();
    for _ in 0..task.generate {
        let mut by_len: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (i, t) in tokens.iter().enumerate() {
            by_len.entry(t.len().min(*context)).or_default().push(i);
        }
        for (len, members) in by_len {
            let ids: Vec<u32> =
                members.iter().flat_map(|&i| tokens[i][tokens[i].len() - len..].iter().copied()).collect();
            let logits = iog_ml::infer(&task.model, weights, iog_ml::Inputs::Tokens { ids: &ids, len })?;
            for (row, &i) in members.iter().enumerate() {
                tokens[i].push(argmax(&logits[row * vocab..(row + 1) * vocab]) as u32);
            }
        }
    }
    Ok(tokens
        .iter()
        .zip(starts)
        .map(|(t, start)| t[start..].iter().map(|&id| task.vocab[id as usize]).collect())
        .collect())
}

impl InferTask {
    /// Reads an output of this task, checking that it is its own and
    /// whole: the shard's rows, the right number of finite values, one
    /// label or target row per row, one completion per prompt.
    fn read_output(&self, bytes: &[u8]) -> Result<Read, String> {
        let output: InferOutput = serde_json::from_slice(bytes).map_err(|err| format!("does not decode: {err}"))?;
        if output.task_idx != self.task_idx {
            return Err(format!("is task {}'s output, not task {}'s", output.task_idx, self.task_idx));
        }
        let shard = self.shard()?;
        if (output.first, output.rows) != (shard.start, shard.len()) {
            return Err(format!(
                "holds rows {}..{}, but the task's shard is rows {}..{}",
                output.first,
                output.first.saturating_add(output.rows),
                shard.start,
                shard.end
            ));
        }
        let labelling = self.labelling()?;
        if (output.labels.is_some(), output.target_columns) != labelling {
            return Err(format!(
                "carries {} and {} target columns; the task's data gives {} and {} target columns",
                if output.labels.is_some() { "labels" } else { "no labels" },
                output.target_columns,
                if labelling.0 { "labels" } else { "no labels" },
                labelling.1
            ));
        }
        let values = output
            .rows
            .checked_mul(output.columns)
            .ok_or_else(|| format!("has {} columns, more than any model has", output.columns))
            .and_then(|n| bytes_to_floats("values", &output.values, n).map_err(|e| e.to_string()))?;
        match &self.model {
            ModelSpec::Mlp { outputs, .. } => {
                if output.columns != *outputs || !output.completions.is_empty() {
                    return Err(format!("has {} columns; the model has {outputs} outputs", output.columns));
                }
                if output.labels.as_ref().is_some_and(|l| l.len() != output.rows) {
                    return Err("has labels for other rows than its own".to_owned());
                }
                if output.labels.is_some() && output.target_columns > 0 {
                    return Err("has both labels and targets".to_owned());
                }
            }
            ModelSpec::CharLm { .. } => {
                if output.columns != 0 || output.completions.len() != output.rows {
                    return Err(format!("has {} completions for {} prompts", output.completions.len(), output.rows));
                }
                if output.completions.iter().any(|(_, c)| c.chars().count() != self.generate) {
                    return Err(format!("has a completion that is not {} characters long", self.generate));
                }
            }
        }
        let targets = output
            .rows
            .checked_mul(output.target_columns)
            .ok_or_else(|| format!("has {} target columns, more than any data has", output.target_columns))
            .and_then(|n| bytes_to_floats("targets", &output.targets, n).map_err(|e| e.to_string()))?;
        Ok(Read { output, values, targets })
    }
}

/// An output read and checked, its values and targets decoded.
struct Read {
    output: InferOutput,
    values: Vec<f32>,
    targets: Vec<f32>,
}

/// Whether `output` is one of `task`'s, whole (see [`InferTask::read_output`]).
pub(crate) fn check_task_output(task: &InferTask, output: &[u8]) -> Result<(), String> {
    task.read_output(output).map(|_| ())
}

/// Whether two outputs of one task are one result: both its own, the same
/// rows, labels and completions, and values within [`INFER_RELATIVE_ERROR`]
/// of each other in L2 norm.
pub(crate) fn outputs_agree(task: &InferTask, a: &[u8], b: &[u8]) -> bool {
    if a == b {
        return task.read_output(a).is_ok();
    }
    let (Ok(Read { output: a, values: va, .. }), Ok(Read { output: b, values: vb, .. })) =
        (task.read_output(a), task.read_output(b))
    else {
        return false;
    };
    let same = |o: &InferOutput| {
        (o.first, o.rows, o.labels.clone(), o.target_columns, o.targets.clone(), o.completions.clone())
    };
    if same(&a) != same(&b) {
        return false;
    }
    l2_distance(&va, &vb) <= INFER_RELATIVE_ERROR * l2_norm(&va).max(l2_norm(&vb))
}

/// The coordinator runs no model, so it cannot recompute a sample.
pub(crate) fn spot_check() -> Result<crate::spot::Spot, SpecError> {
    Err(SpecError::invalid(
        "verify.policy",
        "is \"spot\", but the coordinator runs no model to recompute a sample of an infer task; verify infer \
         jobs by \"replicate\" or \"adaptive\"",
    ))
}

/// Puts the shards' outputs together in order: `predictions.csv` (or
/// `completions.jsonl`) and `result.json`.
pub(crate) fn assemble(spec: &InferSpec, outputs: &[Vec<u8>]) -> Result<Vec<Artifact>, AssembleError> {
    let mode = spec.output_mode()?;
    let tasks = plan(spec)?;
    let mut read = Vec::with_capacity(outputs.len());
    let mut next = 0usize;
    for (task_idx, (task, bytes)) in tasks.iter().zip(outputs).enumerate() {
        let one = task.read_output(bytes).map_err(|reason| AssembleError::BadOutput { task_idx, reason })?;
        let first = read.first().map_or(&one.output, |r: &Read| &r.output);
        if one.output.first != next {
            return Err(AssembleError::BadOutput {
                task_idx,
                reason: format!("starts at row {}, but the shard before it ended at row {next}", one.output.first),
            });
        }
        if (one.output.labels.is_some(), one.output.target_columns) != (first.labels.is_some(), first.target_columns) {
            return Err(AssembleError::BadOutput {
                task_idx,
                reason: "is labelled unlike the shards before it".into(),
            });
        }
        next += one.output.rows;
        read.push(one);
    }
    let mut result = serde_json::json!({
        "workload": "infer",
        "model": spec.model()?,
        "tasks": spec.tasks,
        "rows": next,
    });
    if spec.data.is_text() {
        let mut jsonl = String::new();
        for one in &read {
            for (prompt, completion) in &one.output.completions {
                jsonl.push_str(&serde_json::json!({ "prompt": prompt, "completion": completion }).to_string());
                jsonl.push('\n');
            }
        }
        result["generate"] = serde_json::json!(spec.generate.unwrap_or(INFER_GENERATE_DEFAULT));
        return Ok(vec![
            Artifact {
                name: "completions.jsonl".into(),
                media_type: "application/jsonl".into(),
                bytes: jsonl.into_bytes(),
            },
            json_artifact(&result),
        ]);
    }
    let ModelSpec::Mlp { outputs: width, .. } = spec.model()? else { unreachable!("feature rows go with mlp") };
    let width = *width;
    let labelled = read.first().is_some_and(|r| r.output.labels.is_some());
    let target_columns = read.first().map_or(0, |r| r.output.target_columns);
    let mut csv = String::from("row");
    match mode {
        OutputMode::Values => (0..width).for_each(|j| csv.push_str(&format!(",output_{j}"))),
        OutputMode::Class => csv.push_str(",class,probability"),
    }
    if labelled {
        csv.push_str(",label");
    }
    (0..target_columns).for_each(|j| csv.push_str(&format!(",target_{j}")));
    csv.push('\n');
    let (mut correct, mut squared) = (0u64, 0f64);
    for Read { output, values, targets } in &read {
        for r in 0..output.rows {
            let row = &values[r * width..(r + 1) * width];
            csv.push_str(&(output.first + r).to_string());
            let best = argmax(row);
            match mode {
                OutputMode::Values => row.iter().for_each(|v| csv.push_str(&format!(",{v}"))),
                OutputMode::Class => csv.push_str(&format!(",{best},{}", softmax_at(row, best))),
            }
            if let Some(labels) = &output.labels {
                csv.push_str(&format!(",{}", labels[r]));
                correct += u64::from(labels[r] as usize == best);
            }
            if target_columns > 0 {
                let t = &targets[r * target_columns..(r + 1) * target_columns];
                t.iter().for_each(|v| csv.push_str(&format!(",{v}")));
                squared +=
                    row.iter().zip(t).map(|(p, y)| f64::from(p - y).powi(2)).sum::<f64>() / target_columns as f64;
            }
            csv.push('\n');
        }
    }
    result["outputs"] = serde_json::json!(width);
    result["output"] = serde_json::json!(if mode == OutputMode::Class { "class" } else { "values" });
    if labelled && next > 0 {
        result["accuracy"] = serde_json::json!(correct as f64 / next as f64);
    }
    if target_columns > 0 && next > 0 {
        result["mse"] = serde_json::json!(squared / next as f64);
    }
    Ok(vec![
        Artifact { name: "predictions.csv".into(), media_type: "text/csv".into(), bytes: csv.into_bytes() },
        json_artifact(&result),
    ])
}

fn json_artifact(result: &serde_json::Value) -> Artifact {
    Artifact {
        name: "result.json".into(),
        media_type: "application/json".into(),
        bytes: serde_json::to_vec_pretty(result).expect("results are plain data"),
    }
}

/// The first index of the largest value.
fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, v) in row.iter().enumerate() {
        if *v > row[best] {
            best = i;
        }
    }
    best
}

/// The softmax of `row` at `i`, computed stably.
fn softmax_at(row: &[f32], i: usize) -> f32 {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = row.iter().map(|v| f64::from(v - max).exp()).sum();
    (f64::from(row[i] - max).exp() / sum) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob_ref(name: &str, bytes: &[u8]) -> FileRef {
        FileRef::Blob { name: name.to_owned(), blob: BlobId::of(bytes) }
    }

    fn mlp() -> ModelSpec {
        ModelSpec::Mlp { inputs: 2, hidden: vec![16], outputs: 3 }
    }

    /// A spirals MLP after a few steps of training, as a safetensors file.
    fn trained_mlp() -> (Vec<f32>, Vec<u8>) {
        let model = mlp();
        let data = iog_ml::spirals(300, 3, 1).unwrap();
        let init = iog_ml::init_weights(&model, 3).unwrap();
        let cfg = iog_ml::InnerConfig { steps: 400, batch_size: 32, lr: 0.02, weight_decay: 0.0, seed: 4 };
        let weights = iog_ml::train_inner(&model, &init, &data, 0..data.len(), &cfg).unwrap().weights;
        let file = weights_safetensors(&model, &weights, BTreeMap::new()).unwrap();
        (weights, file)
    }

    fn spec(weights: &[u8], data: InferData, tasks: u32) -> InferSpec {
        InferSpec {
            model: Some(mlp()),
            weights: blob_ref("weights.safetensors", weights),
            data,
            tasks,
            examples: None,
            output: None,
            vocab: None,
            generate: None,
        }
    }

    /// Plans and runs every task here, then assembles.
    fn run_all(spec: &InferSpec, files: &[&[u8]]) -> (Vec<Vec<u8>>, Vec<Artifact>) {
        let blobs: BTreeMap<BlobId, Arc<Vec<u8>>> =
            files.iter().map(|bytes| (BlobId::of(bytes), Arc::new(bytes.to_vec()))).collect();
        let outputs: Vec<Vec<u8>> = plan(spec).unwrap().iter().map(|task| run(task, &blobs).unwrap().output).collect();
        let artifacts = assemble(spec, &outputs).unwrap();
        (outputs, artifacts)
    }

    fn artifact<'a>(artifacts: &'a [Artifact], name: &str) -> &'a [u8] {
        &artifacts.iter().find(|a| a.name == name).unwrap().bytes
    }

    fn values_of(tasks: &[InferTask], outputs: &[Vec<u8>]) -> Vec<f32> {
        tasks.iter().zip(outputs).flat_map(|(task, bytes)| task.read_output(bytes).unwrap().values).collect()
    }

    #[test]
    fn shards_put_together_equal_one_pass_over_the_whole_set() {
        let (weights, file) = trained_mlp();
        let data = InferData::Spirals { examples: 301, classes: 3, seed: 8 };
        let whole = iog_ml::spirals(301, 3, 8).unwrap();
        let one_pass = iog_ml::infer(&mlp(), &weights, iog_ml::Inputs::Features(whole.features().unwrap())).unwrap();
        for tasks in [1, 4, 7] {
            let spec = spec(&file, data.clone(), tasks);
            let (outputs, artifacts) = run_all(&spec, &[&file]);
            let sharded = values_of(&plan(&spec).unwrap(), &outputs);
            assert_eq!(sharded.len(), 301 * 3);
            assert!(sharded.iter().zip(&one_pass).all(|(a, b)| a.to_bits() == b.to_bits()), "{tasks} tasks");
            let csv = String::from_utf8(artifact(&artifacts, "predictions.csv").to_vec()).unwrap();
            assert_eq!(csv.lines().next(), Some("row,output_0,output_1,output_2,label"));
            assert_eq!(csv.lines().count(), 302);
            let result: serde_json::Value = serde_json::from_slice(artifact(&artifacts, "result.json")).unwrap();
            assert_eq!(result["rows"], 301);
            // Trained a little on other points of the same spirals: far
            // better than a third.
            let accuracy = result["accuracy"].as_f64().unwrap();
            assert!(accuracy > 0.5, "{accuracy}");
        }
    }

    #[test]
    fn class_output_gives_each_rows_class_and_probability() {
        let (weights, file) = trained_mlp();
        let text = "x,y\n0.5,0.25\n-1,2\n0,0\n";
        let csv = text.as_bytes();
        let mut spec =
            spec(&file, InferData::Csv { file: blob_ref("x.csv", csv), target: None, target_columns: None }, 2);
        spec.output = Some("class".into());
        spec.examples = Some(3);
        let (_, artifacts) = run_all(&spec, &[&file, csv]);
        let out = String::from_utf8(artifact(&artifacts, "predictions.csv").to_vec()).unwrap();
        let rows: Vec<&str> = out.lines().collect();
        assert_eq!(rows[0], "row,class,probability");
        let logits = iog_ml::infer(&mlp(), &weights, iog_ml::Inputs::Features(&[-1.0, 2.0])).unwrap();
        let best = argmax(&logits);
        let fields: Vec<&str> = rows[2].split(',').collect();
        assert_eq!((fields[0], fields[1]), ("1", best.to_string().as_str()));
        let p: f32 = fields[2].parse().unwrap();
        assert!(p > 1.0 / 3.0 && p <= 1.0, "{p}");
        let result: serde_json::Value = serde_json::from_slice(artifact(&artifacts, "result.json")).unwrap();
        assert!(result.get("accuracy").is_none());
        assert_eq!((result["rows"].as_u64(), result["output"].as_str()), (Some(3), Some("class")));
    }

    #[test]
    fn regression_targets_are_scored_by_their_mean_squared_error() {
        let model = ModelSpec::Mlp { inputs: 1, hidden: vec![], outputs: 1 };
        // y = 2x + 1 exactly: the weight then the bias.
        let file = weights_safetensors(&model, &[2.0, 1.0], BTreeMap::new()).unwrap();
        let text = b"0,1\n1,3\n2,6\n";
        let data =
            InferData::Csv { file: blob_ref("d.csv", text), target: Some("values".into()), target_columns: None };
        let spec = InferSpec { model: Some(model), examples: Some(3), ..spec(&file, data, 2) };
        let (_, artifacts) = run_all(&spec, &[&file, text]);
        let result: serde_json::Value = serde_json::from_slice(artifact(&artifacts, "result.json")).unwrap();
        assert!((result["mse"].as_f64().unwrap() - 1.0 / 3.0).abs() < 1e-9, "{result}");
        let out = String::from_utf8(artifact(&artifacts, "predictions.csv").to_vec()).unwrap();
        assert_eq!(out, "row,output_0,target_0\n0,1,1\n1,3,3\n2,5,6\n");
    }

    #[test]
    fn a_char_lm_continues_each_prompt_as_one_process_does() {
        let text = iog_ml::grammar_text(400, 2);
        let vocab = iog_ml::CharVocab::from_text(&text);
        let model = ModelSpec::CharLm { vocab: vocab.len(), context: 8, d_model: 8, heads: 2, layers: 1 };
        let weights = iog_ml::init_weights(&model, 5).unwrap();
        let chars: String = vocab.chars().iter().collect();
        let metadata = BTreeMap::from([("vocab".to_owned(), chars.clone())]);
        let file = weights_safetensors(&model, &weights, metadata).unwrap();
        let prompts_text: String = text.lines().take(5).map(|l| format!("{}\n\n", &l[..l.len().min(12)])).collect();
        let prompts = prompts_text.as_bytes();
        let spec = InferSpec {
            model: None,
            vocab: None,
            generate: Some(10),
            ..spec(&file, InferData::Prompts { file: blob_ref("p.txt", prompts) }, 2)
        };
        // What `iog job submit` does: the model and vocab from the metadata.
        let mut spec = spec;
        let bytes: BTreeMap<&str, Arc<Vec<u8>>> = BTreeMap::from([
            ("infer.weights", Arc::new(file.clone())),
            ("infer.data.file", Arc::new(prompts.to_vec())),
        ]);
        // A count that is not the file's is refused; none is counted.
        let e = prepare(&mut InferSpec { examples: Some(40), ..spec.clone() }, &|field| bytes.get(field).cloned())
            .unwrap_err();
        assert_eq!(e.field(), Some("infer.examples"), "{e}");
        prepare(&mut spec, &|field| bytes.get(field).cloned()).unwrap();
        assert_eq!((spec.model.as_ref(), spec.vocab.as_deref()), (Some(&model), Some(chars.as_str())));
        let n = prompts_text.lines().filter(|l| !l.is_empty()).count();
        assert_eq!(spec.examples, Some(n));
        // A worker whose copy of the data holds other examples refuses.
        let other = b"the\n".to_vec();
        let mut wrong = spec.clone();
        wrong.data = InferData::Prompts { file: blob_ref("p.txt", &other) };
        let blobs: BTreeMap<BlobId, Arc<Vec<u8>>> =
            [file.clone(), other].into_iter().map(|b| (BlobId::of(&b), Arc::new(b))).collect();
        let e = run(&plan(&wrong).unwrap()[0], &blobs).unwrap_err();
        assert!(e.to_string().contains(&format!("is {n}, but the data holds 1 examples")), "{e}");
        let (_, artifacts) = run_all(&spec, &[&file, prompts]);
        let lines: Vec<serde_json::Value> = std::str::from_utf8(artifact(&artifacts, "completions.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let expected_prompts: Vec<&str> = prompts_text.lines().filter(|l| !l.is_empty()).collect();
        assert_eq!(lines.len(), expected_prompts.len());
        for (line, prompt) in lines.iter().zip(expected_prompts) {
            assert_eq!(line["prompt"], prompt);
            // One prompt alone, one character at a time.
            let mut tokens = vocab.encode(prompt).unwrap();
            for _ in 0..10 {
                let window = &tokens[tokens.len().saturating_sub(8)..];
                let logits =
                    iog_ml::infer(&model, &weights, iog_ml::Inputs::Tokens { ids: window, len: window.len() }).unwrap();
                tokens.push(argmax(&logits) as u32);
            }
            assert_eq!(line["completion"].as_str().unwrap(), vocab.decode(&tokens[tokens.len() - 10..]));
        }
    }

    #[test]
    fn weights_for_another_model_are_refused_by_name() {
        let (_, file) = trained_mlp();
        let wider = ModelSpec::Mlp { inputs: 2, hidden: vec![17], outputs: 3 };
        let e = read_weights(&file, &wider).unwrap_err();
        assert!(e.contains("\"layers.0.weight\" of shape [2, 16], but the model"), "{e}");
        let deeper = ModelSpec::Mlp { inputs: 2, hidden: vec![16, 16], outputs: 3 };
        let e = read_weights(&file, &deeper).unwrap_err();
        assert!(e.contains("\"layers.1.weight\" of shape [16, 3], but the model"), "{e}");
        let lm = ModelSpec::CharLm { vocab: 3, context: 4, d_model: 4, heads: 1, layers: 1 };
        let e = read_weights(&file, &lm).unwrap_err();
        assert!(e.contains("has no tensor \"token_embedding.weight\""), "{e}");
        let shallower = ModelSpec::Mlp { inputs: 2, hidden: vec![], outputs: 3 };
        let e = read_weights(&file, &shallower).unwrap_err();
        assert!(e.contains("of shape [2, 16]"), "{e}");
        let e = read_weights(b"not a file", &mlp()).unwrap_err();
        assert!(e.starts_with("is not a safetensors file"), "{e}");
        let mut nan = iog_ml::init_weights(&mlp(), 1).unwrap();
        nan[5] = f32::NAN;
        let e = read_weights(&weights_safetensors(&mlp(), &nan, BTreeMap::new()).unwrap(), &mlp()).unwrap_err();
        assert!(e.contains("not a finite number"), "{e}");
    }

    #[test]
    fn extra_tensors_are_refused() {
        let small = ModelSpec::Mlp { inputs: 2, hidden: vec![], outputs: 3 };
        let weights = iog_ml::init_weights(&small, 1).unwrap();
        let mut tensors: Vec<(String, Vec<usize>, &[f32])> = iog_ml::param_layout(&small)
            .unwrap()
            .iter()
            .map(|t| (t.name.clone(), t.shape.clone(), &weights[t.offset..t.offset + t.len()]))
            .collect();
        tensors.push(("extra".into(), vec![1], &weights[..1]));
        let file = crate::report::safetensors(&tensors, &BTreeMap::new()).unwrap();
        let e = read_weights(&file, &small).unwrap_err();
        assert!(e.contains("holds the tensor \"extra\""), "{e}");
    }

    #[test]
    fn fields_are_checked_with_their_names() {
        let (_, file) = trained_mlp();
        let spirals = InferData::Spirals { examples: 10, classes: 3, seed: 0 };
        let cases = [
            (InferSpec { model: None, ..spec(&file, spirals.clone(), 2) }, "infer.model"),
            (spec(&file, spirals.clone(), 0), "infer.tasks"),
            (InferSpec { output: Some("probs".into()), ..spec(&file, spirals.clone(), 2) }, "infer.output"),
            (InferSpec { generate: Some(3), ..spec(&file, spirals.clone(), 2) }, "infer.generate"),
            (
                InferSpec {
                    examples: Some(4),
                    ..spec(&file, InferData::Prompts { file: FileRef::Path("p.txt".into()) }, 2)
                },
                "infer.data.kind",
            ),
            (InferSpec { examples: Some(9), ..spec(&file, spirals.clone(), 2) }, "infer.examples"),
            (spec(&file, InferData::Npy { x: FileRef::Path("x.npy".into()) }, 2), "infer.examples"),
            (
                InferSpec {
                    model: Some(ModelSpec::Mlp { inputs: 3, hidden: vec![], outputs: 3 }),
                    ..spec(&file, spirals.clone(), 2)
                },
                "infer.model.inputs",
            ),
            (
                spec(
                    &file,
                    InferData::Csv {
                        file: FileRef::Path("x".into()),
                        target: Some("label".into()),
                        target_columns: None,
                    },
                    2,
                ),
                "infer.data.target",
            ),
            (
                InferSpec {
                    model: Some(ModelSpec::CharLm { vocab: 3, context: 4, d_model: 4, heads: 1, layers: 1 }),
                    vocab: Some("abb".into()),
                    examples: Some(2),
                    ..spec(&file, InferData::Prompts { file: FileRef::Path("p".into()) }, 1)
                },
                "infer.vocab",
            ),
        ];
        for (spec, field) in cases {
            let e = spec.validate().unwrap_err();
            assert_eq!(e.field(), Some(field), "{e}");
        }
    }

    #[test]
    fn prompts_outside_the_vocabulary_name_their_line() {
        let model = ModelSpec::CharLm { vocab: 3, context: 4, d_model: 4, heads: 1, layers: 1 };
        let weights = iog_ml::init_weights(&model, 1).unwrap();
        let file = weights_safetensors(&model, &weights, BTreeMap::new()).unwrap();
        let prompts = b"ab\nabc\nax\n";
        let mut spec = InferSpec {
            model: Some(model),
            vocab: Some("abc".into()),
            ..spec(&file, InferData::Prompts { file: blob_ref("p.txt", prompts) }, 1)
        };
        let bytes: BTreeMap<&str, Arc<Vec<u8>>> =
            BTreeMap::from([("infer.weights", Arc::new(file)), ("infer.data.file", Arc::new(prompts.to_vec()))]);
        let e = prepare(&mut spec, &|field| bytes.get(field).cloned()).unwrap_err();
        assert_eq!(e.field(), Some("infer.data.file"));
        assert!(e.to_string().contains("line 3: 'x' is not one of the model's characters"), "{e}");
    }

    #[test]
    fn replicas_agree_within_the_tolerance_and_only_then() {
        let (_, file) = trained_mlp();
        let spec = spec(&file, InferData::Spirals { examples: 40, classes: 3, seed: 1 }, 2);
        let (outputs, _) = run_all(&spec, &[&file]);
        let tasks = plan(&spec).unwrap();
        let task = &tasks[0];
        assert!(outputs_agree(task, &outputs[0], &outputs[0]));
        let mut nudged: InferOutput = serde_json::from_slice(&outputs[0]).unwrap();
        let mut values = task.read_output(&outputs[0]).unwrap().values;
        values[0] *= 1.0 + 1e-6;
        nudged.values = floats_to_bytes(&values);
        let nudged_bytes = serde_json::to_vec(&nudged).unwrap();
        assert!(outputs_agree(task, &outputs[0], &nudged_bytes));
        values.iter_mut().for_each(|v| *v *= 1.01);
        nudged.values = floats_to_bytes(&values);
        assert!(!outputs_agree(task, &outputs[0], &serde_json::to_vec(&nudged).unwrap()));
        // Another shard's output, or labels changed, are other results.
        assert!(!outputs_agree(task, &outputs[0], &outputs[1]));
        let mut relabelled: InferOutput = serde_json::from_slice(&outputs[0]).unwrap();
        relabelled.labels.as_mut().unwrap()[0] ^= 1;
        assert!(!outputs_agree(task, &outputs[0], &serde_json::to_vec(&relabelled).unwrap()));
        assert!(!outputs_agree(task, b"{}", b"{}"));
        // Assembly refuses a shard that is not where it should be.
        let swapped = vec![outputs[1].clone(), outputs[0].clone()];
        assert!(assemble(&spec, &swapped).is_err());
    }

    #[test]
    fn the_example_jobs_load_with_the_weights_their_train_examples_make() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
        let dir = tempfile::tempdir().unwrap();
        for file in ["spirals.toml", "charlm.toml", "prompts.txt"] {
            std::fs::copy(root.join("infer").join(file), dir.path().join(file)).unwrap();
        }
        for name in ["spirals", "charlm"] {
            let job = std::fs::read_to_string(dir.path().join(format!("{name}.toml"))).unwrap();
            // Before training: the missing file is named, and where it was looked for.
            let e = crate::load_job_file(&job, dir.path()).unwrap_err();
            assert_eq!(e.field(), Some("infer.weights"), "{e}");
            assert!(e.to_string().contains(&format!("{name}-model/weights.safetensors")), "{e}");

            // The weights a run of the train example writes (here fresh ones).
            let train_dir = root.join("train");
            let train_job = std::fs::read_to_string(train_dir.join(format!("{name}.toml"))).unwrap();
            let crate::WorkloadSpec::Train(train) =
                crate::parse_job_file(&train_job, &train_dir).unwrap().workload().unwrap()
            else {
                panic!("a train job")
            };
            let mut metadata = BTreeMap::new();
            if let crate::DataSpec::Grammar { chars, seed } = train.data {
                let vocab = iog_ml::CharVocab::from_text(&iog_ml::grammar_text(chars, seed));
                metadata.insert("vocab".to_owned(), vocab.chars().iter().collect());
            }
            let weights = iog_ml::init_weights(&train.model, 1).unwrap();
            let model_dir = dir.path().join(format!("{name}-model"));
            std::fs::create_dir_all(&model_dir).unwrap();
            let file = weights_safetensors(&train.model, &weights, metadata).unwrap();
            std::fs::write(model_dir.join("weights.safetensors"), file).unwrap();

            let (spec, files) = crate::load_job_file(&job, dir.path()).unwrap_or_else(|e| panic!("{name}: {e}"));
            let infer = spec.infer.clone().unwrap();
            assert_eq!(infer.model.as_ref(), Some(&train.model), "{name}: the model comes from the metadata");
            assert_eq!(files.len(), 1 + infer.data.files().len(), "{name}: {files:?}");
            let inputs = crate::plan(&spec.workload().unwrap()).unwrap();
            assert_eq!(inputs.len() as u32, infer.tasks);
            // And its first shard runs here, on the fresh weights.
            let blobs: BTreeMap<BlobId, Arc<Vec<u8>>> =
                files.into_iter().map(|f| (f.blob, Arc::new(f.bytes))).collect();
            let task = plan(&infer).unwrap().remove(0);
            let out = run(&task, &blobs).unwrap();
            assert!(task.read_output(&out.output).is_ok());
        }
    }

    #[test]
    fn outputs_are_checked_on_arrival_against_their_task() {
        let (_, file) = trained_mlp();
        let spec = spec(&file, InferData::Spirals { examples: 40, classes: 3, seed: 1 }, 2);
        let (outputs, _) = run_all(&spec, &[&file]);
        let inputs = crate::plan(&crate::WorkloadSpec::Infer(spec)).unwrap();
        assert!(crate::checks_outputs("infer") && crate::checks_outputs("train") && !crate::checks_outputs("render"));
        assert_eq!(crate::check_output(&inputs[0], &outputs[0]), Ok(()));
        let e = crate::check_output(&inputs[0], &outputs[1]).unwrap_err();
        assert!(e.contains("task 1's output, not task 0's"), "{e}");
        let e = crate::check_output(&inputs[0], b"\x8f random").unwrap_err();
        assert!(e.starts_with("does not decode"), "{e}");
        // Rows left out, or claimed elsewhere, are not the shard's.
        let mut empty: InferOutput = serde_json::from_slice(&outputs[0]).unwrap();
        (empty.rows, empty.values, empty.labels) = (0, Vec::new(), Some(Vec::new()));
        let e = crate::check_output(&inputs[0], &serde_json::to_vec(&empty).unwrap()).unwrap_err();
        assert!(e.contains("holds rows 0..0, but the task's shard is rows 0..20"), "{e}");
        let mut huge: InferOutput = serde_json::from_slice(&outputs[0]).unwrap();
        huge.columns = usize::MAX;
        assert!(crate::check_output(&inputs[0], &serde_json::to_vec(&huge).unwrap()).is_err());
        // Labels and targets are the data's: neither dropped nor made up,
        // however many (assembly writes a column for each).
        let mut unlabelled: InferOutput = serde_json::from_slice(&outputs[0]).unwrap();
        unlabelled.labels = None;
        let e = crate::check_output(&inputs[0], &serde_json::to_vec(&unlabelled).unwrap()).unwrap_err();
        assert!(e.contains("carries no labels and 0 target columns; the task's data gives labels"), "{e}");
        let mut targets: InferOutput = serde_json::from_slice(&outputs[0]).unwrap();
        targets.target_columns = 1 << 40;
        let e = crate::check_output(&inputs[0], &serde_json::to_vec(&targets).unwrap()).unwrap_err();
        assert!(e.contains("1099511627776 target columns"), "{e}");
        let mut short: InferOutput = serde_json::from_slice(&outputs[0]).unwrap();
        short.values.truncate(8);
        let e = crate::check_output(&inputs[0], &serde_json::to_vec(&short).unwrap()).unwrap_err();
        assert!(e.contains("values"), "{e}");
        // What is not a task input of a checked workload passes unread.
        assert_eq!(crate::check_output(b"sealed bytes", b"anything"), Ok(()));
    }

    #[test]
    fn parse_csv_inputs_reads_every_column() {
        let (columns, x) = iog_ml::parse_csv_inputs("a,b\n# note\n1,2\n\n3, 4\n").unwrap();
        assert_eq!((columns, x), (2, vec![1.0, 2.0, 3.0, 4.0]));
        let e = iog_ml::parse_csv_inputs("1,2\n3\n").unwrap_err();
        assert!(e.to_string().contains("line 2 has 1 columns"), "{e}");
    }
}
