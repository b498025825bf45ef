//! Inner training, evaluation and inference: their settings, results and
//! inputs, the checks of their arguments, and the public entry points.
//!
//! This module needs no tensor library. The entry points check their
//! arguments here, then hand over to the burn runtime (`crate::runtime`) or,
//! in a build without the `burn` feature, return an
//! [`MlErrorKind::NoRuntime`] error.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::data::{Data, Dataset};
use crate::error::{MlError, MlErrorKind};
use crate::spec::{ACTIVATIONS_MAX, ModelSpec, check_weights};

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

pub(crate) fn mismatch(message: String) -> MlError {
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

/// Every check [`train_inner`] makes before it trains, in order: the
/// config, the data against the spec, the shard, the batch's activations,
/// the spec and the weights.
fn check_train(
    spec: &ModelSpec,
    weights: &[f32],
    data: &Dataset,
    shard: &Range<usize>,
    cfg: &InnerConfig,
) -> Result<(), MlError> {
    cfg.validate()?;
    check_fit(spec, data)?;
    data.check_range(shard, "shard")?;
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
    check_weights(spec, weights)
}

/// Checks that `inputs` suit `spec`'s model, which must be valid: the kind
/// of input, whole rows, finite features, a token length within the
/// context and tokens within the vocabulary.
pub(crate) fn check_inputs(spec: &ModelSpec, inputs: Inputs<'_>) -> Result<(), MlError> {
    match (spec, inputs) {
        (ModelSpec::Mlp { inputs: width, .. }, Inputs::Features(values)) => {
            if values.is_empty() || values.len().checked_rem(*width) != Some(0) {
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
        }
        (ModelSpec::CharLm { vocab, context, .. }, Inputs::Tokens { ids, len }) => {
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
        }
        (ModelSpec::Mlp { .. }, Inputs::Tokens { .. }) => {
            return Err(mismatch("an mlp model takes Inputs::Features, not tokens".to_owned()));
        }
        (ModelSpec::CharLm { .. }, Inputs::Features(_)) => {
            return Err(mismatch("a char_lm model takes Inputs::Tokens, not features".to_owned()));
        }
    }
    Ok(())
}

/// The error of a build without the ML runtime.
#[cfg(not(feature = "burn"))]
fn no_runtime() -> MlError {
    MlError::new(
        MlErrorKind::NoRuntime,
        "this build of iog has no ML runtime; build it with the `ml` feature (cargo build --release --features ml)",
    )
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
/// the loss or a weight stops being finite (lower `lr`). A build without
/// the `burn` feature makes the same checks, then fails with
/// [`MlErrorKind::NoRuntime`].
pub fn train_inner(
    spec: &ModelSpec,
    weights: &[f32],
    data: &Dataset,
    shard: Range<usize>,
    cfg: &InnerConfig,
) -> Result<TrainOutcome, MlError> {
    check_train(spec, weights, data, &shard, cfg)?;
    #[cfg(feature = "burn")]
    {
        crate::runtime::train_inner(spec, weights, data, shard, cfg)
    }
    #[cfg(not(feature = "burn"))]
    {
        Err(no_runtime())
    }
}

/// The mean loss of `spec`'s model with `weights` over the examples `range`
/// of `data`: mean squared error for a regression set, mean cross-entropy
/// for a classification or text set (over every position of every window).
///
/// The examples are scored in order, in batches of [`EVAL_BATCH`] (for a
/// CharLm fewer where needed to keep within [`EVAL_LOGITS_MAX`] logits, at
/// least one), and the batch means combined in `f64`; the batch size
/// depends on the spec alone, so the result depends on the arguments alone.
///
/// A build without the `burn` feature checks the arguments, then fails with
/// [`MlErrorKind::NoRuntime`].
pub fn evaluate(spec: &ModelSpec, weights: &[f32], data: &Dataset, range: Range<usize>) -> Result<f32, MlError> {
    check_fit(spec, data)?;
    data.check_range(&range, "range")?;
    check_weights(spec, weights)?;
    #[cfg(feature = "burn")]
    {
        crate::runtime::evaluate(spec, weights, data, range)
    }
    #[cfg(not(feature = "burn"))]
    {
        Err(no_runtime())
    }
}

/// Runs `spec`'s model with `weights` on a batch, on the CPU.
///
/// - MLP, [`Inputs::Features`]: returns `rows × outputs` values, row-major:
///   the raw outputs (regression values, or class logits; no softmax).
/// - CharLm, [`Inputs::Tokens`]: returns `rows × vocab` logits, row-major:
///   for each row, the scores of the token that follows it (the model's
///   output at the row's last position). The argmax is the greedy next
///   character; a softmax gives probabilities.
///
/// To run many batches with one set of weights, load them once into a
/// `Model` (with the `burn` feature). A build without the `burn` feature
/// checks the arguments, then fails with [`MlErrorKind::NoRuntime`].
pub fn infer(spec: &ModelSpec, weights: &[f32], inputs: Inputs<'_>) -> Result<Vec<f32>, MlError> {
    #[cfg(feature = "burn")]
    {
        crate::runtime::Model::new(spec, weights)?.infer(inputs)
    }
    #[cfg(not(feature = "burn"))]
    {
        check_weights(spec, weights)?;
        check_inputs(spec, inputs)?;
        Err(no_runtime())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::spirals;

    #[test]
    fn a_slice_needs_as_many_outputs_as_its_parent_has_classes() {
        let data = spirals(30, 3, 1).unwrap();
        // Examples 0 and 3 are both on arm 0, yet the slice has three classes.
        let part = data.slice(0..1).unwrap();
        let two = ModelSpec::Mlp { inputs: 2, hidden: vec![], outputs: 2 };
        let e = check_fit(&two, &part).unwrap_err();
        assert_eq!(e.kind(), MlErrorKind::Mismatch);
        assert!(e.to_string().contains("labels up to 2 but mlp.outputs is 2"), "{e}");
        let three = ModelSpec::Mlp { inputs: 2, hidden: vec![], outputs: 3 };
        assert!(check_fit(&three, &part).is_ok());
    }
}

/// A build without the runtime: the same checks, then `ml.no_runtime`.
#[cfg(all(test, not(feature = "burn")))]
mod no_runtime_tests {
    use super::*;
    use crate::data::{CharVocab, grammar_text, spirals};
    use crate::spec::init_weights;

    const MESSAGE: &str =
        "this build of iog has no ML runtime; build it with the `ml` feature (cargo build --release --features ml)";

    fn config() -> InnerConfig {
        InnerConfig { steps: 3, batch_size: 4, lr: 1e-3, weight_decay: 0.0, seed: 1 }
    }

    fn no_runtime_error<T: std::fmt::Debug>(result: Result<T, MlError>) {
        let e = result.unwrap_err();
        assert_eq!(e.kind(), MlErrorKind::NoRuntime, "{e}");
        assert_eq!(e.kind().code(), "ml.no_runtime");
        assert_eq!((e.to_string().as_str(), e.field()), (MESSAGE, None));
    }

    #[test]
    fn the_build_says_it_has_no_runtime() {
        const { assert!(!crate::RUNTIME) };
    }

    #[test]
    fn good_arguments_get_the_no_runtime_error() {
        let spec = ModelSpec::Mlp { inputs: 2, hidden: vec![8], outputs: 3 };
        let w = init_weights(&spec, 1).unwrap();
        let data = spirals(20, 3, 1).unwrap();
        no_runtime_error(train_inner(&spec, &w, &data, 0..20, &config()));
        no_runtime_error(evaluate(&spec, &w, &data, 5..10));
        no_runtime_error(infer(&spec, &w, Inputs::Features(&[0.5, 1.0, 0.0, 2.0])));

        let text = grammar_text(200, 1);
        let vocab = CharVocab::from_text(&text);
        let lm = ModelSpec::CharLm { vocab: vocab.len(), context: 8, d_model: 8, heads: 2, layers: 1 };
        let lw = init_weights(&lm, 1).unwrap();
        let data = Dataset::text(vocab.encode(&text).unwrap(), vocab.len(), 8).unwrap();
        no_runtime_error(train_inner(&lm, &lw, &data, 0..10, &config()));
        no_runtime_error(infer(&lm, &lw, Inputs::Tokens { ids: &[0, 1, 2], len: 3 }));
    }

    #[test]
    fn bad_arguments_still_get_their_precise_errors() {
        let spec = ModelSpec::Mlp { inputs: 2, hidden: vec![8], outputs: 3 };
        let w = init_weights(&spec, 1).unwrap();
        let data = spirals(20, 3, 1).unwrap();

        let e = train_inner(&spec, &w, &data, 0..20, &InnerConfig { batch_size: 0, ..config() }).unwrap_err();
        assert_eq!((e.kind(), e.field()), (MlErrorKind::Train, Some("batch_size")));
        let bad_spec = ModelSpec::Mlp { inputs: 2, hidden: vec![0], outputs: 3 };
        let e = train_inner(&bad_spec, &w, &data, 0..20, &config()).unwrap_err();
        assert_eq!((e.kind(), e.field()), (MlErrorKind::Spec, Some("mlp.hidden[0]")));
        let e = train_inner(&spec, &w[1..], &data, 0..20, &config()).unwrap_err();
        assert_eq!(e.kind(), MlErrorKind::Weights);
        let e = train_inner(&spec, &w, &data, 10..21, &config()).unwrap_err();
        assert_eq!(e.kind(), MlErrorKind::Mismatch);
        assert!(e.to_string().contains("10..21"), "{e}");
        let two = ModelSpec::Mlp { inputs: 2, hidden: vec![], outputs: 2 };
        let e = evaluate(&two, &init_weights(&two, 1).unwrap(), &data, 0..5).unwrap_err();
        assert!(e.to_string().contains("labels up to 2 but mlp.outputs is 2"), "{e}");
        let e = evaluate(&bad_spec, &w, &data, 0..5).unwrap_err();
        assert_eq!(e.kind(), MlErrorKind::Spec);

        let mut bad = w.clone();
        bad[3] = f32::INFINITY;
        let e = infer(&spec, &bad, Inputs::Features(&[0.0, 1.0])).unwrap_err();
        assert_eq!(e.to_string(), "weight 3 is inf, not a finite number");
        let e = infer(&spec, &w, Inputs::Features(&[0.0, 1.0, 2.0])).unwrap_err();
        assert!(e.to_string().contains("not a positive whole number of rows of mlp.inputs (2)"), "{e}");
        let e = infer(&spec, &w, Inputs::Features(&[0.0, f32::NAN])).unwrap_err();
        assert_eq!(e.to_string(), "feature 1 is NaN, not a finite number");
        let e = infer(&spec, &w, Inputs::Tokens { ids: &[0], len: 1 }).unwrap_err();
        assert_eq!(e.to_string(), "an mlp model takes Inputs::Features, not tokens");
        let e = infer(&bad_spec, &w, Inputs::Features(&[0.0, 1.0])).unwrap_err();
        assert_eq!(e.kind(), MlErrorKind::Spec);
    }
}
