//! The burn side of training, evaluation and inference, built only with the
//! `burn` feature. The public entry points in `crate::train` check their
//! arguments before they call in here, so these functions take them as
//! checked.

use std::ops::Range;

use burn::nn::loss::{CrossEntropyLossConfig, MseLoss, Reduction};
use burn::optim::{AdamWConfig, GradientsParams};
use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::data::{Data, Dataset};
use crate::error::{MlError, MlErrorKind};
use crate::model::Net;
use crate::rng;
use crate::spec::{ACTIVATIONS_MAX, ModelSpec};
use crate::train::{ADAMW_EPSILON, EVAL_BATCH, EVAL_LOGITS_MAX, InnerConfig, Inputs, TrainOutcome, check_inputs};

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

/// [`crate::train_inner`] once its arguments are checked.
pub(crate) fn train_inner(
    spec: &ModelSpec,
    weights: &[f32],
    data: &Dataset,
    shard: Range<usize>,
    cfg: &InnerConfig,
) -> Result<TrainOutcome, MlError> {
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

/// [`crate::evaluate`] once its arguments are checked.
pub(crate) fn evaluate(spec: &ModelSpec, weights: &[f32], data: &Dataset, range: Range<usize>) -> Result<f32, MlError> {
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

/// A model loaded for inference on the CPU, to run many batches without
/// loading the weights again each time. Only with the `burn` feature.
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

    /// See [`infer`](crate::infer).
    pub fn infer(&self, inputs: Inputs<'_>) -> Result<Vec<f32>, MlError> {
        check_inputs(&self.spec, inputs)?;
        let device = Device::flex();
        match (&self.net, &self.spec, inputs) {
            (Net::Mlp(net), ModelSpec::Mlp { inputs: width, outputs, .. }, Inputs::Features(values)) => {
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
            (Net::CharLm(net), ModelSpec::CharLm { vocab, .. }, Inputs::Tokens { ids, len }) => {
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
            _ => {
                unreachable!("check_inputs admits only inputs of the model's kind, and a Model's net matches its spec")
            }
        }
    }
}

/// Rows one forward pass of `spec`'s model takes at most within
/// [`ACTIVATIONS_MAX`] (at least one: a spec that validates fits one).
fn rows_within_activations(spec: &ModelSpec) -> usize {
    usize::try_from(ACTIVATIONS_MAX / spec.activations_per_example().max(1)).unwrap_or(usize::MAX).max(1)
}
