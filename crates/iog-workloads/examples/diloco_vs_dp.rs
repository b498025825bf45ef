//! DiLoCo rounds against synchronous data parallel: the same model, data
//! and seeds trained both ways, with the bytes each sends, the wall time
//! over a modelled 100 Mbit/s, 50 ms link and the final held-out loss.
//!
//! ```text
//! cargo run -p iog-workloads --example diloco_vs_dp [-- H ROUNDS SMALL_H]
//! ```
//!
//! H (default 500) inner steps a round and ROUNDS (default 3) rounds give
//! T = H · ROUNDS steps per worker; SMALL_H (default 50; 0 skips it) runs
//! DiLoCo again at that H for the same T, for context.
//!
//! # What runs
//!
//! A CharLm (context 32, d_model 32, 4 heads, 2 layers) on the seeded
//! grammar text (60 000 characters), K = 4 workers, B = 16 examples per
//! worker per step, AdamW at lr 3·10⁻³ and weight decay 0.01 for every
//! inner step of both methods, the same initial weights.
//!
//! - **DiLoCo** is the `train` workload itself: [`plan`] makes round 0's
//!   task inputs, [`run_task`] runs each worker's task (H AdamW steps on
//!   its shard from the round's global weights, the pseudo-gradient
//!   int8-compressed) and [`next_inputs`] takes the outer step (Nesterov,
//!   lr 0.7, momentum 0.9), round after round. The workers' tasks run one
//!   after another on this machine; each is timed. The workload holds
//!   nothing out (`eval_share = 0`), so its tasks train and do not score.
//! - **Synchronous data parallel**: each of the K workers computes the
//!   gradient of its B examples, the gradients are averaged and every
//!   worker takes the same AdamW step. The mean of K batch-mean gradients
//!   of B examples is the batch-mean gradient of the K · B examples, so
//!   this is AdamW on batches of K · B, run here as one [`train_inner`] of
//!   T steps of batch K · B over the whole training set. The only
//!   difference from K real workers is that a batch is drawn from the
//!   union of the shards rather than B from each.
//!
//! Both are scored by [`evaluate`] on the same held-out text: the 8 000
//! characters that the grammar generator writes after the training text
//! (its output for a longer length starts with the shorter one's), which
//! no worker trains on.
//!
//! # Bytes
//!
//! Per worker, both directions of its link added up, over the whole run:
//! - synchronous data parallel through a parameter server: its `f32`
//!   gradient up (4P bytes for P parameters) and the averaged gradient
//!   down (4P), 8P a step. A ring all-reduce instead sends 2(K − 1)/K · 4P
//!   and receives as much a step, 12P for K = 4, in 2(K − 1) hops.
//! - DiLoCo, raw: the round's weights down as `f32` (4P) and the
//!   compressed pseudo-gradient up ([`Int8Blocks::encoded_len`], about
//!   1.02P), a round.
//! - DiLoCo as the workload sends them: the task input and output JSON,
//!   measured. The input carries the weights in base64 (4/3 of 4P), the
//!   worker's shard of the data in base64 (again every round) and, for
//!   shard 0, the outer momentum; the output carries the pseudo-gradient
//!   in base64 and each inner step's loss.
//!
//! # Time
//!
//! Compute is measured, the link is modelled. Each worker's link is taken
//! as 100 Mbit/s with 50 ms one-way latency: a message of n bytes takes
//! 0.05 s + 8n / 10⁸ s. A synchronous step is one worker's share of the
//! compute (the measured time of the K · B-batch run divided by K, as if
//! the K workers ran at once; this favours data parallel a little, since
//! one batch of K · B runs faster than K batches of B) then the gradient
//! up and the mean down. A DiLoCo round is the round's input down, the
//! slowest worker's measured task, and its output up. Nothing overlaps
//! compute with communication in either method.

use std::time::Instant;

use base64::Engine as _;
use iog_ml::{
    CharVocab, Dataset, InnerConfig, ModelSpec, evaluate, grammar_text, init_weights, param_count, train_inner,
};
use iog_workloads::diloco::Int8Blocks;
use iog_workloads::{DataSpec, TrainSpec, WorkloadSpec, next_inputs, plan, run_task};

/// Workers.
const K: usize = 4;
/// Examples per worker per step.
const B: usize = 16;
const CONTEXT: usize = 32;
const D_MODEL: usize = 32;
const HEADS: usize = 4;
const LAYERS: usize = 2;
const LR: f64 = 3e-3;
const WEIGHT_DECAY: f64 = 0.01;
/// Characters of training text.
const TRAIN_CHARS: usize = 60_000;
/// Characters of held-out text after it.
const HELD_OUT_CHARS: usize = 8_000;
const TEXT_SEED: u64 = 7;
/// Seeds the initial weights and the workload's batches.
const SEED: u64 = 11;
/// Seeds data parallel's batches.
const DP_SEED: u64 = 13;
/// The modelled link: bits per second and one-way latency.
const LINK_BITS_PER_S: f64 = 100e6;
const LINK_LATENCY_S: f64 = 0.05;

/// Seconds one message of `bytes` takes on the modelled link.
fn message_s(bytes: u64) -> f64 {
    LINK_LATENCY_S + bytes as f64 * 8.0 / LINK_BITS_PER_S
}

/// One method's results.
struct Row {
    method: String,
    /// Bytes across one worker's link, both ways: raw binary, and as sent.
    raw_bytes: f64,
    sent_bytes: f64,
    compute_s: f64,
    link_s: f64,
    loss: f32,
}

/// The training set, the held-out set and the model.
struct Setup {
    spec: ModelSpec,
    train: Dataset,
    held_out: Dataset,
    params: usize,
}

fn setup() -> Setup {
    let text = grammar_text(TRAIN_CHARS, TEXT_SEED);
    let longer = grammar_text(TRAIN_CHARS + HELD_OUT_CHARS + 100, TEXT_SEED);
    assert!(longer.starts_with(&text), "the generator's longer text starts with the shorter");
    // Its own token sequence: no held-out window shares a token with a
    // training window.
    let tail = &longer[text.len()..];
    let vocab = CharVocab::from_text(&text);
    assert_eq!(vocab, CharVocab::from_text(&longer), "the held-out text uses the training text's characters");
    let spec =
        ModelSpec::CharLm { vocab: vocab.len(), context: CONTEXT, d_model: D_MODEL, heads: HEADS, layers: LAYERS };
    let train =
        Dataset::text(vocab.encode(&text).expect("in vocabulary"), vocab.len(), CONTEXT).expect("text fits context");
    let held_out =
        Dataset::text(vocab.encode(tail).expect("in vocabulary"), vocab.len(), CONTEXT).expect("text fits context");
    let params = param_count(&spec).expect("valid spec");
    Setup { spec, train, held_out, params }
}

fn data_parallel(setup: &Setup, steps: u64) -> (Row, Row) {
    let weights = init_weights(&setup.spec, SEED).expect("valid spec");
    let config = InnerConfig { steps, batch_size: K * B, lr: LR, weight_decay: WEIGHT_DECAY, seed: DP_SEED };
    let started = Instant::now();
    let outcome =
        train_inner(&setup.spec, &weights, &setup.train, 0..setup.train.len(), &config).expect("training runs");
    let compute_s = started.elapsed().as_secs_f64() / K as f64;
    let loss = evaluate(&setup.spec, &outcome.weights, &setup.held_out, 0..setup.held_out.len()).expect("scores");
    let p = setup.params as u64;
    let server = 8.0 * p as f64 * steps as f64;
    let ring_each_way = (2 * (K as u64 - 1) * 4 * p).div_ceil(K as u64);
    let ring = 2.0 * ring_each_way as f64 * steps as f64;
    let hop = (4 * p).div_ceil(K as u64);
    let ring_step_s = 2.0 * (K as f64 - 1.0) * message_s(hop);
    (
        Row {
            method: format!("sync data parallel, parameter server ({steps} steps of {K}×{B})"),
            raw_bytes: server,
            sent_bytes: server,
            compute_s,
            link_s: steps as f64 * 2.0 * message_s(4 * p),
            loss,
        },
        Row {
            method: format!("sync data parallel, ring all-reduce ({steps} steps of {K}×{B})"),
            raw_bytes: ring,
            sent_bytes: ring,
            compute_s,
            link_s: steps as f64 * ring_step_s,
            loss,
        },
    )
}

/// A task input's or output's string field, as it stands in the JSON.
fn json_text(json: &[u8], field: &str) -> String {
    let value = iog_workloads::json_view(json).expect("a task input or output");
    value[field].as_str().unwrap_or_else(|| panic!("the JSON has a string {field}")).to_owned()
}

/// A task input's or output's byte field.
fn json_bytes(json: &[u8], field: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD.decode(json_text(json, field)).expect("base64")
}

fn diloco(setup: &Setup, inner_steps: u64, rounds: u32) -> Row {
    let spec = TrainSpec {
        model: setup.spec.clone(),
        data: DataSpec::Grammar { chars: TRAIN_CHARS, seed: TEXT_SEED },
        workers: K as u32,
        rounds,
        inner_steps,
        batch_size: B,
        lr: LR,
        weight_decay: WEIGHT_DECAY,
        outer_lr: 0.7,
        outer_momentum: 0.9,
        eval_share: 0.0,
        seed: SEED,
    };
    let workload = WorkloadSpec::Train(spec);
    let mut inputs = plan(&workload).expect("the job plans");
    let first_input = inputs[0].clone();
    let first = json_bytes(&first_input, "weights");
    let initial = init_weights(&setup.spec, SEED).expect("valid spec");
    assert_eq!(first, initial.iter().flat_map(|w| w.to_le_bytes()).collect::<Vec<u8>>(), "same initial weights");
    let p = setup.params as u64;
    let (mut sent, mut compute_s, mut link_s) = (0u64, 0.0f64, 0.0f64);
    let mut momentum: Option<Vec<u8>> = None;
    for round in 0..rounds {
        let mut pairs = Vec::with_capacity(K);
        let mut slowest_s = 0.0f64;
        let mut round_link_s = 0.0f64;
        for (shard, input) in inputs.into_iter().enumerate() {
            let started = Instant::now();
            let output = run_task(&input).expect("the task runs").output;
            slowest_s = slowest_s.max(started.elapsed().as_secs_f64());
            assert_eq!(json_bytes(&output, "delta").len() as u64, Int8Blocks::encoded_len(p));
            if round == 0 && shard == 1 {
                println!(
                    "  H = {inner_steps}, as sent in a round to and from worker 1: input {} bytes (weights {} and \
                     data shard {}), output {} bytes (pseudo-gradient {}, {inner_steps} losses)",
                    input.len(),
                    json_bytes(&input, "weights").len(),
                    json_bytes(&input, "train").len(),
                    output.len(),
                    json_bytes(&output, "delta").len(),
                );
            }
            sent += (input.len() + output.len()) as u64;
            round_link_s = round_link_s.max(message_s(input.len() as u64) + message_s(output.len() as u64));
            pairs.push((input, output));
        }
        compute_s += slowest_s;
        link_s += round_link_s;
        let link = next_inputs(&workload, u64::from(round + 1) * K as u64, &pairs, momentum.as_deref())
            .expect("the outer step");
        // The momentum stays with the coordinator: no worker is sent it.
        (inputs, momentum) = (link.inputs, link.state);
    }
    let weights: Vec<f32> = json_bytes(&inputs[0], "weights")
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
        .collect();
    let loss = evaluate(&setup.spec, &weights, &setup.held_out, 0..setup.held_out.len()).expect("scores");
    let raw = f64::from(rounds) * (4 * p + Int8Blocks::encoded_len(p)) as f64;
    Row {
        method: format!("DiLoCo, H = {inner_steps}, {rounds} rounds, int8"),
        raw_bytes: raw,
        sent_bytes: sent as f64 / K as f64,
        compute_s,
        link_s,
        loss,
    }
}

fn mb(bytes: f64) -> String {
    if bytes >= 1e9 { format!("{:.2} GB", bytes / 1e9) } else { format!("{:.2} MB", bytes / 1e6) }
}

fn main() {
    let arg = |n: usize, default: u64| {
        std::env::args().nth(n).map_or(default, |text| text.parse().expect("arguments are whole numbers"))
    };
    let (h, rounds, small_h) = (arg(1, 500), arg(2, 3), arg(3, 50));
    let steps = h * rounds;
    let started = Instant::now();
    let setup = setup();
    let p = setup.params as u64;
    println!(
        "CharLm context {CONTEXT}, d_model {D_MODEL}, {HEADS} heads, {LAYERS} layers: P = {p} parameters; \
         {} training windows, {} held-out; K = {K}, B = {B}, T = {steps} steps per worker",
        setup.train.len(),
        setup.held_out.len()
    );
    let initial = init_weights(&setup.spec, SEED).expect("valid spec");
    let initial_loss = evaluate(&setup.spec, &initial, &setup.held_out, 0..setup.held_out.len()).expect("scores");
    println!("held-out loss of the initial weights: {initial_loss:.4}");
    let (server, ring) = data_parallel(&setup, steps);
    println!("data parallel done ({:.0} s so far)", started.elapsed().as_secs_f64());
    let mut rows = vec![server, ring];
    rows.push(diloco(&setup, h, rounds as u32));
    println!("DiLoCo H = {h} done ({:.0} s so far)", started.elapsed().as_secs_f64());
    if small_h > 0 && steps.is_multiple_of(small_h) {
        rows.push(diloco(&setup, small_h, (steps / small_h) as u32));
        println!("DiLoCo H = {small_h} done ({:.0} s so far)", started.elapsed().as_secs_f64());
    }
    let baseline = (rows[0].raw_bytes, rows[0].loss);
    println!();
    println!(
        "Link per worker: 100 Mbit/s, 50 ms one way (modelled). Compute: measured on this machine, one worker's share."
    );
    println!();
    println!(
        "| method | bytes per worker, raw | as sent | fewer bytes than sync DP (raw / as sent) | wall time: compute + link (s) | held-out loss | gap |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for row in &rows {
        println!(
            "| {} | {} | {} | {:.0}× / {:.0}× | {:.1} + {:.1} = {:.1} | {:.4} | {:+.2} % |",
            row.method,
            mb(row.raw_bytes),
            mb(row.sent_bytes),
            baseline.0 / row.raw_bytes,
            baseline.0 / row.sent_bytes,
            row.compute_s,
            row.link_s,
            row.compute_s + row.link_s,
            row.loss,
            100.0 * (f64::from(row.loss) / f64::from(baseline.1) - 1.0),
        );
    }
    println!();
    println!(
        "Bytes ratio of DiLoCo (raw) to a parameter server, any T: 8P·H / (4P + int8(P)) = {:.0}× at H = {h}",
        8.0 * p as f64 * h as f64 / (4 * p + Int8Blocks::encoded_len(p)) as f64
    );
    println!("total benchmark time {:.0} s", started.elapsed().as_secs_f64());
    println!("command: cargo run -p iog-workloads --example diloco_vs_dp -- {h} {rounds} {small_h}");
}
