//! Shared helpers: small specs and data sets, a hash of weight bits, and
//! forward passes written out in plain Rust from the documented layout.

#![allow(dead_code)]

use iog_ml::{CharVocab, Dataset, ModelSpec, ParamTensor, grammar_text, param_layout};

/// The CharLm size the tests train: about 28 000 parameters.
pub const CONTEXT: usize = 16;

pub fn char_lm_data() -> (ModelSpec, Dataset, CharVocab) {
    let text = grammar_text(20_000, 7);
    let vocab = CharVocab::from_text(&text);
    let data = Dataset::text(vocab.encode(&text).unwrap(), vocab.len(), CONTEXT).unwrap();
    let spec = ModelSpec::CharLm { vocab: vocab.len(), context: CONTEXT, d_model: 32, heads: 4, layers: 2 };
    (spec, data, vocab)
}

pub fn spirals_spec() -> ModelSpec {
    ModelSpec::Mlp { inputs: 2, hidden: vec![32, 32], outputs: 3 }
}

/// FNV-1a over the bit patterns, to compare weight vectors between processes.
pub fn bits_hash(values: &[f32]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for v in values {
        for b in v.to_bits().to_le_bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x100_0000_01b3);
        }
    }
    h
}

pub fn same_bits(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

/// The named tensor of `weights`, found through the public layout.
pub fn tensor<'a>(layout: &[ParamTensor], weights: &'a [f32], name: &str) -> &'a [f32] {
    let t = layout.iter().find(|t| t.name == name).unwrap_or_else(|| panic!("no tensor {name}"));
    &weights[t.offset..t.offset + t.len()]
}

/// `x [n, d_in] · w [d_in, d_out] + b`, row-major, summed in f64.
pub fn linear(x: &[f32], w: &[f32], b: &[f32], d_in: usize, d_out: usize) -> Vec<f32> {
    let n = x.len() / d_in;
    let mut out = vec![0.0; n * d_out];
    for r in 0..n {
        for o in 0..d_out {
            let mut s = f64::from(b[o]);
            for i in 0..d_in {
                s += f64::from(x[r * d_in + i]) * f64::from(w[i * d_out + o]);
            }
            out[r * d_out + o] = s as f32;
        }
    }
    out
}

/// The MLP forward pass of the crate docs: linear layers, ReLU between.
pub fn mlp_forward(spec: &ModelSpec, weights: &[f32], x: &[f32]) -> Vec<f32> {
    let ModelSpec::Mlp { inputs, hidden, outputs } = spec else { panic!("not an mlp") };
    let layout = param_layout(spec).unwrap();
    let widths: Vec<usize> = std::iter::once(*inputs).chain(hidden.iter().copied()).chain([*outputs]).collect();
    let mut h = x.to_vec();
    for i in 0..widths.len() - 1 {
        let w = tensor(&layout, weights, &format!("layers.{i}.weight"));
        let b = tensor(&layout, weights, &format!("layers.{i}.bias"));
        h = linear(&h, w, b, widths[i], widths[i + 1]);
        if i + 2 < widths.len() {
            h.iter_mut().for_each(|v| *v = v.max(0.0));
        }
    }
    h
}

fn layer_norm(x: &[f32], gamma: &[f32], beta: &[f32]) -> Vec<f32> {
    let d = gamma.len();
    let mut out = vec![0.0; x.len()];
    for (row, o) in x.chunks(d).zip(out.chunks_mut(d)) {
        let mean = row.iter().map(|&v| f64::from(v)).sum::<f64>() / d as f64;
        let var = row.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / d as f64;
        let inv = 1.0 / (var + 1e-5).sqrt();
        for i in 0..d {
            o[i] = ((f64::from(row[i]) - mean) * inv * f64::from(gamma[i]) + f64::from(beta[i])) as f32;
        }
    }
    out
}

/// The CharLm forward pass of the crate docs for one sequence: logits
/// `[len, vocab]`, position `t` seeing tokens `0..=t` only.
pub fn char_lm_forward(spec: &ModelSpec, weights: &[f32], tokens: &[u32]) -> Vec<f32> {
    let ModelSpec::CharLm { vocab, d_model: d, heads, layers, .. } = *spec else { panic!("not a char_lm") };
    let layout = param_layout(spec).unwrap();
    let t = |name: &str| tensor(&layout, weights, name);
    let len = tokens.len();
    let dk = d / heads;
    let (tok, pos) = (t("token_embedding.weight"), t("position_embedding.weight"));
    let mut x: Vec<f32> = (0..len)
        .flat_map(|p| (0..d).map(move |i| (p, i)))
        .map(|(p, i)| tok[tokens[p] as usize * d + i] + pos[p * d + i])
        .collect();
    for b in 0..layers {
        let p = format!("blocks.{b}");
        let h = layer_norm(&x, t(&format!("{p}.attention_norm.gamma")), t(&format!("{p}.attention_norm.beta")));
        let proj = |part: &str| {
            linear(&h, t(&format!("{p}.attention.{part}.weight")), t(&format!("{p}.attention.{part}.bias")), d, d)
        };
        let (q, k, v) = (proj("query"), proj("key"), proj("value"));
        let mut ctx = vec![0.0f32; len * d];
        for head in 0..heads {
            for i in 0..len {
                let scores: Vec<f64> = (0..=i)
                    .map(|j| {
                        (0..dk)
                            .map(|c| f64::from(q[i * d + head * dk + c]) * f64::from(k[j * d + head * dk + c]))
                            .sum::<f64>()
                            / (dk as f64).sqrt()
                    })
                    .collect();
                let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let exps: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
                let total: f64 = exps.iter().sum();
                for c in 0..dk {
                    let s: f64 = (0..=i).map(|j| exps[j] / total * f64::from(v[j * d + head * dk + c])).sum();
                    ctx[i * d + head * dk + c] = s as f32;
                }
            }
        }
        let attn =
            linear(&ctx, t(&format!("{p}.attention.output.weight")), t(&format!("{p}.attention.output.bias")), d, d);
        x.iter_mut().zip(&attn).for_each(|(a, b)| *a += b);
        let h = layer_norm(&x, t(&format!("{p}.ff_norm.gamma")), t(&format!("{p}.ff_norm.beta")));
        let mut f = linear(&h, t(&format!("{p}.ff_in.weight")), t(&format!("{p}.ff_in.bias")), d, 4 * d);
        f.iter_mut().for_each(|v| {
            *v = (0.5 * f64::from(*v) * (1.0 + libm::erf(f64::from(*v) / std::f64::consts::SQRT_2))) as f32
        });
        let f = linear(&f, t(&format!("{p}.ff_out.weight")), t(&format!("{p}.ff_out.bias")), 4 * d, d);
        x.iter_mut().zip(&f).for_each(|(a, b)| *a += b);
    }
    let h = layer_norm(&x, t("final_norm.gamma"), t("final_norm.beta"));
    linear(&h, t("head.weight"), t("head.bias"), d, vocab)
}

/// Mean cross-entropy of `logits [n, classes]` against `targets`.
pub fn cross_entropy(logits: &[f32], targets: &[u32]) -> f64 {
    let classes = logits.len() / targets.len();
    let mut total = 0.0;
    for (row, &target) in logits.chunks(classes).zip(targets) {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let log_sum = row.iter().map(|&v| f64::from(v - max).exp()).sum::<f64>().ln() + f64::from(max);
        total += log_sum - f64::from(row[target as usize]);
    }
    total / targets.len() as f64
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}
