//! Inner training, evaluation and inference.

use std::ops::Range;

use burn::nn::loss::{CrossEntropyLossConfig, MseLoss, Reduction};
use burn::optim::{AdamWConfig, GradientsParams};
use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::data::{Data, Dataset};
use crate::error::{MlError, MlErrorKind};
use crate::model::Net;
use crate::rng;
use crate::spec::{ACTIVATIONS_MAX, ModelSpec};

/// Largest accepted mini-batch, in examples.
pub const BATCH_SIZE_MAX: usize = 65_536;
/// Most steps one [`train_inner`] call may take.
pub const STEPS_MAX: u64 = 10_000_000;
/// Most examples per forward pass in [`evaluate`].
pub const EVAL_BATCH: usize = 128;
/// Most logits (examples × context × vocab) one forward pass of a CharLm
/// computes in [`evaluate`]: 2²⁴ `f32`s, 64 MiB.
pub const EVAL_LOGITS_MAX: usize = 1 << 24;
/// AdamW's `ε`; its `β₁` and `β₂` are 0.9 and 0.999.
pub const ADAMW_EPSILON: f32 = 1e-8;

/// Settings of one [`train_inner`] call.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InnerConfig {
    /// AdamW steps to take; 0 returns the weights unchanged.
    pub steps: u64,
    /// Examples per step, drawn with replacement from the shard.
    pub batch_size: usize,
    /// Learning rate, constant over the steps.
    pub lr: f64,
    /// AdamW's decoupled weight decay, applied to every parameter (biases,
    /// norms and embeddings included): each step multiplies a weight by
    /// `1 − lr · weight_decay` before the Adam update.
    pub weight_decay: f64,
    /// Chooses the mini-batches.
    pub seed: u64,
}

impl InnerConfig {
    /// Checks every field; the error names it.
    pub fn validate(&self) -> Result<(), MlError> {
        if self.steps > STEPS_MAX {
            return Err(MlError::at_field(
                MlErrorKind::Train,
                "steps",
                format!("must be at most {STEPS_MAX}, got {}", self.steps),
            ));
        }
        if self.batch_size == 0 || self.batch_size > BATCH_SIZE_MAX {
            return Err(MlError::at_field(
                MlErrorKind::Train,
                "batch_size",
                format!("must be between 1 and {BATCH_SIZE_MAX}, got {}", self.batch_size),
            ));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(MlError::at_field(
                MlErrorKind::Train,
                "lr",
                format!("must be a positive number, got {}", self.lr),
            ));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(MlError::at_field(
                MlErrorKind::Train,
                "weight_decay",
                format!("must be zero or a positive number, got {}", self.weight_decay),
            ));
        }
        Ok(())
    }
}

/// What [`train_inner`] returns.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainOutcome {
    /// The weights after the last step, in layout order.
    pub weights: Vec<f32>,
    /// The mini-batch loss of each step, measured before that step's update.
    pub losses: Vec<f32>,
}

fn mismatch(message: String) -> MlError {
    MlError::new(MlErrorKind::Mismatch, message)
}

/// Checks that `data` suits `spec`.
fn check_fit(spec: &ModelSpec, data: &Dataset) -> Result<(), MlError> {
    match (spec, &data.data) {
        (
            ModelSpec::Mlp { inputs, outputs, .. },
            Data::Regression { inputs: data_inputs, outputs: data_outputs, .. },
        ) => {
            if inputs != data_inputs {
                return Err(mismatch(format!(
                    "the data has {data_inputs} inputs per example but mlp.inputs is {inputs}"
                )));
            }
            if outputs != data_outputs {
                return Err(mismatch(format!(
                    "the data has {data_outputs} targets per example but mlp.outputs is {outputs}"
                )));
            }
        }
        (ModelSpec::Mlp { inputs, outputs, .. }, Data::Classification { inputs: data_inputs, classes, .. }) => {
            if inputs != data_inputs {
                return Err(mismatch(format!(
                    "the data has {data_inputs} inputs per example but mlp.inputs is {inputs}"
                )));
            }
            if classes > outputs {
                return Err(mismatch(format!(
                    "the data has labels up to {} but mlp.outputs is {outputs}; a classifier needs one output per class",
                    classes - 1
                )));
            }
        }
        (ModelSpec::CharLm { vocab, context, .. }, Data::Text { vocab: data_vocab, context: data_context, .. }) => {
            if data_vocab > vocab {
                return Err(mismatch(format!(
                    "the text has a vocabulary of {data_vocab} but char_lm.vocab is {vocab}"
                )));
            }
            if data_context != context {
                return Err(mismatch(format!(
                    "the text is cut into windows of {data_context} tokens but char_lm.context is {context}"
                )));
            }
        }
        (ModelSpec::Mlp { .. }, Data::Text { .. }) => {
            return Err(mismatch(
                "an mlp model needs a regression or classification data set, this one is text".to_owned(),
            ));
        }
        (ModelSpec::CharLm { .. }, _) => {
            return Err(mismatch(format!("a char_lm model needs a text data set, this one is for {:?}", data.task())));
        }
    }
    Ok(())
}

fn check_range(data: &Dataset, range: &Range<usize>, what: &str) -> Result<(), MlError> {
    if range.start >= range.end || range.end > data.len() {
        return Err(mismatch(format!(
            "the {what} {}..{} must be a non-empty range within the data set's {} examples",
            range.start,
            range.end,
            data.len()
        )));
    }
    Ok(())
}

/// The mean loss of `net` over the examples `indices` of `data`, as a
/// one-element tensor on `device`.
fn batch_loss(net: &Net, data: &Dataset, indices: &[usize], device: &Device) -> Tensor<1> {
    let b = indices.len();
    match (net, &data.data) {
        (Net::Mlp(net), Data::Regression { inputs, outputs, x, y }) => {
            let xs: Vec<f32> = indices.iter().flat_map(|&i| &x[i * inputs..(i + 1) * inputs]).copied().collect();
            let ys: Vec<f32> = indices.iter().flat_map(|&i| &y[i * outputs..(i + 1) * outputs]).copied().collect();
            let x = Tensor::<2>::from_data(TensorData::new(xs, [b, *inputs]), device);
            let y = Tensor::<2>::from_data(TensorData::new(ys, [b, *outputs]), device);
            MseLoss::new().forward(net.forward(x), y, Reduction::Mean)
        }
        (Net::Mlp(net), Data::Classification { inputs, x, labels, .. }) => {
            let xs: Vec<f32> = indices.iter().flat_map(|&i| &x[i * inputs..(i + 1) * inputs]).copied().collect();
            let ls: Vec<i64> = indices.iter().map(|&i| i64::from(labels[i])).collect();
            let x = Tensor::<2>::from_data(TensorData::new(xs, [b, *inputs]), device);
            let labels = Tensor::<1, Int>::from_data(TensorData::new(ls, [b]), device);
            CrossEntropyLossConfig::new().init(device).forward(net.forward(x), labels)
        }
        (Net::CharLm(net), Data::Text { context, tokens, .. }) => {
            let c = *context;
            let window = |i: usize, shift: usize| tokens[i + shift..i + shift + c].iter().map(|&t| i64::from(t));
            let xs: Vec<i64> = indices.iter().flat_map(|&i| window(i, 0)).collect();
            let ys: Vec<i64> = indices.iter().flat_map(|&i| window(i, 1)).collect();
            let x = Tensor::<2, Int>::from_data(TensorData::new(xs, [b, c]), device);
            let y = Tensor::<1, Int>::from_data(TensorData::new(ys, [b * c]), device);
            let logits = net.forward(x);
            let [_, _, vocab] = logits.dims();
            CrossEntropyLossConfig::new().init(device).forward(logits.reshape([b * c, vocab]), y)
        }
        _ => unreachable!("check_fit admits only matching model and data kinds"),
    }
}

/// Runs `cfg.steps` AdamW steps on `spec`'s model, starting from `weights`,
/// on mini-batches drawn from the examples `shard` of `data`.
///
/// Step `s`'s batch holds, for `j` in `0..batch_size`, example
/// `shard.start + below(hash(seed, s·batch_size + j), shard.len())`: a draw
/// with replacement that depends on the seed and the step alone. AdamW's
/// moments start at zero on every call (nothing but the weights carries
/// over). On the CPU backend, single-threaded, the outcome is a function of
/// the arguments: the same bits on every run in every process on one
/// machine (see the crate docs for across machines).
///
/// Fails if the spec, weights, data, shard or config are unusable, or if
/// the loss or a weight stops being finite (lower `lr`).
pub fn train_inner(
    spec: &ModelSpec,
    weights: &[f32],
    data: &Dataset,
    shard: Range<usize>,
    cfg: &InnerConfig,
) -> Result<TrainOutcome, MlError> {
    cfg.validate()?;
    check_fit(spec, data)?;
    check_range(data, &shard, "shard")?;
    let per_example = spec.activations_per_example();
    if (cfg.batch_size as u64).saturating_mul(per_example) > ACTIVATIONS_MAX {
        let most = (ACTIVATIONS_MAX / per_example.max(1)).max(1);
        return Err(MlError::at_field(
            MlErrorKind::Train,
            "batch_size",
            format!(
                "{} examples of this model need about {} activation values, more than the {ACTIVATIONS_MAX} \
                 allowed; take at most {most} a batch",
                cfg.batch_size,
                (cfg.batch_size as u64).saturating_mul(per_example)
            ),
        ));
    }
    let device = Device::flex().autodiff();
    let mut net = Net::load(spec, weights, &device)?;
    let mut optim = AdamWConfig::new()
        .with_beta_1(0.9)
        .with_beta_2(0.999)
        .with_epsilon(ADAMW_EPSILON)
        .with_weight_decay(cfg.weight_decay as f32)
        .init();
    let n = shard.len();
    let mut losses = Vec::with_capacity(cfg.steps as usize);
    let mut indices = Vec::with_capacity(cfg.batch_size);
    for step in 0..cfg.steps {
        indices.clear();
        for j in 0..cfg.batch_size as u64 {
            let counter = step.wrapping_mul(cfg.batch_size as u64).wrapping_add(j);
            indices.push(shard.start + rng::below(rng::bits(cfg.seed, rng::STREAM_BATCH, counter), n));
        }
        let loss = batch_loss(&net, data, &indices, &device);
        let value: f32 = loss.clone().into_scalar();
        if !value.is_finite() {
            return Err(MlError::new(
                MlErrorKind::Diverged,
                format!("the loss at step {step} is {value}; training diverged, lower lr (now {})", cfg.lr),
            ));
        }
        losses.push(value);
        let grads = loss.backward();
        net = match net {
            Net::Mlp(m) => {
                let grads = GradientsParams::from_grads(grads, &m);
                Net::Mlp(optim.step(cfg.lr, m, grads))
            }
            Net::CharLm(m) => {
                let grads = GradientsParams::from_grads(grads, &*m);
                Net::CharLm(Box::new(optim.step(cfg.lr, *m, grads)))
            }
        };
    }
    let weights = net.export();
    if let Some(i) = weights.iter().position(|w| !w.is_finite()) {
        return Err(MlError::new(
            MlErrorKind::Diverged,
            format!("weight {i} became {} during training; lower lr (now {})", weights[i], cfg.lr),
        ));
    }
    Ok(TrainOutcome { weights, losses })
}

/// The mean loss of `spec`'s model with `weights` over the examples `range`
/// of `data`: mean squared error for a regression set, mean cross-entropy
/// for a classification or text set (over every position of every window).
///
/// The examples are scored in order, in batches of [`EVAL_BATCH`] (for a
/// CharLm fewer where needed to keep within [`EVAL_LOGITS_MAX`] logits, at
/// least one), and the batch means combined in `f64`; the batch size
/// depends on the spec alone, so the result depends on the arguments alone.
pub fn evaluate(spec: &ModelSpec, weights: &[f32], data: &Dataset, range: Range<usize>) -> Result<f32, MlError> {
    check_fit(spec, data)?;
    check_range(data, &range, "range")?;
    let device = Device::flex();
    let net = Net::load(spec, weights, &device)?;
    let mut total = 0.0f64;
    let indices: Vec<usize> = range.clone().collect();
    let batch = match spec {
        ModelSpec::Mlp { .. } => EVAL_BATCH,
        ModelSpec::CharLm { vocab, context, .. } => (EVAL_LOGITS_MAX / (vocab * context)).clamp(1, EVAL_BATCH),
    }
    .min(rows_within_activations(spec));
    for chunk in indices.chunks(batch) {
        let loss: f32 = batch_loss(&net, data, chunk, &device).into_scalar();
        total += f64::from(loss) * chunk.len() as f64;
    }
    Ok((total / range.len() as f64) as f32)
}

/// A batch of inputs for [`infer`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Inputs<'a> {
    /// For an MLP: rows of `inputs` features, row-major.
    Features(&'a [f32]),
    /// For a CharLm: rows of `len` token ids each, row-major; `len` is
    /// between 1 and the model's context. Row `r` is read as positions
    /// `0..len`.
    Tokens {
        /// The ids, `rows × len` of them.
        ids: &'a [u32],
        /// Tokens per row.
        len: usize,
    },
}

/// A model loaded for inference on the CPU, to run many batches without
/// loading the weights again each time.
#[derive(Debug)]
pub struct Model {
    spec: ModelSpec,
    net: Net,
}

impl Model {
    /// `spec`'s model holding `weights`.
    pub fn new(spec: &ModelSpec, weights: &[f32]) -> Result<Model, MlError> {
        Ok(Model { spec: spec.clone(), net: Net::load(spec, weights, &Device::flex())? })
    }

    /// The spec it was built from.
    pub fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    /// Its weights, flat in layout order: the same bits it was built from.
    pub fn weights(&self) -> Vec<f32> {
        self.net.export()
    }

    /// See [`infer`].
    pub fn infer(&self, inputs: Inputs<'_>) -> Result<Vec<f32>, MlError> {
        let device = Device::flex();
        match (&self.net, &self.spec, inputs) {
            (Net::Mlp(net), ModelSpec::Mlp { inputs: width, outputs, .. }, Inputs::Features(values)) => {
                if values.is_empty() || values.len() % width != 0 {
                    return Err(mismatch(format!(
                        "the features hold {} values, not a positive whole number of rows of mlp.inputs ({width})",
                        values.len()
                    )));
                }
                if let Some(i) = values.iter().position(|v| !v.is_finite()) {
                    return Err(MlError::new(
                        MlErrorKind::Data,
                        format!("feature {i} is {}, not a finite number", values[i]),
                    ));
                }
                // In passes of a number of rows that depends on the spec
                // alone, within the activation bound.
                let mut out = Vec::with_capacity(values.len() / width * outputs);
                for chunk in values.chunks(rows_within_activations(&self.spec) * width) {
                    let rows = chunk.len() / width;
                    let x = Tensor::<2>::from_data(TensorData::new(chunk.to_vec(), [rows, *width]), &device);
                    out.extend(net.forward(x).into_data().try_into_vec::<f32>().expect("f32 outputs"));
                }
                debug_assert_eq!(out.len(), values.len() / width * outputs);
                Ok(out)
            }
            (Net::CharLm(net), ModelSpec::CharLm { vocab, context, .. }, Inputs::Tokens { ids, len }) => {
                if len == 0 || len > *context {
                    return Err(mismatch(format!("len must be between 1 and char_lm.context ({context}), got {len}")));
                }
                if ids.is_empty() || ids.len() % len != 0 {
                    return Err(mismatch(format!(
                        "there are {} token ids, not a positive whole number of rows of len ({len})",
                        ids.len()
                    )));
                }
                if let Some(i) = ids.iter().position(|&t| t as usize >= *vocab) {
                    return Err(MlError::new(
                        MlErrorKind::Data,
                        format!("token {i} is {}, outside char_lm.vocab ({vocab})", ids[i]),
                    ));
                }
                let mut out = Vec::with_capacity(ids.len() / len * vocab);
                for chunk in ids.chunks(rows_within_activations(&self.spec) * len) {
                    let rows = chunk.len() / len;
                    let tokens: Vec<i64> = chunk.iter().map(|&t| i64::from(t)).collect();
                    let x = Tensor::<2, Int>::from_data(TensorData::new(tokens, [rows, len]), &device);
                    let logits = net.forward(x).slice([0..rows, len - 1..len]).reshape([rows, *vocab]);
                    out.extend(logits.into_data().try_into_vec::<f32>().expect("f32 logits"));
                }
                Ok(out)
            }
            (Net::Mlp(_), _, Inputs::Tokens { .. }) => {
                Err(mismatch("an mlp model takes Inputs::Features, not tokens".to_owned()))
            }
            (Net::CharLm(_), _, Inputs::Features(_)) => {
                Err(mismatch("a char_lm model takes Inputs::Tokens, not features".to_owned()))
            }
            _ => unreachable!("a Model's net always matches its spec"),
        }
    }
}

/// Rows one forward pass of `spec`'s model takes at most within
/// [`ACTIVATIONS_MAX`] (at least one: a spec that validates fits one).
fn rows_within_activations(spec: &ModelSpec) -> usize {
    usize::try_from(ACTIVATIONS_MAX / spec.activations_per_example().max(1)).unwrap_or(usize::MAX).max(1)
}

/// Runs `spec`'s model with `weights` on a batch, on the CPU.
///
/// - MLP, [`Inputs::Features`]: returns `rows × outputs` values, row-major:
///   the raw outputs (regression values, or class logits; no softmax).
/// - CharLm, [`Inputs::Tokens`]: returns `rows × vocab` logits, row-major:
///   for each row, the scores of the token that follows it (the model's
///   output at the row's last position). The argmax is the greedy next
///   character; a softmax gives probabilities.
pub fn infer(spec: &ModelSpec, weights: &[f32], inputs: Inputs<'_>) -> Result<Vec<f32>, MlError> {
    Model::new(spec, weights)?.infer(inputs)
}
