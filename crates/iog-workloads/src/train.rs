//! The `train` workload: one model trained across K workers in rounds,
//! DiLoCo-style, over links far slower than a data centre's.
//!
//! A round: every worker starts from the same global weights θ, takes H
//! AdamW steps on its own shard of the data ([`iog_ml::train_inner`]) and
//! sends back its pseudo-gradient θ − θ_k compressed to 8 bits a value
//! ([`crate::diloco::Int8Blocks`]), with each step's loss and the loss of
//! θ on its shard of the held-out examples. The coordinator averages the
//! round's pseudo-gradients in shard order and takes one Nesterov step
//! ([`crate::diloco::outer_step`]): that is the next round's θ. A job of R
//! rounds is a chained job of R + 1 links of K tasks each: link r < R
//! trains, and the last link takes no steps and only scores the final
//! weights on the held-out examples. Each link's inputs carry the round's
//! global weights, so they are the checkpoint of every round; a worker
//! lost in a round has its task placed again, and the round waits for it.
//! The outer momentum, which only the coordinator reads, is a blob of its
//! own that shard 0's input names ([`crate::chain_state`]). Inputs and
//! outputs travel in binary form ([`crate::task`]'s CBOR, weights and
//! pseudo-gradients as raw bytes), not base64 JSON.
//!
//! [`crate::plan`] builds the data set (generated from a seed, or the
//! user's CSV or `.npy` file, which `iog job submit` uploads and the
//! coordinator reads when it plans the job, see
//! [`crate::JobSpec::resolve_files`]), puts its examples in an
//! order drawn from the seed (text stays in order), keeps the last
//! `eval_share` of them as held-out examples, and gives shard k of each
//! part to task k. The coordinator needs no tensor library: the outer step
//! is plain `f32` arithmetic, the same bits everywhere. Workers need
//! `iog-ml`'s runtime (burn on the CPU), which jobs require as the
//! software [`ML_SOFTWARE`].
//!
//! Training on two machines need not give the same bits (the matrix
//! products pick their kernels by the CPU they find), so replicas of a
//! task agree when their losses and pseudo-gradients lie within
//! [`TRAIN_RELATIVE_ERROR`] of each other (and run on CPUs of one model:
//! long rounds drift further apart across models), and a training round cannot be
//! spot-checked without training it again: train jobs that verify their
//! results do so by `replicate` or `adaptive`.
//!
//! The job's artifacts: `weights.safetensors` (the final weights, one
//! tensor per [`iog_ml::param_layout`] entry), `loss.csv` and `loss.png`
//! (training loss per inner step, mean over the workers; held-out loss per
//! round) and `result.json`.

use std::collections::BTreeMap;
use std::ops::Range;

use base64::Engine as _;
use iog_ml::{Dataset, InnerConfig, ModelSpec, Target};
use serde::{Deserialize, Serialize};

use crate::diloco::{self, Int8Blocks, OuterConfig};
use crate::spot::Spot;
use crate::task::MAX_TASKS;
use crate::{Artifact, AssembleError, SpecError, TaskRun, check};

/// The software a worker offers when it can train (`iog-ml`'s runtime is
/// built in); every train job requires it.
pub const ML_SOFTWARE: &str = "ml";

/// Whether this build can run training tasks (`iog-ml`'s runtime, the
/// `ml` feature, is built in).
pub const ML_RUNTIME: bool = iog_ml::RUNTIME;

/// The runtime's version as a worker offers it beside [`ML_SOFTWARE`].
pub const ML_VERSION: &str = "burn-0.22 cpu";

/// How far apart two replicas of a training task may be and still be one
/// result: each loss within this share of the larger, and the pseudo-
/// gradients' difference within this share of the larger's L2 norm.
/// Training repeats on one machine bit for bit; across CPUs the matrix
/// kernels may round differently, and H steps carry the difference on.
pub const TRAIN_RELATIVE_ERROR: f64 = 1e-2;

/// Most parameters a train job's model may have, so that a task's input
/// (the weights as raw `f32`, 8 MiB at most) leaves
/// room for its data inside [`crate::TASK_INPUT_BYTES_MAX`], which
/// [`crate::plan`] checks.
pub const TRAIN_PARAMS_MAX: usize = 2 << 20;
/// Most workers (tasks per round).
pub const TRAIN_WORKERS_MAX: u32 = 1024;
/// Most rounds.
pub const TRAIN_ROUNDS_MAX: u32 = 10_000;
/// Most inner steps per round.
pub const TRAIN_INNER_STEPS_MAX: u64 = 100_000;
/// Largest data a train job may carry inside its spec (files given as
/// base64, [`DataFile::Inline`]), all together, in bytes: the coordinator
/// takes a spec of up to 4 MiB. Uploaded files ([`DataFile::Blob`], what
/// `iog job submit` sends) are bounded by the blob store and by the task
/// inputs their shards travel in ([`crate::TASK_INPUT_BYTES_MAX`]).
pub const TRAIN_DATA_BYTES_MAX: u64 = 2 << 20;
/// Most weights one round may carry in all, workers × parameters: each
/// task's input holds the round's weights.
pub const TRAIN_ROUND_VALUES_MAX: u64 = 1 << 26;
/// Most inner steps one job may take in all, rounds × inner steps: the
/// loss curve holds one point per step.
pub const TRAIN_STEPS_MAX: u64 = 1_000_000;
/// Most points of the training-loss line in `loss.png`: longer curves are
/// averaged over runs of consecutive steps.
const PLOT_POINTS_MAX: usize = 2_000;
/// Most examples a generated data set may have.
pub const TRAIN_EXAMPLES_MAX: usize = 1_000_000;
/// Most characters of generated text.
pub const TRAIN_CHARS_MAX: usize = 10_000_000;

/// The `[train]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainSpec {
    /// The model: `{ kind = "mlp", inputs = 2, hidden = [32, 32], outputs = 3 }`
    /// or `{ kind = "char_lm", vocab = 28, context = 32, d_model = 32, heads = 4, layers = 2 }`.
    pub model: ModelSpec,
    /// The data: generated from a seed, or a file of the submitter's.
    pub data: DataSpec,
    /// K: workers per round, each on its own shard (1 to 1024).
    pub workers: u32,
    /// R: rounds of inner steps and one outer step (1 to 10 000).
    pub rounds: u32,
    /// H: AdamW steps each worker takes per round (1 to 100 000).
    pub inner_steps: u64,
    /// Examples per inner step.
    pub batch_size: usize,
    /// The inner (AdamW) learning rate.
    pub lr: f64,
    /// AdamW's decoupled weight decay (default 0).
    #[serde(default)]
    pub weight_decay: f64,
    /// The outer learning rate η (default 0.7, DiLoCo's).
    #[serde(default = "default_outer_lr")]
    pub outer_lr: f32,
    /// The outer Nesterov momentum μ (default 0.9).
    #[serde(default = "default_outer_momentum")]
    pub outer_momentum: f32,
    /// Share of the examples held out to score each round's weights (0 to
    /// 0.5, default 0.1; 0 scores nothing).
    #[serde(default = "default_eval_share")]
    pub eval_share: f64,
    /// Seeds the initial weights, the order of the examples and every
    /// worker's mini-batches.
    #[serde(default)]
    pub seed: u64,
}

fn default_outer_lr() -> f32 {
    OuterConfig::default().lr
}

fn default_outer_momentum() -> f32 {
    OuterConfig::default().momentum
}

fn default_eval_share() -> f64 {
    0.1
}

/// `train.data`: where the examples come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum DataSpec {
    /// Interleaved spirals in the plane: a classification set of 2 inputs.
    Spirals {
        /// Points in all.
        examples: usize,
        /// Arms, one class each.
        classes: usize,
        /// Seeds the points.
        #[serde(default)]
        seed: u64,
    },
    /// Noisy sums of sine waves: a regression set (see [`iog_ml::waves`]).
    Waves {
        /// Examples in all.
        examples: usize,
        /// Seeds the examples.
        #[serde(default)]
        seed: u64,
    },
    /// Sentences of a small generated grammar, as characters: text for a
    /// `char_lm`, whose `vocab` must be the text's distinct characters.
    Grammar {
        /// Characters of text.
        chars: usize,
        /// Seeds the text.
        #[serde(default)]
        seed: u64,
    },
    /// Comma-separated numbers, one example a line: the inputs, then the
    /// target columns (see [`iog_ml::parse_csv`]).
    Csv {
        /// The file, relative to the job file; `iog job submit` reads it.
        file: DataFile,
        /// `"class"`: the last column is a class index; `"values"`: the
        /// last `target_columns` columns are regression targets.
        target: String,
        /// Regression target columns (default 1).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target_columns: Option<usize>,
    },
    /// NumPy arrays: `x` of shape `[examples, inputs]` and `y` of labels
    /// or of `[examples, outputs]` targets (see [`iog_ml::npy_dataset`]).
    Npy {
        /// The inputs' file.
        x: DataFile,
        /// The targets' file.
        y: DataFile,
        /// `"class"` or `"values"`, as for CSV.
        target: String,
        /// Regression target columns (default 1).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target_columns: Option<usize>,
    },
}

/// A data file a train job names: a path in the job file; once `iog job
/// submit` has uploaded it, its content address, which the coordinator
/// reads when it plans the job (and [`crate::JobSpec::resolve_files`]
/// turns into the bytes); or the bytes themselves, in base64 inside the
/// spec, for files of at most [`TRAIN_DATA_BYTES_MAX`] in all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum DataFile {
    /// A path relative to the job file's folder.
    Path(String),
    /// The file as read: its name and its bytes in base64.
    Inline {
        /// The file's name (its path's last part).
        name: String,
        /// Its bytes, in standard base64.
        base64: String,
    },
    /// The uploaded file: its name and its blob.
    Blob {
        /// The file's name (its path's last part).
        name: String,
        /// Its content address.
        blob: iog_types::BlobId,
    },
    /// An uploaded file's bytes, read where the job is planned
    /// ([`crate::JobSpec::resolve_files`]); never sent or stored.
    #[serde(skip)]
    Read {
        /// The file's name.
        name: String,
        /// Its bytes.
        bytes: std::sync::Arc<Vec<u8>>,
    },
}

impl DataFile {
    /// The file's bytes, or an error naming `field` when it is still a path
    /// or its base64 does not decode.
    fn bytes(&self, field: &str) -> Result<Vec<u8>, SpecError> {
        match self {
            DataFile::Path(path) => Err(SpecError::invalid(
                field,
                format!(
                    "is the path {path:?}, which only the submitter's machine can read; submit the job file with \
                     `iog job submit`, which reads the file and sends its contents"
                ),
            )),
            DataFile::Inline { base64, .. } => base64::engine::general_purpose::STANDARD
                .decode(base64)
                .map_err(|err| SpecError::invalid(field, format!("holds bytes that are not valid base64: {err}"))),
            DataFile::Read { bytes, .. } => Ok(bytes.to_vec()),
            DataFile::Blob { blob, .. } => Err(SpecError::invalid(
                field,
                format!(
                    "names the uploaded file {blob}, which is read where the job is planned (see \
                     JobSpec::resolve_files); it was not given here"
                ),
            )),
        }
    }

    /// The uploaded file's blob, if it is one.
    pub(crate) fn blob(&self) -> Option<iog_types::BlobId> {
        match self {
            DataFile::Blob { blob, .. } => Some(*blob),
            _ => None,
        }
    }
}

impl DataSpec {
    /// The data files it names, with their fields.
    pub(crate) fn files(&self) -> Vec<(&'static str, &DataFile)> {
        match self {
            DataSpec::Csv { file, .. } => vec![("train.data.file", file)],
            DataSpec::Npy { x, y, .. } => vec![("train.data.x", x), ("train.data.y", y)],
            _ => Vec::new(),
        }
    }

    /// The data files it names, with their fields, to be read at submission.
    pub(crate) fn files_mut(&mut self) -> Vec<(&'static str, &mut DataFile)> {
        match self {
            DataSpec::Csv { file, .. } => vec![("train.data.file", file)],
            DataSpec::Npy { x, y, .. } => vec![("train.data.x", x), ("train.data.y", y)],
            _ => Vec::new(),
        }
    }

    fn target(target: &str, target_columns: Option<usize>) -> Result<Target, SpecError> {
        match (target, target_columns) {
            ("class", None) => Ok(Target::Class),
            ("class", Some(_)) => Err(SpecError::invalid(
                "train.data.target_columns",
                "applies to target = \"values\" only: a class is one column; remove it",
            )),
            ("values", columns) => {
                let columns = columns.unwrap_or(1);
                check::between("train.data.target_columns", columns, 1, iog_ml::WIDTH_MAX)?;
                Ok(Target::Values(columns))
            }
            (other, _) => Err(SpecError::invalid(
                "train.data.target",
                format!(
                    "must be \"class\" (the last column is a class index) or \"values\" (the last \
                     target_columns columns are regression targets), got {other:?}"
                ),
            )),
        }
    }

    fn validate(&self) -> Result<(), SpecError> {
        match self {
            DataSpec::Spirals { examples, classes, .. } => {
                check::between("train.data.examples", *examples, 2, TRAIN_EXAMPLES_MAX)?;
                check::between("train.data.classes", *classes, 2, 256)
            }
            DataSpec::Waves { examples, .. } => check::between("train.data.examples", *examples, 2, TRAIN_EXAMPLES_MAX),
            DataSpec::Grammar { chars, .. } => check::between("train.data.chars", *chars, 2, TRAIN_CHARS_MAX),
            DataSpec::Csv { file, target, target_columns } => {
                Self::target(target, *target_columns)?;
                Self::check_size(&[("train.data.file", file)])
            }
            DataSpec::Npy { x, y, target, target_columns } => {
                Self::target(target, *target_columns)?;
                Self::check_size(&[("train.data.x", x), ("train.data.y", y)])
            }
        }
    }

    /// Checks the sizes of the files carried inside the spec together,
    /// from their base64's length. Paths pass (`iog job submit` uploads
    /// them; planning refuses one left), and uploaded files are bounded
    /// by the blob store and the task inputs their shards go in.
    fn check_size(files: &[(&str, &DataFile)]) -> Result<(), SpecError> {
        let mut total = 0u64;
        for (_, file) in files {
            if let DataFile::Inline { base64, .. } = file {
                total += base64.len() as u64 / 4 * 3;
            }
        }
        if total > TRAIN_DATA_BYTES_MAX + 3 {
            return Err(SpecError::invalid(
                files[0].0,
                format!(
                    "holds {total} bytes of data inside the spec, where a train job's data may hold at most \
                     {TRAIN_DATA_BYTES_MAX} bytes in all; upload the file and name its blob instead (`iog job \
                     submit` does)"
                ),
            ));
        }
        Ok(())
    }

    /// The whole data set, for a model of `context` tokens where it is text.
    fn build(&self, model: &ModelSpec) -> Result<Dataset, SpecError> {
        let data_error = |err: iog_ml::MlError| SpecError::invalid("train.data", format!("cannot be used: {err}"));
        match self {
            DataSpec::Spirals { examples, classes, seed } => {
                iog_ml::spirals(*examples, *classes, *seed).map_err(data_error)
            }
            DataSpec::Waves { examples, seed } => iog_ml::waves(*examples, *seed).map_err(data_error),
            DataSpec::Grammar { chars, seed } => {
                let ModelSpec::CharLm { context, .. } = model else {
                    return Err(SpecError::invalid(
                        "train.data.kind",
                        "is \"grammar\", which is text: it trains a model of kind \"char_lm\", not \"mlp\"",
                    ));
                };
                let text = iog_ml::grammar_text(*chars, *seed);
                let vocab = iog_ml::CharVocab::from_text(&text);
                let tokens = vocab.encode(&text).map_err(data_error)?;
                Dataset::text(tokens, vocab.len(), *context).map_err(data_error)
            }
            DataSpec::Csv { file, target, target_columns } => {
                let bytes = file.bytes("train.data.file")?;
                let text = String::from_utf8(bytes)
                    .map_err(|err| SpecError::invalid("train.data.file", format!("is not UTF-8 text: {err}")))?;
                iog_ml::parse_csv(&text, Self::target(target, *target_columns)?)
                    .map_err(|err| SpecError::invalid("train.data.file", format!("cannot be read: {err}")))
            }
            DataSpec::Npy { x, y, target, target_columns } => {
                let read = |field: &str, file: &DataFile| {
                    iog_ml::parse_npy(&file.bytes(field)?)
                        .map_err(|err| SpecError::invalid(field, format!("cannot be read: {err}")))
                };
                let (x, y) = (read("train.data.x", x)?, read("train.data.y", y)?);
                iog_ml::npy_dataset(&x, &y, Self::target(target, *target_columns)?).map_err(data_error)
            }
        }
    }
}

impl TrainSpec {
    /// Checks every field's range and the model's size; the data's fit to
    /// the model is checked by [`crate::plan`], which builds the data.
    pub fn validate(&self) -> Result<(), SpecError> {
        self.model
            .validate()
            .map_err(|err| SpecError::invalid("train.model", format!("is not a model this network trains: {err}")))?;
        let params = iog_ml::param_count(&self.model)
            .map_err(|err| SpecError::invalid("train.model", format!("is not a model this network trains: {err}")))?;
        if params > TRAIN_PARAMS_MAX {
            return Err(SpecError::invalid(
                "train.model",
                format!(
                    "has {params} parameters; a train job's model may have at most {TRAIN_PARAMS_MAX} (every \
                     round's inputs carry the weights); make it narrower or shallower"
                ),
            ));
        }
        check::between("train.workers", self.workers, 1, TRAIN_WORKERS_MAX)?;
        check::between("train.rounds", self.rounds, 1, TRAIN_ROUNDS_MAX)?;
        check::between("train.inner_steps", self.inner_steps, 1, TRAIN_INNER_STEPS_MAX)?;
        check::between("train.batch_size", self.batch_size, 1, iog_ml::BATCH_SIZE_MAX)?;
        let activations = self.model.activations_per_example().saturating_mul(self.batch_size as u64);
        if activations > iog_ml::ACTIVATIONS_MAX {
            let most = (iog_ml::ACTIVATIONS_MAX / self.model.activations_per_example().max(1)).max(1);
            return Err(SpecError::invalid(
                "train.batch_size",
                format!(
                    "is {} examples, whose activations this model cannot hold; use at most {most}",
                    self.batch_size
                ),
            ));
        }
        if !(self.lr.is_finite() && self.lr > 0.0 && self.lr <= 10.0) {
            return Err(SpecError::invalid(
                "train.lr",
                format!("must be a number above 0 and at most 10, got {}", self.lr),
            ));
        }
        if !(self.weight_decay.is_finite() && (0.0..=1.0).contains(&self.weight_decay)) {
            return Err(SpecError::invalid(
                "train.weight_decay",
                format!("must be a number from 0 to 1, got {}", self.weight_decay),
            ));
        }
        if !(self.outer_lr.is_finite() && self.outer_lr > 0.0 && self.outer_lr <= 10.0) {
            return Err(SpecError::invalid(
                "train.outer_lr",
                format!("must be a number above 0 and at most 10, got {}", self.outer_lr),
            ));
        }
        if !(self.outer_momentum.is_finite() && (0.0..1.0).contains(&self.outer_momentum)) {
            return Err(SpecError::invalid(
                "train.outer_momentum",
                format!("must be a number from 0 up to (not including) 1, got {}", self.outer_momentum),
            ));
        }
        if !(self.eval_share.is_finite() && (0.0..=0.5).contains(&self.eval_share)) {
            return Err(SpecError::invalid(
                "train.eval_share",
                format!("must be a number from 0 to 0.5, got {}", self.eval_share),
            ));
        }
        if u64::from(self.workers) * params as u64 > TRAIN_ROUND_VALUES_MAX {
            return Err(SpecError::invalid(
                "train.workers",
                format!(
                    "is {} with a model of {params} parameters; every worker's input carries the weights, and a \
                     round may carry at most {TRAIN_ROUND_VALUES_MAX} values in all: use fewer workers or a \
                     smaller model",
                    self.workers
                ),
            ));
        }
        if u64::from(self.rounds) * self.inner_steps > TRAIN_STEPS_MAX {
            return Err(SpecError::invalid(
                "train.rounds",
                format!(
                    "makes rounds × inner_steps = {} steps, more than the {TRAIN_STEPS_MAX} one job may take",
                    u64::from(self.rounds) * self.inner_steps
                ),
            ));
        }
        if self.n_tasks() > MAX_TASKS {
            return Err(SpecError::invalid(
                "train.rounds",
                format!(
                    "makes (rounds + 1) × workers = {} tasks, more than the {MAX_TASKS} one job may have",
                    self.n_tasks()
                ),
            ));
        }
        self.data.validate()
    }

    /// The uploaded data files the job names, each once: files the
    /// coordinator reads to plan the job (see
    /// [`crate::JobSpec::planning_files`]), not its workers.
    pub fn assets(&self) -> Vec<iog_types::BlobId> {
        let mut blobs = Vec::new();
        for (_, file) in self.data.files() {
            if let Some(blob) = file.blob().filter(|blob| !blobs.contains(blob)) {
                blobs.push(blob);
            }
        }
        blobs
    }

    /// Puts the bytes of the uploaded data files, which `read` gives by
    /// blob, in place of their names, so that [`crate::plan`] can read
    /// them. An error names the field of a file `read` does not have.
    pub(crate) fn resolve_files(
        &mut self,
        read: &dyn Fn(&iog_types::BlobId) -> Option<Vec<u8>>,
    ) -> Result<(), SpecError> {
        for (field, file) in self.data.files_mut() {
            let DataFile::Blob { name, blob } = file else { continue };
            let bytes = read(blob).ok_or_else(|| {
                SpecError::invalid(field, format!("names the uploaded file {blob}, which is missing"))
            })?;
            *file = DataFile::Read { name: name.clone(), bytes: std::sync::Arc::new(bytes) };
        }
        Ok(())
    }

    /// Tasks in the job: K per round, and K more that score the final weights.
    pub fn n_tasks(&self) -> u64 {
        (u64::from(self.rounds) + 1) * u64::from(self.workers)
    }

    fn outer(&self) -> OuterConfig {
        OuterConfig { lr: self.outer_lr, momentum: self.outer_momentum }
    }

    fn inner(&self, round: u32, shard: u32) -> InnerConfig {
        InnerConfig {
            steps: if round < self.rounds { self.inner_steps } else { 0 },
            batch_size: self.batch_size,
            lr: self.lr,
            weight_decay: self.weight_decay,
            seed: crate::sim::mix(self.seed ^ crate::sim::mix((u64::from(round) << 32) | u64::from(shard))),
        }
    }

    /// The data set in training order, split into its training and
    /// held-out parts, checked against the model.
    fn split(&self) -> Result<(Dataset, Range<usize>, Range<usize>), SpecError> {
        let data = self.data.build(&self.model)?;
        check_fit(&self.model, &data)?;
        let text = data.context();
        let data = match text {
            Some(_) => data,
            None => {
                let order = permutation(data.len(), self.seed);
                data.select(&order).map_err(|err| SpecError::invalid("train.data", err.to_string()))?
            }
        };
        let len = data.len();
        let held_out = (len as f64 * self.eval_share).round() as usize;
        // Text windows overlap their neighbours by the context: the held-out
        // windows start one context past the last training window's start.
        let gap = text.unwrap_or(0);
        let train_len = len.saturating_sub(held_out + if held_out > 0 { gap } else { 0 });
        let eval = if held_out > 0 { len - held_out..len } else { len..len };
        let k = self.workers as usize;
        if train_len < k {
            return Err(SpecError::invalid(
                "train.workers",
                format!(
                    "is {k}, more than the {train_len} training examples the data leaves (each worker needs a \
                     shard of at least one); use fewer workers or more data"
                ),
            ));
        }
        if held_out > 0 && held_out < k {
            return Err(SpecError::invalid(
                "train.eval_share",
                format!(
                    "holds out {held_out} examples, fewer than the {k} workers that score them; raise it, or set \
                     it to 0 to score nothing"
                ),
            ));
        }
        Ok((data, 0..train_len, eval))
    }
}

/// A seeded order of `0..len` (Fisher–Yates on a counter-based hash).
fn permutation(len: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    for i in (1..len).rev() {
        let j = (crate::sim::mix(seed ^ 0x7261_696e_5f6f_7264 ^ crate::sim::mix(i as u64)) % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    order
}

/// Checks that `data` suits `model`, naming the model field to change.
fn check_fit(model: &ModelSpec, data: &Dataset) -> Result<(), SpecError> {
    match model {
        ModelSpec::Mlp { inputs, outputs, .. } => {
            let Some(data_inputs) = data.inputs() else {
                return Err(SpecError::invalid(
                    "train.model.kind",
                    "is \"mlp\", but the data is text; text trains a model of kind \"char_lm\"",
                ));
            };
            if *inputs != data_inputs {
                return Err(SpecError::invalid(
                    "train.model.inputs",
                    format!("must be {data_inputs}, the data's input columns, got {inputs}"),
                ));
            }
            let (want, what) = match (data.classes(), data.outputs()) {
                (Some(classes), _) => (classes, "classes"),
                (None, Some(targets)) => (targets, "target columns"),
                (None, None) => unreachable!("a feature set has classes or targets"),
            };
            if *outputs != want {
                return Err(SpecError::invalid(
                    "train.model.outputs",
                    format!("must be {want}, the data's {what}, got {outputs}"),
                ));
            }
        }
        ModelSpec::CharLm { vocab, .. } => {
            let Some(data_vocab) = data.vocab() else {
                return Err(SpecError::invalid(
                    "train.model.kind",
                    "is \"char_lm\", but the data is rows of numbers; they train a model of kind \"mlp\"",
                ));
            };
            if *vocab != data_vocab {
                return Err(SpecError::invalid(
                    "train.model.vocab",
                    format!("must be {data_vocab}, the text's distinct characters, got {vocab}"),
                ));
            }
        }
    }
    Ok(())
}

/// Byte fields of task inputs and outputs: standard base64 in JSON, raw
/// bytes in a binary form ([`crate::task::to_binary`]). Either reads back.
pub(crate) mod b64 {
    use std::fmt;

    use base64::Engine as _;
    use serde::de::Visitor;
    use serde::{Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
        } else {
            serializer.serialize_bytes(bytes)
        }
    }

    struct BytesOrBase64;

    impl Visitor<'_> for BytesOrBase64 {
        type Value = Vec<u8>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("bytes, or a base64 string")
        }

        fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Vec<u8>, E> {
            base64::engine::general_purpose::STANDARD.decode(text).map_err(E::custom)
        }

        fn visit_bytes<E: serde::de::Error>(self, bytes: &[u8]) -> Result<Vec<u8>, E> {
            Ok(bytes.to_vec())
        }

        fn visit_byte_buf<E: serde::de::Error>(self, bytes: Vec<u8>) -> Result<Vec<u8>, E> {
            Ok(bytes)
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        if deserializer.is_human_readable() {
            deserializer.deserialize_str(BytesOrBase64)
        } else {
            deserializer.deserialize_byte_buf(BytesOrBase64)
        }
    }
}

/// The Euclidean norm of `v`, summed in `f64`.
pub(crate) fn l2_norm(v: &[f32]) -> f64 {
    v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt()
}

/// The Euclidean distance between `a` and `b` (over their common length),
/// summed in `f64`: how replicas' outputs are compared.
pub(crate) fn l2_distance(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| f64::from(x - y).powi(2)).sum::<f64>().sqrt()
}

pub(crate) fn floats_to_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

pub(crate) fn bytes_to_floats(field: &str, bytes: &[u8], expected: usize) -> Result<Vec<f32>, SpecError> {
    if !bytes.len().is_multiple_of(4) || bytes.len() / 4 != expected {
        return Err(SpecError::invalid(
            field,
            format!("holds {} bytes; {expected} f32 values take {}", bytes.len(), expected.saturating_mul(4)),
        ));
    }
    let values: Vec<f32> = bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(SpecError::invalid(field, format!("holds {} at {i}, not a finite number", values[i])));
    }
    Ok(values)
}

/// One worker's part of one round: the task input.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TrainTask {
    model: ModelSpec,
    /// This task's round, 0 to `rounds` (the last only scores).
    round: u32,
    rounds: u32,
    /// This task's shard, 0 to `shards − 1`.
    shard: u32,
    shards: u32,
    /// H of every training round (this task's own is `inner.steps`).
    inner_steps: u64,
    inner: InnerConfig,
    outer: OuterConfig,
    /// The job's seed, from which later rounds' batch seeds are drawn.
    seed: u64,
    /// The round's global weights, `f32` little-endian.
    #[serde(with = "b64")]
    weights: Vec<u8>,
    /// The outer momentum the round starts with, which only the coordinator
    /// reads (to make the next round): kept as a blob of its own, named here
    /// in shard 0's input (see [`crate::chain_state`]), not sent to workers.
    /// None: all zeros, as in round 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    momentum: Option<iog_types::BlobId>,
    /// This shard's training examples ([`Dataset::encode`]); empty in the
    /// last round, which only scores.
    #[serde(with = "b64", default, skip_serializing_if = "Vec::is_empty")]
    train: Vec<u8>,
    /// This shard's held-out examples; empty when the job scores nothing.
    #[serde(with = "b64", default, skip_serializing_if = "Vec::is_empty")]
    eval: Vec<u8>,
}

/// What a training task returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TrainOutput {
    round: u32,
    shard: u32,
    /// Each inner step's mini-batch loss.
    losses: Vec<f32>,
    /// The round's global weights' mean loss on this shard's held-out examples.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    eval_loss: Option<f32>,
    /// How many held-out examples that is.
    eval_examples: u64,
    /// The pseudo-gradient, [`Int8Blocks::encode`]d; empty in the last
    /// round, which takes no steps.
    #[serde(with = "b64", default, skip_serializing_if = "Vec::is_empty")]
    delta: Vec<u8>,
}

/// The first link's inputs: K tasks from the initial weights.
pub(crate) fn plan(spec: &TrainSpec) -> Result<Vec<TrainTask>, SpecError> {
    spec.validate()?;
    let (data, train, eval) = spec.split()?;
    let weights = iog_ml::init_weights(&spec.model, spec.seed)
        .map_err(|err| SpecError::invalid("train.model", err.to_string()))?;
    let weights = floats_to_bytes(&weights);
    let k = spec.workers as usize;
    let part = |whole: &Range<usize>, shard: usize| -> Result<Vec<u8>, SpecError> {
        if whole.is_empty() {
            return Ok(Vec::new());
        }
        let range =
            iog_ml::shard(whole.len(), k, shard).map_err(|err| SpecError::invalid("train.workers", err.to_string()))?;
        let range = whole.start + range.start..whole.start + range.end;
        Ok(data.slice(range).map_err(|err| SpecError::invalid("train.data", err.to_string()))?.encode())
    };
    let tasks = (0..k)
        .map(|shard| {
            Ok(TrainTask {
                model: spec.model.clone(),
                round: 0,
                rounds: spec.rounds,
                shard: shard as u32,
                shards: spec.workers,
                inner_steps: spec.inner_steps,
                inner: spec.inner(0, shard as u32),
                outer: spec.outer(),
                seed: spec.seed,
                weights: weights.clone(),
                momentum: None,
                train: part(&train, shard)?,
                eval: part(&eval, shard)?,
            })
        })
        .collect::<Result<Vec<TrainTask>, SpecError>>()?;
    for task in &tasks {
        let bytes = crate::task::to_binary(task).len();
        if bytes > crate::TASK_INPUT_BYTES_MAX - 4096 {
            return Err(SpecError::invalid(
                "train.workers",
                format!(
                    "leaves task {} an input of {bytes} bytes (the weights and its shard of the data), more \
                     than the {} a task may have; use more workers or less data",
                    task.shard,
                    crate::TASK_INPUT_BYTES_MAX
                ),
            ));
        }
    }
    Ok(tasks)
}

impl TrainTask {
    /// The blob of the outer momentum the round starts with, named in
    /// shard 0's input from round 1 on.
    pub(crate) fn momentum_blob(&self) -> Option<iog_types::BlobId> {
        self.momentum
    }

    fn params(&self) -> Result<usize, SpecError> {
        self.model.validate().map_err(|err| SpecError::invalid("model", err.to_string()))?;
        let params = iog_ml::param_count(&self.model).map_err(|err| SpecError::invalid("model", err.to_string()))?;
        if params > TRAIN_PARAMS_MAX {
            return Err(SpecError::invalid("model", format!("has {params} parameters, more than {TRAIN_PARAMS_MAX}")));
        }
        Ok(params)
    }

    /// Reads an output of this task and checks that it belongs to it (see
    /// [`check_output`]).
    fn read_output(&self, output: &[u8]) -> Result<(TrainOutput, Vec<f32>), String> {
        let held_out = if self.eval.is_empty() {
            0
        } else {
            Dataset::decode(&self.eval).map_err(|err| format!("the task's held-out examples: {err}"))?.len() as u64
        };
        let params = self.params().map_err(|err| err.to_string())?;
        check_output(
            output,
            &Expected { round: self.round, shard: self.shard, steps: self.inner.steps, held_out, params },
        )
    }
}

/// What one task's output must hold.
struct Expected {
    round: u32,
    shard: u32,
    /// Inner steps the task takes (0 in the last round).
    steps: u64,
    /// Held-out examples its shard has.
    held_out: u64,
    /// The model's parameters.
    params: usize,
}

/// Reads a task's output and checks that it is the task's: its round and
/// shard, a loss per step, finite losses of at least 0, a held-out loss
/// over exactly the shard's held-out examples (none without them), and a
/// pseudo-gradient of the model's size (none in the last round). Gives the
/// output and its pseudo-gradient, decompressed (empty in the last round).
/// The coordinator checks each round this way before the outer step, and
/// assembly every round again, the last included.
fn check_output(output: &[u8], expected: &Expected) -> Result<(TrainOutput, Vec<f32>), String> {
    let Expected { round, shard, steps, held_out, params } = *expected;
    let decoded: TrainOutput =
        crate::task::from_binary_or_json(output).map_err(|err| format!("does not decode: {err}"))?;
    if (decoded.round, decoded.shard) != (round, shard) {
        return Err(format!(
            "is round {} shard {}'s; the task is round {round} shard {shard}",
            decoded.round, decoded.shard
        ));
    }
    if decoded.losses.len() as u64 != steps {
        return Err(format!("holds {} losses; the task takes {steps} steps", decoded.losses.len()));
    }
    if decoded.losses.iter().chain(&decoded.eval_loss).any(|loss| !loss.is_finite() || *loss < 0.0) {
        return Err("holds a loss that is not a finite number of at least 0".to_owned());
    }
    if decoded.eval_examples != held_out {
        return Err(format!("scores {} held-out examples; shard {shard} has {held_out}", decoded.eval_examples));
    }
    if decoded.eval_loss.is_some() != (held_out > 0) {
        return Err(if held_out == 0 {
            "scores held-out examples the task does not have".to_owned()
        } else {
            "does not score the task's held-out examples".to_owned()
        });
    }
    let delta = if steps == 0 {
        if !decoded.delta.is_empty() {
            return Err("holds a pseudo-gradient, but the last round takes no steps".to_owned());
        }
        Vec::new()
    } else {
        let delta = Int8Blocks::decode(&decoded.delta).map_err(|err| format!("pseudo-gradient: {err}"))?.decompress();
        if delta.len() != params {
            return Err(format!("holds a pseudo-gradient of {} values; the model has {params}", delta.len()));
        }
        delta
    };
    Ok((decoded, delta))
}

/// Runs one task on this machine's CPU: scores the round's weights on the
/// shard's held-out examples, takes the round's inner steps and
/// compresses the pseudo-gradient. A build without `iog-ml`'s runtime
/// says so.
pub(crate) fn run(task: &TrainTask) -> Result<TaskRun, SpecError> {
    let params = task.params()?;
    task.inner
        .validate()
        .map_err(|err| SpecError::invalid(format!("inner.{}", err.field().unwrap_or("")), err.message()))?;
    let weights = bytes_to_floats("weights", &task.weights, params)?;
    let decode = |field: &str, bytes: &[u8]| {
        Dataset::decode(bytes).map_err(|err| SpecError::invalid(field, format!("does not decode: {err}")))
    };
    let ml = |err: iog_ml::MlError| SpecError::invalid("train", err.to_string());
    let (eval_loss, eval_examples) = if task.eval.is_empty() {
        (None, 0)
    } else {
        let eval = decode("eval", &task.eval)?;
        let loss = iog_ml::evaluate(&task.model, &weights, &eval, 0..eval.len()).map_err(ml)?;
        if !loss.is_finite() {
            return Err(SpecError::invalid(
                "train",
                format!(
                    "round {}'s weights score a held-out loss of {loss}, not a finite number: training diverged; \
                     lower train.lr or train.outer_lr",
                    task.round
                ),
            ));
        }
        (Some(loss), eval.len() as u64)
    };
    let (losses, delta) = if task.inner.steps == 0 {
        (Vec::new(), Vec::new())
    } else {
        let data = decode("train", &task.train)?;
        let outcome = iog_ml::train_inner(&task.model, &weights, &data, 0..data.len(), &task.inner).map_err(ml)?;
        let delta = diloco::pseudo_gradient(&weights, &outcome.weights);
        (outcome.losses, Int8Blocks::compress(&delta).encode())
    };
    let output = TrainOutput { round: task.round, shard: task.shard, losses, eval_loss, eval_examples, delta };
    Ok(TaskRun { output: crate::task::to_binary(&output), work_units: task.inner.steps * task.inner.batch_size as u64 })
}

/// Whether two outputs of one task are one result: both its own (see
/// [`TrainTask::read_output`]), every loss within [`TRAIN_RELATIVE_ERROR`]
/// of the larger plus the first step's loss, and the pseudo-gradients
/// within it in L2 norm, plus half an 8-bit step a value.
pub(crate) fn outputs_agree(task: &TrainTask, a: &[u8], b: &[u8]) -> bool {
    if a == b {
        return task.read_output(a).is_ok();
    }
    let (Ok((a, delta_a)), Ok((b, delta_b))) = (task.read_output(a), task.read_output(b)) else {
        return false;
    };
    // Losses late in training can be near 0, where a share of themselves
    // is no allowance: they are judged against the first step's loss too.
    let first = |o: &TrainOutput| o.losses.first().or(o.eval_loss.as_ref()).map_or(0.0, |l| f64::from(l.abs()));
    let floor = first(&a).max(first(&b));
    let close = |x: f32, y: f32| {
        f64::from((x - y).abs()) <= TRAIN_RELATIVE_ERROR * (f64::from(x.abs().max(y.abs())) + floor).max(1e-6)
    };
    let losses_agree = a.losses.iter().zip(&b.losses).all(|(x, y)| close(*x, *y))
        && match (a.eval_loss, b.eval_loss) {
            (Some(x), Some(y)) => close(x, y),
            (None, None) => true,
            _ => false,
        };
    let (norm, gap) = (l2_norm, l2_distance(&delta_a, &delta_b));
    // Two pseudo-gradients a hair apart may round to neighbouring 8-bit
    // steps: allow half a step of the coarser block per value.
    let quantization = match (Int8Blocks::decode(&a.delta), Int8Blocks::decode(&b.delta)) {
        (Ok(qa), Ok(qb)) => {
            let mut sum = 0.0f64;
            for (block, (sa, sb)) in qa.scales.iter().zip(&qb.scales).enumerate() {
                let len = (delta_a.len() - block * diloco::BLOCK_LEN).min(diloco::BLOCK_LEN) as f64;
                sum += len * f64::from(sa.max(*sb) / 2.0).powi(2);
            }
            sum.sqrt()
        }
        _ => 0.0,
    };
    losses_agree && gap <= TRAIN_RELATIVE_ERROR * norm(&delta_a).max(norm(&delta_b)) + quantization
}

/// Whether `output` is one of `task`'s, whole (see [`TrainTask::read_output`]).
pub(crate) fn check_task_output(task: &TrainTask, output: &[u8]) -> Result<(), String> {
    task.read_output(output).map(|_| ())
}

/// A training round cannot be sampled: redoing part of it needs the
/// optimizer state it reached.
pub(crate) fn spot_check() -> Result<Spot, SpecError> {
    Err(SpecError::invalid(
        "verify.policy",
        "is \"spot\", but a training round cannot be checked without training it again; verify train jobs by \
         \"replicate\" or \"adaptive\"",
    ))
}

/// The next link's inputs from a round's inputs and accepted outputs, in
/// shard order, and the outer momentum the round starts with (the blob its
/// shard 0's input names; `None` for round 0's zeros): the outer step over
/// the round's pseudo-gradients gives the next round's weights and
/// momentum, returned beside the inputs, which name it.
pub(crate) fn next_inputs(
    spec: &TrainSpec,
    task_idx: u64,
    previous: &[(TrainTask, &[u8])],
    momentum: Option<&[u8]>,
) -> Result<(Vec<TrainTask>, Vec<u8>), SpecError> {
    let k = spec.workers as usize;
    if previous.len() != k {
        return Err(SpecError::invalid(
            "previous",
            format!("holds {} tasks' results; a round of this job is {k} tasks", previous.len()),
        ));
    }
    let round = previous[0].0.round;
    for (shard, (task, _)) in previous.iter().enumerate() {
        if (task.round, task.shard as usize, task.shards) != (round, shard, spec.workers) {
            return Err(SpecError::invalid(
                "previous",
                format!("task {shard} is round {} shard {}, not round {round} shard {shard}", task.round, task.shard),
            ));
        }
    }
    if round >= spec.rounds {
        return Err(SpecError::invalid("previous", format!("is the last link (round {round}); nothing follows it")));
    }
    let expected_idx = u64::from(round + 1) * k as u64;
    if task_idx != expected_idx {
        return Err(SpecError::invalid(
            "task_idx",
            format!("is {task_idx}, but round {} starts at task {expected_idx}", round + 1),
        ));
    }
    let first = &previous[0].0;
    let params = first.params()?;
    let mut weights = bytes_to_floats("weights", &first.weights, params)?;
    let mut momentum = match (first.momentum, momentum) {
        (None, _) => vec![0.0; params],
        (Some(id), Some(bytes)) if iog_types::BlobId::of(bytes) == id => bytes_to_floats("momentum", bytes, params)?,
        (Some(id), _) => {
            return Err(SpecError::invalid(
                "momentum",
                format!("is not the blob {id} that round {round}'s first input names as its outer momentum"),
            ));
        }
    };
    let mut deltas = Vec::with_capacity(k);
    for (shard, (task, output)) in previous.iter().enumerate() {
        let (_, delta) = task
            .read_output(output)
            .map_err(|reason| SpecError::invalid(format!("output of round {round} shard {shard}"), reason))?;
        deltas.push(delta);
    }
    diloco::outer_step(&mut weights, &mut momentum, &deltas, &first.outer)
        .map_err(|err| SpecError::invalid(format!("round {round}"), err.to_string()))?;
    if let Some(index) = weights.iter().chain(&momentum).position(|x| !x.is_finite()) {
        return Err(SpecError::invalid(
            format!("round {round}"),
            format!(
                "'s outer step made weight {} not a finite number: training diverged; lower train.outer_lr or \
                 train.lr",
                index % params
            ),
        ));
    }
    let next = round + 1;
    let weights = floats_to_bytes(&weights);
    let momentum = floats_to_bytes(&momentum);
    let momentum_id = iog_types::BlobId::of(&momentum);
    let tasks = previous
        .iter()
        .map(|(task, _)| TrainTask {
            round: next,
            inner: spec.inner(next, task.shard),
            weights: weights.clone(),
            momentum: (task.shard == 0).then_some(momentum_id),
            // The last round only scores: it needs no training examples.
            train: if next < spec.rounds { task.train.clone() } else { Vec::new() },
            ..task.clone()
        })
        .collect();
    Ok((tasks, momentum))
}

/// One round as the outputs tell it.
struct Round {
    /// Mean over the shards of each step's loss.
    losses: Vec<f64>,
    /// Held-out loss of the round's starting weights, weighted by examples.
    eval_loss: Option<f64>,
    delta_bytes: u64,
}

/// The job's artifacts from every task's output, in task order: the
/// outer steps are taken again from the initial weights, round by round,
/// so the final weights are exactly those the last round scored. Each
/// output is checked as the coordinator checked it (its round and shard,
/// a loss per step, finite losses of at least 0, the held-out examples its
/// shard has), the last round's too, which no later round read.
pub(crate) fn assemble(spec: &TrainSpec, outputs: &[Vec<u8>]) -> Result<Vec<Artifact>, AssembleError> {
    let k = spec.workers as usize;
    let params = iog_ml::param_count(&spec.model).map_err(|err| SpecError::invalid("train.model", err.to_string()))?;
    let (_, _, eval) = spec.split()?;
    let held_out: Vec<u64> = (0..k)
        .map(|shard| match eval.is_empty() {
            true => 0,
            false => iog_ml::shard(eval.len(), k, shard).map_or(0, |range| range.len() as u64),
        })
        .collect();
    let mut weights = iog_ml::init_weights(&spec.model, spec.seed)
        .map_err(|err| SpecError::invalid("train.model", err.to_string()))?;
    let mut momentum = vec![0.0f32; params];
    let mut rounds = Vec::with_capacity(spec.rounds as usize + 1);
    for round in 0..=spec.rounds {
        let steps = if round < spec.rounds { spec.inner_steps as usize } else { 0 };
        let mut losses = vec![0.0f64; steps];
        let (mut eval_sum, mut eval_examples, mut deltas, mut delta_bytes) = (0.0f64, 0u64, Vec::new(), 0u64);
        for (shard, &held_out) in held_out.iter().enumerate() {
            let task_idx = round as usize * k + shard;
            let expected = Expected { round, shard: shard as u32, steps: steps as u64, held_out, params };
            let (output, delta) = check_output(&outputs[task_idx], &expected)
                .map_err(|reason| AssembleError::BadOutput { task_idx, reason })?;
            for (sum, loss) in losses.iter_mut().zip(&output.losses) {
                *sum += f64::from(*loss) / k as f64;
            }
            if let Some(loss) = output.eval_loss {
                eval_sum += f64::from(loss) * output.eval_examples as f64;
                eval_examples += output.eval_examples;
            }
            if steps > 0 {
                delta_bytes += output.delta.len() as u64;
                deltas.push(delta);
            }
        }
        if round < spec.rounds {
            diloco::outer_step(&mut weights, &mut momentum, &deltas, &spec.outer()).map_err(|err| {
                AssembleError::BadOutput { task_idx: round as usize * k, reason: format!("round {round}: {err}") }
            })?;
        }
        let eval_loss = (eval_examples > 0).then(|| eval_sum / eval_examples as f64);
        rounds.push(Round { losses, eval_loss, delta_bytes });
    }
    let mut metadata = BTreeMap::from([
        ("format".to_owned(), "iog train".to_owned()),
        ("rounds".to_owned(), spec.rounds.to_string()),
        ("workers".to_owned(), spec.workers.to_string()),
        ("inner_steps".to_owned(), spec.inner_steps.to_string()),
        ("seed".to_owned(), spec.seed.to_string()),
    ]);
    // A char_lm's tokens mean nothing without its characters: an infer job
    // reads them from here.
    if let DataSpec::Grammar { chars, seed } = &spec.data {
        let vocab = iog_ml::CharVocab::from_text(&iog_ml::grammar_text(*chars, *seed));
        metadata.insert("vocab".to_owned(), vocab.chars().iter().collect());
    }
    let safetensors = crate::infer::weights_safetensors(&spec.model, &weights, metadata)
        .map_err(|reason| AssembleError::BadOutput { task_idx: 0, reason: format!("weights: {reason}") })?;

    let h = spec.inner_steps as usize;
    let mut csv = String::from("step,train_loss,eval_loss\n");
    let mut train_points = Vec::new();
    let mut eval_points = Vec::new();
    for (round, played) in rounds.iter().enumerate() {
        let start = round * h;
        if round == 0
            && let Some(eval) = played.eval_loss
        {
            csv.push_str(&format!("0,,{eval}\n"));
        }
        if let Some(eval) = played.eval_loss {
            eval_points.push((start as f64, eval));
        }
        for (i, loss) in played.losses.iter().enumerate() {
            let step = start + i + 1;
            train_points.push((step as f64, *loss));
            let eval = if i + 1 == played.losses.len() {
                rounds.get(round + 1).and_then(|next| next.eval_loss).map(|e| e.to_string()).unwrap_or_default()
            } else {
                String::new()
            };
            csv.push_str(&format!("{step},{loss},{eval}\n"));
        }
    }
    // A long curve is drawn as the means of runs of consecutive steps.
    let run = train_points.len().div_ceil(PLOT_POINTS_MAX).max(1);
    let train_points: Vec<(f64, f64)> = train_points
        .chunks(run)
        .map(|chunk| {
            let n = chunk.len() as f64;
            (chunk.iter().map(|p| p.0).sum::<f64>() / n, chunk.iter().map(|p| p.1).sum::<f64>() / n)
        })
        .collect();
    let mut series: Vec<(&str, &[(f64, f64)])> = vec![("training (mean over workers)", &train_points)];
    if !eval_points.is_empty() {
        series.push(("held out", &eval_points));
    }
    let png = crate::report::line_plot_png(
        &format!("{} rounds × {} workers", spec.rounds, k),
        "inner step",
        "loss",
        &series,
        800,
        500,
    )
    .map_err(|err| AssembleError::BadOutput { task_idx: 0, reason: format!("plot: {err}") })?;

    let trained: Vec<&Round> = rounds.iter().take(spec.rounds as usize).collect();
    let delta_bytes: u64 = trained.iter().map(|r| r.delta_bytes).sum();
    let result = serde_json::json!({
        "workload": "train",
        "model": spec.model,
        "params": params,
        "workers": k,
        "rounds": spec.rounds,
        "inner_steps": spec.inner_steps,
        "eval_loss_initial": rounds.first().and_then(|r| r.eval_loss),
        "eval_loss_final": rounds.last().and_then(|r| r.eval_loss),
        "train_loss_first_step": trained.first().and_then(|r| r.losses.first()),
        "train_loss_last_step": trained.last().and_then(|r| r.losses.last()),
        "pseudo_gradient_bytes": delta_bytes,
        "pseudo_gradient_bytes_as_f32": 4 * params as u64 * u64::from(spec.rounds) * k as u64,
    });
    Ok(vec![
        Artifact {
            name: "result.json".to_owned(),
            media_type: "application/json".to_owned(),
            bytes: serde_json::to_vec_pretty(&result).expect("results are plain data"),
        },
        Artifact {
            name: "weights.safetensors".to_owned(),
            media_type: "application/octet-stream".to_owned(),
            bytes: safetensors,
        },
        Artifact { name: "loss.csv".to_owned(), media_type: "text/csv".to_owned(), bytes: csv.into_bytes() },
        Artifact { name: "loss.png".to_owned(), media_type: "image/png".to_owned(), bytes: png },
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> TrainSpec {
        TrainSpec {
            model: ModelSpec::Mlp { inputs: 2, hidden: vec![32, 32], outputs: 3 },
            data: DataSpec::Spirals { examples: 600, classes: 3, seed: 5 },
            workers: 3,
            rounds: 3,
            inner_steps: 60,
            batch_size: 32,
            lr: 0.02,
            weight_decay: 0.0,
            outer_lr: default_outer_lr(),
            outer_momentum: default_outer_momentum(),
            eval_share: 0.2,
            seed: 9,
        }
    }

    #[test]
    fn rounds_travel_in_binary_read_back_from_json_too_and_keep_the_momentum_off_the_workers() {
        let workload = crate::WorkloadSpec::Train(spec());
        let inputs = crate::plan(&workload).unwrap();
        let input = &inputs[1];
        assert!(input.starts_with(&[0xd9, 0xd9, 0xf7]), "a train input is CBOR");
        // Its JSON form (base64 bytes) is a third larger and runs the same.
        let view = crate::json_view(input).unwrap();
        assert_eq!(view["workload"], "train");
        let json = serde_json::to_vec(&view).unwrap();
        assert!(input.len() * 5 < json.len() * 4, "binary {} bytes, JSON {}", input.len(), json.len());
        let output = crate::run_task(input).unwrap().output;
        assert_eq!(crate::run_task(&json).unwrap().output, output);
        assert!(output.starts_with(&[0xd9, 0xd9, 0xf7]), "a train output is CBOR");
        let losses = crate::json_view(&output).unwrap()["losses"].as_array().unwrap().len();
        assert_eq!(losses, 60);
        // Broken binary says so.
        let mut broken = input.clone();
        broken.truncate(input.len() / 2);
        let err = crate::run_task(&broken).unwrap_err().to_string();
        assert!(err.contains("CBOR"), "{err}");
        // Bytes after the value are refused, in inputs and outputs alike.
        let err = crate::run_task(&[input.as_slice(), b"x"].concat()).unwrap_err().to_string();
        assert!(err.contains("1 bytes follow the value"), "{err}");
        let padded = [output.as_slice(), &[0u8; 8]].concat();
        let err = crate::check_output(input, &padded).unwrap_err();
        assert!(err.contains("8 bytes follow the value"), "{err}");

        // Round 0 names no momentum; round 1's first input names the state
        // the coordinator keeps, and no worker's input holds it.
        assert_eq!(crate::chain_state(&inputs[0]), None);
        let outputs: Vec<Vec<u8>> = inputs.iter().map(|input| crate::run_task(input).unwrap().output).collect();
        let previous: Vec<(Vec<u8>, Vec<u8>)> = inputs.iter().cloned().zip(outputs).collect();
        let link = crate::next_inputs(&workload, 3, &previous, None).unwrap();
        let state = link.state.expect("a round's momentum");
        assert_eq!(crate::chain_state(&link.inputs[0]), Some(iog_types::BlobId::of(&state)));
        assert!(link.inputs[1..].iter().all(|input| crate::chain_state(input).is_none()));
        let params = iog_ml::param_count(&spec().model).unwrap();
        assert_eq!(state.len(), 4 * params);
        // Inputs grow by the momentum's name at most, not by its bytes.
        assert!(state.len() > 1024 && link.inputs.iter().all(|input| input.len() < inputs[1].len() + 128));
    }

    /// Every task of the job run here, link after link: the inputs and outputs.
    fn run_job(spec: &TrainSpec) -> (Vec<TrainTask>, Vec<Vec<u8>>) {
        let mut inputs = plan(spec).unwrap();
        let mut outputs: Vec<Vec<u8>> = inputs.iter().map(|task| run(task).unwrap().output).collect();
        let k = spec.workers as usize;
        let mut momentum: Option<Vec<u8>> = None;
        while inputs.len() < spec.n_tasks() as usize {
            let start = inputs.len() - k;
            let previous: Vec<(TrainTask, &[u8])> =
                inputs[start..].iter().cloned().zip(outputs[start..].iter().map(Vec::as_slice)).collect();
            let (next, next_momentum) = next_inputs(spec, inputs.len() as u64, &previous, momentum.as_deref()).unwrap();
            momentum = Some(next_momentum);
            outputs.extend(next.iter().map(|task| run(task).unwrap().output));
            inputs.extend(next);
        }
        (inputs, outputs)
    }

    fn result(artifacts: &[Artifact]) -> serde_json::Value {
        serde_json::from_slice(&artifacts.iter().find(|a| a.name == "result.json").unwrap().bytes).unwrap()
    }

    #[test]
    fn rounds_across_workers_lower_the_held_out_loss_and_assemble_into_weights_a_curve_and_a_plot() {
        let spec = spec();
        let (inputs, outputs) = run_job(&spec);
        assert_eq!(inputs.len(), 12);
        // Shards cover the training examples once; all tasks of a round share its weights.
        let train_examples: usize = inputs[..3].iter().map(|task| Dataset::decode(&task.train).unwrap().len()).sum();
        let eval_examples: usize = inputs[..3].iter().map(|task| Dataset::decode(&task.eval).unwrap().len()).sum();
        assert_eq!((train_examples, eval_examples), (480, 120));
        for round in inputs.chunks(3) {
            assert!(round.iter().all(|task| task.weights == round[0].weights && task.round == round[0].round));
            // Only shard 0's input names the momentum, and round 0 starts from zeros.
            assert_eq!(round[0].momentum.is_some(), round[0].round > 0);
            assert!(round[1..].iter().all(|task| task.momentum.is_none()));
        }
        assert!(inputs[9..].iter().all(|task| task.inner.steps == 0));

        let artifacts = assemble(&spec, &outputs).unwrap();
        let names: Vec<&str> = artifacts.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["result.json", "weights.safetensors", "loss.csv", "loss.png"]);
        let result = result(&artifacts);
        let (first, last) =
            (result["eval_loss_initial"].as_f64().unwrap(), result["eval_loss_final"].as_f64().unwrap());
        assert!(last < 0.8 * first, "held-out loss {first} → {last}: {result}");
        assert_eq!(result["params"], 2 * 32 + 32 + 32 * 32 + 32 + 32 * 3 + 3);
        // 8 bits a value plus a scale per block against 32 bits a value.
        let ratio = result["pseudo_gradient_bytes_as_f32"].as_f64().unwrap()
            / result["pseudo_gradient_bytes"].as_f64().unwrap();
        assert!(ratio > 2.0, "{result}");

        // The final weights are the ones the last round scored, bit for bit.
        let weights = &artifacts[1].bytes;
        let tensors = safetensors::SafeTensors::deserialize(weights).unwrap();
        let layout = iog_ml::param_layout(&spec.model).unwrap();
        let last_round = bytes_to_floats("weights", &inputs[9].weights, 1251).unwrap();
        for tensor in &layout {
            let view = tensors.tensor(&tensor.name).unwrap();
            assert_eq!(view.shape(), tensor.shape.as_slice());
            assert_eq!(view.data(), floats_to_bytes(&last_round[tensor.offset..tensor.offset + tensor.len()]));
        }
        let csv = String::from_utf8(artifacts[2].bytes.clone()).unwrap();
        let rows: Vec<&str> = csv.lines().collect();
        assert_eq!(rows[0], "step,train_loss,eval_loss");
        assert_eq!(rows.len(), 1 + 1 + 3 * 60, "{csv}");
        assert!(rows[1].starts_with("0,,") && rows[60 + 1].starts_with("60,") && !rows[61].ends_with(','), "{csv}");
        let png = &artifacts[3].bytes;
        assert_eq!(&png[1..4], b"PNG");
    }

    #[test]
    fn tasks_repeat_bit_for_bit_and_replicas_agree_within_the_tolerance_only() {
        let spec = spec();
        let inputs = plan(&spec).unwrap();
        let a = run(&inputs[1]).unwrap().output;
        assert_eq!(a, run(&inputs[1]).unwrap().output);
        assert!(outputs_agree(&inputs[1], &a, &a));
        let mut output: TrainOutput = crate::task::from_binary_or_json(&a).unwrap();
        let delta = Int8Blocks::decode(&output.delta).unwrap().decompress();
        // Rounding on another CPU: each value off by a millionth of itself.
        let nudged: Vec<f32> = delta.iter().map(|x| x * (1.0 + 1e-6)).collect();
        let near = TrainOutput { delta: Int8Blocks::compress(&nudged).encode(), ..output.clone() };
        assert!(outputs_agree(&inputs[1], &a, &crate::task::to_binary(&near)));
        // No work, another shard's work, or half the work do not agree.
        let zeros = TrainOutput { delta: Int8Blocks::compress(&vec![0.0; delta.len()]).encode(), ..output.clone() };
        assert!(!outputs_agree(&inputs[1], &a, &crate::task::to_binary(&zeros)));
        let other = run(&inputs[2]).unwrap().output;
        assert!(!outputs_agree(&inputs[1], &a, &other));
        let halved: Vec<f32> = delta.iter().map(|x| x * 0.5).collect();
        let half = TrainOutput { delta: Int8Blocks::compress(&halved).encode(), ..output.clone() };
        assert!(!outputs_agree(&inputs[1], &a, &crate::task::to_binary(&half)));
        output.losses[3] *= 1.5;
        assert!(!outputs_agree(&inputs[1], &a, &crate::task::to_binary(&output)));
        assert!(!outputs_agree(&inputs[1], &a, b"not json"));
    }

    #[test]
    fn a_round_is_made_only_from_a_whole_round_of_its_own_tasks_outputs() {
        let spec = spec();
        let inputs = plan(&spec).unwrap();
        let outputs: Vec<Vec<u8>> = inputs.iter().map(|task| run(task).unwrap().output).collect();
        let pairs: Vec<(TrainTask, &[u8])> = inputs.iter().cloned().zip(outputs.iter().map(Vec::as_slice)).collect();
        let err = next_inputs(&spec, 3, &pairs[..2], None).unwrap_err();
        assert!(err.to_string().contains("a round of this job is 3 tasks"), "{err}");
        let err = next_inputs(&spec, 4, &pairs, None).unwrap_err();
        assert!(err.to_string().contains("round 1 starts at task 3"), "{err}");
        let mut swapped = pairs.clone();
        swapped[1].1 = &outputs[2];
        let err = next_inputs(&spec, 3, &swapped, None).unwrap_err();
        assert!(err.to_string().contains("is round 0 shard 2's"), "{err}");
        let mut garbage = pairs.clone();
        garbage[0].1 = b"{}";
        assert!(next_inputs(&spec, 3, &garbage, None).is_err());
        let (next, momentum) = next_inputs(&spec, 3, &pairs, None).unwrap();
        assert_eq!(next.len(), 3);
        assert_ne!(next[0].weights, inputs[0].weights);
        assert_eq!(next[0].momentum, Some(iog_types::BlobId::of(&momentum)));
        // The round after needs that momentum, and no other.
        let outputs: Vec<Vec<u8>> = next.iter().map(|task| run(task).unwrap().output).collect();
        let pairs: Vec<(TrainTask, &[u8])> = next.iter().cloned().zip(outputs.iter().map(Vec::as_slice)).collect();
        for wrong in [None, Some(&momentum[4..])] {
            let err = next_inputs(&spec, 6, &pairs, wrong).unwrap_err();
            assert!(err.to_string().contains("names as its outer momentum"), "{err}");
        }
        assert!(next_inputs(&spec, 6, &pairs, Some(&momentum)).is_ok());
    }

    #[test]
    fn bad_specs_name_the_field_to_change() {
        type Edit = Box<dyn Fn(&mut TrainSpec)>;
        let cases: Vec<(Edit, &str)> = vec![
            (Box::new(|s| s.workers = 0), "train.workers must be between 1 and 1024, got 0"),
            (Box::new(|s| s.rounds = 0), "train.rounds must be between 1"),
            (Box::new(|s| s.lr = -1.0), "train.lr must be a number above 0"),
            (Box::new(|s| s.outer_momentum = 1.0), "train.outer_momentum must be"),
            (Box::new(|s| s.eval_share = 0.9), "train.eval_share must be a number from 0 to 0.5"),
            (Box::new(|s| s.model = ModelSpec::Mlp { inputs: 2, hidden: vec![2048, 2048], outputs: 3 }), "parameters"),
            (
                Box::new(|s| {
                    s.data = DataSpec::Csv {
                        file: DataFile::Inline { name: "d.csv".into(), base64: "AAAA".into() },
                        target: "label".into(),
                        target_columns: None,
                    }
                }),
                "train.data.target must be \"class\"",
            ),
        ];
        for (edit, expected) in cases {
            let mut spec = spec();
            edit(&mut spec);
            let err = spec.validate().unwrap_err().to_string();
            assert!(err.contains(expected), "{err:?} does not contain {expected:?}");
        }
        let plan_err = |edit: &dyn Fn(&mut TrainSpec)| {
            let mut spec = spec();
            edit(&mut spec);
            plan(&spec).unwrap_err().to_string()
        };
        let err = plan_err(&|s| s.model = ModelSpec::Mlp { inputs: 3, hidden: vec![8], outputs: 3 });
        assert!(err.contains("train.model.inputs must be 2, the data's input columns, got 3"), "{err}");
        let err = plan_err(&|s| s.model = ModelSpec::Mlp { inputs: 2, hidden: vec![8], outputs: 4 });
        assert!(err.contains("train.model.outputs must be 3, the data's classes"), "{err}");
        let err = plan_err(&|s| s.data = DataSpec::Grammar { chars: 1000, seed: 1 });
        assert!(err.contains("\"char_lm\""), "{err}");
        let err = plan_err(&|s| s.workers = 1000);
        assert!(err.contains("more than the"), "{err}");
        // A path passes validation (`iog job submit` uploads it); planning
        // cannot read it.
        let err = plan_err(&|s| {
            s.data =
                DataSpec::Csv { file: DataFile::Path("d.csv".into()), target: "class".into(), target_columns: None }
        });
        assert!(err.contains("train.data.file") && err.contains("iog job submit"), "{err}");
    }

    #[test]
    fn malformed_outputs_are_refused_on_arrival() {
        let spec = TrainSpec { rounds: 1, inner_steps: 5, ..spec() };
        let inputs = crate::plan(&crate::WorkloadSpec::Train(spec.clone())).unwrap();
        let tasks = plan(&spec).unwrap();
        let output = run(&tasks[0]).unwrap().output;
        assert_eq!(crate::check_output(&inputs[0], &output), Ok(()));
        assert!(crate::check_output(&inputs[1], &output).unwrap_err().contains("shard"));
        assert!(crate::check_output(&inputs[0], &[7; 40]).is_err());
    }

    #[test]
    fn uploaded_data_is_read_where_the_job_is_planned() {
        let mut csv = String::from("x,y\n");
        for i in 0..200 {
            let x = i as f32 / 100.0 - 1.0;
            csv.push_str(&format!("{x},{}\n", 3.0 * x + 0.5));
        }
        let blob = iog_types::BlobId::of(csv.as_bytes());
        let spec = TrainSpec {
            model: ModelSpec::Mlp { inputs: 1, hidden: vec![], outputs: 1 },
            data: DataSpec::Csv {
                file: DataFile::Blob { name: "line.csv".into(), blob },
                target: "values".into(),
                target_columns: None,
            },
            ..spec()
        };
        assert_eq!(spec.assets(), [blob]);
        // As stored and sent: the name, not the bytes.
        let json = serde_json::to_string(&spec).unwrap();
        assert!(json.contains(&blob.to_string()) && !json.contains("0.5"), "{json}");
        assert_eq!(serde_json::from_str::<TrainSpec>(&json).unwrap(), spec);
        let err = plan(&spec).unwrap_err().to_string();
        assert!(err.contains("train.data.file") && err.contains("was not given here"), "{err}");

        let mut resolved = spec.clone();
        let missing = resolved.clone().resolve_files(&|_| None).unwrap_err();
        assert_eq!(missing.field(), Some("train.data.file"));
        resolved.resolve_files(&|b| (*b == blob).then(|| csv.clone().into_bytes())).unwrap();
        let tasks = plan(&resolved).unwrap();
        assert_eq!(tasks.len(), spec.workers as usize);
        // The same tasks as the bytes inline in the spec would give.
        let inline = TrainSpec {
            data: DataSpec::Csv {
                file: DataFile::Inline {
                    name: "line.csv".into(),
                    base64: base64::engine::general_purpose::STANDARD.encode(&csv),
                },
                target: "values".into(),
                target_columns: None,
            },
            ..spec
        };
        let to_json = |tasks: &[TrainTask]| serde_json::to_string(tasks).unwrap();
        assert_eq!(to_json(&tasks), to_json(&plan(&inline).unwrap()));
    }

    #[test]
    fn a_csv_file_trains_a_regression_model() {
        let mut csv = String::from("x,y\n");
        for i in 0..200 {
            let x = i as f32 / 100.0 - 1.0;
            csv.push_str(&format!("{x},{}\n", 3.0 * x + 0.5));
        }
        let spec = TrainSpec {
            model: ModelSpec::Mlp { inputs: 1, hidden: vec![], outputs: 1 },
            data: DataSpec::Csv {
                file: DataFile::Inline {
                    name: "line.csv".into(),
                    base64: base64::engine::general_purpose::STANDARD.encode(csv),
                },
                target: "values".into(),
                target_columns: None,
            },
            workers: 2,
            rounds: 4,
            inner_steps: 40,
            batch_size: 16,
            lr: 0.05,
            eval_share: 0.25,
            ..spec()
        };
        let (_, outputs) = run_job(&spec);
        let result = result(&assemble(&spec, &outputs).unwrap());
        let (first, last) =
            (result["eval_loss_initial"].as_f64().unwrap(), result["eval_loss_final"].as_f64().unwrap());
        assert!(last < 0.1 * first, "{result}");
    }

    #[test]
    fn text_trains_a_char_lm_and_a_job_may_score_nothing() {
        let text = iog_ml::grammar_text(3000, 2);
        let vocab = iog_ml::CharVocab::from_text(&text).len();
        let spec = TrainSpec {
            model: ModelSpec::CharLm { vocab, context: 8, d_model: 8, heads: 2, layers: 1 },
            data: DataSpec::Grammar { chars: 3000, seed: 2 },
            workers: 2,
            rounds: 2,
            inner_steps: 5,
            batch_size: 4,
            lr: 0.01,
            eval_share: 0.0,
            ..spec()
        };
        let (inputs, outputs) = run_job(&spec);
        assert!(inputs.iter().all(|task| task.eval.is_empty()));
        // The shards' windows cover the text, which stays in order.
        let windows: usize = inputs[..2].iter().map(|task| Dataset::decode(&task.train).unwrap().len()).sum();
        let (data, train, _) = spec.split().unwrap();
        assert_eq!((windows, train.len()), (data.len(), data.len()));
        assert!(inputs[4..].iter().all(|task| task.train.is_empty()), "the scoring round carries no training data");
        let artifacts = assemble(&spec, &outputs).unwrap();
        let result = result(&artifacts);
        assert!(result["eval_loss_initial"].is_null() && result["eval_loss_final"].is_null(), "{result}");
        let csv = String::from_utf8(artifacts[2].bytes.clone()).unwrap();
        assert_eq!(csv.lines().count(), 1 + 2 * 5, "no held-out rows: {csv}");
        // With text held out, its windows start past the last training one's tokens.
        let held = TrainSpec { eval_share: 0.2, ..spec.clone() };
        let (data, train, eval) = held.split().unwrap();
        assert!(eval.start >= train.end + 8, "{train:?} {eval:?}");
        assert_eq!(eval.end, data.len());
    }

    #[test]
    fn assembly_refuses_a_last_round_that_no_later_round_checked() {
        let spec = TrainSpec { rounds: 1, inner_steps: 5, ..spec() };
        let (_, outputs) = run_job(&spec);
        assert!(assemble(&spec, &outputs).is_ok());
        let last = outputs.len() - 1;
        let edit = |change: &dyn Fn(&mut TrainOutput)| {
            let mut output: TrainOutput = crate::task::from_binary_or_json(&outputs[last]).unwrap();
            change(&mut output);
            let mut outputs = outputs.clone();
            outputs[last] = crate::task::to_binary(&output);
            assemble(&spec, &outputs).unwrap_err().to_string()
        };
        let err = edit(&|o| o.eval_examples = u64::MAX);
        assert!(err.contains("held-out examples; shard 2 has"), "{err}");
        let err = edit(&|o| o.eval_loss = Some(-1.0));
        assert!(err.contains("finite number of at least 0"), "{err}");
        let err = edit(&|o| o.delta = vec![1, 2, 3]);
        assert!(err.contains("the last round takes no steps"), "{err}");
    }

    #[test]
    fn the_example_jobs_plan() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/train");
        for name in ["spirals.toml", "charlm.toml"] {
            let spec = crate::parse_job_file(&std::fs::read_to_string(dir.join(name)).unwrap(), &dir).unwrap();
            let workload = spec.workload().unwrap();
            let inputs = crate::plan(&workload).unwrap_or_else(|err| panic!("{name}: {err}"));
            let crate::WorkloadSpec::Train(train) = &workload else { panic!("{name} is a train job") };
            assert_eq!(inputs.len() as u32, train.workers, "{name}");
        }
    }

    #[test]
    fn a_round_too_large_for_the_coordinator_is_refused_at_submission() {
        let err = TrainSpec {
            model: ModelSpec::Mlp { inputs: 2, hidden: vec![1024, 1024], outputs: 3 },
            workers: 1024,
            ..spec()
        }
        .validate()
        .unwrap_err();
        assert!(err.to_string().contains("a round may carry at most"), "{err}");
        let err = TrainSpec { rounds: 1000, inner_steps: 10_000, ..spec() }.validate().unwrap_err();
        assert!(err.to_string().contains("more than the 1000000 one job may take"), "{err}");
    }
}
