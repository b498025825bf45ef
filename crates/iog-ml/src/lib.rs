//! Small models trained and run on the CPU with [burn](https://burn.dev),
//! for work that is split among workers: each trains a copy of a model on
//! its shard of the data for some steps ([`train_inner`]), and the weights
//! they send back, one flat `f32` vector each, are averaged, compressed and
//! checked elsewhere. The plain part (specs, weight layouts, data sets,
//! configs) also builds without burn; see [Features](#features).
//!
//! # Models
//!
//! A [`ModelSpec`] names the architecture (serde, tagged by `kind`):
//! - [`ModelSpec::Mlp`]: linear layers with ReLU between them, for
//!   regression (mean squared error) or classification (cross-entropy of
//!   the outputs as logits); which one is up to the data set.
//! - [`ModelSpec::CharLm`]: a causal transformer over characters: token
//!   and learned position embeddings, pre-norm blocks of causal multi-head
//!   self-attention and a GELU feed-forward layer 4 × `d_model` wide, a
//!   final layer norm and a linear map to the vocabulary's logits. No
//!   dropout, so training involves no randomness but the batches.
//!
//! [`ModelSpec::validate`] names the field that is out of range
//! (`char_lm.heads must divide char_lm.d_model (30), got 4`).
//!
//! # Flat weights
//!
//! All of a model's parameters are one `Vec<f32>` of [`param_count`]
//! values: the tensors below, in this order, each row-major (the last index
//! varies fastest). [`param_layout`] lists them with names, shapes and
//! offsets. A linear layer maps `x ↦ x·W + b`, with `W` stored as
//! `[d_in, d_out]`, weight before bias.
//!
//! MLP with widths `w₀ = inputs, w₁ … w_L = outputs` (`hidden` between):
//! for `i` in `0..L`, `layers.{i}.weight [wᵢ, wᵢ₊₁]` then
//! `layers.{i}.bias [wᵢ₊₁]`.
//!
//! CharLm with `d = d_model`, `V = vocab`, `C = context`:
//! 1. `token_embedding.weight [V, d]`, `position_embedding.weight [C, d]`;
//! 2. for each block `b` in `0..layers`:
//!    `blocks.{b}.attention_norm.gamma [d]`, `.beta [d]`;
//!    `blocks.{b}.attention.query`, `.key`, `.value`, `.output`, each a
//!    linear `d → d` (heads take consecutive slices of `d / heads`
//!    columns); `blocks.{b}.ff_norm.gamma`, `.beta`;
//!    `blocks.{b}.ff_in` linear `d → 4d`; `blocks.{b}.ff_out` linear `4d → d`;
//! 3. `final_norm.gamma [d]`, `.beta [d]`; `head` linear `d → V`.
//!
//! The order is part of the format: it does not depend on burn's
//! internals (loading checks every tensor's path and shape against the
//! layout) and changing it is a breaking change. [`init_weights`] fills a
//! vector from a seed with integer hashing alone, so fresh weights are the
//! same bits everywhere; [`Model::new`] loads a vector and
//! [`Model::weights`] gives it back unchanged, bit for bit.
//!
//! # Data
//!
//! A [`Dataset`] is a regression, classification or text set (its
//! [`Task`]); the text kind is cut into overlapping windows of the model's
//! context. Sets come from a seed ([`spirals`], [`waves`],
//! [`grammar_text`] with a [`CharVocab`]) or from a user's file
//! ([`parse_csv`], [`parse_npy`] and [`npy_dataset`], errors naming the
//! line and column). [`shard`] splits a set's examples into contiguous
//! ranges, one per worker, and [`Dataset::slice`] cuts such a range out as
//! a set of its own. [`Dataset::encode`] and [`Dataset::decode`] carry a set
//! as compact little-endian bytes (`IOGDS v1`, then the kind, dimensions
//! and values), exact to the bit; decoding checks what the constructors
//! check.
//!
//! # Training, evaluation, inference
//!
//! [`train_inner`] runs AdamW steps on mini-batches drawn from a shard by
//! the seed and returns the new weights and each step's loss;
//! [`evaluate`] gives the mean loss over a range of examples; [`infer`]
//! (or [`Model::infer`], on weights loaded once) runs a batch forward: an
//! MLP's raw outputs, or a CharLm's next-token logits for each row of
//! tokens.
//!
//! # Features
//!
//! - `burn` (on by default): the ML runtime, burn's CPU backend, which
//!   [`train_inner`], [`evaluate`], [`infer`] and [`Model`] run on.
//!
//! Without `burn` (`default-features = false`) the crate pulls in no tensor
//! library and holds the plain part alone: specs and their flat weight
//! layouts ([`ModelSpec`], [`param_layout`], [`param_count`],
//! [`init_weights`]), data sets, their generators, slices and binary form,
//! the parsers, [`shard`], [`InnerConfig`], [`TrainOutcome`], [`Inputs`],
//! the limits and [`MlError`], the same as with it. That suits a
//! coordinator that hands out and checks work but runs no model.
//! [`train_inner`], [`evaluate`] and [`infer`] keep their signatures: they
//! check their arguments as the runtime build does, so bad input gets the
//! same precise error, and then fail with [`MlErrorKind::NoRuntime`]
//! (`ml.no_runtime`), whose message tells the user to build iog with its
//! `ml` feature (which turns this one on). [`Model`] exists only with
//! `burn`. [`RUNTIME`] says which build this is.
//!
//! burn 0.22 needs Rust 1.95; the plain part builds on the workspace's
//! older minimum.
//!
//! # Determinism
//!
//! Everything runs on burn's pure-Rust `flex` CPU backend, built without
//! its `rayon` and `simd` features, so every operation runs on the calling
//! thread in a fixed order: the same arguments give the same output bits on
//! every run, in one process or many, whatever the number of cores or of
//! other threads (callers may run several trainings at once on their own
//! threads). Features unify across a build, so a crate that turns burn's
//! `simd` on changes the bits (measured: different weights after the first
//! steps); `rayon` gave the same bits with 1 and 2 threads at the sizes
//! measured but no speed on 2 cores, and is left off so that thread count
//! cannot matter by construction.
//!
//! Across machines the bits may differ: the matrix products use the `gemm`
//! crate, which picks its kernels (AVX2, AVX-512, NEON …) by the CPU it
//! finds at run time, and a different kernel can sum in a different order;
//! `exp` and friends come from the platform's maths library. Data
//! generation and [`init_weights`] use integer hashing and `libm`, and are
//! the same bits on every machine.
//!
#![cfg_attr(
    feature = "burn",
    doc = "[`Model`]: crate::Model\n[`Model::new`]: crate::Model::new\n\
           [`Model::weights`]: crate::Model::weights\n[`Model::infer`]: crate::Model::infer"
)]
// Without `burn` there is no `Model` to link to: the links go to the
// section that says so.
#![cfg_attr(
    not(feature = "burn"),
    doc = "[`Model`]: #features\n[`Model::new`]: #features\n\
           [`Model::weights`]: #features\n[`Model::infer`]: #features"
)]

mod codec;
mod data;
mod error;
#[cfg(feature = "burn")]
mod model;
mod parse;
mod rng;
#[cfg(feature = "burn")]
mod runtime;
mod spec;
mod train;

/// Whether this build can train and run models: true with the `burn`
/// feature. Without it, [`train_inner`], [`evaluate`] and [`infer`] check
/// their arguments and then return an [`MlErrorKind::NoRuntime`] error.
pub const RUNTIME: bool = cfg!(feature = "burn");

pub use data::{CharVocab, Dataset, Task, grammar_text, shard, spirals, waves};
pub use error::{MlError, MlErrorKind};
pub use parse::{NpyArray, Target, npy_dataset, parse_csv, parse_csv_inputs, parse_npy};
#[cfg(feature = "burn")]
pub use runtime::Model;
pub use spec::{
    ACTIVATIONS_MAX, CONTEXT_MAX, D_MODEL_MAX, FF_MULTIPLE, LAYERS_MAX, MLP_HIDDEN_LAYERS_MAX, ModelSpec, PARAMS_MAX,
    ParamTensor, WIDTH_MAX, init_weights, param_count, param_layout,
};
pub use train::{
    ADAMW_EPSILON, BATCH_SIZE_MAX, EVAL_BATCH, EVAL_LOGITS_MAX, InnerConfig, Inputs, STEPS_MAX, TrainOutcome, evaluate,
    infer, train_inner,
};
