//! Model specs, their validation, and the flat parameter layout.

use serde::{Deserialize, Serialize};

use crate::error::{MlError, MlErrorKind};
use crate::rng;

/// Largest accepted layer width: MLP inputs, hidden sizes and outputs, and a
/// CharLm's vocabulary.
pub const WIDTH_MAX: usize = 65_536;
/// Most hidden layers an MLP may have.
pub const MLP_HIDDEN_LAYERS_MAX: usize = 64;
/// Longest accepted CharLm context, in tokens.
pub const CONTEXT_MAX: usize = 4096;
/// Largest accepted CharLm `d_model`.
pub const D_MODEL_MAX: usize = 4096;
/// Most transformer blocks a CharLm may have.
pub const LAYERS_MAX: usize = 64;
/// Most parameters a model may have: 250 million `f32`s, 1 GB.
pub const PARAMS_MAX: usize = 250_000_000;

/// Most activation values (`f32`) one batch may make, as
/// [`ModelSpec::activations_per_example`] counts them: 2²⁷, half a GiB,
/// a few GiB with what autodiff keeps for the backward pass. A model one
/// example of which needs more is refused; training refuses a batch that
/// needs more, and evaluation and inference cut their batches below it.
pub const ACTIVATIONS_MAX: u64 = 1 << 27;
/// The width of a CharLm block's feed-forward layer, as a multiple of `d_model`.
pub const FF_MULTIPLE: usize = 4;

/// A model's architecture. The weights live apart, as one flat `f32` vector
/// in the order [`param_layout`] gives.
///
/// In JSON or TOML the variant is named by `kind`:
/// `{"kind": "mlp", "inputs": 2, "hidden": [32, 32], "outputs": 3}` or
/// `{"kind": "char_lm", "vocab": 28, "context": 32, "d_model": 32, "heads": 4, "layers": 2}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ModelSpec {
    /// A multilayer perceptron: linear layers `inputs → hidden[0] → … →
    /// outputs` with ReLU between them and nothing after the last. Its
    /// outputs are regression values or, for a classification data set,
    /// class logits.
    Mlp {
        /// Features per example.
        inputs: usize,
        /// Widths of the hidden layers, first to last; may be empty (a linear model).
        hidden: Vec<usize>,
        /// Regression targets per example, or classes.
        outputs: usize,
    },
    /// A small causal transformer language model over characters: token
    /// and learned position embeddings, `layers` pre-norm blocks (causal
    /// multi-head self-attention, then a GELU feed-forward layer of width
    /// `FF_MULTIPLE × d_model`, each added back to the residual stream), a
    /// final layer norm and a linear map to `vocab` logits. No dropout.
    CharLm {
        /// Distinct tokens (characters).
        vocab: usize,
        /// Tokens the model sees at once; position embeddings exist for this many.
        context: usize,
        /// Width of the residual stream.
        d_model: usize,
        /// Attention heads; must divide `d_model`.
        heads: usize,
        /// Transformer blocks.
        layers: usize,
    },
}

/// One tensor of the flat weight vector: where it lies and what shape it has.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamTensor {
    /// Its path in the model, for example `blocks.0.attention.query.weight`.
    pub name: String,
    /// Its shape, row-major: the last index varies fastest in the flat vector.
    pub shape: Vec<usize>,
    /// Index of its first value in the flat vector.
    pub offset: usize,
    /// How [`init_weights`] fills it.
    pub(crate) init: Init,
}

impl ParamTensor {
    /// Number of values: the product of the shape.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether it holds no values (never, for a valid spec).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// How a parameter tensor starts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Init {
    /// Uniform in `[-bound, bound)`.
    Uniform(f32),
    /// All zeros.
    Zeros,
    /// All ones.
    Ones,
}

/// Bound of the uniform initialisation of token and position embeddings.
const EMBEDDING_INIT_BOUND: f32 = 0.1;

fn check_range(field: &str, value: usize, min: usize, max: usize) -> Result<(), MlError> {
    if value < min || value > max {
        return Err(MlError::at_field(
            MlErrorKind::Spec,
            field,
            format!("must be between {min} and {max}, got {value}"),
        ));
    }
    Ok(())
}

impl ModelSpec {
    /// Checks every field, and that the model has at most [`PARAMS_MAX`]
    /// parameters. The error names the field as `mlp.hidden[1]` or
    /// `char_lm.heads`.
    pub fn validate(&self) -> Result<(), MlError> {
        match self {
            ModelSpec::Mlp { inputs, hidden, outputs } => {
                check_range("mlp.inputs", *inputs, 1, WIDTH_MAX)?;
                if hidden.len() > MLP_HIDDEN_LAYERS_MAX {
                    return Err(MlError::at_field(
                        MlErrorKind::Spec,
                        "mlp.hidden",
                        format!("may list at most {MLP_HIDDEN_LAYERS_MAX} layers, got {}", hidden.len()),
                    ));
                }
                for (i, width) in hidden.iter().enumerate() {
                    check_range(&format!("mlp.hidden[{i}]"), *width, 1, WIDTH_MAX)?;
                }
                check_range("mlp.outputs", *outputs, 1, WIDTH_MAX)?;
            }
            ModelSpec::CharLm { vocab, context, d_model, heads, layers } => {
                check_range("char_lm.vocab", *vocab, 2, WIDTH_MAX)?;
                check_range("char_lm.context", *context, 1, CONTEXT_MAX)?;
                check_range("char_lm.d_model", *d_model, 1, D_MODEL_MAX)?;
                check_range("char_lm.heads", *heads, 1, *d_model)?;
                if d_model % heads != 0 {
                    return Err(MlError::at_field(
                        MlErrorKind::Spec,
                        "char_lm.heads",
                        format!("must divide char_lm.d_model ({d_model}), got {heads}"),
                    ));
                }
                check_range("char_lm.layers", *layers, 1, LAYERS_MAX)?;
            }
        }
        // Every width is at most 2¹⁶ and there are at most 64 layers, so the
        // count fits a u64 easily; compare before converting to usize.
        let count: u64 =
            self.layout_unchecked().iter().map(|t| t.shape.iter().map(|&d| d as u64).product::<u64>()).sum();
        if count > PARAMS_MAX as u64 {
            return Err(MlError::new(
                MlErrorKind::Spec,
                format!("the model would have {count} parameters, more than the {PARAMS_MAX} allowed; make it smaller"),
            ));
        }
        let activations = self.activations_per_example();
        if activations > ACTIVATIONS_MAX {
            let field = match self {
                ModelSpec::Mlp { .. } => "mlp.hidden",
                ModelSpec::CharLm { .. } => "char_lm.context",
            };
            return Err(MlError::at_field(
                MlErrorKind::Spec,
                field,
                format!(
                    "makes one example need about {activations} activation values, more than the {ACTIVATIONS_MAX} \
                     allowed; take a shorter context, fewer heads or a narrower model"
                ),
            ));
        }
        Ok(())
    }

    /// About how many activation values (`f32`) one example makes in a
    /// forward pass: every layer's outputs for an MLP; for a CharLm the
    /// embeddings, each block's attention scores and weights (heads ×
    /// context², twice) and its projections, norms and feed-forward layer
    /// (about 10 × context × d_model), and the logits (context × vocab,
    /// twice). What bounds memory ([`ACTIVATIONS_MAX`]).
    pub fn activations_per_example(&self) -> u64 {
        let n = |x: usize| x as u64;
        match self {
            ModelSpec::Mlp { inputs, hidden, outputs } => {
                hidden.iter().fold(n(*inputs) + n(*outputs), |sum, width| sum.saturating_add(2 * n(*width)))
            }
            ModelSpec::CharLm { vocab, context, d_model, heads, layers } => {
                let (c, d) = (n(*context), n(*d_model));
                let block = (2 * n(*heads)).saturating_mul(c * c).saturating_add(10 * c * d);
                (c * d).saturating_add(n(*layers).saturating_mul(block)).saturating_add(2 * c * n(*vocab))
            }
        }
    }

    /// The layout without validation; offsets may be meaningless for a
    /// spec that [`validate`](Self::validate) rejects.
    fn layout_unchecked(&self) -> Vec<ParamTensor> {
        let mut layout = Layout { tensors: Vec::new(), offset: 0 };
        match self {
            ModelSpec::Mlp { inputs, hidden, outputs } => {
                let widths: Vec<usize> =
                    std::iter::once(*inputs).chain(hidden.iter().copied()).chain(std::iter::once(*outputs)).collect();
                for (i, pair) in widths.windows(2).enumerate() {
                    layout.linear(&format!("layers.{i}"), pair[0], pair[1]);
                }
            }
            ModelSpec::CharLm { vocab, context, d_model, layers, .. } => {
                let (vocab, context, d) = (*vocab, *context, *d_model);
                layout.push("token_embedding.weight", vec![vocab, d], Init::Uniform(EMBEDDING_INIT_BOUND));
                layout.push("position_embedding.weight", vec![context, d], Init::Uniform(EMBEDDING_INIT_BOUND));
                for b in 0..*layers {
                    let p = format!("blocks.{b}");
                    layout.layer_norm(&format!("{p}.attention_norm"), d);
                    for part in ["query", "key", "value", "output"] {
                        layout.linear(&format!("{p}.attention.{part}"), d, d);
                    }
                    layout.layer_norm(&format!("{p}.ff_norm"), d);
                    layout.linear(&format!("{p}.ff_in"), d, FF_MULTIPLE * d);
                    layout.linear(&format!("{p}.ff_out"), FF_MULTIPLE * d, d);
                }
                layout.layer_norm("final_norm", d);
                layout.linear("head", d, vocab);
            }
        }
        layout.tensors
    }
}

struct Layout {
    tensors: Vec<ParamTensor>,
    offset: usize,
}

impl Layout {
    fn push(&mut self, name: &str, shape: Vec<usize>, init: Init) {
        let len: usize = shape.iter().product();
        self.tensors.push(ParamTensor { name: name.to_owned(), shape, offset: self.offset, init });
        self.offset += len;
    }

    /// A linear layer `x ↦ x·W + b`: `W` is `[d_in, d_out]`, uniform in
    /// `±1/√d_in` (PyTorch's and burn's default bound); `b` starts at zero.
    fn linear(&mut self, prefix: &str, d_in: usize, d_out: usize) {
        let bound = 1.0 / (d_in as f32).sqrt();
        self.push(&format!("{prefix}.weight"), vec![d_in, d_out], Init::Uniform(bound));
        self.push(&format!("{prefix}.bias"), vec![d_out], Init::Zeros);
    }

    /// A layer norm's scale (`gamma`, ones) and shift (`beta`, zeros).
    fn layer_norm(&mut self, prefix: &str, d: usize) {
        self.push(&format!("{prefix}.gamma"), vec![d], Init::Ones);
        self.push(&format!("{prefix}.beta"), vec![d], Init::Zeros);
    }
}

/// The tensors of the flat weight vector, in order; see the crate docs for
/// the order spelled out.
pub fn param_layout(spec: &ModelSpec) -> Result<Vec<ParamTensor>, MlError> {
    spec.validate()?;
    Ok(spec.layout_unchecked())
}

/// Length of the flat weight vector.
pub fn param_count(spec: &ModelSpec) -> Result<usize, MlError> {
    Ok(param_layout(spec)?.iter().map(ParamTensor::len).sum())
}

/// Fresh weights for `spec` from `seed`: linear weights uniform in
/// `±1/√fan_in`, biases zero, layer-norm scales one and shifts zero,
/// embeddings uniform in `±0.1`.
///
/// Value `i` of the vector is a function of `(seed, i)` alone, computed with
/// integer hashing and one `f32` multiply-add, so the result is the same bits
/// on every machine.
pub fn init_weights(spec: &ModelSpec, seed: u64) -> Result<Vec<f32>, MlError> {
    let layout = param_layout(spec)?;
    let total = layout.iter().map(ParamTensor::len).sum();
    let mut weights = Vec::with_capacity(total);
    for tensor in &layout {
        for i in tensor.offset..tensor.offset + tensor.len() {
            weights.push(match tensor.init {
                Init::Zeros => 0.0,
                Init::Ones => 1.0,
                Init::Uniform(bound) => {
                    let u = rng::unit_f32(rng::bits(seed, rng::STREAM_INIT, i as u64));
                    (2.0 * u - 1.0) * bound
                }
            });
        }
    }
    Ok(weights)
}

/// Checks that `weights` fits `spec`: the right length and every value finite.
pub(crate) fn check_weights(spec: &ModelSpec, weights: &[f32]) -> Result<(), MlError> {
    let expected = param_count(spec)?;
    if weights.len() != expected {
        return Err(MlError::new(
            MlErrorKind::Weights,
            format!(
                "the weights have {} values but the spec needs {expected}; were they made for another spec?",
                weights.len()
            ),
        ));
    }
    if let Some(i) = weights.iter().position(|w| !w.is_finite()) {
        return Err(MlError::new(MlErrorKind::Weights, format!("weight {i} is {}, not a finite number", weights[i])));
    }
    Ok(())
}
