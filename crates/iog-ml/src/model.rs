//! The burn modules behind each [`ModelSpec`], and the bridge between them
//! and flat weight vectors.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::nn::attention::{MhaInput, MultiHeadAttention, MultiHeadAttentionConfig, generate_autoregressive_mask};
use burn::nn::{Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::{gelu, relu};
use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::error::MlError;
use crate::spec::{FF_MULTIPLE, ModelSpec, ParamTensor, check_weights, param_layout};

/// The MLP of [`ModelSpec::Mlp`].
#[derive(Module, Debug)]
pub(crate) struct MlpNet {
    layers: Vec<Linear>,
}

impl MlpNet {
    fn new(inputs: usize, hidden: &[usize], outputs: usize, device: &Device) -> Self {
        let widths: Vec<usize> =
            std::iter::once(inputs).chain(hidden.iter().copied()).chain(std::iter::once(outputs)).collect();
        let layers = widths.windows(2).map(|pair| LinearConfig::new(pair[0], pair[1]).init(device)).collect();
        MlpNet { layers }
    }

    /// `[batch, inputs]` to `[batch, outputs]`.
    pub(crate) fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let last = self.layers.len() - 1;
        let mut x = x;
        for (i, layer) in self.layers.iter().enumerate() {
            x = layer.forward(x);
            if i < last {
                x = relu(x);
            }
        }
        x
    }
}

/// One pre-norm transformer block of [`CharLmNet`].
#[derive(Module, Debug)]
struct Block {
    attention_norm: LayerNorm,
    attention: MultiHeadAttention,
    ff_norm: LayerNorm,
    ff_in: Linear,
    ff_out: Linear,
}

impl Block {
    fn new(d_model: usize, heads: usize, device: &Device) -> Self {
        Block {
            attention_norm: LayerNormConfig::new(d_model).init(device),
            attention: MultiHeadAttentionConfig::new(d_model, heads).with_dropout(0.0).init(device),
            ff_norm: LayerNormConfig::new(d_model).init(device),
            ff_in: LinearConfig::new(d_model, FF_MULTIPLE * d_model).init(device),
            ff_out: LinearConfig::new(FF_MULTIPLE * d_model, d_model).init(device),
        }
    }

    fn forward(&self, x: Tensor<3>, mask: Tensor<3, burn::tensor::Bool>) -> Tensor<3> {
        let h = self.attention_norm.forward(x.clone());
        let x = x + self.attention.forward(MhaInput::self_attn(h).mask_attn(mask)).context;
        let h = self.ff_norm.forward(x.clone());
        x + self.ff_out.forward(gelu(self.ff_in.forward(h)))
    }
}

/// The causal character language model of [`ModelSpec::CharLm`].
#[derive(Module, Debug)]
pub(crate) struct CharLmNet {
    token_embedding: Embedding,
    position_embedding: Embedding,
    blocks: Vec<Block>,
    final_norm: LayerNorm,
    head: Linear,
}

impl CharLmNet {
    fn new(vocab: usize, context: usize, d_model: usize, heads: usize, layers: usize, device: &Device) -> Self {
        CharLmNet {
            token_embedding: EmbeddingConfig::new(vocab, d_model).init(device),
            position_embedding: EmbeddingConfig::new(context, d_model).init(device),
            blocks: (0..layers).map(|_| Block::new(d_model, heads, device)).collect(),
            final_norm: LayerNormConfig::new(d_model).init(device),
            head: LinearConfig::new(d_model, vocab).init(device),
        }
    }

    /// Token ids `[batch, len]` (`len` at most the context) to logits
    /// `[batch, len, vocab]`; position `t`'s logits predict token `t + 1`
    /// and depend on tokens `0..=t` only.
    pub(crate) fn forward(&self, tokens: Tensor<2, Int>) -> Tensor<3> {
        let [batch, len] = tokens.dims();
        let device = tokens.device();
        let positions = self.position_embedding.weight.val().narrow(0, 0, len).unsqueeze::<3>();
        let mut x = self.token_embedding.forward(tokens) + positions;
        let mask = generate_autoregressive_mask(batch, len, &device);
        for block in &self.blocks {
            x = block.forward(x, mask.clone());
        }
        self.head.forward(self.final_norm.forward(x))
    }
}

/// A model of either kind, on one device.
#[derive(Debug)]
pub(crate) enum Net {
    Mlp(MlpNet),
    CharLm(Box<CharLmNet>),
}

impl Net {
    /// The model for `spec` holding `weights`, on `device` (plain for
    /// inference, `device.autodiff()` for training).
    pub(crate) fn load(spec: &ModelSpec, weights: &[f32], device: &Device) -> Result<Net, MlError> {
        check_weights(spec, weights)?;
        let layout = param_layout(spec)?;
        let mut loader = Loader { layout: &layout, weights, next: 0, path: Vec::new(), device: device.clone() };
        // The modules are built with burn's lazy initialisers, which never
        // run: the loader replaces every parameter before its first use.
        let net = match spec {
            ModelSpec::Mlp { inputs, hidden, outputs } => {
                Net::Mlp(MlpNet::new(*inputs, hidden, *outputs, device).map(&mut loader))
            }
            ModelSpec::CharLm { vocab, context, d_model, heads, layers } => Net::CharLm(Box::new(
                CharLmNet::new(*vocab, *context, *d_model, *heads, *layers, device).map(&mut loader),
            )),
        };
        assert_eq!(loader.next, layout.len(), "iog-ml: the module has fewer parameters than the layout lists");
        Ok(net)
    }

    /// The flat weights, in layout order.
    pub(crate) fn export(&self) -> Vec<f32> {
        let mut exporter = Exporter { weights: Vec::new() };
        match self {
            Net::Mlp(net) => net.visit(&mut exporter),
            Net::CharLm(net) => net.visit(&mut exporter),
        }
        exporter.weights
    }
}

/// Replaces each parameter, in visiting order, by the next tensor of the
/// flat vector, checking its path and shape against the layout.
struct Loader<'a> {
    layout: &'a [ParamTensor],
    weights: &'a [f32],
    next: usize,
    path: Vec<String>,
    device: Device,
}

impl ModuleMapper for Loader<'_> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_owned());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let path = self.path.join(".");
        let Some(entry) = self.layout.get(self.next) else {
            panic!("iog-ml: the module has a parameter `{path}` past the end of the layout");
        };
        let shape = param.lazy_shape();
        assert!(
            entry.name == path && entry.shape == shape.as_slice(),
            "iog-ml: the module's parameter {} is `{path}` {:?}, the layout says `{}` {:?}",
            self.next,
            shape.as_slice(),
            entry.name,
            entry.shape
        );
        self.next += 1;
        let values = self.weights[entry.offset..entry.offset + entry.len()].to_vec();
        let tensor = Tensor::<D>::from_data(TensorData::new(values, shape), &self.device);
        let id = param.id;
        param.transform_for_load(tensor, id)
    }
}

/// Appends every parameter's values, in visiting order.
struct Exporter {
    weights: Vec<f32>,
}

impl ModuleVisitor for Exporter {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let data = param.val().into_data();
        let values = data.try_into_vec::<f32>().expect("iog-ml: parameters are f32 on the CPU backend");
        self.weights.extend_from_slice(&values);
    }
}
